package mergedgraph_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/mergedgraph"
	"github.com/junction-sre/junction/internal/vmtest"
)

// benchGraph is a replica's share of a graph of n services, each with a
// pod and the RED, resource and cost features, calling two others, with
// the latency sketches a replica emits: 10 requests/s per service and 5
// per edge, log-normal latencies of median 20 ms (15 ms on edges) and p99
// six times that.
func benchGraph(tb testing.TB, n int) *entity.Snapshot {
	snap := &entity.Snapshot{Time: t0}
	r := rand.New(rand.NewPCG(5, 6))
	const sigma = 0.77 // ln(6) / z(0.99)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("service:shop/svc-%04d", i)
		f := map[string]float64{"request.rate": 10, "error.ratio": 0.01, "latency.p50_ms": 20, "latency.p90_ms": 60, "latency.p99_ms": 120,
			"cpu.usage_cores": 0.5, "cpu.request_cores": 1, "cpu.request_utilization": 0.5, "memory.usage_bytes": 1 << 28,
			"cost.per_hour": 0.05, "cost.per_1k_requests": 0.0014, "log.error_rate": 0.1, "critical_path.self_share": 0.4}
		snap.Entities = append(snap.Entities,
			entity.Entity{Ref: entity.Ref{Type: entity.Service, ID: id, Name: fmt.Sprintf("svc-%04d", i)},
				Attributes: map[string]string{"service.name": fmt.Sprintf("svc-%04d", i), "service.namespace": "shop"},
				Features:   f, Features5m: f,
				Baseline: map[string]float64{"request.rate": 10, "error.ratio": 0.01, "latency.p50_ms": 20, "latency.p90_ms": 60, "latency.p99_ms": 120, "log.error_rate": 0.1},
				Latency:  &entity.LatencySketches{Short: sketchOf(tb, lognormal(r, 600, 20, sigma)), Long: sketchOf(tb, lognormal(r, 3000, 20, sigma))}},
			entity.Entity{Ref: entity.Ref{Type: entity.Pod, ID: fmt.Sprintf("pod:shop/svc-%04d-0", i), Name: fmt.Sprintf("svc-%04d-0", i)},
				Features: map[string]float64{"cpu.usage_cores": 0.5, "cpu.request_cores": 1, "cpu.request_utilization": 0.5, "cpu.limit_cores": 2, "cpu.limit_utilization": 0.25}})
		for j := 1; j <= 2; j++ {
			snap.Edges = append(snap.Edges, entity.Edge{Source: id, Target: fmt.Sprintf("service:shop/svc-%04d", (i+j)%n), Type: entity.EdgeHTTP,
				Features: map[string]float64{"request.rate": 5, "error.ratio": 0.01, "latency.p50_ms": 15, "latency.p99_ms": 90, "latency.share": 0.3},
				Latency:  &entity.LatencySketches{Short: sketchOf(tb, lognormal(r, 300, 15, sigma))}})
		}
	}
	snap.Sort()
	return snap
}

// BenchmarkAppendSeries encodes one replica's tick of 1000 services, 1000
// pods and 2000 edges as mergeable series; it reports the samples per
// tick, of them the latency bins, and the tick's size in a remote-write
// exporter's queue (OTLP protobuf, as the collector's persistent queue
// stores it and its bytes sizer counts it).
func BenchmarkAppendSeries(b *testing.B) {
	snap := benchGraph(b, 1000)
	b.ReportAllocs()
	var points, bins int
	var md pmetric.Metrics
	for b.Loop() {
		md = pmetric.NewMetrics()
		mergedgraph.AppendSeries(md, snap, t0, mergedgraph.EvidenceLimits{})
		points = md.DataPointCount()
		bins = countPoints(md, mergedgraph.MetricLatencyBin)
	}
	b.ReportMetric(float64(points), "samples/tick")
	b.ReportMetric(float64(bins), "bins/tick")
	b.ReportMetric(float64((&pmetric.ProtoMarshaler{}).MetricsSize(md)), "queue-bytes/tick")
}

// withEvidence gives every service of snap the most evidence the
// processor's defaults keep: 5 failed and 5 slow exemplars, 5 log samples
// of 120-byte lines.
func withEvidence(snap *entity.Snapshot) {
	for i := range snap.Entities {
		e := &snap.Entities[i]
		if e.Type != entity.Service {
			continue
		}
		for j := range 5 {
			id := fmt.Sprintf("%08d%024d", i, j)
			e.Evidence.Exemplars = append(e.Evidence.Exemplars, entity.Exemplar{TraceID: id, SpanID: id[:16], Time: t0.Add(-time.Duration(j) * time.Second), Reason: "error", Value: 30})
		}
		for j := range 5 {
			id := fmt.Sprintf("%08d%024d", i, j+5)
			e.Evidence.Exemplars = append(e.Evidence.Exemplars, entity.Exemplar{TraceID: id, SpanID: id[:16], Time: t0.Add(-time.Duration(j) * time.Minute), Reason: "slow", Value: 900 - float64(j)})
		}
		for j := range 5 {
			e.Evidence.LogSamples = append(e.Evidence.LogSamples, entity.LogSample{Time: t0, Severity: "ERROR", Template: fmt.Sprintf("template %d: request <*> to <*> failed after <*> ms with status <*>", j),
				Body: fmt.Sprintf("template %d: request 8a7f3c21 to payments.shop.svc.cluster.local:8443 failed after 1234 ms with status 503 (retrying)", j), Count: int64(100 - j)})
		}
	}
}

// BenchmarkAppendSeriesEvidence is BenchmarkAppendSeries without evidence
// (evidence=none, its baseline) and with the most evidence the defaults
// keep on every service (evidence=full): the cost of carrying evidence to
// the ruler (benchstat -col /evidence).
func BenchmarkAppendSeriesEvidence(b *testing.B) {
	plain := benchGraph(b, 1000)
	full := benchGraph(b, 1000)
	withEvidence(full)
	lim := mergedgraph.EvidenceLimits{Exemplars: 5, LogSamples: 5, Stuck: 10}
	for _, c := range []struct {
		name string
		snap *entity.Snapshot
	}{{"none", plain}, {"full", full}} {
		b.Run("evidence="+c.name, func(b *testing.B) {
			b.ReportAllocs()
			var md pmetric.Metrics
			for b.Loop() {
				md = pmetric.NewMetrics()
				mergedgraph.AppendSeries(md, c.snap, t0, lim)
			}
			b.ReportMetric(float64(md.DataPointCount()), "samples/tick")
			b.ReportMetric(float64(countPoints(md, mergedgraph.MetricEvidence)), "evidence/tick")
			b.ReportMetric(float64((&pmetric.ProtoMarshaler{}).MetricsSize(md)), "queue-bytes/tick")
		})
	}
}

// BenchmarkSnapshotEvidence reads the merged snapshot of two replicas'
// ticks of 1000 services, 1000 pods and 2000 edges from VictoriaMetrics,
// without evidence (its baseline) and with the most evidence the defaults
// keep on every service: the cost of the evidence query and its merge.
func BenchmarkSnapshotEvidence(b *testing.B) {
	vm := vmtest.Start(b)
	lim := mergedgraph.EvidenceLimits{Exemplars: 5, LogSamples: 5, Stuck: 10}
	for i, c := range []string{"none", "full"} {
		snap := benchGraph(b, 1000)
		if c == "full" {
			withEvidence(snap)
		}
		at := t0.Add(time.Duration(i) * time.Hour)
		for _, r := range []string{"gateway-a", "gateway-b"} {
			exp := replicaWriter(b, vm, r)
			md := pmetric.NewMetrics()
			mergedgraph.AppendSeries(md, snap, at, lim)
			if err := exp.ConsumeMetrics(context.Background(), md); err != nil {
				b.Fatal(err)
			}
		}
		vm.Flush(b)
		src, err := mergedgraph.New(mergedgraph.Config{URL: vm.URL, Lookback: mergedgraph.DefaultLookback})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("evidence="+c, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := src.Snapshot(context.Background(), at)
				if err != nil {
					b.Fatal(err)
				}
				if e, _ := got.Entity("service:shop/svc-0001"); c == "full" && (e == nil || len(e.Evidence.Exemplars) != 10 || len(e.Evidence.LogSamples) != 5) {
					b.Fatalf("merged evidence %+v", e)
				}
			}
		})
	}
}

func countPoints(md pmetric.Metrics, name string) int {
	n := 0
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if ms.At(k).Name() == name {
					n += ms.At(k).Gauge().DataPoints().Len()
				}
			}
		}
	}
	return n
}

// BenchmarkSnapshot reads the merged snapshot of two replicas' ticks of
// 1000 services, 1000 pods and 2000 edges from VictoriaMetrics: five
// queries (the four merged values and the raw latency bins) and the
// assembly.
func BenchmarkSnapshot(b *testing.B) {
	vm := vmtest.Start(b)
	snap := benchGraph(b, 1000)
	for _, r := range []string{"gateway-a", "gateway-b"} {
		exp := replicaWriter(b, vm, r)
		md := pmetric.NewMetrics()
		mergedgraph.AppendSeries(md, snap, t0, mergedgraph.EvidenceLimits{})
		if err := exp.ConsumeMetrics(context.Background(), md); err != nil {
			b.Fatal(err)
		}
	}
	vm.Flush(b)
	src, err := mergedgraph.New(mergedgraph.Config{URL: vm.URL, Lookback: mergedgraph.DefaultLookback})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := src.Snapshot(context.Background(), t0)
		if err != nil {
			b.Fatal(err)
		}
		if len(got.Entities) != 2000 || len(got.Edges) != 2000 {
			b.Fatalf("%d entities, %d edges", len(got.Entities), len(got.Edges))
		}
	}
}
