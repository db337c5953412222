package realapp

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry says where the services send their spans: each service has its
// own OTel SDK TracerProvider and resource (service.name,
// service.namespace), as separate deployments would, exporting through
// the SDK's OTLP exporters to Junction (OTLP/gRPC) and to a Recorder
// (OTLP/HTTP), or both.
type Telemetry struct {
	// OTLPGRPC is Junction's OTLP/gRPC receiver, host:port; empty for none.
	OTLPGRPC string
	// Recorder writes what the services export; nil for none.
	Recorder *Recorder
	// BatchTimeout is the SDK batch span processor's export delay; 1s when
	// zero.
	BatchTimeout time.Duration
}

type tracerProvider struct {
	*sdktrace.TracerProvider
}

var _ trace.TracerProvider = tracerProvider{}

func (tp *tracerProvider) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return tp.Shutdown(ctx)
}

func (t *Telemetry) provider(ctx context.Context, namespace, service string) (*tracerProvider, error) {
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", service),
			attribute.String("service.namespace", namespace),
			attribute.String("service.instance.id", namespace+"-"+service+"-1"),
		))
	if err != nil {
		return nil, err
	}
	bt := t.BatchTimeout
	if bt == 0 {
		bt = time.Second
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.AlwaysSample())}
	if t.OTLPGRPC != "" {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(t.OTLPGRPC), otlptracegrpc.WithInsecure())
		if err != nil {
			return nil, fmt.Errorf("OTLP/gRPC exporter to %s: %w", t.OTLPGRPC, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(bt)))
	}
	if t.Recorder != nil {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(t.Recorder.URL()),
			otlptracehttp.WithCompression(otlptracehttp.NoCompression))
		if err != nil {
			return nil, fmt.Errorf("OTLP/HTTP exporter to the recorder: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(bt)))
	}
	return &tracerProvider{sdktrace.NewTracerProvider(opts...)}, nil
}

// Recorder is an OTLP/HTTP trace receiver that writes every export
// request it receives as one line of OTLP JSON (ptrace.JSONMarshaler), as
// the collector's file exporter writes them, to path.jsonl and, gzipped,
// to path.jsonl.gz.
type Recorder struct {
	path string
	srv  *http.Server
	addr string
	done chan struct{}

	mu     sync.Mutex
	plain  *os.File
	plainW *bufio.Writer
	gzFile *os.File
	gz     *gzip.Writer
	spans  int
	lines  int
	err    error
}

// NewRecorder starts a recorder on a loopback port writing base.jsonl and
// base.jsonl.gz (base without extension).
func NewRecorder(base string) (*Recorder, error) {
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return nil, err
	}
	r := &Recorder{path: base, done: make(chan struct{})}
	var err error
	if r.plain, err = os.Create(base + ".jsonl"); err != nil {
		return nil, err
	}
	if r.gzFile, err = os.Create(base + ".jsonl.gz"); err != nil {
		r.plain.Close()
		return nil, err
	}
	r.plainW = bufio.NewWriterSize(r.plain, 256<<10)
	r.gz = gzip.NewWriter(r.gzFile)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.plain.Close()
		r.gzFile.Close()
		return nil, err
	}
	r.addr = l.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.handle)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(l)
	}()
	return r, nil
}

// URL is the OTLP/HTTP traces endpoint.
func (r *Recorder) URL() string { return "http://" + r.addr + "/v1/traces" }

// Paths are the recording's files: JSON lines and the same gzipped.
func (r *Recorder) Paths() (jsonl, jsonlGz string) { return r.path + ".jsonl", r.path + ".jsonl.gz" }

func (r *Recorder) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	er := ptraceotlp.NewExportRequest()
	if err := er.UnmarshalProto(body); err != nil {
		http.Error(w, "not an OTLP/protobuf trace export request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := r.write(er.Traces()); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

func (r *Recorder) write(td ptrace.Traces) error {
	line, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if _, err := r.plainW.Write(line); err != nil {
		r.err = err
		return err
	}
	if _, err := r.gz.Write(line); err != nil {
		r.err = err
		return err
	}
	r.spans += td.SpanCount()
	r.lines++
	return nil
}

// Counts returns the lines and spans written so far.
func (r *Recorder) Counts() (lines, spans int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines, r.spans
}

// Close stops the receiver (after the exporters have flushed: close the
// apps first) and closes the files.
func (r *Recorder) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	err = errors.Join(err, r.err, r.plainW.Flush(), r.plain.Close(), r.gz.Close(), r.gzFile.Close())
	return err
}
