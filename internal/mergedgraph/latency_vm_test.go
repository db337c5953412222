package mergedgraph_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/mergedgraph"
)

// sketchOf is a 1 % sketch of the latencies, as the processor's windows
// keep them, copied as the processor's graph copies it.
func sketchOf(t testing.TB, ms ...[]float64) *entity.LatencySketch {
	t.Helper()
	m, err := mapping.NewCubicallyInterpolatedMapping(0.01)
	if err != nil {
		t.Fatal(err)
	}
	s := ddsketch.NewDDSketch(m, store.NewCollapsingLowestDenseStore(1024), store.NewCollapsingLowestDenseStore(1024))
	for _, vs := range ms {
		for _, v := range vs {
			if err := s.Add(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := &entity.LatencySketch{RelativeAccuracy: 0.01, Zero: s.GetZeroCount()}
	s.GetPositiveValueStore().ForEach(func(i int, c float64) bool {
		out.Bins = append(out.Bins, entity.LatencyBin{Index: int32(i), Count: c})
		return false
	})
	return out
}

func lognormal(r *rand.Rand, n int, median, sigma float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = median * math.Exp(r.NormFloat64()*sigma)
	}
	return out
}

// TestMergedLatencyQuantiles writes two replicas' latency sketches through
// the deployed remote-write config and checks that the merged snapshot's
// quantiles are those of their bins added in process (Quantiles), close to
// those of one replica that saw every request (written at another time to
// the same store): from the summed bins, not the rate-weighted mean of the
// replicas' quantiles, which is off by 10× here. A bin of an earlier tick
// within the lookback does not count, even at another bin width, and a
// replica without sketches (an older release) does not spoil the others'.
func TestMergedLatencyQuantiles(t *testing.T) {
	stores(t, func(t *testing.T, vm metricStore) {
		a, b, solo := replicaWriter(t, vm, "gateway-a"), replicaWriter(t, vm, "gateway-b"), replicaWriter(t, vm, "gateway-solo")
		r := rand.New(rand.NewPCG(3, 4))
		// checkout: 90 % fast requests on A, the 10 % slow ones on B.
		fast1m, slow1m := lognormal(r, 900, 12, 0.3), lognormal(r, 100, 800, 0.2)
		fast5m, slow5m := append(lognormal(r, 3600, 12, 0.3), fast1m...), append(lognormal(r, 400, 800, 0.2), slow1m...)
		// The edge: an even split of one population.
		edgeA, edgeB := lognormal(r, 500, 30, 0.7), lognormal(r, 500, 30, 0.7)
		ordersMs := lognormal(r, 300, 50, 0.5)

		svc := func(short, long *entity.LatencySketch, rate, p99 float64) entity.Entity {
			return entity.Entity{Ref: checkout,
				Features:   map[string]float64{"request.rate": rate, "latency.p50_ms": p99 / 3, "latency.p99_ms": p99},
				Features5m: map[string]float64{"request.rate": rate, "latency.p99_ms": p99},
				Baseline:   map[string]float64{"request.rate": rate, "latency.p99_ms": p99},
				Latency:    &entity.LatencySketches{Short: short, Long: long}}
		}
		edge := func(s *entity.LatencySketch) entity.Edge {
			return entity.Edge{Source: checkout.ID, Target: db.ID, Type: entity.EdgeDB,
				Features: map[string]float64{"request.rate": 8, "latency.p50_ms": 30, "latency.p99_ms": 150},
				Latency:  &entity.LatencySketches{Short: s}}
		}
		withOrders := func(snap *entity.Snapshot, e entity.Entity) *entity.Snapshot {
			snap.Entities = append(snap.Entities, e)
			snap.Sort()
			return snap
		}
		ordersSketch := entity.Entity{Ref: orders, Features: map[string]float64{"request.rate": 5, "latency.p99_ms": 100},
			Latency: &entity.LatencySketches{Short: sketchOf(t, ordersMs)}}
		// orders on B: a replica that emits no sketches, with an absurd p99.
		ordersOld := entity.Entity{Ref: orders, Features: map[string]float64{"request.rate": 5, "latency.p99_ms": 5000}}

		// A's previous tick, within the lookback: slow bins that its latest
		// tick no longer has, at a wider width than its latest bins of the
		// edge.
		stale := append(lognormal(r, 300, 5000, 0.1), lognormal(r, 300, 1, 2)...)
		write(t, a, &entity.Snapshot{Entities: []entity.Entity{svc(sketchOf(t, stale), sketchOf(t, stale), 5, 5000)},
			Edges: []entity.Edge{edge(sketchOf(t, stale))}}, t0.Add(-10*time.Second))
		write(t, a, withOrders(&entity.Snapshot{Entities: []entity.Entity{svc(sketchOf(t, fast1m), sketchOf(t, fast5m), 15, 18)},
			Edges: []entity.Edge{edge(sketchOf(t, edgeA))}}, ordersSketch), t0)
		write(t, b, withOrders(&entity.Snapshot{Entities: []entity.Entity{svc(sketchOf(t, slow1m), sketchOf(t, slow5m), 5/3.0, 1000)},
			Edges: []entity.Edge{edge(sketchOf(t, edgeB))}}, ordersOld), t0)
		t1 := t0.Add(time.Hour)
		write(t, solo, withOrders(&entity.Snapshot{Entities: []entity.Entity{svc(sketchOf(t, fast1m, slow1m), sketchOf(t, fast5m, slow5m), 50/3.0, 0)},
			Edges: []entity.Edge{edge(sketchOf(t, edgeA, edgeB))}}, ordersSketch), t1)
		vm.Flush(t)

		src, err := mergedgraph.New(mergedgraph.Config{URL: vm.QueryURL(), Lookback: mergedgraph.DefaultLookback})
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.Snapshot(context.Background(), t0)
		if err != nil {
			t.Fatal(err)
		}
		want, err := src.Snapshot(context.Background(), t1)
		if err != nil {
			t.Fatal(err)
		}
		// What the source must read: the replicas' bins added in process.
		sk := func(ms ...[]float64) *entity.LatencySketch { return sketchOf(t, ms...) }
		merged := func(s ...*entity.LatencySketch) map[string]float64 {
			q, ok := mergedgraph.Quantiles(s...)
			if !ok {
				t.Fatal("no quantiles")
			}
			return map[string]float64{"latency.p50_ms": q[0], "latency.p90_ms": q[1], "latency.p99_ms": q[2]}
		}
		edgeQ := merged(sk(edgeA), sk(edgeB))
		delete(edgeQ, "latency.p90_ms")
		inProcess := &entity.Snapshot{Time: t0,
			Entities: []entity.Entity{
				{Ref: checkout, Features: merged(sk(fast1m), sk(slow1m)), Features5m: merged(sk(fast5m), sk(slow5m))},
				{Ref: orders, Features: merged(sk(ordersMs)), Features5m: map[string]float64{}},
			},
			Edges: []entity.Edge{{Source: checkout.ID, Target: db.ID, Type: entity.EdgeDB, Features: edgeQ}},
		}
		inProcess.Sort()
		quantiles := func(s *entity.Snapshot) *entity.Snapshot {
			out := &entity.Snapshot{Time: t0}
			keep := func(m map[string]float64) map[string]float64 {
				q := map[string]float64{}
				for _, f := range []string{"latency.p50_ms", "latency.p90_ms", "latency.p99_ms"} {
					if v, ok := m[f]; ok {
						q[f] = v
					}
				}
				return q
			}
			for _, e := range s.Entities {
				out.Entities = append(out.Entities, entity.Entity{Ref: e.Ref, Features: keep(e.Features), Features5m: keep(e.Features5m)})
			}
			for _, e := range s.Edges {
				out.Edges = append(out.Edges, entity.Edge{Source: e.Source, Target: e.Target, Type: e.Type, Features: keep(e.Features)})
			}
			return out
		}
		if diff := diffSnapshots(inProcess, quantiles(got)); diff != "" {
			t.Errorf("quantiles of two replicas' bins through the store differ from their bins added in process (want, got):\n%s", diff)
		}
		// One replica of all requests emits wider bins (its latencies span
		// more): its quantiles agree within the widths' accuracy, 8 % each.
		all, one := quantiles(got), quantiles(want)
		for i, e := range all.Entities {
			for _, w := range []struct{ got, want map[string]float64 }{{e.Features, one.Entities[i].Features}, {e.Features5m, one.Entities[i].Features5m}} {
				for f, v := range w.got {
					if d := math.Abs(v-w.want[f]) / w.want[f]; d > 0.17 {
						t.Errorf("%s %s = %.2f from two replicas, %.2f from one", e.ID, f, v, w.want[f])
					}
				}
			}
		}
		c, _ := got.Entity(checkout.ID)
		for _, w := range []struct {
			name string
			m    map[string]float64
		}{{"1m", c.Features}, {"5m", c.Features5m}} {
			// The rate-weighted mean of the replicas' p50 (12 ms and 800 ms,
			// 9:1 by rate) is ~90 ms; the true p50 is ~12 ms.
			if p50 := w.m["latency.p50_ms"]; p50 < 10 || p50 > 15 {
				t.Errorf("checkout %s p50 = %.1f ms, want ~12 (the fast 90 %%)", w.name, p50)
			}
			if p99 := w.m["latency.p99_ms"]; p99 < 500 || p99 > 1200 {
				t.Errorf("checkout %s p99 = %.1f ms, want ~800 (the slow 10 %%), not the stale 5000", w.name, p99)
			}
		}
		if b, want := c.Baseline["latency.p99_ms"], (15*18+5/3.0*1000)/(15+5/3.0); math.Abs(b-want) > 1e-9 {
			t.Errorf("baseline p99 = %v, want the rate-weighted mean %v", b, want)
		}
		if o, _ := got.Entity(orders.ID); o.Features["latency.p99_ms"] > 200 {
			t.Errorf("orders p99 = %.1f: the older replica's weighted value leaked into the bins' quantile", o.Features["latency.p99_ms"])
		}
	})
}
