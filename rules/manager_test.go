package rules

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func svc(name string, features map[string]float64) entity.Entity {
	return entity.Entity{Ref: entity.Ref{Type: entity.Service, ID: "service:shop/" + name, Name: name}, Features: features}
}

func snapOf(es ...entity.Entity) *entity.Snapshot {
	s := &entity.Snapshot{Entities: es}
	s.Sort()
	return s
}

func writeRules(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newTestManager(t *testing.T, cfg Config) (*Manager, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	m, err := NewManager(cfg, Settings{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return m, reader
}

func states(alerts []alert.Alert) map[string]alert.State {
	out := map[string]alert.State{}
	for _, a := range alerts {
		out[a.Rule+"@"+a.Entity.Name] = a.State
	}
	return out
}

// TestLifecycle drives one rule with for and keep_firing_for through
// pending, firing, kept firing and resolved.
func TestLifecycle(t *testing.T) {
	m, _ := newTestManager(t, Config{Files: []string{"testdata/good.yaml"}, CostLimit: DefaultCostLimit})
	slow := func(p99 float64) *entity.Snapshot {
		return snapOf(svc("checkout", map[string]float64{"latency.p99_ms": p99}), svc("catalog", map[string]float64{"latency.p99_ms": 10}))
	}
	steps := []struct {
		at   time.Duration
		snap *entity.Snapshot
		want map[string]alert.State
	}{
		{0, slow(900), map[string]alert.State{"Slow@checkout": alert.StatePending}},
		{10 * time.Second, slow(900), map[string]alert.State{"Slow@checkout": alert.StatePending}},
		{30 * time.Second, slow(900), map[string]alert.State{"Slow@checkout": alert.StateFiring}},
		// The condition ends: keep_firing_for 20s holds it firing.
		{40 * time.Second, slow(100), map[string]alert.State{"Slow@checkout": alert.StateFiring}},
		{50 * time.Second, slow(100), map[string]alert.State{"Slow@checkout": alert.StateFiring}},
		{60 * time.Second, slow(100), map[string]alert.State{"Slow@checkout": alert.StateResolved}},
		{70 * time.Second, slow(100), map[string]alert.State{}},
		// A pending instance whose condition ends is resolved at once.
		{80 * time.Second, slow(900), map[string]alert.State{"Slow@checkout": alert.StatePending}},
		{90 * time.Second, slow(100), map[string]alert.State{"Slow@checkout": alert.StateResolved}},
	}
	for _, s := range steps {
		alerts, _ := m.Eval(context.Background(), s.snap, t0.Add(s.at))
		got := states(alerts)
		if len(got) != len(s.want) {
			t.Fatalf("at %v: got %v, want %v", s.at, got, s.want)
		}
		for k, v := range s.want {
			if got[k] != v {
				t.Fatalf("at %v: got %v, want %v", s.at, got, s.want)
			}
		}
	}
}

func TestAlertContents(t *testing.T) {
	m, _ := newTestManager(t, Config{Files: []string{"testdata/good.yaml"}})
	e := svc("checkout", map[string]float64{"latency.p99_ms": 912.3456, "error.ratio": 0.5})
	e.Evidence.Exemplars = []entity.Exemplar{{TraceID: "abc", Reason: "slow", Value: 950}}
	alerts, status := m.Eval(context.Background(), snapOf(e), t0)
	if len(alerts) != 2 || len(status) != 2 {
		t.Fatalf("alerts %v status %v", alerts, status)
	}
	// Alerts come in group and rule order: Slow, then Errors.
	s, a := alerts[0], alerts[1]
	if a.ID != alert.Fingerprint("good", "Errors", "service:shop/checkout") || a.State != alert.StateFiring || a.Severity != "critical" {
		t.Errorf("Errors alert: %+v", a)
	}
	if s.Annotations["summary"] != "checkout p99 912.346ms" || s.Labels["team"] != "shop" || s.Blame.ID != e.ID {
		t.Errorf("Slow alert: %+v", s)
	}
	if s.Evidence.Values["service:shop/checkout latency.p99_ms"] != 912.3456 || len(s.Evidence.Exemplars) != 1 {
		t.Errorf("evidence: %+v", s.Evidence)
	}
	for _, st := range status {
		if st.Health != alert.HealthOK || st.File != "testdata/good.yaml" {
			t.Errorf("status %+v", st)
		}
	}
}

// TestEvidenceUnavailableKeepsEvidence: on a snapshot whose source could
// not read the evidence (the merged graph's evidence query failed), an
// alert keeps the exemplars and log samples it had and takes the
// snapshot's values; on a snapshot that has evidence, the alert's is the
// snapshot's, empty included.
func TestEvidenceUnavailableKeepsEvidence(t *testing.T) {
	m, _ := newTestManager(t, Config{Files: []string{"testdata/good.yaml"}})
	e := svc("checkout", map[string]float64{"latency.p99_ms": 900, "error.ratio": 0.5})
	e.Evidence.Exemplars = []entity.Exemplar{{TraceID: "abc", Reason: "slow", Value: 950}}
	e.Evidence.LogSamples = []entity.LogSample{{Template: "timeout <*>", Body: "timeout 3", Count: 4}}
	m.Eval(context.Background(), snapOf(e), t0)

	bare := svc("checkout", map[string]float64{"latency.p99_ms": 800, "error.ratio": 0.5})
	unread := snapOf(bare)
	unread.EvidenceUnavailable = true
	alerts, _ := m.Eval(context.Background(), unread, t0.Add(10*time.Second))
	s := alerts[0]
	if len(s.Evidence.Exemplars) != 1 || s.Evidence.Exemplars[0].TraceID != "abc" || len(s.Evidence.LogSamples) != 1 || s.Evidence.LogSamples[0].Body != "timeout 3" {
		t.Errorf("evidence not kept: %+v", s.Evidence)
	}
	if v := s.Evidence.Values["service:shop/checkout latency.p99_ms"]; v != 800 {
		t.Errorf("value %v, want the snapshot's 800", v)
	}

	alerts, _ = m.Eval(context.Background(), snapOf(bare), t0.Add(20*time.Second))
	if s := alerts[0]; len(s.Evidence.Exemplars) != 0 || len(s.Evidence.LogSamples) != 0 {
		t.Errorf("evidence of a snapshot without any: %+v", s.Evidence)
	}
}

// TestNoData: a missing feature makes the rule not fire for that entity
// and keeps it healthy; has() sees the absence.
func TestNoData(t *testing.T) {
	dir := t.TempDir()
	p := writeRules(t, dir, `groups:
  - name: g
    rules:
      - alert: NoP99
        kind: bottleneck
        for_each: service
        expr: "!has(service.latency.p99_ms)"
      - alert: Slow
        kind: bottleneck
        for_each: service
        expr: service.latency.p99_ms > 100.0 || service.error.ratio > 0.5
      - alert: Metric
        kind: bottleneck
        for_each: service
        expr: service.metrics['http.server.active_requests'] > 10.0
`)
	m, _ := newTestManager(t, Config{Files: []string{p}})
	alerts, status := m.Eval(context.Background(), snapOf(
		svc("a", nil),
		svc("b", map[string]float64{"error.ratio": 0.9}),
		svc("c", map[string]float64{"latency.p99_ms": 10}),
	), t0)
	got := states(alerts)
	want := map[string]alert.State{"NoP99@a": alert.StateFiring, "NoP99@b": alert.StateFiring, "Slow@b": alert.StateFiring}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for k := range want {
		if got[k] != want[k] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
	for _, s := range status {
		if s.Health != alert.HealthOK {
			t.Errorf("%s unhealthy: %s", s.Rule, s.LastError)
		}
	}
}

// TestReload: a broken edit keeps the old rules (and their firing alerts)
// running and reports why; a fix takes effect and keeps the state of
// unchanged rules.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	const good = `groups:
  - name: g
    rules:
      - alert: Errors
        kind: bottleneck
        for_each: service
        expr: service.error.ratio > THRESHOLD
        for: 30s
`
	p := writeRules(t, dir, strings.Replace(good, "THRESHOLD", "0.5", 1))
	m, reader := newTestManager(t, Config{Files: []string{p}})
	snap := snapOf(svc("a", map[string]float64{"error.ratio": 0.3}), svc("b", map[string]float64{"error.ratio": 0.9}))
	ctx := context.Background()
	m.Eval(ctx, snap, t0)
	alerts, _ := m.Eval(ctx, snap, t0.Add(30*time.Second))
	if got := states(alerts); len(got) != 1 || got["Errors@b"] != alert.StateFiring {
		t.Fatalf("before reload: %v", got)
	}

	writeRules(t, dir, strings.Replace(good, "service.error.ratio > THRESHOLD", "service.eror.ratio > 0.1", 1))
	err := m.Reload()
	if err == nil || !strings.Contains(err.Error(), "rules.yaml:7:22: expr: undefined field 'eror'") {
		t.Fatalf("broken reload error: %v", err)
	}
	alerts, _ = m.Eval(ctx, snap, t0.Add(45*time.Second))
	if got := states(alerts); len(got) != 1 || got["Errors@b"] != alert.StateFiring {
		t.Fatalf("after broken reload the old rule must keep firing: %v", got)
	}

	writeRules(t, dir, strings.Replace(good, "THRESHOLD", "0.2", 1))
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	alerts, _ = m.Eval(ctx, snap, t0.Add(60*time.Second))
	got := states(alerts)
	// b kept its firing state across the reload; a is new and pending.
	if len(got) != 2 || got["Errors@b"] != alert.StateFiring || got["Errors@a"] != alert.StatePending {
		t.Fatalf("after the fix: %v", got)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if v := counterValue(rm, metricReloadFailures); v != 1 {
		t.Errorf("%s = %d, want 1", metricReloadFailures, v)
	}
	if v := counterValue(rm, metricReloads); v != 1 {
		t.Errorf("%s = %d, want 1", metricReloads, v)
	}
}

func counterValue(rm metricdata.ResourceMetrics, name string) int64 {
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					total += dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					total += dp.Value
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					total += int64(dp.Count)
				}
			}
		}
	}
	return total
}

// TestCostLimit: a runaway expression is stopped by the cost limit, its
// rule is marked unhealthy, and the other rules keep running.
func TestCostLimit(t *testing.T) {
	dir := t.TempDir()
	p := writeRules(t, dir, `groups:
  - name: g
    rules:
      - alert: Runaway
        kind: bottleneck
        for_each: service
        expr: >-
          size(service.upstream) > 0 && service.upstream.all(a, service.upstream.all(b,
            service.upstream.all(c, a.client.name + b.client.name != c.client.name)))
      - alert: Errors
        kind: bottleneck
        for_each: service
        expr: service.error.ratio > 0.5
`)
	m, reader := newTestManager(t, Config{Files: []string{p}, CostLimit: DefaultCostLimit})
	snap := &entity.Snapshot{}
	hub := svc("hub", map[string]float64{"error.ratio": 0.9})
	snap.Entities = append(snap.Entities, hub)
	for i := range 300 {
		c := svc("client-"+string(rune('a'+i%26))+strings.Repeat("x", i/26), nil)
		snap.Entities = append(snap.Entities, c)
		snap.Edges = append(snap.Edges, entity.Edge{Source: c.ID, Target: hub.ID, Type: entity.EdgeHTTP})
	}
	snap.Sort()
	alerts, status := m.Eval(context.Background(), snap, t0)
	if got := states(alerts); len(got) != 1 || got["Errors@hub"] != alert.StateFiring {
		t.Fatalf("the healthy rule must keep running: %v", got)
	}
	byRule := map[string]alert.RuleStatus{}
	for _, s := range status {
		byRule[s.Rule] = s
	}
	if s := byRule["Runaway"]; s.Health != alert.HealthErr || !strings.Contains(s.LastError, "cost limit exceeded") {
		t.Errorf("Runaway status: %+v", s)
	}
	if s := byRule["Errors"]; s.Health != alert.HealthOK {
		t.Errorf("Errors status: %+v", s)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if v := counterValue(rm, metricEvaluationFailures); v != 1 {
		t.Errorf("%s = %d, want 1", metricEvaluationFailures, v)
	}
	if v := counterValue(rm, metricEvaluationDuration); v != 2 {
		t.Errorf("%s count = %d, want 2", metricEvaluationDuration, v)
	}
	if v := counterValue(rm, metricRuleHealth); v != 1 {
		t.Errorf("%s sum = %d, want 1 (one healthy rule)", metricRuleHealth, v)
	}
}

// TestStateSurvivesRestart: a firing alert is restored from the state file
// by a new manager and keeps its times.
func TestStateSurvivesRestart(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	cfg := Config{Files: []string{"testdata/good.yaml"}, StateFile: stateFile}
	m, _ := newTestManager(t, cfg)
	snap := snapOf(svc("checkout", map[string]float64{"latency.p99_ms": 900}))
	ctx := context.Background()
	m.Eval(ctx, snap, t0)
	m.Eval(ctx, snap, t0.Add(30*time.Second))
	if err := m.SaveState(); err != nil {
		t.Fatal(err)
	}
	m2, _ := newTestManager(t, cfg)
	alerts, _ := m2.Eval(ctx, snap, t0.Add(40*time.Second))
	if len(alerts) != 1 || alerts[0].State != alert.StateFiring || !alerts[0].ActiveAt.Equal(t0) || !alerts[0].FiredAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("restored: %+v", alerts)
	}
	if err := os.WriteFile(stateFile, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A corrupt state file is not fatal.
	m3, _ := newTestManager(t, cfg)
	if alerts, _ := m3.Eval(ctx, snap, t0); len(alerts) != 1 || alerts[0].State != alert.StatePending {
		t.Fatalf("after corrupt state: %+v", alerts)
	}
}

type fakeSource struct {
	mu    sync.Mutex
	snap  *entity.Snapshot
	calls []time.Time
}

func (f *fakeSource) Snapshot(_ context.Context, at time.Time) (*entity.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, at)
	return f.snap, nil
}

// TestRun evaluates groups on their intervals with a fake clock and writes
// the state file.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		stateFile := filepath.Join(dir, "state.json")
		m, err := NewManager(Config{Files: []string{"testdata/good.yaml"}, StateFile: stateFile}, Settings{NoWatch: true})
		if err != nil {
			t.Fatal(err)
		}
		src := &fakeSource{snap: snapOf(svc("checkout", map[string]float64{"latency.p99_ms": 900}))}
		var mu sync.Mutex
		var got [][]alert.Alert
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			done <- m.Run(ctx, src, func(_ context.Context, _ time.Time, alerts []alert.Alert, status []alert.RuleStatus) {
				mu.Lock()
				got = append(got, alerts)
				mu.Unlock()
			})
		}()
		time.Sleep(35 * time.Second) // fake time: evaluations at 0, 10, 20, 30 s
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 4 {
			t.Fatalf("%d evaluations, want 4", len(got))
		}
		if s := states(got[3]); s["Slow@checkout"] != alert.StateFiring {
			t.Fatalf("last evaluation: %v", s)
		}
		data, err := os.ReadFile(stateFile)
		if err != nil || !strings.Contains(string(data), `"state": "firing"`) {
			t.Fatalf("state file: %v %s", err, data)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"ok":       {Config{Files: []string{"rules/*.yaml"}}, ""},
		"no files": {Config{}, "files: at least one"},
		"pattern":  {Config{Files: []string{"[a"}}, "files[0]: pattern"},
		"reload":   {Config{Files: []string{"x"}, ReloadInterval: -time.Second}, "reload_interval"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestEvalDue evaluates each group only when its interval has passed.
func TestEvalDue(t *testing.T) {
	dir := t.TempDir()
	p := writeRules(t, dir, `groups:
  - name: fast
    interval: 10s
    rules:
      - alert: A
        kind: k
        for_each: service
        expr: "true"
  - name: slow
    interval: 30s
    rules:
      - alert: B
        kind: k
        for_each: service
        expr: "true"
`)
	m, _ := newTestManager(t, Config{Files: []string{p}})
	snap := snapOf(svc("a", nil))
	evaluated := func(at time.Duration) []string {
		_, status := m.EvalDue(context.Background(), snap, t0.Add(at))
		var out []string
		for _, s := range status {
			if s.LastEvaluation.Equal(t0.Add(at)) {
				out = append(out, s.Rule)
			}
		}
		return out
	}
	for _, step := range []struct {
		at   time.Duration
		want string
	}{
		{0, "A,B"}, {10 * time.Second, "A"}, {15 * time.Second, ""}, {20 * time.Second, "A"}, {30 * time.Second, "A,B"},
		// Ticks a little early (ticker jitter) still evaluate: a tenth of
		// the interval, at most 1s, of slack.
		{40*time.Second - 50*time.Millisecond, "A"},
		{60*time.Second - 500*time.Millisecond, "A,B"},
		// Too early is not due.
		{65 * time.Second, ""},
	} {
		if got := strings.Join(evaluated(step.at), ","); got != step.want {
			t.Errorf("at %v evaluated %q, want %q", step.at, got, step.want)
		}
	}
}

// TestRunReloadsOnInterval: Run picks up a changed rule file at the next
// reload tick and keeps the old rules when the change is broken.
func TestRunReloadsOnInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		rule := func(name string) string {
			return "groups:\n  - name: g\n    interval: 10s\n    rules:\n      - alert: " + name + "\n        kind: k\n        for_each: service\n        expr: service.error.ratio > 0.5\n"
		}
		p := writeRules(t, dir, rule("Old"))
		m, err := NewManager(Config{Files: []string{p}, ReloadInterval: 61 * time.Second}, Settings{NoWatch: true})
		if err != nil {
			t.Fatal(err)
		}
		src := &fakeSource{snap: snapOf(svc("a", map[string]float64{"error.ratio": 0.9}))}
		var mu sync.Mutex
		var last []alert.Alert
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			done <- m.Run(ctx, src, func(_ context.Context, _ time.Time, alerts []alert.Alert, _ []alert.RuleStatus) {
				mu.Lock()
				last = alerts
				mu.Unlock()
			})
		}()
		firing := func() string {
			mu.Lock()
			defer mu.Unlock()
			var names []string
			for _, a := range last {
				names = append(names, a.Rule+":"+string(a.State))
			}
			return strings.Join(names, ",")
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := firing(); got != "Old:firing" {
			t.Fatalf("before: %s", got)
		}
		writeRules(t, dir, strings.Replace(rule("New"), "error.ratio", "eror.ratio", 1))
		// Reload ticks at 61 s and 122 s, evaluations every 10 s: never at
		// the same instant, so the order is deterministic.
		time.Sleep(61 * time.Second) // t=66s: the broken edit was rejected at 61s

		synctest.Wait()
		if got := firing(); got != "Old:firing" {
			t.Fatalf("after a broken edit: %s", got)
		}
		writeRules(t, dir, rule("New"))
		time.Sleep(65 * time.Second) // t=131s: reloaded at 122s, evaluated at 130s
		synctest.Wait()
		if got := firing(); got != "Old:resolved,New:firing" {
			t.Fatalf("after the fix: %s", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestActiveBound: a rule keeps at most maxActivePerRule instances and
// counts the new instances it drops.
func TestActiveBound(t *testing.T) {
	maxActivePerRule = 2
	defer func() { maxActivePerRule = MaxActivePerRule }()
	m, reader := newTestManager(t, Config{Files: []string{"testdata/good.yaml"}})
	snap := snapOf(
		svc("a", map[string]float64{"error.ratio": 1}),
		svc("b", map[string]float64{"error.ratio": 1}),
		svc("c", map[string]float64{"error.ratio": 1}),
	)
	alerts, _ := m.Eval(context.Background(), snap, t0)
	if got := states(alerts); len(got) != 2 || got["Errors@a"] == "" || got["Errors@b"] == "" {
		t.Fatalf("got %v", got)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if v := counterValue(rm, metricAlertsDropped); v != 1 {
		t.Errorf("%s = %d, want 1", metricAlertsDropped, v)
	}
}

func TestNoRuleFiles(t *testing.T) {
	if _, err := NewManager(Config{Files: []string{t.TempDir()}}, Settings{}); err == nil || !strings.Contains(err.Error(), "no rule files") {
		t.Fatalf("got %v", err)
	}
}

// TestRuntimeErrors: a blame that fails blames the entity itself and marks
// the rule unhealthy; an expression that is not a bool at run time is an
// error, not a silent false.
func TestRuntimeErrors(t *testing.T) {
	dir := t.TempDir()
	p := writeRules(t, dir, `groups:
  - name: g
    rules:
      - alert: BadBlame
        kind: k
        for_each: service
        expr: service.error.ratio > 0.5
        blame: service.downstream[0].server
      - alert: NotBool
        kind: k
        for_each: service
        expr: dyn(service.error.ratio)
`)
	m, _ := newTestManager(t, Config{Files: []string{p}})
	alerts, status := m.Eval(context.Background(), snapOf(svc("a", map[string]float64{"error.ratio": 0.9})), t0)
	if len(alerts) != 1 || alerts[0].Rule != "BadBlame" || alerts[0].Blame.ID != "service:shop/a" {
		t.Fatalf("alerts %+v", alerts)
	}
	if status[0].Health != alert.HealthErr || !strings.Contains(status[0].LastError, "service:shop/a: blame:") {
		t.Errorf("BadBlame status %+v", status[0])
	}
	if status[1].Health != alert.HealthErr || !strings.Contains(status[1].LastError, "expr yielded double, not a bool") {
		t.Errorf("NotBool status %+v", status[1])
	}
}

// TestCloseStopsTelemetry: a discarded manager stops reporting its rules'
// health, so a restarted processor does not report the old rules twice.
func TestCloseStopsTelemetry(t *testing.T) {
	p := writeRules(t, t.TempDir(), "groups:\n  - name: g\n    rules:\n      - alert: A\n        kind: k\n        for_each: service\n        expr: \"true\"\n")
	m, reader := newTestManager(t, Config{Files: []string{p}})
	m.Eval(context.Background(), snapOf(svc("a", nil)), t0)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if v := counterValue(rm, metricRuleHealth); v != 1 {
		t.Fatalf("%s = %d before Close, want 1", metricRuleHealth, v)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	rm = metricdata.ResourceMetrics{}
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if v := counterValue(rm, metricRuleHealth); v != 0 {
		t.Errorf("%s = %d after Close, want no data points", metricRuleHealth, v)
	}
}
