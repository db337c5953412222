package correlationprocessor

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/graph"
)

func serverSpans(svc string, n int, ms int64, failed bool) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	ss := rs.ScopeSpans().AppendEmpty()
	for i := 0; i < n; i++ {
		sp := ss.Spans().AppendEmpty()
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetTraceID(pcommon.TraceID{1, byte(i), byte(i >> 8)})
		sp.SetSpanID(pcommon.SpanID{2, byte(i), byte(i >> 8)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(ms) * time.Millisecond)))
		if failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return td
}

func TestSharedInstanceLifecycle(t *testing.T) {
	f := NewFactory()
	set := nopSettings()
	set.ID = component.MustNewIDWithName(typeStr, "lifecycle")
	cfg := testConfig()
	ctx := context.Background()
	tp, err := f.CreateTraces(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	mp, err := f.CreateMetrics(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	p := tp.(*tracesProcessor).p
	assert.Same(t, p, mp.(*metricsProcessor).p)
	assert.False(t, tp.Capabilities().MutatesData)

	host := componenttest.NewNopHost()
	require.NoError(t, tp.Start(ctx, host))
	require.NoError(t, mp.Start(ctx, host))
	require.NoError(t, tp.Shutdown(ctx))
	p.mu.Lock()
	assert.Equal(t, 1, p.refs, "the emit loop runs until the last pipeline shuts down")
	p.mu.Unlock()
	require.NoError(t, mp.Shutdown(ctx))
	require.NoError(t, mp.Shutdown(ctx), "shutdown is idempotent")
	require.NoError(t, tp.Shutdown(ctx))

	// After the last shutdown a new pipeline build gets a fresh instance.
	tp2, err := f.CreateTraces(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.NotSame(t, p, tp2.(*tracesProcessor).p)
	require.NoError(t, tp2.Shutdown(ctx), "shutdown without start is fine")
	shared.Remove(set.ID, tp2.(*tracesProcessor).p)
}

func TestShutdownWithoutStart(t *testing.T) {
	set := nopSettings()
	set.ID = component.MustNewIDWithName(typeStr, "nostart")
	p, err := NewFactory().CreateLogs(context.Background(), set, testConfig(), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, p.Shutdown(context.Background()))
	shared.Remove(set.ID, p.(*logsProcessor).p)
}

func TestTickEmitsDerivedMetrics(t *testing.T) {
	h := newHarness(t, "derived", testConfig(), nopSettings())
	ctx := context.Background()
	require.NoError(t, h.traces.ConsumeTraces(ctx, serverSpans("checkout", 60, 120, false)))
	require.NoError(t, h.traces.ConsumeTraces(ctx, serverSpans("checkout", 6, 900, true)))
	at := t0.Add(30 * time.Second)
	passed := len(h.ms.AllMetrics())
	require.NoError(t, h.p.tick(ctx, at))
	require.Len(t, h.ms.AllMetrics(), passed+1, "one derived batch per tick")
	md := h.ms.AllMetrics()[passed]

	got := map[string]float64{}
	rms := md.ResourceMetrics()
	require.Equal(t, 1, rms.Len())
	res := rms.At(0).Resource().Attributes()
	typ, _ := res.Get(entity.AttrEntityType)
	id, _ := res.Get(entity.AttrEntityID)
	name, _ := res.Get(entity.AttrEntityName)
	assert.Equal(t, "service", typ.Str())
	assert.Equal(t, "service:/checkout", id.Str())
	assert.Equal(t, "checkout", name.Str())
	ms := rms.At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		m := ms.At(i)
		require.Equal(t, pmetric.MetricTypeGauge, m.Type())
		dp := m.Gauge().DataPoints().At(0)
		assert.Equal(t, pcommon.NewTimestampFromTime(at), dp.Timestamp())
		got[m.Name()] = dp.DoubleValue()
	}
	assert.InDelta(t, 66.0/30, got["junction.request.rate"], 1e-9)
	assert.InDelta(t, 6.0/66, got["junction.error.ratio"], 1e-9)
	assert.InDelta(t, 900, got["junction.latency.p99_ms"], 900*0.02)
	assert.InDelta(t, 120, got["junction.latency.p50_ms"], 120*0.02)
	assert.InDelta(t, 6.0/66/0.001, got["junction.slo.burn_rate_5m"], 1e-6)
}

func TestNoDerivedMetricsWithoutMetricsPipeline(t *testing.T) {
	set := nopSettings()
	set.ID = component.MustNewIDWithName(typeStr, "tracesonly")
	sink := new(consumertest.TracesSink)
	tp, err := NewFactory().CreateTraces(context.Background(), set, testConfig(), sink)
	require.NoError(t, err)
	defer shared.Remove(set.ID, tp.(*tracesProcessor).p)
	p := tp.(*tracesProcessor).p
	clock := &fakeClock{t: t0}
	p.now = clock.now
	require.NoError(t, tp.ConsumeTraces(context.Background(), serverSpans("a", 3, 10, false)))
	require.NoError(t, p.tick(context.Background(), t0.Add(time.Second)))
	snap, err := p.Snapshot(context.Background(), t0.Add(time.Second))
	require.NoError(t, err)
	require.Len(t, snap.Entities, 1)
	assert.Equal(t, 3, sink.SpanCount(), "spans passed on")
}

func TestSnapshotIsACopy(t *testing.T) {
	h := newHarness(t, "copy", testConfig(), nopSettings())
	ctx := context.Background()
	require.NoError(t, h.traces.ConsumeTraces(ctx, serverSpans("a", 10, 10, false)))
	at := t0.Add(10 * time.Second)
	snap, err := h.p.Snapshot(ctx, at)
	require.NoError(t, err)
	before := snap.Entities[0].Features["request.rate"]
	snap.Entities[0].Attributes["service.name"] = "changed by the reader"
	require.NoError(t, h.traces.ConsumeTraces(ctx, serverSpans("a", 100, 10, true)))
	require.NoError(t, h.p.tick(ctx, at))
	assert.Equal(t, before, snap.Entities[0].Features["request.rate"], "later telemetry does not change a snapshot")
	again, err := h.p.Snapshot(ctx, at)
	require.NoError(t, err)
	assert.Equal(t, "a", again.Entities[0].Attributes["service.name"], "a reader's change does not reach the graph")
	assert.Greater(t, again.Entities[0].Features["request.rate"], before)

	_, err = h.p.Snapshot(canceled(), at)
	assert.ErrorIs(t, err, context.Canceled)
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestEmitAlerts(t *testing.T) {
	h := newHarness(t, "alerts", testConfig(), nopSettings())
	now := t0.Add(time.Minute)
	a := alert.Alert{
		ID: alert.Fingerprint("db", "PoolSaturated", "service:/orders"), Group: "db", Rule: "PoolSaturated",
		Kind: "bottleneck", Severity: "critical", State: alert.StateFiring,
		Entity:   entity.Ref{Type: entity.Service, ID: "service:/orders", Name: "orders"},
		Blame:    entity.Ref{Type: entity.Database, ID: "database:postgresql/pg:5432/shop", Name: "shop@pg:5432"},
		ActiveAt: t0, FiredAt: t0.Add(30 * time.Second), EvaluatedAt: now, Value: 0.97,
	}
	st := alert.RuleStatus{Group: "db", Rule: "PoolSaturated", Health: alert.HealthOK, LastEvaluation: now, EvaluationDuration: 3 * time.Millisecond, Active: 1}
	require.NoError(t, h.p.emitAlerts(context.Background(), []alert.Alert{a}, []alert.RuleStatus{st}, now))

	require.Len(t, h.ls.AllLogs(), 1)
	lr := h.ls.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	require.True(t, alert.IsAlert(lr))
	got, err := alert.FromLogRecord(lr)
	require.NoError(t, err)
	assert.Equal(t, a.ID, got.ID)
	assert.Equal(t, a.Blame, got.Blame)

	require.Len(t, h.ms.AllMetrics(), 1)
	names := map[string]int{}
	md := h.ms.AllMetrics()[0]
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			names[ms.At(j).Name()] = ms.At(j).Gauge().DataPoints().Len()
		}
	}
	assert.Equal(t, map[string]int{alert.MetricName: 1, alert.RuleStatusMetric: 1}, names)

	// No alerts: rule status only, no log records.
	require.NoError(t, h.p.emitAlerts(context.Background(), nil, []alert.RuleStatus{st}, now))
	assert.Len(t, h.ls.AllLogs(), 1)
	require.Len(t, h.ms.AllMetrics(), 2)
	assert.Equal(t, alert.RuleStatusMetric, h.ms.AllMetrics()[1].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Name())
}

func TestEmitAlertsReportsConsumerErrors(t *testing.T) {
	set := nopSettings()
	set.ID = component.MustNewIDWithName(typeStr, "alerterr")
	lp, err := NewFactory().CreateLogs(context.Background(), set, testConfig(), consumertest.NewErr(assert.AnError))
	require.NoError(t, err)
	p := lp.(*logsProcessor).p
	defer shared.Remove(set.ID, p)
	err = p.emitAlerts(context.Background(), []alert.Alert{{Rule: "r", State: alert.StateFiring, Entity: entity.Ref{ID: "service:/a"}}}, nil, t0)
	assert.ErrorIs(t, err, assert.AnError)
}

// TestConcurrentPipelines drives the three pipelines, ticks and snapshots
// at once; run with -race it checks the shared instance's locking.
func TestConcurrentPipelines(t *testing.T) {
	h := newHarness(t, "concurrent", testConfig(), nopSettings())
	ctx := context.Background()
	done := make(chan struct{})
	var failed atomic.Bool
	run := func(f func(i int) error) {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 50; i++ {
				if err := f(i); err != nil {
					failed.Store(true)
				}
			}
		}()
	}
	run(func(i int) error {
		return h.traces.ConsumeTraces(ctx, serverSpans("svc-"+strconv.Itoa(i%5), 10, 20, i%7 == 0))
	})
	run(func(i int) error {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("k8s.pod.name", "p-"+strconv.Itoa(i%3))
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("k8s.pod.cpu.usage")
		m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(float64(i))
		return h.metrics.ConsumeMetrics(ctx, md)
	})
	run(func(i int) error {
		return h.p.tick(ctx, t0.Add(time.Duration(i)*time.Second))
	})
	run(func(i int) error {
		_, err := h.p.Snapshot(ctx, t0.Add(time.Duration(i)*time.Second))
		return err
	})
	for i := 0; i < 4; i++ {
		<-done
	}
	assert.False(t, failed.Load())
	snap, err := h.p.Snapshot(ctx, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.NotEmpty(t, snap.Entities)
}

func TestAugmentAndEvaluateHooks(t *testing.T) {
	h := newHarness(t, "hooks", testConfig(), nopSettings())
	h.p.augment = func(snap *entity.Snapshot, at time.Time) {
		graph.Merge(snap, entity.Entity{Ref: entity.Ref{Type: entity.Relayer, ID: "relayer:hermes/a/b", Name: "hermes a->b"}, Features: map[string]float64{"messages.pending": 4}})
	}
	var evaluated *entity.Snapshot
	h.p.evaluate = func(_ context.Context, snap *entity.Snapshot, _ time.Time) { evaluated = snap }
	at := t0.Add(time.Second)
	require.NoError(t, h.p.tick(context.Background(), at))
	require.NotNil(t, evaluated)
	_, ok := evaluated.Entity("relayer:hermes/a/b")
	assert.True(t, ok, "the rule engine sees augmented entities")
	md := h.ms.AllMetrics()[len(h.ms.AllMetrics())-1]
	assert.Equal(t, "junction.messages.pending", md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Name(), "augmented features are emitted")
	snap, err := h.p.Snapshot(context.Background(), at)
	require.NoError(t, err)
	_, ok = snap.Entity("relayer:hermes/a/b")
	assert.True(t, ok)
}
