package mergedgraph_test

import (
	"context"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/mergedgraph"
)

var gatewayConfig = filepath.Join("..", "..", "deploy", "configs", "gateway.yaml")

// replicaWriter is the gateway's remote write as deployed (the contrib
// exporter durable_remote_write sends through, with its translation and
// labels), for one replica, writing synchronously to vm.
func replicaWriter(t testing.TB, vm metricStore, replica string) exporter.Metrics {
	return vm.ContribWriter(t, prometheusremotewriteexporter.NewFactory(), gatewayConfig, replica)
}

func write(t testing.TB, exp exporter.Metrics, snap *entity.Snapshot, at time.Time) {
	t.Helper()
	md := pmetric.NewMetrics()
	mergedgraph.AppendSeries(md, snap, at, evidenceLimits)
	if err := exp.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
}

var (
	t0       = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	checkout = entity.Ref{Type: entity.Service, ID: "service:shop/checkout", Name: "checkout"}
	pod      = entity.Ref{Type: entity.Pod, ID: "pod:shop/checkout-0", Name: "checkout-0"}
	db       = entity.Ref{Type: entity.Database, ID: "database:postgresql/pg:5432/shop", Name: "shop"}
	gone     = entity.Ref{Type: entity.Service, ID: "service:shop/gone", Name: "gone"}
	orders   = entity.Ref{Type: entity.Service, ID: "service:shop/orders", Name: "orders"}
	splitPod = entity.Ref{Type: entity.Pod, ID: "pod:shop/orders-0", Name: "orders-0"}
)

// TestMergedSnapshot writes two replicas' shares of one graph through the
// deployed remote-write config into VictoriaMetrics and reads the merged
// snapshot back: sums add, weighted features are weighted means (exact
// ratios), maxima keep the largest, an entity one replica alone knows keeps
// its values, and what is older than the lookback is gone.
func TestMergedSnapshot(t *testing.T) {
	stores(t, func(t *testing.T, vm metricStore) {
		a, b := replicaWriter(t, vm, "gateway-a"), replicaWriter(t, vm, "gateway-b")

		// An entity last reported a minute ago: out of the 15s lookback.
		write(t, a, &entity.Snapshot{Entities: []entity.Entity{{Ref: gone, Features: map[string]float64{"request.rate": 1}}}}, t0.Add(-time.Minute))

		snapA := &entity.Snapshot{
			Entities: []entity.Entity{
				{
					Ref: checkout, Attributes: map[string]string{"service.name": "checkout", "service.namespace": "shop"},
					Features: map[string]float64{"request.rate": 10, "error.ratio": 0.1, "latency.p99_ms": 100, "cpu.throttling_ratio": 0.3, "surge.factor": 2,
						"cpu.usage_cores": 1, "cpu.limit_utilization": 0.5, "replicas": 1},
					Features5m: map[string]float64{"request.rate": 8, "latency.p99_ms": 90},
					Baseline:   map[string]float64{"request.rate": 5, "latency.p99_ms": 50},
				},
				{
					Ref: pod, Attributes: map[string]string{"k8s.pod.name": "checkout-0"},
					Features: map[string]float64{"cpu.request_utilization": 0.5, "cpu.request_cores": 2},
					Metrics:  map[string]float64{"container.cpu.throttled_periods": 42},
				},
				{Ref: db, Virtual: true, Attributes: map[string]string{"db.system.name": "postgresql"}, Features: map[string]float64{"request.rate": 4, "latency.p99_ms": 20}},
				// Replica A holds every pod's limits (one kube-state-metrics
				// resource) and one pod's usage: 1 core of 6 cores of limits.
				{Ref: orders, Features: map[string]float64{"cpu.usage_cores": 1, "cpu.limit_utilization": 1.0 / 6}},
				// A pod whose usage and limits arrive as different resources,
				// so on different replicas: A has its usage.
				{Ref: splitPod, Features: map[string]float64{"cpu.usage_cores": 1}},
			},
			Edges: []entity.Edge{{Source: checkout.ID, Target: db.ID, Type: entity.EdgeDB, Features: map[string]float64{"request.rate": 4, "latency.share": 0.5}}},
		}
		snapB := &entity.Snapshot{
			Entities: []entity.Entity{
				{
					Ref: checkout, Attributes: map[string]string{"service.name": "checkout", "service.namespace": "shop"},
					Features: map[string]float64{"request.rate": 30, "error.ratio": 0.2, "latency.p99_ms": 200, "cpu.throttling_ratio": 0.1, "surge.factor": 2,
						"cpu.usage_cores": 3, "cpu.limit_utilization": 0.75, "replicas": 2},
					Features5m: map[string]float64{"request.rate": 24, "latency.p99_ms": 150},
					Baseline:   map[string]float64{"request.rate": 15, "latency.p99_ms": 70},
				},
				{Ref: db, Virtual: true, Attributes: map[string]string{"db.system.name": "postgresql"}, Features: map[string]float64{"request.rate": 12, "latency.p99_ms": 40}},
				// B has the other pods' usage and no limits.
				{Ref: orders, Features: map[string]float64{"cpu.usage_cores": 2}},
				{Ref: splitPod, Features: map[string]float64{"cpu.limit_cores": 4, "cpu.request_cores": 2}},
			},
			Edges: []entity.Edge{{Source: checkout.ID, Target: db.ID, Type: entity.EdgeDB, Features: map[string]float64{"request.rate": 12, "latency.share": 0.7}}},
		}
		write(t, a, snapA, t0)
		write(t, b, snapB, t0)
		vm.Flush(t)

		src, err := mergedgraph.New(mergedgraph.Config{URL: vm.QueryURL(), Lookback: mergedgraph.DefaultLookback})
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.Snapshot(context.Background(), t0)
		if err != nil {
			t.Fatal(err)
		}
		want := &entity.Snapshot{
			Time: t0,
			Entities: []entity.Entity{
				{Ref: db, Virtual: true, Attributes: map[string]string{"db.system.name": "postgresql"}, Features: map[string]float64{"request.rate": 16, "latency.p99_ms": (4*20 + 12*40) / 16.0}},
				{Ref: pod, Attributes: map[string]string{"k8s.pod.name": "checkout-0"},
					Features: map[string]float64{"cpu.request_utilization": 0.5, "cpu.request_cores": 2},
					Metrics:  map[string]float64{"container.cpu.throttled_periods": 42}},
				{
					Ref: checkout, Attributes: map[string]string{"service.name": "checkout", "service.namespace": "shop"},
					// error ratio: (1 + 6) errors/s over 40 requests/s.
					// CPU limit utilization: (1 + 3) cores used of (2 + 4) cores of
					// limits, though the limits are no feature of a service.
					Features: map[string]float64{"request.rate": 40, "error.ratio": 7.0 / 40, "latency.p99_ms": (10*100 + 30*200) / 40.0, "cpu.throttling_ratio": 0.3, "surge.factor": 2,
						"cpu.usage_cores": 4, "cpu.limit_utilization": 4.0 / 6, "replicas": 3},
					Features5m: map[string]float64{"request.rate": 32, "latency.p99_ms": (8*90 + 24*150) / 32.0},
					Baseline:   map[string]float64{"request.rate": 20, "latency.p99_ms": (5*50 + 15*70) / 20.0},
				},
			},
			Edges: []entity.Edge{{Source: checkout.ID, Target: db.ID, Type: entity.EdgeDB, Features: map[string]float64{"request.rate": 16, "latency.share": (4*0.5 + 12*0.7) / 16}}},
		}
		// What one node seeing everything computes: Σ usage / Σ limits.
		want.Entities = append(want.Entities,
			entity.Entity{Ref: orders, Features: map[string]float64{"cpu.usage_cores": 3, "cpu.limit_utilization": 3.0 / 6}},
			entity.Entity{Ref: splitPod, Features: map[string]float64{"cpu.usage_cores": 1, "cpu.limit_cores": 4, "cpu.request_cores": 2,
				"cpu.limit_utilization": 0.25, "cpu.request_utilization": 0.5}})
		want.Sort()
		if diff := diffSnapshots(want, got); diff != "" {
			t.Errorf("merged snapshot differs (want, got):\n%s", diff)
		}
	})
}

// diffSnapshots compares two snapshots' entities, attributes, features and
// edges, floats to 1e-9 relative.
func diffSnapshots(want, got *entity.Snapshot) string {
	var b strings.Builder
	if !want.Time.Equal(got.Time) {
		b.WriteString("time: " + want.Time.String() + " != " + got.Time.String() + "\n")
	}
	ids := func(s *entity.Snapshot) []string {
		var out []string
		for _, e := range s.Entities {
			out = append(out, e.ID)
		}
		return out
	}
	if strings.Join(ids(want), ",") != strings.Join(ids(got), ",") {
		b.WriteString("entities: " + strings.Join(ids(want), ",") + " != " + strings.Join(ids(got), ",") + "\n")
		return b.String()
	}
	for i := range want.Entities {
		w, g := want.Entities[i], got.Entities[i]
		if w.Ref != g.Ref || w.Virtual != g.Virtual {
			b.WriteString(w.ID + ": ref/virtual differ\n")
		}
		diffStrings(&b, w.ID+" attributes", w.Attributes, g.Attributes)
		diffMap(&b, w.ID+" features", w.Features, g.Features)
		diffMap(&b, w.ID+" features_5m", w.Features5m, g.Features5m)
		diffMap(&b, w.ID+" baseline", w.Baseline, g.Baseline)
		diffMap(&b, w.ID+" metrics", w.Metrics, g.Metrics)
	}
	if len(want.Edges) != len(got.Edges) {
		b.WriteString("edge count differs\n")
		return b.String()
	}
	for i := range want.Edges {
		if want.Edges[i].Key() != got.Edges[i].Key() {
			b.WriteString("edge " + want.Edges[i].Key() + " != " + got.Edges[i].Key() + "\n")
			continue
		}
		diffMap(&b, "edge "+want.Edges[i].Key(), want.Edges[i].Features, got.Edges[i].Features)
	}
	return b.String()
}

func diffMap(b *strings.Builder, what string, w, g map[string]float64) {
	keys := map[string]bool{}
	for k := range w {
		keys[k] = true
	}
	for k := range g {
		keys[k] = true
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		wv, wok := w[k]
		gv, gok := g[k]
		if wok != gok || math.Abs(wv-gv) > 1e-9*math.Max(1, math.Abs(wv)) {
			b.WriteString(what + "[" + k + "]: ")
			b.WriteString(fmtVal(wv, wok) + " != " + fmtVal(gv, gok) + "\n")
		}
	}
}

func diffStrings(b *strings.Builder, what string, w, g map[string]string) {
	for k, v := range w {
		if g[k] != v {
			b.WriteString(what + "[" + k + "]: " + v + " != " + g[k] + "\n")
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			b.WriteString(what + "[" + k + "]: absent != " + g[k] + "\n")
		}
	}
}

func fmtVal(v float64, ok bool) string {
	if !ok {
		return "absent"
	}
	return strings.TrimRight(strings.TrimRight(strconvF(v), "0"), ".")
}
