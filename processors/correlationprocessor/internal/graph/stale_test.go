package graph

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
)

// podMappings are the processor's default kubeletstats and cAdvisor
// mappings (the processor's factory.go).
var podMappings = map[string]MetricMapping{
	"k8s.pod.cpu.usage":                         {Entity: entity.Pod, Input: InCPUUsage},
	"k8s.pod.memory.working_set":                {Entity: entity.Pod, Input: InMemWorkingSet},
	"k8s.container.cpu_request":                 {Entity: entity.Pod, Input: InCPURequest},
	"k8s.container.cpu_limit":                   {Entity: entity.Pod, Input: InCPULimit},
	"k8s.container.memory_request":              {Entity: entity.Pod, Input: InMemRequest},
	"k8s.container.memory_limit":                {Entity: entity.Pod, Input: InMemLimit},
	"k8s.container.restarts":                    {Entity: entity.Pod, Input: InRestarts},
	"container_cpu_cfs_throttled_periods_total": {Entity: entity.Pod, Input: InThrottledPeriods},
	"container_cpu_cfs_periods_total":           {Entity: entity.Pod, Input: InPeriods},
}

// podMetrics is one kubeletstats-style export of pod pod of service svc
// (namespace shop): gauges by metric name, and cumulative sums.
func podMetrics(svc, pod string, gauges, sums map[string]float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr("service.name", svc)
	res.PutStr("service.namespace", "shop")
	res.PutStr("k8s.namespace.name", "shop")
	res.PutStr("k8s.pod.name", pod)
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for name, v := range gauges {
		m := ms.AppendEmpty()
		m.SetName(name)
		m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(v)
	}
	for name, v := range sums {
		m := ms.AppendEmpty()
		m.SetName(name)
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		sum.DataPoints().AppendEmpty().SetDoubleValue(v)
	}
	return md
}

func podSettings() *Settings {
	s := settings()
	s.Identity.ServiceNamespace = []string{"service.namespace"}
	s.Metrics = podMappings
	s.Prices = Prices{CPUCoreHour: 0.04, MemoryGiBHour: 0.005}
	return s
}

// TestRemovedPodLeavesServiceSums: catalog runs 3 pods (0.5 cores
// requested, 1 core limit each) reporting every 10 s; a cost cut at +5m
// removes two and sets the last one's limit to 0.15 cores. The removed
// pods' last samples are stale data: once three of their report intervals
// (at least a minute) have passed without a sample, the service's sums,
// utilizations, replicas and cost are the one pod's. Before, they counted
// until their samples were 5 minutes old.
func TestRemovedPodLeavesServiceSums(t *testing.T) {
	g := New(podSettings(), nil)
	g.ConsumeTraces(serverBatch("catalog", "", 1, 0, time.Millisecond), t0)
	cut := 5 * time.Minute
	report := func(at time.Duration) {
		pods := []string{"catalog-0", "catalog-1", "catalog-2"}
		limit, usage := 1.0, 0.3
		if at >= cut {
			pods, limit, usage = pods[:1], 0.15, 0.15
		}
		for _, p := range pods {
			g.ConsumeMetrics(podMetrics("catalog", p, map[string]float64{
				"k8s.pod.cpu.usage":            usage,
				"k8s.container.cpu_request":    0.5,
				"k8s.container.cpu_limit":      limit,
				"k8s.pod.memory.working_set":   256 << 20,
				"k8s.container.memory_request": 512 << 20,
				"k8s.container.memory_limit":   1 << 30,
			}, nil), t0.Add(at))
		}
	}
	for at := 10 * time.Second; at <= cut+3*time.Minute; at += 10 * time.Second {
		report(at)
		snap := g.Tick(t0.Add(at + 5*time.Second))
		svc, ok := snap.Entity("service:shop/catalog")
		require.True(t, ok)
		f := svc.Features
		switch {
		case at < cut:
			assert.Equal(t, 3.0, f["replicas"], "+%v", at)
			assert.InDelta(t, 3.0, f["cpu.limit_cores"], 1e-9, "+%v", at)
			assert.InDelta(t, 0.3, f["cpu.limit_utilization"], 1e-9, "+%v", at)
		case at < cut+time.Minute-10*time.Second:
			// The removed pods' last samples (at cut-10s) are
			// within a minute: still counted.
			assert.Equal(t, 3.0, f["replicas"], "+%v: removed pods still fresh", at)
		case at >= cut+time.Minute:
			assert.Equal(t, 1.0, f["replicas"], "+%v: the removed pods are stale", at)
			assert.InDelta(t, 0.15, f["cpu.limit_cores"], 1e-9, "+%v", at)
			assert.InDelta(t, 0.5, f["cpu.request_cores"], 1e-9, "+%v", at)
			assert.InDelta(t, 1.0, f["cpu.limit_utilization"], 1e-9, "+%v: the one pod runs at its limit", at)
			assert.InDelta(t, 0.3, f["cpu.request_utilization"], 1e-9, "+%v", at)
			assert.InDelta(t, 0.5, f["memory.request_utilization"], 1e-9, "+%v", at)
			// One pod: 0.5 cores x 0.04 + 0.5 GiB x 0.005 per hour.
			assert.InDelta(t, 0.0225, f["cost.per_hour"], 1e-9, "+%v", at)
			p, ok := snap.Entity("pod:shop/catalog-1")
			require.True(t, ok, "a removed pod stays an entity until limits::entity_ttl")
			assert.Empty(t, p.Features, "+%v: with no fresh sample it has no features", at)
		}
	}
}

// TestGaugeStaleAfterThreeIntervals: a gauge's newest sample is its value
// until three of the series' report intervals have passed, at least a
// minute and at most five; a series with one sample keeps it five minutes.
func TestGaugeStaleAfterThreeIntervals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		every time.Duration // 0: a single sample
		stale time.Duration
	}{
		{"every 10s: the one-minute floor", 10 * time.Second, time.Minute},
		{"every 30s", 30 * time.Second, 90 * time.Second},
		{"every 2m: the five-minute cap", 2 * time.Minute, 5 * time.Minute},
		{"one sample", 0, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(podSettings(), nil)
			last := t0
			for i := range 6 {
				last = t0.Add(time.Duration(i) * tc.every)
				g.ConsumeMetrics(podMetrics("api", "api-0", map[string]float64{"k8s.container.cpu_limit": 2}, nil), last)
				if tc.every == 0 {
					break
				}
			}
			limit := func(at time.Time) (float64, bool) {
				p, ok := g.Snapshot(at).Entity("pod:shop/api-0")
				require.True(t, ok)
				v, has := p.Features["cpu.limit_cores"]
				return v, has
			}
			v, has := limit(last.Add(tc.stale))
			assert.True(t, has, "fresh %v after the last sample", tc.stale)
			assert.Equal(t, 2.0, v)
			_, has = limit(last.Add(tc.stale + time.Second))
			assert.False(t, has, "stale %v after the last sample", tc.stale+time.Second)
		})
	}
}
