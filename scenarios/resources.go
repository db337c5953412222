package scenarios

import (
	"net"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Resource keys beyond the pods (si*64+pi) for the logs of things that are
// not instrumented applications.
const (
	resPostgresLogs = 1 << 20
	podKeyStride    = 64
)

// putAppResource writes the resource of an instrumented application's pod:
// OTel semconv service and k8s attributes, as the SDK and the agent's
// k8sattributes processor set them.
func (g *generator) putAppResource(m pcommon.Map, si, pi int) {
	s, p := &specs[si], &g.pods[si][pi]
	m.PutStr("service.name", s.name)
	m.PutStr("service.namespace", s.namespace)
	m.PutStr("service.version", s.version)
	m.PutStr("service.instance.id", p.uid)
	m.PutStr("deployment.environment.name", "production")
	m.PutStr("telemetry.sdk.language", "go")
	m.PutStr("telemetry.sdk.name", "opentelemetry")
	g.putPodAttrs(m, si, pi)
}

// putPodAttrs writes the k8s identity of a pod.
func (g *generator) putPodAttrs(m pcommon.Map, si, pi int) {
	s, p := &specs[si], &g.pods[si][pi]
	m.PutStr("k8s.namespace.name", s.namespace)
	m.PutStr("k8s.pod.name", p.name)
	m.PutStr("k8s.pod.uid", p.uid)
	m.PutStr("k8s.deployment.name", s.name)
	m.PutStr("k8s.node.name", p.node)
}

// putScrapeResource writes the resource the prometheus receiver gives a
// scrape target: service.name is the job, service.instance.id the
// instance, server.address and server.port split from it.
func putScrapeResource(m pcommon.Map, job, instance string) {
	m.PutStr("service.name", job)
	m.PutStr("service.instance.id", instance)
	host, port := instance, ""
	for i := len(instance) - 1; i >= 0; i-- {
		if instance[i] == ':' {
			host, port = instance[:i], instance[i+1:]
			break
		}
	}
	// The receiver leaves out addresses that identify nothing (IPs,
	// localhost).
	if net.ParseIP(host) == nil && host != "localhost" {
		m.PutStr("server.address", host)
	}
	m.PutStr("server.port", port)
	m.PutStr("url.scheme", "http")
}

// spans returns the span slice of pod (si, pi) in this step's traces.
func (g *generator) spans(si, pi int) ptrace.SpanSlice {
	k := si*podKeyStride + pi
	if ss, ok := g.spanRS[k]; ok {
		return ss
	}
	rs := g.b.traces.ResourceSpans().AppendEmpty()
	g.putAppResource(rs.Resource().Attributes(), si, pi)
	sc := rs.ScopeSpans().AppendEmpty()
	sc.Scope().SetName(ScopeName)
	ss := sc.Spans()
	g.spanRS[k] = ss
	return ss
}

// logRecords returns the log record slice of pod (si, pi) in this step.
func (g *generator) logRecords(si, pi int) plog.LogRecordSlice {
	k := si*podKeyStride + pi
	if ls, ok := g.logRS[k]; ok {
		return ls
	}
	rl := g.b.logs.ResourceLogs().AppendEmpty()
	g.putAppResource(rl.Resource().Attributes(), si, pi)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(ScopeName)
	g.logRS[k] = sl.LogRecords()
	return sl.LogRecords()
}

// postgresLogs returns the records of the Postgres server log (read by a
// filelog receiver on the database host).
func (g *generator) postgresLogs() plog.LogRecordSlice {
	if ls, ok := g.logRS[resPostgresLogs]; ok {
		return ls
	}
	rl := g.b.logs.ResourceLogs().AppendEmpty()
	m := rl.Resource().Attributes()
	m.PutStr("service.name", DBSystem)
	m.PutStr("db.system.name", DBSystem)
	m.PutStr("server.address", DBHost)
	m.PutStr("server.port", strconv.Itoa(DBPort))
	m.PutStr("host.name", "pg-primary-0")
	sl := rl.ScopeLogs().AppendEmpty()
	g.logRS[resPostgresLogs] = sl.LogRecords()
	return sl.LogRecords()
}

// metricScope appends a resource with the given attributes writer and
// returns its metric slice.
func (g *generator) metricScope(put func(pcommon.Map)) pmetric.MetricSlice {
	rm := g.b.metrics.ResourceMetrics().AppendEmpty()
	put(rm.Resource().Attributes())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(ScopeName)
	return sm.Metrics()
}

// mset appends metrics to one scope with the step's timestamps.
type mset struct {
	ms    pmetric.MetricSlice
	start pcommon.Timestamp
	now   pcommon.Timestamp
}

func (g *generator) mset(ms pmetric.MetricSlice) mset {
	return mset{ms: ms, start: ts(g.p.Start), now: ts(g.t1)}
}

func (s mset) gauge(name, unit, desc string) pmetric.NumberDataPointSlice {
	m := s.ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription(desc)
	return m.SetEmptyGauge().DataPoints()
}

func (s mset) sum(name, unit, desc string, monotonic bool) pmetric.NumberDataPointSlice {
	m := s.ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription(desc)
	sm := m.SetEmptySum()
	sm.SetIsMonotonic(monotonic)
	sm.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	return sm.DataPoints()
}

func (s mset) hist(name, unit, desc string) pmetric.HistogramDataPointSlice {
	m := s.ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription(desc)
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	return h.DataPoints()
}

func (s mset) dbl(dps pmetric.NumberDataPointSlice, v float64, attrs ...string) {
	dp := dps.AppendEmpty()
	dp.SetTimestamp(s.now)
	dp.SetDoubleValue(v)
	putPairs(dp.Attributes(), attrs)
}

func (s mset) int(dps pmetric.NumberDataPointSlice, v int64, attrs ...string) {
	dp := dps.AppendEmpty()
	dp.SetTimestamp(s.now)
	dp.SetIntValue(v)
	putPairs(dp.Attributes(), attrs)
}

// cumDbl and cumInt write a cumulative sum point with the run's start time.
func (s mset) cumDbl(dps pmetric.NumberDataPointSlice, v float64, attrs ...string) {
	dp := dps.AppendEmpty()
	dp.SetStartTimestamp(s.start)
	dp.SetTimestamp(s.now)
	dp.SetDoubleValue(v)
	putPairs(dp.Attributes(), attrs)
}

func (s mset) cumInt(dps pmetric.NumberDataPointSlice, v int64, attrs ...string) {
	dp := dps.AppendEmpty()
	dp.SetStartTimestamp(s.start)
	dp.SetTimestamp(s.now)
	dp.SetIntValue(v)
	putPairs(dp.Attributes(), attrs)
}

func putPairs(m pcommon.Map, kv []string) {
	for i := 0; i+1 < len(kv); i += 2 {
		m.PutStr(kv[i], kv[i+1])
	}
}

// histState is a cumulative explicit-bucket histogram.
type histState struct {
	bounds []float64
	counts []uint64
	sum    float64
	count  uint64
}

func (g *generator) hist(key string, bounds []float64) *histState {
	h, ok := g.hists[key]
	if !ok {
		h = &histState{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
		g.hists[key] = h
	}
	return h
}

func (h *histState) observe(v float64, n uint64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i] += n
	h.sum += v * float64(n)
	h.count += n
}

func (s mset) histPoint(dps pmetric.HistogramDataPointSlice, h *histState, attrs ...string) {
	dp := dps.AppendEmpty()
	dp.SetStartTimestamp(s.start)
	dp.SetTimestamp(s.now)
	dp.SetCount(h.count)
	dp.SetSum(h.sum)
	dp.ExplicitBounds().FromRaw(h.bounds)
	dp.BucketCounts().FromRaw(h.counts)
	putPairs(dp.Attributes(), attrs)
}

// add increases the cumulative counter key by d and returns its value.
func (g *generator) add(key string, d float64) float64 {
	v := g.cum[key] + d
	g.cum[key] = v
	return v
}
