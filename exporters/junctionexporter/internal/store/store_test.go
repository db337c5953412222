package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func testOptions(dir string, now func() time.Time) Options {
	return Options{
		Dir: dir, Retention: 30 * 24 * time.Hour, FlushInterval: 5 * time.Second,
		MaxEntities: 100, MaxEdges: 100, MaxRules: 10, EntityTTL: 24 * time.Hour,
		MaxAlertInstances: 100, MaxAlertHistory: 10, AlertLogMaxBytes: 1 << 20, Now: now,
		GraphWindow: time.Hour, GraphMaxSeries: 100000,
	}
}

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(testOptions(dir, func() time.Time { return t0.Add(time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// entityMetrics builds derived gauges for one entity: feature -> samples at
// t0 + i minutes.
func entityMetrics(md pmetric.Metrics, ref entity.Ref, features map[string][]float64) {
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(entity.AttrEntityID, ref.ID)
	rm.Resource().Attributes().PutStr(entity.AttrEntityType, string(ref.Type))
	rm.Resource().Attributes().PutStr(entity.AttrEntityName, ref.Name)
	sm := rm.ScopeMetrics().AppendEmpty()
	for f, vs := range features {
		m := sm.Metrics().AppendEmpty()
		m.SetName(entity.MetricPrefix + f)
		g := m.SetEmptyGauge()
		for i, v := range vs {
			p := g.DataPoints().AppendEmpty()
			p.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * time.Minute)))
			p.SetDoubleValue(v)
		}
	}
}

func edgeMetrics(md pmetric.Metrics, src, dst string, typ entity.EdgeType, feature string, vs []float64) {
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(entity.EdgeMetricPrefix + feature)
	g := m.SetEmptyGauge()
	for i, v := range vs {
		p := g.DataPoints().AppendEmpty()
		p.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * time.Minute)))
		p.SetDoubleValue(v)
		p.Attributes().PutStr(entity.AttrEdgeSource, src)
		p.Attributes().PutStr(entity.AttrEdgeTarget, dst)
		p.Attributes().PutStr(entity.AttrEdgeType, string(typ))
	}
}

var (
	checkout = entity.Ref{Type: entity.Service, ID: "service:shop/checkout", Name: "checkout"}
	orders   = entity.Ref{Type: entity.Database, ID: "database:postgresql/pg:5432/orders", Name: "orders"}
)

func TestSeriesAndGraph(t *testing.T) {
	s := openTest(t, t.TempDir())
	md := pmetric.NewMetrics()
	entityMetrics(md, checkout, map[string][]float64{"latency.p99_ms": {100, 200, 300}, "request.rate": {10, 20, 30}})
	edgeMetrics(md, checkout.ID, orders.ID, entity.EdgeDB, "request.rate", []float64{4, 6})
	if n := s.AddMetrics(md); n != 8 {
		t.Fatalf("AddMetrics wrote %d samples, want 8", n)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	res, err := s.Series(checkout.ID, "latency.p99_ms", t0.Add(-time.Minute), t0.Add(10*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Points) != 3 || res.Points[2][1] != 300 || res.Entity != checkout {
		t.Fatalf("series = %+v", res)
	}
	if _, err := s.Series("service:nope/none", "latency.p99_ms", t0, t0.Add(time.Hour), time.Minute); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown entity: err = %v, want ErrNotFound", err)
	}
	g, err := s.Graph(t0.Add(-time.Minute), t0.Add(10*time.Minute), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 2 || len(g.Edges) != 1 {
		t.Fatalf("graph = %+v", g)
	}
	if got := g.Nodes[1].Stats["latency.p99_ms"]; g.Nodes[1].ID != checkout.ID || got != 200 {
		t.Fatalf("node %s p99 mean = %v, want 200", g.Nodes[1].ID, got)
	}
	if !g.Nodes[0].Virtual || g.Nodes[0].Type != entity.Database {
		t.Fatalf("edge end without series should be a virtual database node: %+v", g.Nodes[0])
	}
	if got := g.Edges[0].Stats["request.rate"]; got != 5 {
		t.Fatalf("edge request.rate mean = %v, want 5", got)
	}
	ents := s.Entities(entity.Service, "check", 10)
	if len(ents) != 1 || ents[0].Features["latency.p99_ms"] != 300 {
		t.Fatalf("entities = %+v", ents)
	}
}

func TestOtherMetricsNeedAnEntity(t *testing.T) {
	s := openTest(t, t.TempDir())
	md := pmetric.NewMetrics()
	// A raw metric of some pod, passed through without entity identity.
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("k8s.pod.cpu.usage")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(0.5)
	// The same metric stamped with the entity id is kept.
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(entity.AttrEntityID, "pod:shop/checkout-1")
	m = rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("k8s.pod.cpu.usage")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(0.5)
	// A histogram is not stored.
	m = rm.ScopeMetrics().At(0).Metrics().AppendEmpty()
	m.SetName("http.server.request.duration")
	m.SetEmptyHistogram().DataPoints().AppendEmpty()
	if n := s.AddMetrics(md); n != 1 {
		t.Fatalf("wrote %d samples, want 1", n)
	}
	if st := s.Stats(); st.SamplesNoEntity != 1 || st.SamplesSkipped != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestAlertsHistoryAndHealth(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	md := pmetric.NewMetrics()
	entityMetrics(md, checkout, map[string][]float64{"request.rate": {1}})
	s.AddMetrics(md)
	a := alert.Alert{ID: alert.Fingerprint("db", "Pool", checkout.ID), Group: "db", Rule: "Pool", Severity: "critical", Kind: "bottleneck",
		Entity: checkout, Blame: orders, State: alert.StatePending, ActiveAt: t0, EvaluatedAt: t0}
	firing := a
	firing.State, firing.FiredAt, firing.EvaluatedAt = alert.StateFiring, t0.Add(10*time.Minute), t0.Add(10*time.Minute)
	firing.Evidence.Values = map[string]float64{"x": 1}
	again := firing
	again.EvaluatedAt = t0.Add(11 * time.Minute)
	resolved := firing
	resolved.State, resolved.ResolvedAt, resolved.EvaluatedAt = alert.StateResolved, t0.Add(40*time.Minute), t0.Add(40*time.Minute)
	changed, err := s.AddAlerts([]alert.Alert{a, firing, again, resolved})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 3 {
		t.Fatalf("changed = %d records, want 3 (repeat of firing is not a change)", len(changed))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	f := AlertFilter{From: t0, To: t0.Add(time.Hour)}
	if got := s.Alerts(f); len(got) != 1 || got[0].State != alert.StateResolved || got[0].Evidence.Values != nil {
		t.Fatalf("alerts = %+v", got)
	}
	if got := s.Alerts(AlertFilter{From: t0.Add(50 * time.Minute), To: t0.Add(time.Hour)}); len(got) != 0 {
		t.Fatalf("alert resolved before the range listed: %+v", got)
	}
	got, hist, err := s.Alert(a.ID)
	if err != nil || got.Evidence.Values["x"] != 1 || len(hist) != 3 {
		t.Fatalf("alert = %+v, history %v, err %v", got, hist, err)
	}
	tl := s.Timeline(f)
	if len(tl) != 2 || tl[1].State != alert.StateFiring || !tl[1].To.Equal(t0.Add(40*time.Minute)) {
		t.Fatalf("timeline = %+v", tl)
	}
	g, err := s.Graph(t0, t0.Add(time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range g.Nodes {
		if n.ID == checkout.ID && (n.Health.Critical != 0.5 || n.Health.OK != 0.5) {
			t.Fatalf("checkout health = %+v, want half critical", n.Health)
		}
	}
	s.Close()

	// Reopen: alert history and the latest entity state come back.
	s2 := openTest(t, dir)
	if _, hist, err := s2.Alert(a.ID); err != nil || len(hist) != 3 {
		t.Fatalf("after reopen: history %v, err %v", hist, err)
	}
	if _, err := s2.Entity(checkout.ID); err != nil {
		t.Fatalf("entity not rebuilt from storage: %v", err)
	}
}

func TestAlertLogTornTail(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	a := alert.Alert{ID: "g/r@e", Rule: "r", Entity: checkout, State: alert.StateFiring, EvaluatedAt: t0}
	if _, err := s.AddAlerts([]alert.Alert{a}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, err := os.OpenFile(filepath.Join(dir, alertLogName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"alert":{"id":"g/r2@e","sta`)
	f.Close()
	s2 := openTest(t, dir)
	if st := s2.Stats(); st.Alerts.Corrupt != 1 || st.AlertInstances != 1 {
		t.Fatalf("stats after torn tail = %+v", st)
	}
}

func TestUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes anywhere; use a path below a regular file instead.
		dir := filepath.Join(t.TempDir(), "file")
		os.WriteFile(dir, []byte("x"), 0o644)
		_, err := Open(testOptions(filepath.Join(dir, "data"), time.Now))
		if !errors.Is(err, ErrStorage) {
			t.Fatalf("err = %v, want ErrStorage", err)
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	_, err := Open(testOptions(dir, time.Now))
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("err = %v, want ErrStorage", err)
	}
}

func TestNotEnoughSpace(t *testing.T) {
	opts := testOptions(t.TempDir(), time.Now)
	opts.MinFreeBytes = 1 << 62
	if _, err := Open(opts); !errors.Is(err, ErrStorage) {
		t.Fatalf("err = %v, want ErrStorage naming storage.min_free_bytes", err)
	}
}

func TestAlertInstancesBounded(t *testing.T) {
	opts := testOptions(t.TempDir(), func() time.Time { return t0 })
	opts.MaxAlertInstances = 2
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, id := range []string{"a", "b", "c"} {
		s.AddAlerts([]alert.Alert{{ID: id, Rule: "r", Entity: checkout, State: alert.StateFiring, EvaluatedAt: t0.Add(time.Duration(i) * time.Second), FiredAt: t0.Add(time.Duration(i) * time.Second)}})
	}
	if st := s.Stats(); st.AlertInstances != 2 || st.Alerts.Evicted != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if _, _, err := s.Alert("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest instance not evicted")
	}
}

func TestHealthDegradedWhenAlertLogFails(t *testing.T) {
	s := openTest(t, t.TempDir())
	if h := s.Health(); !h.OK || h.FreeBytes == 0 {
		t.Fatalf("fresh store health = %+v", h)
	}
	// The file goes away under the log, as when its disk fails.
	s.alertMu.Lock()
	s.alerts.file.f.Close()
	s.alertMu.Unlock()
	a := alert.Alert{ID: "g/r@e", Rule: "r", Entity: checkout, State: alert.StateFiring, EvaluatedAt: t0}
	if _, err := s.AddAlerts([]alert.Alert{a}); err != nil {
		t.Fatal(err) // buffered: the error shows at the flush
	}
	if err := s.Flush(); !errors.Is(err, ErrStorage) {
		t.Fatalf("Flush = %v, want ErrStorage", err)
	}
	if h := s.Health(); h.OK || !strings.Contains(h.Reason, "alert log") {
		t.Fatalf("health = %+v, want degraded naming the alert log", h)
	}
}

func TestFormatStep(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Second: "15s", time.Minute: "1m", 5 * time.Minute: "5m", time.Hour: "1h",
		90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := FormatStep(d); got != want {
			t.Errorf("FormatStep(%s) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(FormatStep(d)); err != nil || back != d {
			t.Errorf("FormatStep(%s) does not parse back: %v %v", d, back, err)
		}
	}
}

// TestDiskFullTurnsReadOnly: below storage.min_free_bytes, samples are
// counted and not stored, the flush does not touch the series storage (a
// snapshot there would end the process), and health says why.
func TestDiskFullTurnsReadOnly(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	// Reopen the series storage with a free-space limit no disk meets, as
	// if the disk had filled up.
	s.series.Close()
	s.series = OpenSeries(dir, s.opts.Retention, s.opts.FlushInterval, 1<<62)
	defer func() {
		// Restore the process-wide limit once no storage is open: it is
		// read by VictoriaMetrics' background goroutines.
		s.Close()
		OpenSeries(t.TempDir(), s.opts.Retention, s.opts.FlushInterval, 0).Close()
	}()
	if !s.ReadOnly() {
		t.Fatal("storage not read-only below its free-space limit")
	}
	md := pmetric.NewMetrics()
	entityMetrics(md, checkout, map[string][]float64{"request.rate": {1, 2}})
	if n := s.AddMetrics(md); n != 0 {
		t.Fatalf("AddMetrics wrote %d samples to a full disk", n)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.SamplesRejected != 2 || st.SamplesWritten != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if h := s.Health(); h.OK || !strings.Contains(h.Reason, "read-only") {
		t.Fatalf("health = %+v", h)
	}
	if _, err := s.Entity(checkout.ID); err != nil {
		t.Fatalf("latest state not kept while the disk is full: %v", err)
	}
}

// TestAlertLogCompaction: the log is rewritten when it outgrows its bound,
// keeping each instance's latest record and history, and dropping resolved
// instances older than the retention.
func TestAlertLogCompaction(t *testing.T) {
	dir := t.TempDir()
	now := t0.Add(48 * time.Hour)
	opts := testOptions(dir, func() time.Time { return now })
	opts.Retention = 24 * time.Hour
	opts.AlertLogMaxBytes = 4096
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	old := alert.Alert{ID: "old", Rule: "r", Entity: checkout, State: alert.StateResolved, ResolvedAt: t0, EvaluatedAt: t0}
	if _, err := s.AddAlerts([]alert.Alert{old}); err != nil {
		t.Fatal(err)
	}
	states := []alert.State{alert.StatePending, alert.StateFiring, alert.StateResolved}
	for i := 0; i < 60; i++ {
		ts := now.Add(time.Duration(i) * time.Minute)
		a := alert.Alert{ID: "flappy", Rule: "r", Entity: checkout, State: states[i%3], ActiveAt: ts, FiredAt: ts, ResolvedAt: ts, EvaluatedAt: ts}
		if _, err := s.AddAlerts([]alert.Alert{a}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s.alertMu.Lock()
	compactions, size := s.alerts.compactions, s.alerts.size
	s.alertMu.Unlock()
	if compactions < 2 || size > opts.AlertLogMaxBytes {
		t.Fatalf("%d compactions, log %d bytes (bound %d)", compactions, size, opts.AlertLogMaxBytes)
	}
	if _, _, err := s.Alert("old"); !errors.Is(err, ErrNotFound) {
		t.Fatal("resolved instance older than the retention kept")
	}
	s.Close()
	s2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_, hist, err := s2.Alert("flappy")
	if err != nil || len(hist) != opts.MaxAlertHistory || hist[len(hist)-1].State != alert.StateResolved {
		t.Fatalf("history after compaction and reopen = %v, %v (want the last %d changes)", hist, err, opts.MaxAlertHistory)
	}
}

// TestAlertQueriesDoNotWaitForTheLog: while the alert log's file I/O is
// held up (a job in line that has not run, as a slow disk would), new
// alerts are already in the store's memory and queries answer; the
// records reach the file, in order, once the I/O resumes.
func TestAlertQueriesDoNotWaitForTheLog(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	stuck := make(chan struct{})
	s.alertMu.Lock()
	s.alerts.last = stuck // the file's previous job never finishes until closed
	s.alertMu.Unlock()

	added := make(chan error, 1)
	go func() {
		var err error
		for i, id := range []string{"x", "y"} {
			a := alert.Alert{ID: id, Rule: "r", Entity: checkout, State: alert.StateFiring, EvaluatedAt: t0.Add(time.Duration(i) * time.Second), FiredAt: t0}
			if _, e := s.AddAlerts([]alert.Alert{a}); e != nil {
				err = e
			}
		}
		added <- err
	}()
	// Queries see "x" while its write waits behind the stuck I/O.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, err := s.Alert("x"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the alert never became visible while the log's I/O was held up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if h := s.Health(); !h.OK {
		t.Fatalf("health while the log's I/O waits = %+v", h)
	}
	select {
	case err := <-added:
		t.Fatalf("AddAlerts returned (%v) before its write could run", err)
	default:
	}
	close(stuck)
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, alertLogName))
	if err != nil {
		t.Fatal(err)
	}
	ix, iy := bytes.Index(data, []byte(`"id":"x"`)), bytes.Index(data, []byte(`"id":"y"`))
	if ix < 0 || iy < 0 || ix > iy {
		t.Fatalf("alert log after the I/O resumed, x at %d and y at %d:\n%s", ix, iy, data)
	}
}
