package correlationprocessor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// clockBase is a multiple of every emit interval the tests use.
var clockBase = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newTelemetryClocked(t *testing.T, wall func() time.Time) (*Embedded, *consumertest.MetricsSink) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Clock.Source = ClockTelemetry
	cfg.Clock.MaxStep = time.Hour
	ms := new(consumertest.MetricsSink)
	e, err := NewEmbedded(context.Background(), EmbeddedSettings{Config: cfg, Now: wall, Metrics: ms})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	return e, ms
}

// spanEndingAt is one SERVER span of service checkout ending at end.
func spanEndingAt(end time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetTraceID([16]byte{byte(end.Unix()), 1})
	sp.SetSpanID([8]byte{byte(end.Unix()), 1})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-200 * time.Millisecond)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	return td
}

// tickTimes are the timestamps of the derived metrics emitted, one per
// tick, in order.
func tickTimes(ms *consumertest.MetricsSink) []time.Duration {
	var out []time.Duration
	for _, md := range ms.AllMetrics() {
		m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
		var ts pcommon.Timestamp
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			ts = m.Gauge().DataPoints().At(0).Timestamp()
		case pmetric.MetricTypeSum:
			ts = m.Sum().DataPoints().At(0).Timestamp()
		}
		out = append(out, ts.AsTime().Sub(clockBase))
	}
	return out
}

func secs(ss ...int) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = time.Duration(s) * time.Second
	}
	return out
}

// TestTelemetryClockTicksAtEmitBoundaries plays four minutes of spans in
// an instant: the processor ticks at every 15 s boundary the telemetry's
// timestamps move past, at that boundary's time, whatever the wall clock
// says.
func TestTelemetryClockTicksAtEmitBoundaries(t *testing.T) {
	wall := clockBase.Add(48 * time.Hour)
	e, ms := newTelemetryClocked(t, func() time.Time { return wall })
	require.Equal(t, wall, e.p.now(), "before any telemetry the clock is the wall clock")

	for s := 5; s <= 60; s += 5 {
		require.NoError(t, e.ConsumeTraces(context.Background(), spanEndingAt(clockBase.Add(time.Duration(s)*time.Second))))
	}
	require.Equal(t, secs(15, 30, 45), tickTimes(ms), "a boundary ticks once the clock moves past it; 60 s has not been passed")
	require.Equal(t, clockBase.Add(time.Minute), e.p.now())

	// One batch three boundaries ahead ticks through all of them.
	require.NoError(t, e.ConsumeTraces(context.Background(), spanEndingAt(clockBase.Add(100*time.Second))))
	require.Equal(t, secs(15, 30, 45, 60, 75, 90), tickTimes(ms))

	// A late batch counts at the clock and does not move it back.
	require.NoError(t, e.ConsumeTraces(context.Background(), spanEndingAt(clockBase.Add(20*time.Second))))
	require.Equal(t, clockBase.Add(100*time.Second), e.p.now())
	require.Len(t, tickTimes(ms), 6)

	snap, err := e.Snapshot(context.Background(), e.p.now())
	require.NoError(t, err)
	require.NotEmpty(t, snap.Entities, "the spans reached the graph")
}

// TestTelemetryClockIgnoresOneOutlierAndFollowsAJump: one batch ten hours
// ahead does not move the clock; two in a row make it jump there without
// ticking through the gap.
func TestTelemetryClockIgnoresOneOutlierAndFollowsAJump(t *testing.T) {
	e, ms := newTelemetryClocked(t, time.Now)
	ctx := context.Background()
	require.NoError(t, e.ConsumeTraces(ctx, spanEndingAt(clockBase.Add(10*time.Second))))
	require.NoError(t, e.ConsumeTraces(ctx, spanEndingAt(clockBase.Add(10*time.Hour))))
	require.Equal(t, clockBase.Add(10*time.Second), e.p.now(), "a lone outlier is counted at the clock")
	require.NoError(t, e.ConsumeTraces(ctx, spanEndingAt(clockBase.Add(20*time.Second))))
	require.Equal(t, secs(15), tickTimes(ms))

	far := clockBase.Add(10 * time.Hour)
	require.NoError(t, e.ConsumeTraces(ctx, spanEndingAt(far)))
	require.NoError(t, e.ConsumeTraces(ctx, spanEndingAt(far.Add(5*time.Second))))
	require.Equal(t, far.Add(5*time.Second), e.p.now(), "two batches in a row make the clock jump")
	require.Equal(t, secs(15), tickTimes(ms), "no ticks for the gap")

	require.NoError(t, e.ConsumeTraces(ctx, spanEndingAt(far.Add(20*time.Second))))
	require.Equal(t, []time.Duration{15 * time.Second, 10*time.Hour + 15*time.Second}, tickTimes(ms),
		"ticking resumes at the first boundary after the jump")
}

// TestTelemetryClockReadsEverySignal: metric points and log records move
// the clock as spans do; a batch without timestamps does not.
func TestTelemetryClockReadsEverySignal(t *testing.T) {
	e, _ := newTelemetryClocked(t, time.Now)
	ctx := context.Background()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("queue.depth")
	m.SetEmptyHistogram().DataPoints().AppendEmpty().SetTimestamp(pcommon.NewTimestampFromTime(clockBase.Add(7 * time.Second)))
	require.NoError(t, e.ConsumeMetrics(ctx, md))
	require.Equal(t, clockBase.Add(7*time.Second), e.p.now())

	ld := plogWithRecord(clockBase.Add(9*time.Second), time.Time{})
	require.NoError(t, e.ConsumeLogs(ctx, ld))
	require.Equal(t, clockBase.Add(9*time.Second), e.p.now())
	ld = plogWithRecord(time.Time{}, clockBase.Add(11*time.Second))
	require.NoError(t, e.ConsumeLogs(ctx, ld))
	require.Equal(t, clockBase.Add(11*time.Second), e.p.now(), "the observed timestamp stands in for a missing timestamp")
	require.NoError(t, e.ConsumeLogs(ctx, plogWithRecord(time.Time{}, time.Time{})))
	require.Equal(t, clockBase.Add(11*time.Second), e.p.now())
}

func TestClockConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, cfg.Validate())
	cfg.Clock.Source = "event"
	require.ErrorContains(t, cfg.Validate(), `clock::source: must be "wall" or "telemetry", got "event"`)
	cfg = DefaultConfig()
	cfg.Clock.MaxStep = 0
	require.ErrorContains(t, cfg.Validate(), "clock::max_step must be positive")

	cfg = DefaultConfig()
	_, err := NewEmbedded(context.Background(), EmbeddedSettings{Config: cfg})
	require.ErrorContains(t, err, "Now is required under the wall clock")
}

func plogWithRecord(ts, observed time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	r := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	r.Body().SetStr("hello")
	if !ts.IsZero() {
		r.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	}
	if !observed.IsZero() {
		r.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	}
	return ld
}

// BenchmarkLatestSpan is what the telemetry clock adds to the traces path:
// one pass over the batch for its newest timestamp (docs/benchmarks.md).
func BenchmarkLatestSpan(b *testing.B) {
	td := benchBatch(benchTraces)
	spans := float64(td.SpanCount())
	b.ReportAllocs()
	var latest int64
	for b.Loop() {
		latest = max(latest, latestSpan(td))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*spans), "ns/span")
	if latest == 0 {
		b.Fatal("no timestamp found")
	}
}

// TestTelemetryClockConcurrentPipelines: three pipelines consuming at once
// (as the traces, metrics and logs pipelines do) tick each boundary once,
// in order, whichever of them moves the clock past it.
func TestTelemetryClockConcurrentPipelines(t *testing.T) {
	e, _ := newTelemetryClocked(t, time.Now)
	var prepared, emitted []time.Duration
	prepare, emit := e.p.clock.prepare, e.p.clock.emit
	e.p.clock.prepare = func(at time.Time) preparedTick { // called under the clock's lock
		prepared = append(prepared, at.Sub(clockBase))
		return prepare(at)
	}
	var emitMu sync.Mutex
	e.p.clock.emit = func(t preparedTick) { // called outside it, one at a time
		emitMu.Lock()
		emitted = append(emitted, t.at.Sub(clockBase))
		emitMu.Unlock()
		emit(t)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := 1; s <= 120; s++ {
				at := clockBase.Add(time.Duration(s)*time.Second + time.Duration(w)*time.Millisecond)
				var err error
				switch w {
				case 0:
					err = e.ConsumeTraces(ctx, spanEndingAt(at))
				case 1:
					err = e.ConsumeLogs(ctx, plogWithRecord(at, time.Time{}))
				default:
					md := pmetric.NewMetrics()
					rm := md.ResourceMetrics().AppendEmpty()
					rm.Resource().Attributes().PutStr("service.name", "checkout")
					m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
					m.SetName("queue.depth")
					dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
					dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
					dp.SetDoubleValue(1)
					err = e.ConsumeMetrics(ctx, md)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, clockBase.Add(2*time.Minute+2*time.Millisecond), e.p.now(), "the clock is the newest timestamp")
	require.Equal(t, secs(15, 30, 45, 60, 75, 90, 105, 120), prepared, "every boundary passed ticks once, in order")
	require.Equal(t, prepared, emitted, "ticks are emitted in the order they were prepared")
}
