package correlationprocessor

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// The scale curve (docs/benchmarks.md "Scale curve") and the churn soak of
// the correlation processor as the default config runs it: the built-in
// rule packs evaluated on every tick, derived metrics encoded for the next
// consumer, on a fake clock. One op is one emit interval (15 s) of
// telemetry: rate*15 spans in batches of scaleBatchSpans, then the tick.
//
//	go test -run '^$' -bench BenchmarkScale -benchmem -benchtime 3x -count 3 -timeout 0 ./processors/correlationprocessor/
//	go test -run '^$' -bench BenchmarkChurnSoak -benchtime 1x -timeout 0 ./processors/correlationprocessor/ -soak 10m

// soakDuration is the wall time of BenchmarkChurnSoak, which is skipped
// without it (a soak is a command, not part of `make bench`).
var (
	soakDuration = flag.Duration("soak", 0, "run BenchmarkChurnSoak for this long (e.g. 10m)")
	soakHeap     = flag.String("soak.heap", "", "write a heap profile of the running processor here at the end of BenchmarkChurnSoak")
)

const scaleBatchSpans = 999 // 333 traces of 3 spans

// scaleTopology is a synthetic service graph: services each run pods and
// call calls others over HTTP. Entities: services + services*pods, edges:
// services*calls.
type scaleTopology struct {
	services, pods, calls int
	// Names change with generations (soak); nil for a fixed graph.
	serviceGen func(i int, at time.Time) int
	podGen     func(i int, at time.Time) int
}

func (s scaleTopology) serviceName(i int, at time.Time) string {
	name := "svc-" + strconv.Itoa(i)
	if s.serviceGen != nil {
		name += "-g" + strconv.Itoa(s.serviceGen(i, at))
	}
	return name
}

func (s scaleTopology) podName(svc string, i, pod int, at time.Time) string {
	gen := 0
	if s.podGen != nil {
		gen = s.podGen(i, at)
	}
	return svc + "-" + strconv.Itoa(gen) + "f8c9d-" + strconv.Itoa(pod)
}

// traceGen writes traces across the topology, round robin over the
// (service, callee) pairs: per trace the caller's SERVER span (in one of its
// pods), its HTTP CLIENT span to the callee and the callee's SERVER span,
// with the HTTP semantic-convention attributes that instrumentations write
// (otelhttp, Spring, ASP.NET Core). Trace ids are new for every trace.
type traceGen struct {
	top  scaleTopology
	next uint64 // traces written so far
}

func (g *traceGen) batch(traces int, at time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	res := map[string]ptrace.SpanSlice{}
	spansOf := func(svc, pod string) ptrace.SpanSlice {
		if s, ok := res[pod]; ok {
			return s
		}
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", svc)
		a.PutStr("service.namespace", "shop")
		a.PutStr("service.version", "1.4.2")
		a.PutStr("k8s.namespace.name", "shop")
		a.PutStr("k8s.pod.name", pod)
		a.PutStr("telemetry.sdk.language", "go")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		res[pod] = ss.Spans()
		return ss.Spans()
	}
	end := pcommon.NewTimestampFromTime(at)
	ts := func(ms int) pcommon.Timestamp { return end - pcommon.Timestamp(ms)*pcommon.Timestamp(time.Millisecond) }
	pairs := uint64(g.top.services * g.top.calls)
	for range traces {
		n := g.next
		g.next++
		pair := n % pairs
		caller := int(pair) / g.top.calls
		k := int(pair) % g.top.calls
		callee := (caller + 1 + k*7) % g.top.services
		callerName, calleeName := g.top.serviceName(caller, at), g.top.serviceName(callee, at)
		callerPod := g.top.podName(callerName, caller, int(n/pairs)%g.top.pods, at)
		calleePod := g.top.podName(calleeName, callee, int(n/pairs+1)%g.top.pods, at)
		var tid pcommon.TraceID
		var sid [8]byte
		for i := range 8 {
			tid[i] = byte(n >> (8 * i))
			sid[i] = byte(n >> (8 * i))
		}
		tid[8], tid[15] = 0x9e, 0x5c
		spanID := func(k byte) pcommon.SpanID { s := pcommon.SpanID(sid); s[7] ^= k << 5; return s }
		lat := 20 + int(n%37)
		failed := n%50 == 0

		cs := spansOf(callerName, callerPod)
		s := cs.AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(spanID(1))
		s.SetName("GET /api/orders")
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(ts(lat + 10))
		s.SetEndTimestamp(end)
		s.Attributes().PutStr("http.request.method", "GET")
		s.Attributes().PutStr("http.route", "/api/orders")
		s.Attributes().PutStr("url.scheme", "http")
		s.Attributes().PutInt("http.response.status_code", 200)

		c := cs.AppendEmpty()
		c.SetTraceID(tid)
		c.SetSpanID(spanID(2))
		c.SetParentSpanID(spanID(1))
		c.SetName("POST")
		c.SetKind(ptrace.SpanKindClient)
		c.SetStartTimestamp(ts(lat + 5))
		c.SetEndTimestamp(ts(2))
		c.Attributes().PutStr("http.request.method", "POST")
		c.Attributes().PutStr("server.address", calleeName)
		c.Attributes().PutInt("server.port", 8080)
		c.Attributes().PutStr("url.full", "http://"+calleeName+":8080/items")

		sv := spansOf(calleeName, calleePod).AppendEmpty()
		sv.SetTraceID(tid)
		sv.SetSpanID(spanID(3))
		sv.SetParentSpanID(spanID(2))
		sv.SetName("POST /items")
		sv.SetKind(ptrace.SpanKindServer)
		sv.SetStartTimestamp(ts(lat + 4))
		sv.SetEndTimestamp(ts(3))
		sv.Attributes().PutStr("http.request.method", "POST")
		sv.Attributes().PutStr("http.route", "/items")
		sv.Attributes().PutStr("url.scheme", "http")
		if failed {
			c.Attributes().PutInt("http.response.status_code", 503)
			sv.Attributes().PutInt("http.response.status_code", 503)
			sv.Status().SetCode(ptrace.StatusCodeError)
			c.Status().SetCode(ptrace.StatusCodeError)
		} else {
			c.Attributes().PutInt("http.response.status_code", 200)
			sv.Attributes().PutInt("http.response.status_code", 200)
		}
	}
	return td
}

// scaleRig is the processor as the default config runs it, in all three
// pipelines with nop consumers, its emit loop replaced by explicit ticks
// on a fake clock.
type scaleRig struct {
	p     *correlationProcessor
	tel   *componenttest.Telemetry
	clock *fakeClock
	comps []component.Component
}

func newScaleRig(b *testing.B, cfg *Config) *scaleRig {
	b.Helper()
	cfg.Rules.Files = []string{"builtin:packs"}
	cfg.Rules.StateFile = filepath.Join(b.TempDir(), "state.json")
	tel := componenttest.NewTelemetry()
	set := nopSettings()
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.ID = component.MustNewIDWithName(typeStr, "scale")
	f := NewFactory()
	ctx := context.Background()
	tp, err := f.CreateTraces(ctx, set, cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	mp, err := f.CreateMetrics(ctx, set, cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	lp, err := f.CreateLogs(ctx, set, cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	r := &scaleRig{p: tp.(*tracesProcessor).p, tel: tel, clock: &fakeClock{t: t0}, comps: []component.Component{tp, mp, lp}}
	r.p.now = r.clock.now
	r.p.ticker = noTicker
	for _, c := range r.comps {
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		for _, c := range r.comps {
			if err := c.Shutdown(context.Background()); err != nil {
				b.Error(err)
			}
		}
		_ = tel.Shutdown(context.Background())
	})
	return r
}

// interval feeds one emit interval of spans at rate spans/s from next, the
// clock moving with the batches, then ticks; it returns the time spent
// ticking and the process's CPU time meanwhile.
func (r *scaleRig) interval(b *testing.B, next func(at time.Time) ptrace.Traces, rate int) (wall, cpu time.Duration) {
	ctx := context.Background()
	emit := r.p.cfg.EmitInterval
	spans := int(float64(rate) * emit.Seconds())
	batches := max(1, (spans+scaleBatchSpans-1)/scaleBatchSpans)
	step := emit / time.Duration(batches)
	tp := r.comps[0].(*tracesProcessor)
	for range batches {
		r.clock.t = r.clock.t.Add(step)
		if err := tp.ConsumeTraces(ctx, next(r.clock.t)); err != nil {
			b.Fatal(err)
		}
	}
	start, cpu0 := time.Now(), processCPU()
	if err := r.p.tick(ctx, r.clock.t); err != nil {
		b.Fatal(err)
	}
	return time.Since(start), processCPU() - cpu0
}

func (r *scaleRig) size() (entities, edges int) {
	perType, edges := r.p.graph.Len()
	for _, n := range perType {
		entities += n
	}
	return entities, edges
}

// counter sums an int64 counter of the processor's own telemetry.
func (r *scaleRig) counter(name string) int64 {
	m, err := r.tel.GetMetric(name)
	if err != nil {
		return 0 // never incremented
	}
	var n int64
	if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, dp := range sum.DataPoints {
			n += dp.Value
		}
	}
	return n
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// scaleConfig is the default config with the entity and edge limits raised
// to hold the largest graph (100k: 16,667 services and 33,333 pods against
// the default 5,000 per type; 33,333 edges against 20,000).
func scaleConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Limits.MaxEntitiesPerType = 40000
	cfg.Limits.MaxEdges = 40000
	return cfg
}

// runScale measures one point of the curve: ns per span with the ticks
// included, the tick alone, the live heap per graph element, and the cores
// this takes at the rate (CPU time per op over the 15 s an op stands for).
//
// The batches are built before the clock starts and reused round robin,
// enough of them to send every (service, callee) pair once per pass (trace
// ids repeat from pass to pass, as in BenchmarkConsumeTraces), so that
// building pdata is not in the figures.
func runScale(b *testing.B, top scaleTopology, rate int) {
	g := &traceGen{top: top}
	pairs := top.services * top.calls
	pool := make([]ptrace.Traces, (pairs+scaleBatchSpans/3-1)/(scaleBatchSpans/3))
	for i := range pool {
		pool[i] = g.batch(scaleBatchSpans/3, t0)
	}
	k := 0
	next := func(time.Time) ptrace.Traces { k++; return pool[k%len(pool)] }
	r := newScaleRig(b, scaleConfig())
	base := liveHeap()
	// Warm up until every (service, callee) pair has been sent twice and
	// the windows hold a few intervals.
	perInterval := float64(rate) * r.p.cfg.EmitInterval.Seconds() / 3
	warm := max(4, int(math.Ceil(2*float64(pairs)/perInterval)))
	for range warm {
		r.interval(b, next, rate)
	}
	entities, edges := r.size()
	heap := int64(liveHeap()) - int64(base)
	var tickTime, tickCPU time.Duration
	cpu0 := processCPU()
	b.ResetTimer()
	for range b.N {
		wall, cpu := r.interval(b, next, rate)
		tickTime += wall
		tickCPU += cpu
	}
	b.StopTimer()
	cpu := processCPU() - cpu0
	spans := float64(b.N) * float64(max(1, (rate*15+scaleBatchSpans-1)/scaleBatchSpans)*scaleBatchSpans)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, "ns/span")
	b.ReportMetric(float64(cpu.Nanoseconds())/spans, "cpu-ns/span")
	b.ReportMetric(float64(tickTime.Milliseconds())/float64(b.N), "tick-ms")
	b.ReportMetric(float64(tickCPU.Milliseconds())/float64(b.N), "tick-cpu-ms")
	b.ReportMetric(float64(heap)/float64(entities+edges), "heap-B/element")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	b.ReportMetric(cpu.Seconds()/float64(b.N)/r.p.cfg.EmitInterval.Seconds(), "cores")
	b.ReportMetric(float64(entities), "entities")
	b.ReportMetric(float64(edges), "edges")
}

// BenchmarkScaleEntities grows the graph tenfold twice at a fixed span
// rate: 1k, 10k and 100k graph elements (services, their pods and their
// edges: 5 per service), 10,000 spans/s.
func BenchmarkScaleEntities(b *testing.B) {
	for _, n := range []struct {
		name     string
		services int
	}{{"1k", 200}, {"10k", 2000}, {"100k", 16667}} {
		b.Run("elements="+n.name, func(b *testing.B) {
			// 2 pods and 2 callees per service: 5 elements a service (the
			// 100k point has 16,667: 100,000 with the pods and edges).
			runScale(b, scaleTopology{services: n.services, pods: 2, calls: 2}, 10000)
		})
	}
}

// BenchmarkScaleRate multiplies the span rate by 10 twice on a graph of
// 10k elements: 1,000, 10,000 and 100,000 spans/s.
func BenchmarkScaleRate(b *testing.B) {
	for _, n := range []struct {
		name string
		rate int
	}{{"1x", 1000}, {"10x", 10000}, {"100x", 100000}} {
		b.Run("rate="+n.name, func(b *testing.B) {
			runScale(b, scaleTopology{services: 2000, pods: 2, calls: 2}, n.rate)
		})
	}
}

// BenchmarkChurnSoak runs the processor for -soak of wall time on a graph
// whose entities come and go ten times faster than they expire: 200
// services of 2 pods calling 2 others at 5,000 spans/s, every pod replaced
// (a new name) every 90 s and every service every 15 min of telemetry time,
// both staggered, new trace ids throughout. The default entity TTL is 15
// min, so the graph holds about ten generations of pods, about 5,200
// entities and 1,200 edges, under the default limits (it logs the entities
// dropped: none): the TTL, not the limit, bounds it. Telemetry time runs as
// fast as the processor does (about half an hour per wall minute). Every
// wall minute it prints the live heap after a GC and the graph's size; it
// reports the largest deviation of those samples from their mean after the
// first minute (warm-up). -soak.heap writes a heap profile at the end.
func BenchmarkChurnSoak(b *testing.B) {
	if *soakDuration <= 0 {
		b.Skip("a soak: run with -benchtime 1x -soak 10m")
	}
	const (
		podLife     = 90 * time.Second
		serviceLife = 15 * time.Minute
		rate        = 5000
	)
	stagger := func(life time.Duration, services int) func(int, time.Time) int {
		return func(i int, at time.Time) int {
			offset := time.Duration(i) * life / time.Duration(services)
			return int((at.Sub(t0) + offset) / life)
		}
	}
	const services = 200
	top := scaleTopology{services: services, pods: 2, calls: 2,
		serviceGen: stagger(serviceLife, services), podGen: stagger(podLife, services)}
	for range b.N {
		r := newScaleRig(b, createDefaultConfig().(*Config))
		g := &traceGen{top: top}
		next := func(at time.Time) ptrace.Traces { return g.batch(scaleBatchSpans/3, at) }
		base := liveHeap()
		start := time.Now()
		var samples []float64
		sampleAt := time.Minute
		for time.Since(start) < *soakDuration {
			r.interval(b, next, rate)
			if time.Since(start) >= sampleAt {
				sampleAt += time.Minute
				h := float64(int64(liveHeap())-int64(base)) / (1 << 20)
				samples = append(samples, h)
				entities, edges := r.size()
				// Printed, not logged: a benchmark's log keeps 10 lines.
				fmt.Printf("soak minute %2d: heap %7.2f MiB, %5d entities, %5d edges, telemetry time +%s, entities evicted %d, dropped %d\n",
					len(samples), h, entities, edges, r.clock.t.Sub(t0).Round(time.Minute),
					r.counter("otelcol_processor_correlation_entities_evicted"), r.counter("otelcol_processor_correlation_entities_dropped"))
			}
		}
		if *soakHeap != "" {
			writeHeapProfile(b, *soakHeap)
		}
		if len(samples) < 3 {
			b.Fatalf("%d heap samples: run the soak for 3 minutes or more", len(samples))
		}
		post := samples[1:]
		var mean float64
		for _, s := range post {
			mean += s
		}
		mean /= float64(len(post))
		var dev float64
		for _, s := range post {
			dev = max(dev, math.Abs(s-mean)/mean)
		}
		fmt.Printf("soak after warm-up (minutes 2-%d): mean heap %.2f MiB, max deviation %.1f %%\n", len(samples), mean, 100*dev)
		b.ReportMetric(mean, "heap-MiB")
		b.ReportMetric(100*dev, "heap-max-dev-%")
		b.ReportMetric(float64(r.counter("otelcol_processor_correlation_entities_evicted")), "entities-evicted")
	}
}

// writeHeapProfile writes the live heap (after a GC) while the processor
// still holds its state; -memprofile is written after it has shut down.
func writeHeapProfile(b *testing.B, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// processCPU is the process's user+system CPU time (all threads, GC
// included).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
