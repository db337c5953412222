// The fuzz targets of this package are built without the tests that run
// the kubeletstats and prometheus receivers (make fuzz sets junction_fuzz):
// an instrumented build of those receivers' dependencies takes minutes.

//go:build !junction_fuzz

package correlationprocessor

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// benchPodMetrics is one node's pod resources as its agent receives them
// for pods pods of two containers each: kubeletstats' pod usage and four
// utilization ratios (a resource per pod), and one cAdvisor scrape (one
// resource) with the CFS counters of each pod's cgroup and containers.
func benchPodMetrics(pods int, scrape int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	ts := pcommon.NewTimestampFromTime(t0.Add(time.Duration(scrape) * scrapeEvery))
	for i := 0; i < pods; i++ {
		rm := md.ResourceMetrics().AppendEmpty()
		res := rm.Resource().Attributes()
		res.PutStr("k8s.namespace.name", "shop")
		res.PutStr("k8s.pod.name", "pod-"+strconv.Itoa(i))
		res.PutStr("k8s.pod.uid", "uid-"+strconv.Itoa(i))
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		gaugeDouble(ms, "k8s.pod.cpu.usage", "{cpu}", 0.2, ts)
		gaugeInt(ms, "k8s.pod.memory.working_set", "By", 200*mib, ts)
		gaugeInt(ms, "k8s.pod.memory.usage", "By", 240*mib, ts)
		for _, n := range []string{"k8s.pod.cpu_limit_utilization", "k8s.pod.cpu_request_utilization", "k8s.pod.memory_limit_utilization", "k8s.pod.memory_request_utilization"} {
			gaugeDouble(ms, n, "1", 0.4, ts)
		}
	}
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr("service.name", "kubelet-cadvisor")
	res.PutStr("service.instance.id", "node-1:10250")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for _, name := range []string{"container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total"} {
		m := ms.AppendEmpty()
		m.SetName(name)
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for i := 0; i < pods; i++ {
			for _, c := range []string{"", "app", "envoy"} {
				dp := sum.DataPoints().AppendEmpty()
				dp.SetTimestamp(ts)
				dp.SetDoubleValue(float64(150 * scrape))
				a := dp.Attributes()
				a.PutStr("container", c)
				a.PutStr("id", "/kubepods.slice/pod-"+strconv.Itoa(i)+"/"+c)
				a.PutStr("image", c)
				a.PutStr("name", c)
				a.PutStr("namespace", "shop")
				a.PutStr("pod", "pod-"+strconv.Itoa(i))
			}
		}
	}
	return md
}

// BenchmarkConsumePodMetrics measures joining a node's pod resources onto
// the graph, 100 pods per batch, one batch per scrape interval of the
// processor's clock; ns/op is one batch.
func BenchmarkConsumePodMetrics(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	set := nopSettings()
	set.ID = component.MustNewIDWithName(typeStr, "benchpods")
	mp, err := NewFactory().CreateMetrics(context.Background(), set, cfg, new(consumertest.MetricsSink))
	if err != nil {
		b.Fatal(err)
	}
	p := mp.(*metricsProcessor).p
	defer shared.Remove(set.ID, p)
	const pods = 100
	batches := make([]pmetric.Metrics, 8)
	for i := range batches {
		batches[i] = benchPodMetrics(pods, i+1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := t0.Add(time.Duration(i) * scrapeEvery)
		p.graph.ConsumeMetrics(batches[i%len(batches)], at)
	}
}
