package correlationprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

// TestEmbeddedReadsInjectedClock feeds spans through an Embedded
// processor: the service appears in the snapshot at the injected time, and
// Tick emits derived metrics only when called.
func TestEmbeddedReadsInjectedClock(t *testing.T) {
	now := t0
	ms := new(consumertest.MetricsSink)
	e, err := NewEmbedded(context.Background(), EmbeddedSettings{Now: func() time.Time { return now }, Metrics: ms})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	require.Equal(t, defaultEmitInterval, e.EmitInterval())

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	rs.Resource().Attributes().PutStr("service.namespace", "shop")
	for i := range 10 {
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetTraceID([16]byte{byte(i + 1)})
		sp.SetSpanID([8]byte{byte(i + 1)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	require.NoError(t, e.ConsumeTraces(context.Background(), td))
	require.Zero(t, ms.DataPointCount(), "nothing is emitted before Tick")

	now = now.Add(e.EmitInterval())
	require.NoError(t, e.Tick(context.Background(), now))
	require.NotZero(t, ms.DataPointCount(), "Tick emits the derived metrics")
	snap, err := e.Snapshot(context.Background(), now)
	require.NoError(t, err)
	_, ok := snap.Entity(entity.ID(entity.Service, "shop", "checkout"))
	require.True(t, ok, "the service is in the snapshot")
}

// TestEmbeddedRaisesAlerts runs a rule file and checks the alert reaches
// the Logs consumer on Tick.
func TestEmbeddedRaisesAlerts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`groups:
  - name: g
    interval: 15s
    rules:
      - alert: AnyService
        kind: bottleneck
        for_each: service
        expr: "true"
`), 0o600))
	cfg := DefaultConfig()
	cfg.Rules.Files = []string{file}
	cfg.Rules.ReloadInterval = 0
	now := t0
	ls := new(consumertest.LogsSink)
	e, err := NewEmbedded(context.Background(), EmbeddedSettings{Config: cfg, Now: func() time.Time { return now }, Logs: ls})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "inventory")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{1})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	require.NoError(t, e.ConsumeTraces(context.Background(), td))
	now = now.Add(15 * time.Second)
	require.NoError(t, e.Tick(context.Background(), now))
	var got []alert.Alert
	for _, ld := range ls.AllLogs() {
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := 0; i < lrs.Len(); i++ {
			a, err := alert.FromLogRecord(lrs.At(i))
			require.NoError(t, err)
			got = append(got, a)
		}
	}
	require.NotEmpty(t, got, "Tick evaluated the rule")
	require.Equal(t, "AnyService", got[0].Rule)
}

func TestEmbeddedRejectsBadSettings(t *testing.T) {
	_, err := NewEmbedded(context.Background(), EmbeddedSettings{})
	require.ErrorContains(t, err, "Now is required")
	cfg := DefaultConfig()
	cfg.EmitInterval = 0
	_, err = NewEmbedded(context.Background(), EmbeddedSettings{Config: cfg, Now: time.Now})
	require.ErrorContains(t, err, "emit_interval")
}
