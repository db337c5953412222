package graph

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/entity"
)

var t0 = time.Unix(1767225600, 0).UTC()

func settings() *Settings {
	return &Settings{
		Window: WindowSettings{Bucket: 10 * time.Second, Long: 30 * time.Minute, CoarseBucket: 5 * time.Minute, SketchAccuracy: 0.01, SketchMaxBins: 1024},
		Limits: Limits{
			MaxEntitiesPerType: 100, MaxEdges: 100, EntityTTL: 15 * time.Minute, MaxPendingSpans: 100,
			PendingSpanTTL: 10 * time.Second, MaxSeriesPerEntity: 100, MaxMetricsPerEntity: 100, MaxPodsPerService: 10,
			MaxTemplatesPerEntity: 3, MaxLogSamples: 5, MaxExemplars: 2, MaxSampledTraces: 10, MaxSpansPerTrace: 100,
			TraceIdle: 5 * time.Second,
		},
		CriticalPath: CriticalPathSettings{SampleRatio: 1},
		SLO:          SLOSettings{AvailabilityTarget: 0.999},
		Baseline:     BaselineSettings{TimeConstant: time.Hour},
		SlowQuery:    500 * time.Millisecond,
		Identity: Identity{
			ServiceName: []string{"service.name"}, ServiceNamespace: []string{"service.namespace"},
			PodName: []string{"k8s.pod.name"}, PodNamespace: []string{"k8s.namespace.name"},
			DBSystem: []string{"db.system.name"}, ServerAddress: []string{"server.address"}, ServerPort: []string{"server.port"},
			PeerService: []string{"peer.service"}, RPCSystem: []string{"rpc.system"}, StreamTopic: []string{"messaging.destination.name"},
		},
		AccessLog: AccessLog{Status: []string{"status"}, DurationMs: []string{"duration"}, DurationS: []string{"request_time"}, Route: []string{"route"}},
	}
}

type span struct {
	svc          string
	kind         ptrace.SpanKind
	id, parent   byte
	startMs, dur int
	attrs        map[string]any
}

func traces(trace byte, spans ...span) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.svc)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{trace, 1})
		sp.SetSpanID(pcommon.SpanID{s.id})
		if s.parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{s.parent})
		}
		sp.SetKind(s.kind)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(s.startMs) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(s.startMs+s.dur) * time.Millisecond)))
		_ = sp.Attributes().FromRaw(s.attrs)
	}
	return td
}

func edgeKeys(s *entity.Snapshot) []string {
	var out []string
	for _, e := range s.Edges {
		out = append(out, e.Key())
	}
	return out
}

func TestPairingInEitherOrder(t *testing.T) {
	client := span{svc: "a", kind: ptrace.SpanKindClient, id: 2, parent: 1, startMs: 1, dur: 8, attrs: map[string]any{"server.address": "b"}}
	server := span{svc: "b", kind: ptrace.SpanKindServer, id: 3, parent: 2, startMs: 2, dur: 6}
	for name, order := range map[string][]span{"client first": {client, server}, "server first": {server, client}} {
		t.Run(name, func(t *testing.T) {
			g := New(settings(), nil)
			g.ConsumeTraces(traces(1, order[0]), t0)
			g.ConsumeTraces(traces(1, order[1]), t0.Add(2*time.Second))
			snap := g.Tick(t0.Add(20 * time.Second))
			assert.Equal(t, []string{"service:/a->service:/b#http"}, edgeKeys(snap))
			e := snap.Edges[0]
			assert.InDelta(t, 8, e.Features["latency.p50_ms"], 0.2, "edge latency is the client's view")
			b, ok := snap.Entity("service:/b")
			require.True(t, ok)
			assert.False(t, b.Virtual, "b is instrumented")
			assert.Len(t, snap.Entities, 2, "no virtual peer for a paired call")
		})
	}
}

func TestUnpairedClientBecomesVirtualAfterTTL(t *testing.T) {
	g := New(settings(), nil)
	g.ConsumeTraces(traces(1, span{svc: "a", kind: ptrace.SpanKindClient, id: 2, dur: 100, attrs: map[string]any{"server.address": "api.example", "server.port": 443}}), t0)
	snap := g.Tick(t0.Add(10 * time.Second))
	assert.Empty(t, snap.Edges, "still waiting within the TTL")
	snap = g.Tick(t0.Add(11 * time.Second))
	require.Equal(t, []string{"service:/a->service:/api.example:443#http"}, edgeKeys(snap))
	peer, ok := snap.Entity("service:/api.example:443")
	require.True(t, ok)
	assert.True(t, peer.Virtual)
	assert.InDelta(t, 1.0/11, peer.Features["request.rate"], 1e-9, "counted at the client span's arrival")
}

func TestGRPCAndDatabaseEdgeTypes(t *testing.T) {
	g := New(settings(), nil)
	g.ConsumeTraces(traces(1,
		span{svc: "a", kind: ptrace.SpanKindClient, id: 2, dur: 5, attrs: map[string]any{"rpc.system": "grpc"}},
		span{svc: "b", kind: ptrace.SpanKindServer, id: 3, parent: 2, dur: 4},
		span{svc: "b", kind: ptrace.SpanKindClient, id: 4, parent: 3, dur: 700, attrs: map[string]any{"db.system.name": "postgresql", "server.address": "pg", "server.port": 5432}},
	), t0)
	snap := g.Tick(t0.Add(time.Second))
	assert.Equal(t, []string{"service:/a->service:/b#grpc", "service:/b->database:postgresql/pg:5432/#db"}, edgeKeys(snap))
	db, ok := snap.Entity("database:postgresql/pg:5432/")
	require.True(t, ok)
	assert.True(t, db.Virtual)
	assert.Equal(t, 1.0, db.Features["query.slow_rate"], "one slow query in one second")
}

func TestExemplarsBounded(t *testing.T) {
	g := New(settings(), nil)
	for i := 0; i < 10; i++ {
		g.ConsumeTraces(traces(byte(i+1), span{svc: "a", kind: ptrace.SpanKindServer, id: 1, dur: 10 * (i + 1)}), t0)
	}
	snap := g.Snapshot(t0.Add(time.Second))
	ex := snap.Entities[0].Evidence.Exemplars
	require.Len(t, ex, 2, "limits::max_exemplars slow exemplars")
	assert.Equal(t, []float64{100, 90}, []float64{ex[0].Value, ex[1].Value}, "the slowest kept, slowest first")
}

func TestTemplatesBoundedAndCounted(t *testing.T) {
	g := New(settings(), &countingCounters{})
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "a")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, body := range []string{"kind one 1", "kind one 2", "kind two x", "kind three y", "kind four z"} {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr(body)
		lr.SetSeverityNumber(plog.SeverityNumberError)
	}
	g.ConsumeLogs(ld, t0)
	snap := g.Snapshot(t0.Add(time.Second))
	svc := snap.Entities[0]
	assert.Equal(t, 5.0, svc.Features["log.error_rate"])
	require.Len(t, svc.Evidence.LogSamples, 3, "limits::max_templates_per_entity")
	assert.Equal(t, "kind one <*>", svc.Evidence.LogSamples[0].Template)
	assert.Equal(t, int64(2), svc.Evidence.LogSamples[0].Count)
	assert.Equal(t, int64(1), g.counters.(*countingCounters).evicted[WhatTemplate], "four templates, room for three")
	for _, s := range svc.Evidence.LogSamples {
		assert.NotEqual(t, "kind three y", s.Template, "the least frequent of the oldest was evicted")
	}
}

func TestAccessLogIsAProxyRequestNotAServiceLog(t *testing.T) {
	g := New(settings(), nil)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "nginx")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	lrs.AppendEmpty().Body().SetStr(`{"status": 503, "request_time": "0.002"}`)
	lrs.AppendEmpty().Body().SetStr(`{"level": "info", "msg": "order stored", "status": 201}`)
	g.ConsumeLogs(ld, t0)
	snap := g.Snapshot(t0.Add(time.Second))
	require.Len(t, snap.Entities, 2)
	assert.Equal(t, "proxy:nginx/", snap.Entities[0].ID)
	assert.Equal(t, 1.0, snap.Entities[0].Features["request.rate"])
	assert.Equal(t, 1.0, snap.Entities[0].Features["shed.ratio"])
	assert.Equal(t, 1.0, snap.Entities[0].Features["error.ratio"])
	assert.InDelta(t, 2, snap.Entities[0].Features["latency.p50_ms"], 0.05)
	assert.Equal(t, "service:/nginx", snap.Entities[1].ID, "a structured log with a status but no duration is the service's own log")
	rate, ok := snap.Entities[1].Features["log.error_rate"]
	assert.True(t, ok, "the service has logs")
	assert.Zero(t, rate, "none of them errors")
}

// TestAccessLogInAttributes: the file_log receiver's json_parser writes the
// fields into attributes by default and leaves the raw line in the body.
func TestAccessLogInAttributes(t *testing.T) {
	g := New(settings(), nil)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "nginx")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr(`127.0.0.1 - - "GET /cart" 429`)
	lr.Attributes().PutInt("status", 429)
	lr.Attributes().PutStr("request_time", "0.004")
	lr.Attributes().PutStr("route", "checkout")
	g.ConsumeLogs(ld, t0)
	snap := g.Snapshot(t0.Add(time.Second))
	require.Len(t, snap.Entities, 1, "the access log makes only the proxy entity")
	px := snap.Entities[0]
	assert.Equal(t, "proxy:nginx/checkout", px.ID)
	assert.Equal(t, 1.0, px.Features["shed.ratio"])
	assert.InDelta(t, 4, px.Features["latency.p50_ms"], 0.05)
}

func TestCriticalPathShares(t *testing.T) {
	g := New(settings(), nil)
	// a: 0..100 ms, calls b 10..90 (b's server 20..80, no children).
	g.ConsumeTraces(traces(1,
		span{svc: "a", kind: ptrace.SpanKindServer, id: 1, dur: 100},
		span{svc: "a", kind: ptrace.SpanKindClient, id: 2, parent: 1, startMs: 10, dur: 80},
		span{svc: "b", kind: ptrace.SpanKindServer, id: 3, parent: 2, startMs: 20, dur: 60},
	), t0)
	snap := g.Tick(t0.Add(20 * time.Second)) // idle: the trace is analysed
	a, _ := snap.Entity("service:/a")
	b, _ := snap.Entity("service:/b")
	assert.InDelta(t, 0.4, a.Features["critical_path.self_share"], 1e-9)
	assert.InDelta(t, 0.6, b.Features["critical_path.self_share"], 1e-9)
	assert.InDelta(t, 0.8, snap.Edges[0].Features["latency.share"], 1e-9)
}

type countingCounters struct {
	dropped, evicted map[string]int64
}

func (c *countingCounters) Dropped(what string, _ entity.Type, n int64) {
	if c.dropped == nil {
		c.dropped = map[string]int64{}
	}
	c.dropped[what] += n
}

func (c *countingCounters) Evicted(what string, _ entity.Type, n int64) {
	if c.evicted == nil {
		c.evicted = map[string]int64{}
	}
	c.evicted[what] += n
}

func TestMerge(t *testing.T) {
	snap := &entity.Snapshot{Entities: []entity.Entity{
		{Ref: entity.Ref{Type: entity.Relayer, ID: "relayer:hermes/a/b"}, Virtual: true, Features: map[string]float64{"backlog.size": 3}},
		{Ref: entity.Ref{Type: entity.Service, ID: "service:/x"}},
	}}
	Merge(snap, entity.Entity{Ref: entity.Ref{Type: entity.Relayer, ID: "relayer:hermes/a/b"}, Features: map[string]float64{"messages.pending": 7}})
	Merge(snap, entity.Entity{Ref: entity.Ref{Type: entity.Relayer, ID: "relayer:hermes/a/c"}, Features: map[string]float64{"messages.pending": 1}})
	require.Len(t, snap.Entities, 3)
	assert.Equal(t, "relayer:hermes/a/b", snap.Entities[0].ID)
	assert.Equal(t, map[string]float64{"backlog.size": 3, "messages.pending": 7}, snap.Entities[0].Features)
	assert.False(t, snap.Entities[0].Virtual, "a merged real view makes the entity real")
	assert.Equal(t, "relayer:hermes/a/c", snap.Entities[1].ID, "inserted in order")
	assert.Equal(t, "service:/x", snap.Entities[2].ID)
}

func TestPendingQueueStaysBounded(t *testing.T) {
	s := settings()
	s.Limits.MaxPendingSpans = 10
	g := New(s, nil)
	// 5000 pairs in one TTL: every client span pairs at once, leaving only
	// paired entries behind in the queue.
	for i := 0; i < 5000; i++ {
		tr := byte(i)
		td := traces(tr,
			span{svc: "a", kind: ptrace.SpanKindClient, id: 2, dur: 5},
			span{svc: "b", kind: ptrace.SpanKindServer, id: 3, parent: 2, dur: 4},
		)
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), 7})
		td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(0).SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), 7})
		g.ConsumeTraces(td, t0)
	}
	assert.LessOrEqual(t, len(g.pending.queue)-g.pending.head, 2*s.Limits.MaxPendingSpans+1024)
	assert.Empty(t, g.pending.m)
	snap := g.Snapshot(t0.Add(50 * time.Second))
	require.Len(t, snap.Edges, 1)
	assert.InDelta(t, 5000.0/50, snap.Edges[0].Features["request.rate"], 1e-9)
}

func TestCriticalPathSurvivesCycles(t *testing.T) {
	g := New(settings(), nil)
	g.ConsumeTraces(traces(1,
		span{svc: "a", kind: ptrace.SpanKindServer, id: 1, parent: 2, dur: 10},
		span{svc: "a", kind: ptrace.SpanKindClient, id: 2, parent: 1, dur: 5},
	), t0)
	snap := g.Tick(t0.Add(time.Minute))
	require.Len(t, snap.Entities, 1)
	assert.NotContains(t, snap.Entities[0].Features, "critical_path.self_share", "a trace without a root is not analysed")
}

// TestCountersOfTwoPodsAreTwoSeries: two pods of one service report the same
// cumulative counter; their values must not be read as one series that
// keeps resetting.
func TestCountersOfTwoPodsAreTwoSeries(t *testing.T) {
	s := settings()
	s.Metrics = map[string]MetricMapping{"db.client.connection.timeouts": {Entity: entity.Service, Input: InPoolTimeouts}}
	g := New(s, nil)
	counter := func(pod string, v int64, at time.Time) pmetric.Metrics {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "orders")
		rm.Resource().Attributes().PutStr("k8s.pod.name", pod)
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("db.client.connection.timeouts")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetIntValue(v)
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		return md
	}
	// Pod a has counted 1000 timeouts, pod b 10; neither counts more.
	for i := 0; i < 12; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		g.ConsumeMetrics(counter("orders-a", 1000, at), at)
		g.ConsumeMetrics(counter("orders-b", 10, at), at)
	}
	snap := g.Snapshot(t0.Add(2 * time.Minute))
	svc, ok := snap.Entity("service:/orders")
	require.True(t, ok)
	assert.Zero(t, svc.Features["pool.timeouts_rate"], "no new timeouts: the pods' counters are steady")
}

// TestEntityOutlivesNoEdgeOfIt: an edge refreshed after its client entity
// was last seen keeps that entity alive, so no snapshot holds an edge
// whose source or target is not an entity (found by FuzzConsumeTraces).
func TestEntityOutlivesNoEdgeOfIt(t *testing.T) {
	g := New(settings(), nil)
	ttl := settings().Limits.EntityTTL
	src := g.serviceEntity(t0, "shop", "frontend", false)
	dst := g.serviceEntity(t0, "shop", "checkout", false)
	require.NotNil(t, src)
	require.NotNil(t, dst)
	g.edgeOf(t0.Add(ttl/2), src, dst, entity.EdgeHTTP)
	// checkout is seen again later; frontend only through the edge.
	g.serviceEntity(t0.Add(ttl), "shop", "checkout", false)

	snap := g.Tick(t0.Add(ttl + time.Minute))
	require.Len(t, snap.Edges, 1, "the edge was seen within the TTL")
	for _, e := range snap.Edges {
		_, ok := snap.Entity(e.Source)
		assert.True(t, ok, "edge source %s is an entity", e.Source)
		_, ok = snap.Entity(e.Target)
		assert.True(t, ok, "edge target %s is an entity", e.Target)
	}
	snap = g.Tick(t0.Add(2 * ttl))
	assert.Empty(t, snap.Edges, "the edge ages out")
	_, ok := snap.Entity(src.ref.ID)
	assert.False(t, ok, "and its entity with it")
}

// TestEvictionEmptiesCallerCaches: a caller that stays alive while its
// callees churn (pods replaced, services renamed) must not keep expired
// edges and callees reachable through its hot-path caches. Before, its
// edge cache was cleared only when full, so the evicted entities of every
// churn stayed on the heap (the churn soak's heap grew 6.6x in 10 min).
func TestEvictionEmptiesCallerCaches(t *testing.T) {
	g := New(settings(), nil)
	ttl := settings().Limits.EntityTTL
	src := g.serviceEntity(t0, "shop", "frontend", false)
	require.NotNil(t, src)
	old := make([]*entityState, 10)
	for i := range old {
		old[i] = g.serviceEntity(t0, "shop", fmt.Sprintf("checkout-%d", i), false)
		require.NotNil(t, old[i])
		g.edgeOf(t0, src, old[i], entity.EdgeHTTP)
	}
	db := g.databaseByParts(t0, true, "postgresql", "pg:5432", "shop")
	require.NotNil(t, db)
	src.lastDB, src.lastDBKey = db, dbKey{"postgresql", "pg", 5432, "shop"}
	require.Len(t, src.out, len(old))

	// Later the caller calls one new callee; the old ones and the
	// database are not seen again.
	late := t0.Add(ttl + time.Minute)
	fresh := g.serviceEntity(late, "shop", "checkout-new", false)
	g.edgeOf(late, src, fresh, entity.EdgeHTTP)
	g.Tick(late)

	for _, e := range old {
		assert.True(t, e.evicted, "%s expired", e.ref.ID)
	}
	require.Len(t, src.out, 1, "only the live edge is cached")
	assert.Same(t, fresh, src.out[0].dst)
	assert.Nil(t, src.lastDB, "the expired database is not cached")
	// The live edge is still found through the cache.
	assert.Same(t, src.out[0].edge, g.edgeOf(late.Add(time.Second), src, fresh, entity.EdgeHTTP))
}
