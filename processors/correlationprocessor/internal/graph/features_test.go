package graph

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/entity"
)

// latencyBatch is one SERVER span of service api (namespace shop) per
// duration, failed where failed[i].
func latencyBatch(durations []time.Duration, failed []bool) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "api")
	rs.Resource().Attributes().PutStr("service.namespace", "shop")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i, d := range durations {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{byte(i), 0xfe})
		sp.SetSpanID(pcommon.SpanID{1})
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(d)))
		if failed[i] {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return td
}

// TestRequestFeatures: a batch a second, at the middle of each second, of
// five requests of 10, 20, 30, 40 and 1000 ms, the slowest failed, for two
// minutes.
func TestRequestFeatures(t *testing.T) {
	g := New(settings(), nil)
	ds := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond, time.Second}
	failed := []bool{false, false, false, false, true}
	for i := range 120 {
		g.ConsumeTraces(latencyBatch(ds, failed), t0.Add(time.Duration(i)*time.Second+500*time.Millisecond))
	}
	at := t0.Add(2 * time.Minute)
	snap := g.Snapshot(at)
	svc, ok := snap.Entity("service:shop/api")
	require.True(t, ok)
	for _, tc := range []struct {
		feature string
		want    float64
		eps     float64 // relative; 0: within 1e-9
	}{
		// The 1-minute window is the 10 s buckets from 70 s to 120 s
		// (the bucket that holds at is empty yet): 50 batches over 50 s.
		{"request.rate", 5, 0},
		{"error.ratio", 0.2, 0},
		// Sketch quantiles, within window::sketch_accuracy (1 %).
		{"latency.p50_ms", 30, 0.01},
		{"latency.p90_ms", 1000, 0.01},
		{"latency.p99_ms", 1000, 0.01},
		// 99.9 % availability target: 20 % errors burn 200x the budget.
		{"slo.burn_rate_5m", 200, 1e-9},
		{"slo.burn_rate_1h", 200, 1e-9},
	} {
		got, has := svc.Features[tc.feature]
		require.True(t, has, tc.feature)
		if tc.eps == 0 {
			assert.InDelta(t, tc.want, got, 1e-9, tc.feature)
		} else {
			assert.InEpsilon(t, tc.want, got, tc.eps, tc.feature)
		}
	}
	// The 5-minute window is older than the service: its 600 requests
	// over the 119.5 s since the first one arrived.
	assert.InDelta(t, 600/119.5, svc.Features5m["request.rate"], 1e-9)
	assert.InDelta(t, 0.2, svc.Features5m["error.ratio"], 1e-9)
	// limits::max_exemplars (2) failed requests and as many slow ones, the
	// slowest of those that succeeded.
	byReason := map[string][]float64{}
	for _, x := range svc.Evidence.Exemplars {
		byReason[x.Reason] = append(byReason[x.Reason], x.Value)
	}
	assert.Equal(t, map[string][]float64{"error": {1000, 1000}, "slow": {40, 40}}, byReason)
}

// sums are cumulative sums of metric name under resource r, one data point
// per attribute set (nil: one without attributes).
func sum(md pmetric.Metrics, r res, name string, v float64, attrs map[string]any) pmetric.Metrics {
	rm := md.ResourceMetrics().AppendEmpty()
	_ = rm.Resource().Attributes().FromRaw(r)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := s.DataPoints().AppendEmpty()
	dp.SetDoubleValue(v)
	_ = dp.Attributes().FromRaw(attrs)
	return md
}

// TestPoolFeatures: db.client.connection.* metrics of one service (OTel
// semantic conventions: count by state, max, pending requests, the wait
// time histogram, timeouts) reported every 10 s for two minutes.
func TestPoolFeatures(t *testing.T) {
	s := settings()
	s.Metrics = map[string]MetricMapping{
		"db.client.connection.count":            {Entity: entity.Service, Input: InPoolConnections, SplitBy: []string{"db.client.connection.state"}},
		"db.client.connection.max":              {Entity: entity.Service, Input: InPoolMax},
		"db.client.connection.pending_requests": {Entity: entity.Service, Input: InPoolPending},
		"db.client.connection.wait_time":        {Entity: entity.Service, Input: InPoolWait},
		"db.client.connection.timeouts":         {Entity: entity.Service, Input: InPoolTimeouts},
	}
	g := New(s, nil)
	r := res{"service.name": "orders", "service.namespace": "shop"}
	for i := range 13 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		n := float64(i)
		md := pmetric.NewMetrics()
		// 6 used and 2 idle of 8; 3 requests waiting.
		sum(md, r, "db.client.connection.count", 6, map[string]any{"db.client.connection.state": "used"})
		sum(md, r, "db.client.connection.count", 2, map[string]any{"db.client.connection.state": "idle"})
		sum(md, r, "db.client.connection.max", 8, nil)
		sum(md, r, "db.client.connection.pending_requests", 3, nil)
		// 100 acquisitions per 10 s that waited 0.5 s in all: 5 ms each.
		h := md.ResourceMetrics().AppendEmpty()
		_ = h.Resource().Attributes().FromRaw(r)
		hm := h.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		hm.SetName("db.client.connection.wait_time")
		hist := hm.SetEmptyHistogram()
		hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := hist.DataPoints().AppendEmpty()
		dp.SetCount(uint64(100 * i))
		dp.SetSum(0.5 * n)
		// 2 timeouts per 10 s.
		sum(md, r, "db.client.connection.timeouts", 2*n, nil)
		g.ConsumeMetrics(md, at)
	}
	snap := g.Snapshot(t0.Add(2 * time.Minute))
	svc, ok := snap.Entity("service:shop/orders")
	require.True(t, ok)
	for f, want := range map[string]float64{
		"pool.utilization":   0.75,
		"pool.pending":       3,
		"pool.wait_ms":       5,
		"pool.timeouts_rate": 0.2,
	} {
		assert.InDelta(t, want, svc.Features[f], 1e-9, f)
	}
}

// TestResourceFeatures: kubeletstats and cAdvisor metrics of two pods of
// one service every 10 s for two minutes: per pod utilization against its
// requests and limits, throttling and cost; the service's sums, its most
// throttled pod, and cost per 1k requests at 5 req/s.
func TestResourceFeatures(t *testing.T) {
	g := New(podSettings(), nil)
	pods := []struct {
		name                   string
		usage, request, limit  float64
		mem, memReq, memLim    float64
		throttledPer10s        float64 // of 100 CFS periods per 10 s
		restarts               float64
		wantCost, wantThrottle float64
	}{
		// 0.5 cores x 0.04 + 0.5 GiB x 0.005 per hour.
		{"api-0", 0.3, 0.5, 1, 256 << 20, 512 << 20, 1 << 30, 25, 0, 0.0225, 0.25},
		{"api-1", 0.1, 0.5, 1, 128 << 20, 512 << 20, 1 << 30, 5, 2, 0.0225, 0.05},
	}
	step := 10 * time.Second
	for i := range 13 {
		at := t0.Add(time.Duration(i) * step)
		if i < 12 {
			// 50 requests per 10 s, at +5 s of each 10 s bucket.
			g.ConsumeTraces(latencyBatch(make([]time.Duration, 50), make([]bool, 50)), at.Add(5*time.Second))
		}
		for _, p := range pods {
			n := float64(i)
			restarts := 0.0
			if i >= 8 { // restarted at +80 s, inside the 1-minute window
				restarts = p.restarts
			}
			g.ConsumeMetrics(podMetrics("api", p.name, map[string]float64{
				"k8s.pod.cpu.usage":            p.usage,
				"k8s.container.cpu_request":    p.request,
				"k8s.container.cpu_limit":      p.limit,
				"k8s.pod.memory.working_set":   p.mem,
				"k8s.container.memory_request": p.memReq,
				"k8s.container.memory_limit":   p.memLim,
			}, map[string]float64{
				"container_cpu_cfs_periods_total":           100 * n,
				"container_cpu_cfs_throttled_periods_total": p.throttledPer10s * n,
				"k8s.container.restarts":                    restarts,
			}), at)
		}
	}
	snap := g.Snapshot(t0.Add(2 * time.Minute))
	for _, p := range pods {
		pod, ok := snap.Entity("pod:shop/" + p.name)
		require.True(t, ok, p.name)
		for f, want := range map[string]float64{
			"cpu.usage_cores":            p.usage,
			"cpu.request_utilization":    p.usage / p.request,
			"cpu.limit_utilization":      p.usage / p.limit,
			"memory.request_utilization": p.mem / p.memReq,
			"memory.limit_utilization":   p.mem / p.memLim,
			"cpu.throttling_ratio":       p.wantThrottle,
			"restarts":                   p.restarts,
			"cost.per_hour":              p.wantCost,
		} {
			assert.InDelta(t, want, pod.Features[f], 1e-9, "%s %s", p.name, f)
		}
	}
	svc, ok := snap.Entity("service:shop/api")
	require.True(t, ok)
	for f, want := range map[string]float64{
		"replicas":                   2,
		"cpu.usage_cores":            0.4,
		"cpu.request_cores":          1,
		"cpu.limit_cores":            2,
		"cpu.request_utilization":    0.4,
		"cpu.limit_utilization":      0.2,
		"memory.usage_bytes":         384 << 20,
		"memory.request_utilization": 0.375,
		"memory.limit_utilization":   0.1875,
		"cpu.throttling_ratio":       0.25, // the most throttled pod's
		"restarts":                   2,
		"cost.per_hour":              0.045,
		// 0.045 per hour for 5 req/s = 18k requests an hour.
		"cost.per_1k_requests": 0.0025,
	} {
		assert.InDelta(t, want, svc.Features[f], 1e-9, f)
	}
}

// TestCostByUsageWithoutRequests: a pod that requests nothing is priced
// by what it uses.
func TestCostByUsageWithoutRequests(t *testing.T) {
	g := New(podSettings(), nil)
	g.ConsumeMetrics(podMetrics("batch", "batch-0", map[string]float64{
		"k8s.pod.cpu.usage":          2,
		"k8s.pod.memory.working_set": 4 << 30,
	}, nil), t0)
	pod, ok := g.Snapshot(t0.Add(time.Second)).Entity("pod:shop/batch-0")
	require.True(t, ok)
	assert.InDelta(t, 2*0.04+4*0.005, pod.Features["cost.per_hour"], 1e-9)
	assert.NotContains(t, pod.Features, "cpu.request_utilization", "no request, no utilization of it")
}
