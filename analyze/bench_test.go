package analyze

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/scenarios"
)

// capped passes batches on until the spans reach max, then drops the rest.
type capped struct {
	next  scenarios.Sink
	max   int
	spans int
}

func (c *capped) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if c.spans >= c.max {
		return nil
	}
	c.spans += td.SpanCount()
	return c.next.ConsumeTraces(ctx, td)
}

func (c *capped) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if c.spans >= c.max {
		return nil
	}
	return c.next.ConsumeMetrics(ctx, md)
}

func (c *capped) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if c.spans >= c.max {
		return nil
	}
	return c.next.ConsumeLogs(ctx, ld)
}

// recording25k writes the first 25,000 spans of the bottleneck scenario
// (with the metrics and logs of the same steps) as one JSON lines file, as
// the file exporter writes it.
func recording25k(b *testing.B) (string, int) {
	b.Helper()
	plan, err := scenarios.NewPlan(scenarios.Bottleneck)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "recording.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	c := &capped{next: &fileExporterSink{traces: f, other: f}, max: 25000}
	if _, err := scenarios.Run(context.Background(), plan, c, scenarios.Unpaced); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path, c.spans
}

// BenchmarkAnalyze25kSpans analyzes a recording of 25,000 spans with the
// built-in rule packs: reading, replay into the processor, rule
// evaluation and the report.
func BenchmarkAnalyze25kSpans(b *testing.B) {
	path, spans := recording25k(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Analyze(context.Background(), Options{}, []string{path}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Input.Spans != spans {
			b.Fatalf("read %d spans, want %d", rep.Input.Spans, spans)
		}
		if err := rep.WriteText(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(spans), "spans/op")
}

// BenchmarkRead25kSpans is the reading alone: JSON lines decoded into
// pdata.
func BenchmarkRead25kSpans(b *testing.B) {
	path, spans := recording25k(b)
	b.ReportAllocs()
	for b.Loop() {
		r, err := OpenFile(path)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if rec.Signal == SignalTraces {
				n += rec.Items()
			}
		}
		r.Close()
		if n != spans {
			b.Fatalf("read %d spans, want %d", n, spans)
		}
	}
}
