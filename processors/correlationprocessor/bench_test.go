package correlationprocessor

import (
	"context"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// benchBatch builds one batch of traces ids: per trace a SERVER span in
// frontend, its CLIENT call to one of 8 backend services, the backend's
// SERVER span and a database CLIENT span: 4 spans per trace, realistic
// attributes, one resource per service.
func benchBatch(traces int) ptrace.Traces {
	td := ptrace.NewTraces()
	newRes := func(svc string) ptrace.SpanSlice {
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", svc)
		a.PutStr("service.namespace", "shop")
		a.PutStr("k8s.namespace.name", "shop")
		a.PutStr("k8s.pod.name", svc+"-7d9f8c-x2k4q")
		a.PutStr("telemetry.sdk.language", "go")
		return rs.ScopeSpans().AppendEmpty().Spans()
	}
	front := newRes("frontend")
	backs := make([]ptrace.SpanSlice, 8)
	for i := range backs {
		backs[i] = newRes("backend-" + strconv.Itoa(i))
	}
	base := time.Unix(1767225600, 0)
	ts := func(ms int) pcommon.Timestamp {
		return pcommon.NewTimestampFromTime(base.Add(time.Duration(ms) * time.Millisecond))
	}
	for i := 0; i < traces; i++ {
		tid := pcommon.TraceID{byte(i), byte(i >> 8), byte(i >> 16), 0, 0, 0, 0, 0, 0x9e, byte(i * 7), byte(i * 13), byte(i), 0x5c, 1, 2, 3}
		sid := func(n byte) pcommon.SpanID { return pcommon.SpanID{n, byte(i), byte(i >> 8), byte(i >> 16), 1} }
		b := backs[i%len(backs)]
		backend := "backend-" + strconv.Itoa(i%len(backs))

		s := front.AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(sid(1))
		s.SetName("GET /api/cart")
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(ts(0))
		s.SetEndTimestamp(ts(40 + i%50))
		s.Attributes().PutStr("http.request.method", "GET")
		s.Attributes().PutStr("http.route", "/api/cart")
		s.Attributes().PutInt("http.response.status_code", 200)

		c := front.AppendEmpty()
		c.SetTraceID(tid)
		c.SetSpanID(sid(2))
		c.SetParentSpanID(sid(1))
		c.SetName("POST")
		c.SetKind(ptrace.SpanKindClient)
		c.SetStartTimestamp(ts(2))
		c.SetEndTimestamp(ts(35 + i%50))
		c.Attributes().PutStr("http.request.method", "POST")
		c.Attributes().PutStr("server.address", backend)
		c.Attributes().PutInt("server.port", 8080)
		c.Attributes().PutInt("http.response.status_code", 200)

		sv := b.AppendEmpty()
		sv.SetTraceID(tid)
		sv.SetSpanID(sid(3))
		sv.SetParentSpanID(sid(2))
		sv.SetName("POST /items")
		sv.SetKind(ptrace.SpanKindServer)
		sv.SetStartTimestamp(ts(3))
		sv.SetEndTimestamp(ts(33 + i%50))
		sv.Attributes().PutStr("http.request.method", "POST")
		sv.Attributes().PutStr("http.route", "/items")
		sv.Attributes().PutInt("http.response.status_code", 200)
		if i%50 == 0 {
			sv.Status().SetCode(ptrace.StatusCodeError)
		}

		db := b.AppendEmpty()
		db.SetTraceID(tid)
		db.SetSpanID(sid(4))
		db.SetParentSpanID(sid(3))
		db.SetName("SELECT shop.items")
		db.SetKind(ptrace.SpanKindClient)
		db.SetStartTimestamp(ts(5))
		db.SetEndTimestamp(ts(25 + i%50))
		db.Attributes().PutStr("db.system.name", "postgresql")
		db.Attributes().PutStr("db.namespace", "shop")
		db.Attributes().PutStr("server.address", "pg-main")
		db.Attributes().PutInt("server.port", 5432)
		db.Attributes().PutStr("db.query.text", "SELECT * FROM items WHERE id = $1")
	}
	return td
}

const benchTraces = 250 // 1000 spans per batch

// runPerSpan runs consume on the same batch b.N times and reports ns and
// allocations per span, and cpu-ns/span: the process's CPU time (user +
// system, every thread, so garbage collection counts) per span, which on
// a machine shared with other work varies less than wall time.
func runPerSpan(b *testing.B, td ptrace.Traces, consume func(context.Context, ptrace.Traces) error) {
	spans := td.SpanCount()
	ctx := context.Background()
	var before, after runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime(syscall.RUSAGE_SELF)
	for i := 0; i < b.N; i++ {
		if err := consume(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime(syscall.RUSAGE_SELF) - cpu0
	runtime.ReadMemStats(&after)
	b.StopTimer()
	n := float64(b.N) * float64(spans)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/span")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/span")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/span")
}

// rusageThread is Linux's RUSAGE_THREAD: the calling thread's CPU time.
const rusageThread = 1

// cpuTime is the user + system CPU time of the process (RUSAGE_SELF) or
// of the calling thread (rusageThread); 0 where the system cannot tell.
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The allocations left on the correlation processor's span path, per
// 1000-span batch of benchBatch (0.013 per span; go test -run '^$' -bench
// 'ConsumeTraces$/correlation' -benchtime 6000x -memprofile m.out
// -memprofilerate 1, then go tool pprof -sample_index=alloc_objects):
//   - 10.6: the hex trace and span ids of the exemplars kept, two strings
//     per exemplar: every failed request (2 % of the backends' SERVER spans
//     here) and a slow request that beats a kept one. They are the
//     evidence an alert links to traces; the snapshot hands them out as
//     strings.
//   - about 2: the tick every 150 batches (every emit_interval of fake
//     time): the snapshot's feature maps, attribute and exemplar copies,
//     which callers keep after the graph moves on.
//   - about 0.8: sketches and their stores made for a window's detail
//     bucket the first time the ring reaches it, and a store's bins
//     growing to a new latency range; both stop once every window has
//     been through its ring (5 minutes of fake time: this run is 10).
//   - the rest (< 0.1): the pending store's queue growing, a database's
//     id on a cache miss after an eviction.
//
// The contrib spanmetrics connector allocates 3 objects per span on the
// same batches.

// BenchmarkConsumeTraces compares the correlation processor (entities,
// edges, windows, sketches, critical-path sampling at the default ratio)
// with the contrib spanmetrics connector (default config) on the same span
// batches. docs/benchmarks.md records the figures.
func BenchmarkConsumeTraces(b *testing.B) {
	td := benchBatch(benchTraces)

	b.Run("correlation", func(b *testing.B) {
		consume, done := newBenchCorrelation(b)
		defer done()
		runPerSpan(b, td, consume)
	})

	b.Run("spanmetrics", func(b *testing.B) {
		runPerSpan(b, td, newBenchSpanmetrics(b))
	})
}

// BenchmarkConsumeTracesPaired runs the two on the same batch alternately in
// every iteration and reports each one's ns/span and their ratio, so that
// load from other processes on the machine weighs on both alike. The cpu-
// figures are the benchmark thread's CPU time (the goroutine is locked to
// it) around each side's calls: they leave out time spent waiting for a
// core, and the collector's background mark workers, which spanmetrics'
// three allocations per span keep busier, so cpu-ratio leans against the
// correlation processor.
func BenchmarkConsumeTracesPaired(b *testing.B) {
	td := benchBatch(benchTraces)
	spans := float64(td.SpanCount())
	corr, done := newBenchCorrelation(b)
	defer done()
	sm := newBenchSpanmetrics(b)
	ctx := context.Background()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var tc, ts, cc, cs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start, cpu0 := time.Now(), cpuTime(rusageThread)
		if err := corr(ctx, td); err != nil {
			b.Fatal(err)
		}
		mid, cpu1 := time.Now(), cpuTime(rusageThread)
		if err := sm(ctx, td); err != nil {
			b.Fatal(err)
		}
		tc += mid.Sub(start)
		ts += time.Since(mid)
		cpu2 := cpuTime(rusageThread)
		cc += cpu1 - cpu0
		cs += cpu2 - cpu1
	}
	n := float64(b.N) * spans
	b.ReportMetric(float64(tc.Nanoseconds())/n, "correlation-ns/span")
	b.ReportMetric(float64(ts.Nanoseconds())/n, "spanmetrics-ns/span")
	b.ReportMetric(float64(tc)/float64(ts), "ratio")
	b.ReportMetric(float64(cc.Nanoseconds())/n, "correlation-cpu-ns/span")
	b.ReportMetric(float64(cs.Nanoseconds())/n, "spanmetrics-cpu-ns/span")
	if cs > 0 {
		b.ReportMetric(float64(cc)/float64(cs), "cpu-ratio")
	}
}

func newBenchCorrelation(b *testing.B) (func(context.Context, ptrace.Traces) error, func()) {
	cfg := createDefaultConfig().(*Config)
	set := nopSettings()
	set.ID = component.MustNewIDWithName(typeStr, "bench")
	tp, err := NewFactory().CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	p := tp.(*tracesProcessor).p
	clock := &fakeClock{t: t0}
	p.now = clock.now
	// Started, so that spans are also scanned for cross-chain events; the
	// loop does not tick by itself.
	p.ticker = func(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }
	if err := tp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	consume := func(ctx context.Context, td ptrace.Traces) error {
		// Time moves 100 ms per batch, so buckets rotate and the pending
		// store and sampled traces expire as in production, with a tick
		// every emit interval.
		clock.t = clock.t.Add(100 * time.Millisecond)
		if clock.t.Sub(p.graph.LastTick()) >= cfg.EmitInterval {
			p.graph.Tick(clock.t)
		}
		return tp.ConsumeTraces(ctx, td)
	}
	return consume, func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	}
}

func newBenchSpanmetrics(b *testing.B) func(context.Context, ptrace.Traces) error {
	f := spanmetricsconnector.NewFactory()
	conn, err := f.CreateTracesToMetrics(context.Background(), connectortest.NewNopSettings(f.Type()), f.CreateDefaultConfig(), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	return conn.(consumer.Traces).ConsumeTraces
}

// BenchmarkTick measures one emit tick on a graph of 1000 services (each
// calling two others), their 1000 pods and 2000 edges: expiry, snapshot
// with 1 m and 5 m features, baselines and the derived metrics encoding.
func BenchmarkTick(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	set := nopSettings()
	set.ID = component.MustNewIDWithName(typeStr, "benchtick")
	sink := new(consumertest.MetricsSink)
	mp, err := NewFactory().CreateMetrics(context.Background(), set, cfg, sink)
	if err != nil {
		b.Fatal(err)
	}
	p := mp.(*metricsProcessor).p
	defer shared.Remove(set.ID, p)
	const services = 1000
	td := ptrace.NewTraces()
	for i := 0; i < services; i++ {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc-"+strconv.Itoa(i))
		rs.Resource().Attributes().PutStr("k8s.pod.name", "pod-"+strconv.Itoa(i))
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for j := 1; j <= 2; j++ {
			tid := pcommon.TraceID{byte(i), byte(i >> 8), byte(j), 1}
			c := spans.AppendEmpty()
			c.SetTraceID(tid)
			c.SetSpanID(pcommon.SpanID{1})
			c.SetKind(ptrace.SpanKindClient)
			c.SetStartTimestamp(1)
			c.SetEndTimestamp(pcommon.Timestamp(1 + j*int(time.Millisecond)))
			callee := td.ResourceSpans().AppendEmpty()
			callee.Resource().Attributes().PutStr("service.name", "svc-"+strconv.Itoa((i+j)%services))
			s := callee.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			s.SetTraceID(tid)
			s.SetSpanID(pcommon.SpanID{2})
			s.SetParentSpanID(pcommon.SpanID{1})
			s.SetKind(ptrace.SpanKindServer)
			s.SetStartTimestamp(1)
			s.SetEndTimestamp(pcommon.Timestamp(1 + j*int(time.Millisecond)))
		}
	}
	for k := 0; k < 10; k++ {
		p.graph.ConsumeTraces(td, t0.Add(time.Duration(k)*time.Second))
	}
	perType, edges := p.graph.Len()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink.Reset()
		if err := p.tick(ctx, t0.Add(20*time.Second)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(perType["service"]+perType["pod"]), "entities")
	b.ReportMetric(float64(edges), "edges")
}
