package correlationprocessor

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// seeds returns the protobuf encodings of the golden inputs of one signal.
func seeds(f *testing.F, suffix string, encode func(path string) ([]byte, error)) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*", "*_"+suffix+".yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := encode(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// fuzzHarness drives a shared processor with a clock that moves 7 s per
// input, so pairing, expiry and eviction all run.
func fuzzHarness(f *testing.F, name string) *harness {
	cfg := testConfig()
	cfg.Limits.MaxEntitiesPerType = 50
	cfg.Limits.MaxEdges = 50
	cfg.Limits.MaxPendingSpans = 50
	cfg.Limits.MaxSampledTraces = 10
	cfg.Limits.MaxSpansPerTrace = 20
	cfg.Limits.MaxTemplatesPerEntity = 5
	cfg.Limits.MaxSeriesPerEntity = 20
	return newHarness(f, name, cfg, nopSettings())
}

func step(h *harness) time.Time {
	h.clock.t = h.clock.t.Add(7 * time.Second)
	return h.clock.t
}

func FuzzConsumeTraces(f *testing.F) {
	seeds(f, "traces", func(p string) ([]byte, error) {
		td, err := golden.ReadTraces(p)
		if err != nil {
			return nil, err
		}
		return (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	})
	h := fuzzHarness(f, "fuzz_traces")
	f.Fuzz(func(t *testing.T, b []byte) {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
		if err != nil {
			return
		}
		ctx := context.Background()
		if err := h.traces.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		checkAfterInput(t, h, step(h))
	})
}

func FuzzConsumeMetrics(f *testing.F) {
	seeds(f, "metrics", func(p string) ([]byte, error) {
		md, err := golden.ReadMetrics(p)
		if err != nil {
			return nil, err
		}
		return (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	})
	h := fuzzHarness(f, "fuzz_metrics")
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(b)
		if err != nil {
			return
		}
		if err := h.metrics.ConsumeMetrics(context.Background(), md); err != nil {
			t.Fatal(err)
		}
		checkAfterInput(t, h, step(h))
	})
}

func FuzzConsumeLogs(f *testing.F) {
	seeds(f, "logs", func(p string) ([]byte, error) {
		ld, err := golden.ReadLogs(p)
		if err != nil {
			return nil, err
		}
		return (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	})
	h := fuzzHarness(f, "fuzz_logs")
	f.Fuzz(func(t *testing.T, b []byte) {
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
		if err != nil {
			return
		}
		if err := h.logs.ConsumeLogs(context.Background(), ld); err != nil {
			t.Fatal(err)
		}
		checkAfterInput(t, h, step(h))
	})
}

// checkAfterInput ticks and checks the bounds and the snapshot's shape.
func checkAfterInput(t *testing.T, h *harness, at time.Time) {
	if err := h.p.tick(context.Background(), at); err != nil {
		t.Fatal(err)
	}
	perType, edges := h.p.graph.Len()
	for typ, n := range perType {
		if n > h.p.cfg.Limits.MaxEntitiesPerType || n < 0 {
			t.Fatalf("%d %s entities, bound %d", n, typ, h.p.cfg.Limits.MaxEntitiesPerType)
		}
	}
	if edges > h.p.cfg.Limits.MaxEdges {
		t.Fatalf("%d edges, bound %d", edges, h.p.cfg.Limits.MaxEdges)
	}
	snap, err := h.p.Snapshot(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshotShape(t, snap)
	if _, err := json.Marshal(snap); err != nil {
		t.Fatalf("snapshot does not encode (NaN or Inf feature?): %v", err)
	}
}
