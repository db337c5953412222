package store

import (
	"fmt"
	"reflect"
	"sort"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

// graphShape is a synthetic entity graph: nodes services with RED features,
// each with edges to the next edgesPerNode services, all emitted every
// interval over span, as the correlation processor emits them.
type graphShape struct {
	nodes, edgesPerNode int
	interval, span      time.Duration
}

func nodeID(i int) string { return entity.ID(entity.Service, "bench", fmt.Sprintf("svc-%04d", i)) }

// batch returns the derived metrics of one emit at ts.
func (g graphShape) batch(ts time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	pts := pcommon.NewTimestampFromTime(ts)
	for i := 0; i < g.nodes; i++ {
		rm := md.ResourceMetrics().AppendEmpty()
		at := rm.Resource().Attributes()
		at.PutStr(entity.AttrEntityID, nodeID(i))
		at.PutStr(entity.AttrEntityType, string(entity.Service))
		at.PutStr(entity.AttrEntityName, fmt.Sprintf("svc-%04d", i))
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		for j, f := range nodeStats {
			m := ms.AppendEmpty()
			m.SetName(entity.MetricPrefix + f)
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(pts)
			dp.SetDoubleValue(float64(i%97 + j + 1))
		}
		for _, f := range edgeStats {
			m := ms.AppendEmpty()
			m.SetName(entity.EdgeMetricPrefix + f)
			dps := m.SetEmptyGauge().DataPoints()
			for k := 1; k <= g.edgesPerNode; k++ {
				dp := dps.AppendEmpty()
				dp.SetTimestamp(pts)
				dp.SetDoubleValue(float64(k))
				dp.Attributes().PutStr(entity.AttrEdgeSource, nodeID(i))
				dp.Attributes().PutStr(entity.AttrEdgeTarget, nodeID((i+k)%g.nodes))
				dp.Attributes().PutStr(entity.AttrEdgeType, string(entity.EdgeHTTP))
			}
		}
	}
	return md
}

// fill writes the whole span ending at end and returns the samples written.
func (g graphShape) fill(tb testing.TB, s *Store, end time.Time) int {
	n := 0
	for ts := end.Add(-g.span); !ts.After(end); ts = ts.Add(g.interval) {
		n += s.AddMetrics(g.batch(ts))
	}
	if err := s.Flush(); err != nil {
		tb.Fatal(err)
	}
	return n
}

// alertsOn raises a firing critical alert on every 10th node, blaming the
// next node, for the second half of the hour.
func alertsOn(tb testing.TB, s *Store, g graphShape, end time.Time) {
	var as []alert.Alert
	for i := 0; i < g.nodes; i += 10 {
		a := alert.Alert{ID: fmt.Sprintf("g/r@%d", i), Rule: "r", Severity: "critical", State: alert.StateFiring,
			Entity: entity.Ref{Type: entity.Service, ID: nodeID(i)}, Blame: entity.Ref{Type: entity.Service, ID: nodeID(i + 1)},
			ActiveAt: end.Add(-30 * time.Minute), FiredAt: end.Add(-30 * time.Minute), EvaluatedAt: end.Add(-30 * time.Minute)}
		as = append(as, a)
	}
	if _, err := s.AddAlerts(as); err != nil {
		tb.Fatal(err)
	}
}

func largeStore(tb testing.TB, g graphShape, end time.Time) *Store {
	opts := testOptions(tb.TempDir(), func() time.Time { return end })
	opts.MaxEntities, opts.MaxEdges = 10000, 100000
	s, err := Open(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	g.fill(tb, s, end)
	alertsOn(tb, s, g, end)
	return s
}

func TestLargeGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1.4M samples")
	}
	g := graphShape{nodes: 1000, edgesPerNode: 5, interval: time.Minute, span: time.Hour}
	end := t0.Add(2 * time.Hour)
	s := largeStore(t, g, end)
	gr, err := s.Graph(end.Add(-time.Hour), end, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(gr.Nodes) != 1000 || len(gr.Edges) != 5000 {
		t.Fatalf("graph has %d nodes, %d edges; want 1000 and 5000", len(gr.Nodes), len(gr.Edges))
	}
	blamed, critical := 0, 0
	for i, n := range gr.Nodes {
		if n.Blamed {
			blamed++
		}
		if n.Health.Critical > 0.49 && n.Health.Critical < 0.51 {
			critical++
		}
		if n.Stats["request.rate"] != float64(i%97+1) {
			t.Fatalf("node %s has no request.rate: %+v", n.ID, n.Stats)
		}
	}
	if blamed != 100 || critical != 100 {
		t.Errorf("%d blamed and %d half-critical nodes, want 100 each", blamed, critical)
	}
	if !sort.SliceIsSorted(gr.Edges, func(i, j int) bool { return gr.Edges[i].ID < gr.Edges[j].ID }) {
		t.Error("edges not sorted by id")
	}
	if e := gr.Edges[0]; e.Stats["latency.share"] == 0 {
		t.Errorf("edge stats = %+v", e.Stats)
	}

	// The rollup answered (the range is within graph_cache.window); the
	// same graph read from storage must be equal. (This also catches
	// VictoriaMetrics' filter cache hiding series created after Open's
	// rebuild searched for them: filling takes longer than its 1 s
	// background index flush.)
	s.rollup.mu.Lock()
	s.rollup.incompleteUntil = 1 << 62
	s.rollup.mu.Unlock()
	fromStorage, err := s.Graph(end.Add(-time.Hour), end, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gr, fromStorage) {
		for i := range gr.Nodes {
			if !reflect.DeepEqual(gr.Nodes[i], fromStorage.Nodes[i]) {
				t.Fatalf("node from the rollup %+v, from storage %+v", gr.Nodes[i], fromStorage.Nodes[i])
			}
		}
		for i := range gr.Edges {
			if !reflect.DeepEqual(gr.Edges[i], fromStorage.Edges[i]) {
				t.Fatalf("edge from the rollup %+v, from storage %+v", gr.Edges[i], fromStorage.Edges[i])
			}
		}
		t.Fatalf("graph from the rollup and from storage differ")
	}

	// Reopen: the latest state and the rollup are rebuilt from storage.
	dir, opts := s.opts.Dir, s.opts
	s.Close()
	opts.Dir = dir
	s2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n := len(s2.Entities("", "", 0)); n != 1000 {
		t.Errorf("%d entities rebuilt, want 1000", n)
	}
	if n := len(s2.rollup.series); n != 1000*3+5000*4 {
		t.Errorf("%d rollup series rebuilt, want %d", n, 1000*3+5000*4)
	}
}

// TestGraphRollupRebuiltAtOpen: after a restart the rollup is refilled
// from storage, so the first graph already comes from it.
func TestGraphRollupRebuiltAtOpen(t *testing.T) {
	dir := t.TempDir()
	end := t0.Add(2 * time.Hour)
	g := graphShape{nodes: 10, edgesPerNode: 2, interval: time.Minute, span: 30 * time.Minute}
	opts := testOptions(dir, func() time.Time { return end })
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	g.fill(t, s, end)
	before, err := s.Graph(end.Add(-time.Hour), end, "")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n := len(s2.rollup.series); n != 10*3+20*4 {
		t.Fatalf("rollup holds %d series after open, want %d", n, 10*3+20*4)
	}
	after, err := s2.Graph(end.Add(-time.Hour), end, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatal("graph differs after reopening")
	}
}

func TestGraphRollupBounded(t *testing.T) {
	end := t0.Add(2 * time.Hour)
	opts := testOptions(t.TempDir(), func() time.Time { return end })
	opts.GraphMaxSeries = 5
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	graphShape{nodes: 10, edgesPerNode: 2, interval: time.Minute, span: 10 * time.Minute}.fill(t, s, end)
	if st := s.Stats(); st.RollupRefused == 0 || len(s.rollup.series) != 5 {
		t.Fatalf("rollup: %d series, %d refused", len(s.rollup.series), st.RollupRefused)
	}
	// Incomplete rollup: the graph comes from storage and is whole.
	gr, err := s.Graph(end.Add(-time.Hour), end, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(gr.Nodes) != 10 || len(gr.Edges) != 20 || gr.Edges[19].Stats["request.rate"] == 0 {
		t.Fatalf("graph with a full rollup: %d nodes, %d edges", len(gr.Nodes), len(gr.Edges))
	}
}

// BenchmarkGraph queries the graph of 1k nodes / 5k edges over 1 h of
// samples every 15 s (the processor's default emit interval) and reports
// the p50 and p99 latency of the queries it ran: "rollup" is the default
// path for ranges within graph_cache.window, "storage" reads every sample
// from VictoriaMetrics storage (older ranges, or graph_cache off).
func BenchmarkGraph(b *testing.B) {
	g := graphShape{nodes: 1000, edgesPerNode: 5, interval: 15 * time.Second, span: time.Hour}
	end := t0.Add(2 * time.Hour)
	s := largeStore(b, g, end)
	run := func(b *testing.B) {
		b.ReportAllocs()
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			gr, err := s.Graph(end.Add(-time.Hour), end, "")
			lat = append(lat, time.Since(start))
			if err != nil || len(gr.Edges) != 5000 {
				b.Fatalf("graph: %d edges, %v", len(gr.Edges), err)
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	}
	b.Run("rollup", run)
	s.rollup.mu.Lock()
	s.rollup.incompleteUntil = 1 << 62
	s.rollup.mu.Unlock()
	b.Run("storage", run)
}

// BenchmarkIngest writes derived samples (one emit of 1k nodes and 5k
// edges per op) and reports samples per wall-clock second and per CPU
// second of the whole process (VictoriaMetrics' background merges
// included): the per-core rate, which holds on a shared machine too.
func BenchmarkIngest(b *testing.B) {
	g := graphShape{nodes: 1000, edgesPerNode: 5}
	opts := testOptions(b.TempDir(), func() time.Time { return t0 })
	opts.MaxEntities, opts.MaxEdges = 10000, 100000
	s, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batches := make([]pmetric.Metrics, 16)
	for i := range batches {
		batches[i] = g.batch(t0.Add(time.Duration(i) * 15 * time.Second))
	}
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	samples := 0
	for i := 0; i < b.N; i++ {
		md := batches[i%len(batches)]
		// Later ops write later samples of the same series.
		if i >= len(batches) {
			shiftTimestamps(md, 16*15*time.Second)
		}
		samples += s.AddMetrics(md)
	}
	// Make the samples durable as the flush loop would, inside the
	// measurement.
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(samples)/elapsed.Seconds(), "samples/s")
	b.ReportMetric(float64(samples)/cpu.Seconds(), "samples/cpu-s")
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func shiftTimestamps(md pmetric.Metrics, d time.Duration) {
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				for _, dp := range m.Gauge().DataPoints().All() {
					dp.SetTimestamp(pcommon.NewTimestampFromTime(dp.Timestamp().AsTime().Add(d)))
				}
			}
		}
	}
}

// BenchmarkFlush is what the store costs per emit of a small graph (10
// services, 20 edges, as at a few hundred spans per second) with what the
// exporter's flush loop then does: periodic=none is the emit's AddMetrics
// alone, periodic=checkpoint adds the Checkpoint the flush loop runs every
// storage.flush_interval (the alert log's fsync; series reach disk by
// VictoriaMetrics' background flush), periodic=snapshot adds the full Flush
// the loop ran before (Series.Sync's VictoriaMetrics snapshot). Compare with
// benchstat -col /periodic. cpu-ms/op is the process's CPU time per op,
// VictoriaMetrics' background work included.
func BenchmarkFlush(b *testing.B) {
	for _, periodic := range []string{"none", "checkpoint", "snapshot"} {
		b.Run("periodic="+periodic, func(b *testing.B) {
			g := graphShape{nodes: 10, edgesPerNode: 2}
			s, err := Open(testOptions(b.TempDir(), func() time.Time { return t0 }))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			cpu0 := cpuTime()
			i := 0
			for b.Loop() {
				s.AddMetrics(g.batch(t0.Add(time.Duration(i) * 15 * time.Second)))
				switch periodic {
				case "checkpoint":
					err = s.Checkpoint()
				case "snapshot":
					err = s.Flush()
				}
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1e3/float64(i), "cpu-ms/op")
		})
	}
}
