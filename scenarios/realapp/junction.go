package realapp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/junction-sre/junction/alert"
)

// FreePort returns a loopback port nobody listens on right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// JunctionConfig is the config the test runs bin/junction on: its default
// config (`junction default-config`) on free loopback ports and a private
// data directory, with the built-in rule packs, the correlation processor
// ticking every EmitInterval, and no self-telemetry server (several
// Junctions may run on one machine).
const junctionConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{OTLP}}
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  batch: {}
  correlation:
    emit_interval: {{EMIT}}
    rules:
      files: [builtin:packs]
      state_file: {{DIR}}/rules/state.json
exporters:
  junction:
    storage:
      directory: {{DIR}}/data
    api:
      endpoint: {{API}}
  nop: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, correlation, batch]
      exporters: [nop]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, correlation, batch]
      exporters: [junction]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, correlation, batch]
      exporters: [junction]
  telemetry:
    metrics:
      level: none
`

// Junction is a running junction binary.
type Junction struct {
	// OTLP is its OTLP/gRPC receiver, API its query API, host:port.
	OTLP, API string
	// Config is the path of its config file.
	Config string
	dir    string
	cmd    *exec.Cmd
	out    *tailBuffer
	done   chan struct{}
	err    error
}

// StartJunction writes a config into a new temporary directory and runs
// bin on it until it reports that everything is ready.
func StartJunction(ctx context.Context, bin string, emitInterval time.Duration) (*Junction, error) {
	dir, err := os.MkdirTemp("", "junction-realapp-")
	if err != nil {
		return nil, err
	}
	otlp, err := FreePort()
	if err != nil {
		return nil, err
	}
	api, err := FreePort()
	if err != nil {
		return nil, err
	}
	j := &Junction{OTLP: fmt.Sprintf("127.0.0.1:%d", otlp), API: fmt.Sprintf("127.0.0.1:%d", api),
		Config: filepath.Join(dir, "junction.yaml"), dir: dir, out: &tailBuffer{}, done: make(chan struct{})}
	cfg := strings.NewReplacer("{{OTLP}}", j.OTLP, "{{API}}", j.API, "{{DIR}}", dir,
		"{{EMIT}}", emitInterval.String()).Replace(junctionConfig)
	if err := os.WriteFile(j.Config, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	j.cmd = exec.Command(bin, "--config", j.Config)
	j.cmd.Dir = dir
	j.cmd.Stdout, j.cmd.Stderr = j.out, j.out
	if err := j.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		j.err = j.cmd.Wait()
		close(j.done)
	}()
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(j.out.String(), "Everything is ready") {
		select {
		case <-j.done:
			return nil, fmt.Errorf("junction exited: %v\n%s", j.err, j.Output(8000))
		case <-ctx.Done():
			j.Stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			j.Stop()
			return nil, fmt.Errorf("junction not ready after 90s:\n%s", j.Output(8000))
		}
	}
	return j, nil
}

// Output returns the last n bytes of its output.
func (j *Junction) Output(n int) string {
	s := j.out.String()
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// Exited returns an error when the process has ended.
func (j *Junction) Exited() error {
	select {
	case <-j.done:
		return fmt.Errorf("junction exited: %v\n%s", j.err, j.Output(8000))
	default:
		return nil
	}
}

// Stop stops it (SIGTERM, SIGKILL after 20s) and removes its directory.
func (j *Junction) Stop() error {
	_ = j.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-j.done:
	case <-time.After(20 * time.Second):
		_ = j.cmd.Process.Kill()
		<-j.done
		err = fmt.Errorf("junction did not stop within 20s")
	}
	_ = os.RemoveAll(j.dir)
	return err
}

// GraphNode and GraphEdge are the query API's graph objects (docs/api.md).
type GraphNode struct {
	ID      string             `json:"id"`
	Type    string             `json:"type"`
	Name    string             `json:"name"`
	Virtual bool               `json:"virtual"`
	Stats   map[string]float64 `json:"stats"`
	Blamed  bool               `json:"blamed"`
	Alerts  []string           `json:"alerts"`
}

type GraphEdge struct {
	ID     string             `json:"id"`
	Source string             `json:"source"`
	Target string             `json:"target"`
	Type   string             `json:"type"`
	Stats  map[string]float64 `json:"stats"`
}

// Graph is the answer of GET /api/v1/graph.
type Graph struct {
	Nodes []GraphNode `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

// EntityState is one entity of GET /api/v1/entities/{id}.
type EntityState struct {
	ID       string             `json:"id"`
	Type     string             `json:"type"`
	Virtual  bool               `json:"virtual"`
	Features map[string]float64 `json:"features"`
}

func apiTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (j *Junction) get(ctx context.Context, path string, q url.Values, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	u := "http://" + j.API + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// Graph reads the graph of [from, to].
func (j *Junction) Graph(ctx context.Context, from, to time.Time) (Graph, error) {
	var g Graph
	err := j.get(ctx, "/api/v1/graph", url.Values{"from": {apiTime(from)}, "to": {apiTime(to)}}, &g)
	return g, err
}

// Alerts reads every alert instance active in [from, to] (latest record).
func (j *Junction) Alerts(ctx context.Context, from, to time.Time) ([]alert.Alert, error) {
	var r struct {
		Alerts []alert.Alert `json:"alerts"`
	}
	err := j.get(ctx, "/api/v1/alerts", url.Values{"from": {apiTime(from)}, "to": {apiTime(to)}, "limit": {"5000"}}, &r)
	return r.Alerts, err
}

// Entity reads one entity's latest features.
func (j *Junction) Entity(ctx context.Context, id string) (EntityState, error) {
	var r struct {
		EntityState
	}
	err := j.get(ctx, "/api/v1/entities/"+url.PathEscape(id), nil, &r)
	return r.EntityState, err
}

// tailBuffer keeps the last 256 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const keepOutput = 256 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > keepOutput {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-keepOutput:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// AlertStream collects every alert state change Junction streams
// (GET /api/v1/stream): each record carries the blame the rule gave at
// that change. When the server ends the stream it reconnects at once, as
// an EventSource does, and counts it; a change in the gap is lost.
type AlertStream struct {
	mu         sync.Mutex
	records    []alert.Alert
	reconnects int
	err        error
	cancel     context.CancelFunc
	done       chan struct{}
}

// Stream connects to the alert stream and collects until Close.
func (j *Junction) Stream(ctx context.Context) (*AlertStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	body, err := j.openStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &AlertStream{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			s.read(body)
			body.Close()
			if ctx.Err() != nil {
				return
			}
			for {
				if body, err = j.openStream(ctx); err == nil {
					break
				}
				if ctx.Err() != nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
			s.mu.Lock()
			s.reconnects++
			s.mu.Unlock()
		}
	}()
	return s, nil
}

func (j *Junction) openStream(ctx context.Context) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+j.API+"/api/v1/stream", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET /api/v1/stream: %s", resp.Status)
	}
	return resp.Body, nil
}

// read collects the alert events of one connection until it ends.
func (s *AlertStream) read(body io.Reader) {
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 16<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "alert":
			var a alert.Alert
			err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &a)
			s.mu.Lock()
			if err != nil && s.err == nil {
				s.err = fmt.Errorf("alert stream: %w", err)
			} else if err == nil {
				s.records = append(s.records, a)
			}
			s.mu.Unlock()
		case line == "":
			event = ""
		}
	}
}

// Records returns the state changes received so far, in order, and how
// often the stream was reconnected.
func (s *AlertStream) Records() ([]alert.Alert, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]alert.Alert(nil), s.records...), s.reconnects
}

// Close disconnects; it returns an error if an event could not be read.
func (s *AlertStream) Close() error {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
