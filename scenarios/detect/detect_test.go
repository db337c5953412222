package detect

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/scenarios"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testTruth is a surge from 0 to 15m (fault 5m-10m) with two expected
// alerts, then a cost scenario from 15m to 85m (fault 20m-50m, idle
// 20m-38m, cut 38m-50m, recovery 50m-85m), written out so that the scoring
// tests do not follow the scenarios' own expectations.
func testTruth(t *testing.T) []scenarios.GroundTruth {
	t.Helper()
	w := func(a, b time.Duration) scenarios.Window { return scenarios.Window{Start: a, End: b} }
	truth := []scenarios.GroundTruth{
		{
			Scenario: scenarios.Surge, Start: t0, Healthy: w(0, 5*m), Fault: w(5*m, 10*m), Length: 15 * m,
			Expect: []scenarios.Expectation{
				{Rules: []string{scenarios.RuleProxyShedding}, Blame: scenarios.ProxyID, Window: w(5*m, 10*m)},
				{Rules: []string{scenarios.RuleProxyCircuitOpen}, Blame: scenarios.ProxyID, Window: w(5*m, 10*m)},
			},
		},
		{
			Scenario: scenarios.CostCut, Start: t0.Add(15 * m), Offset: 15 * m, Healthy: w(0, 5*m), Fault: w(5*m, 35*m), Length: 70 * m,
			Expect: []scenarios.Expectation{
				{Rules: []string{scenarios.RuleOverProvisioned}, Blame: scenarios.RecommendID, Window: w(5*m, 23*m)},
				{Rules: []string{scenarios.RuleCostCutBurnedBudget, scenarios.RuleErrorBudgetBurn}, Blame: scenarios.CatalogID, Window: w(23*m, 35*m)},
			},
		},
	}
	for i := range truth {
		gt := &truth[i]
		gt.FaultStart, gt.FaultEnd = gt.Start.Add(gt.Fault.Start), gt.Start.Add(gt.Fault.End)
		if err := gt.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	return truth
}

var t0 = scenarios.DefaultStart

func at(d time.Duration) time.Time { return t0.Add(d) }

// life returns the records of one alert instance: pending at active,
// firing at fired (and one evaluation later), resolved at resolved unless
// it is zero.
func life(rule, ent, blame string, active, fired, resolved time.Duration) []alert.Alert {
	base := alert.Alert{
		ID: alert.Fingerprint("g", rule, ent), Group: "g", Rule: rule,
		Entity: entity.Ref{ID: ent}, Blame: entity.Ref{ID: blame}, ActiveAt: at(active),
	}
	p := base
	p.State, p.EvaluatedAt = alert.StatePending, at(active)
	f := base
	f.State, f.FiredAt, f.EvaluatedAt = alert.StateFiring, at(fired), at(fired)
	f2 := f
	f2.EvaluatedAt = at(fired + 15*time.Second)
	out := []alert.Alert{p, f, f2}
	if resolved > 0 {
		r := f
		r.State, r.ResolvedAt, r.EvaluatedAt = alert.StateResolved, at(resolved), at(resolved)
		out = append(out, r)
	}
	return out
}

func join(parts ...[]alert.Alert) []alert.Alert {
	var out []alert.Alert
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

const m = time.Minute

func TestScore(t *testing.T) {
	truth := testTruth(t)
	perfect := join(
		life(scenarios.RuleProxyShedding, scenarios.ProxyID, scenarios.ProxyID, 5*m+15*time.Second, 6*m, 11*m),
		life(scenarios.RuleProxyCircuitOpen, scenarios.ProxyID, "", 5*m+30*time.Second, 6*m+30*time.Second, 10*m+30*time.Second),
		life(scenarios.RuleOverProvisioned, scenarios.RecommendID, scenarios.RecommendID, 20*m+30*time.Second, 21*m, 23*m),
		life(scenarios.RuleErrorBudgetBurn, scenarios.CatalogID, scenarios.CatalogID, 38*m, 39*m, 52*m),
	)
	tests := []struct {
		name   string
		alerts []alert.Alert
		check  func(t *testing.T, r Report)
	}{
		{
			name:   "perfect",
			alerts: perfect,
			check: func(t *testing.T, r Report) {
				s := r.Scenarios[0]
				if s.Recall != 1 || s.Precision != 1 || !s.Resolved || s.FalsePositives != 0 {
					t.Errorf("surge = %+v, want full recall and precision, resolved", s)
				}
				if s.Latency != 90*time.Second {
					t.Errorf("surge latency = %v, want 1m30s (the slower of 1m and 1m30s)", s.Latency)
				}
				c := r.Scenarios[1]
				if c.Expect[1].Rule != scenarios.RuleErrorBudgetBurn || c.Expect[1].Latency != time.Minute {
					t.Errorf("cost cut detected by %q after %v, want ErrorBudgetBurn after 1m (window starts at the split)", c.Expect[1].Rule, c.Expect[1].Latency)
				}
				if r.Recall != 1 || r.Precision != 1 {
					t.Errorf("overall recall %v precision %v", r.Recall, r.Precision)
				}
			},
		},
		{
			name: "miss wrong blame and healthy false positive",
			alerts: join(
				life(scenarios.RuleProxyShedding, scenarios.ProxyID, scenarios.ProxyID, 5*m+15*time.Second, 6*m, 11*m),
				life(scenarios.RuleProxyCircuitOpen, scenarios.FrontendID, scenarios.FrontendID, 6*m, 7*m, 11*m),
				life("HighLatency", scenarios.CheckoutID, scenarios.CheckoutID, 1*m, 2*m, 3*m),
			),
			check: func(t *testing.T, r Report) {
				s := r.Scenarios[0]
				if s.Recall != 0.5 {
					t.Errorf("recall = %v, want 0.5", s.Recall)
				}
				if s.FalsePositives != 2 || s.HealthyFalsePositives != 1 || s.TruePositives != 1 {
					t.Errorf("tp/fp/healthy = %d/%d/%d, want 1/2/1", s.TruePositives, s.FalsePositives, s.HealthyFalsePositives)
				}
				if math.Abs(s.Precision-1.0/3) > 1e-9 {
					t.Errorf("precision = %v, want 1/3", s.Precision)
				}
				if got := s.Expect[1].WrongBlame; len(got) != 1 || got[0] != scenarios.FrontendID {
					t.Errorf("wrong blame = %v, want [%s]", got, scenarios.FrontendID)
				}
				if r.Scenarios[1].Recall != 0 || !math.IsNaN(r.Scenarios[1].Precision) {
					t.Errorf("cost: recall %v precision %v, want 0 and NaN (no alerts)", r.Scenarios[1].Recall, r.Scenarios[1].Precision)
				}
			},
		},
		{
			name: "never resolved and late",
			alerts: join(
				life(scenarios.RuleProxyShedding, scenarios.ProxyID, scenarios.ProxyID, 5*m, 5*m+30*time.Second, 0),
				// fires 4m after the fault ended: beyond the 2m grace
				life(scenarios.RuleProxyCircuitOpen, scenarios.ProxyID, scenarios.ProxyID, 13*m, 14*m, 14*m+30*time.Second),
			),
			check: func(t *testing.T, r Report) {
				s := r.Scenarios[0]
				if s.Resolved || s.Expect[0].Resolved {
					t.Error("an alert with no resolved record counts as resolved")
				}
				if s.Expect[1].Detected || s.FalsePositives != 1 || s.HealthyFalsePositives != 0 {
					t.Errorf("late firing: detected %v, fp %d healthy %d; want a recovery-phase false positive", s.Expect[1].Detected, s.FalsePositives, s.HealthyFalsePositives)
				}
				if s.False[0].Phase != scenarios.PhaseRecover {
					t.Errorf("phase %s, want recover", s.False[0].Phase)
				}
			},
		},
		{
			name: "pending-only and outside",
			alerts: join(
				life(scenarios.RuleOverProvisioned, scenarios.RecommendID, scenarios.RecommendID, 20*m+30*time.Second, 21*m, 23*m),
				[]alert.Alert{{ID: "p", Rule: "Flappy", Entity: entity.Ref{ID: "service:shop/x"}, State: alert.StatePending, EvaluatedAt: at(21 * m)}},
				life(scenarios.RuleErrorBudgetBurn, scenarios.CatalogID, scenarios.CatalogID, 100*m, 101*m, 102*m),
			),
			check: func(t *testing.T, r Report) {
				c := r.Scenarios[1]
				if c.FalsePositives != 0 || c.TruePositives != 1 || c.Recall != 0.5 {
					t.Errorf("cost = tp %d fp %d recall %v; want 1, 0, 0.5", c.TruePositives, c.FalsePositives, c.Recall)
				}
				if len(r.Outside) != 1 || r.Outside[0].Rule != scenarios.RuleErrorBudgetBurn {
					t.Errorf("outside = %+v, want the ErrorBudgetBurn firing at 101m", r.Outside)
				}
				if r.Precision != 0.5 {
					t.Errorf("precision %v, want 1/2: a firing outside every scenario is a false positive", r.Precision)
				}
			},
		},
		{
			name: "max latency",
			alerts: join(
				life(scenarios.RuleProxyShedding, scenarios.ProxyID, scenarios.ProxyID, 5*m, 9*m, 11*m),
			),
			check: func(t *testing.T, r Report) {
				if !r.Scenarios[0].Expect[0].Late {
					t.Error("a 4m detection with MaxLatency 2m is not marked late")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultOptions()
			opts.MaxLatency = 2 * time.Minute
			tc.check(t, Score(truth, tc.alerts, opts))
		})
	}
}

// TestEveryFiringHasAVerdict: a consequence of a fault that no
// expectation names is a false positive in any phase, and every firing is
// listed with its verdict.
func TestEveryFiringHasAVerdict(t *testing.T) {
	truth := testTruth(t)
	r := Score(truth, join(
		life(scenarios.RuleProxyShedding, scenarios.ProxyID, scenarios.ProxyID, 5*m+15*time.Second, 6*m, 11*m),
		// a true consequence of the surge, but not in its ground truth
		life(scenarios.RuleErrorBudgetBurn, scenarios.FrontendID, scenarios.FrontendID, 6*m, 7*m, 9*m),
		// the right rule blaming another entity
		life(scenarios.RuleProxyCircuitOpen, scenarios.ProxyID, scenarios.FrontendID, 6*m, 6*m+30*time.Second, 9*m),
		// the right rule and entity, 3m after the window's end (grace 2m)
		life(scenarios.RuleProxyShedding, scenarios.FrontendID, scenarios.ProxyID, 12*m, 13*m, 14*m),
	), DefaultOptions())
	s := r.Scenarios[0]
	if len(s.Firings) != 4 || s.TruePositives != 1 || s.FalsePositives != 3 || s.HealthyFalsePositives != 0 {
		t.Fatalf("firings %d, tp %d fp %d healthy %d; want 4, 1, 3, 0", len(s.Firings), s.TruePositives, s.FalsePositives, s.HealthyFalsePositives)
	}
	want := []string{
		"expected: ProxyShedding",
		"false positive: wrong blame (expected `" + scenarios.ProxyID + "`)",
		"false positive: not expected in this scenario (fault phase)",
		"false positive: fired outside its window (+5m0s to +10m0s, plus grace)",
	}
	for i, f := range s.Firings {
		if got := s.verdict(&f); got != want[i] {
			t.Errorf("firing %d (%s on %s): verdict %q, want %q", i, f.Rule, f.Entity, got, want[i])
		}
	}
	// A longer grace for the rule makes the late firing a detection.
	opts := DefaultOptions()
	opts.RuleGrace = map[string]time.Duration{scenarios.RuleProxyShedding: 4 * m}
	if r := Score(truth, life(scenarios.RuleProxyShedding, scenarios.ProxyID, scenarios.ProxyID, 12*m, 13*m, 14*m), opts); r.Scenarios[0].TruePositives != 1 {
		t.Errorf("a firing 3m after the window with a 4m rule grace is not a detection: %+v", r.Scenarios[0].Firings)
	}
}

// TestSettle: an expected alert over a long window may resolve after its
// scenario ends, within its Settle after its window; later it counts as
// unresolved.
func TestSettle(t *testing.T) {
	truth := testTruth(t)
	truth[0].Expect[0].Settle = 30 * m // window ends at 10m: resolve by 40m
	for _, tc := range []struct {
		resolved time.Duration
		want     bool
	}{{14 * m, true}, {39 * m, true}, {41 * m, false}} {
		r := Score(truth, life(scenarios.RuleProxyShedding, scenarios.ProxyID, scenarios.ProxyID, 5*m+15*time.Second, 6*m, tc.resolved), DefaultOptions())
		if got := r.Scenarios[0].Expect[0].Resolved; got != tc.want {
			t.Errorf("resolved at %v with settle 30m: resolved %v, want %v", tc.resolved, got, tc.want)
		}
		if s := r.Scenarios[0]; s.TruePositives != 1 || len(s.Firings) != 1 {
			t.Errorf("resolved at %v: %d true positives, %d firings; want one detection scored with surge", tc.resolved, s.TruePositives, len(s.Firings))
		}
	}
	// Without a settle the scenario's end (15m) is the limit.
	r := Score(testTruth(t), life(scenarios.RuleProxyShedding, scenarios.ProxyID, scenarios.ProxyID, 5*m+15*time.Second, 6*m, 16*m), DefaultOptions())
	if r.Scenarios[0].Expect[0].Resolved {
		t.Error("an alert resolving after its scenario's end without a settle counts as resolved")
	}
}

func TestEpisodes(t *testing.T) {
	recs := join(
		life("A", "e1", "", 1*m, 2*m, 3*m),
		life("A", "e1", "", 5*m, 6*m, 0), // fires again
		[]alert.Alert{{ID: "B@e2", Rule: "B", Entity: entity.Ref{ID: "e2"}, State: alert.StatePending, EvaluatedAt: at(m)}},
	)
	eps := Episodes(recs)
	// history: only the final record of a resolved instance
	hist := life("C", "e3", "b3", 7*m, 8*m, 9*m)[3]
	if h := Episodes([]alert.Alert{hist}); len(h) != 1 || !h[0].Fired.Equal(at(8*m)) || !h[0].Resolved.Equal(at(9*m)) || h[0].Blame != "b3" {
		t.Errorf("episode from a lone resolved record = %+v", h)
	}
	// The blame changes while pending: the episode blames what it fired with.
	moved := []alert.Alert{
		{ID: "D@e4", Rule: "D", Entity: entity.Ref{ID: "e4"}, Blame: entity.Ref{ID: "hop1"}, State: alert.StatePending, ActiveAt: at(m), EvaluatedAt: at(m)},
		{ID: "D@e4", Rule: "D", Entity: entity.Ref{ID: "e4"}, Blame: entity.Ref{ID: "hop3"}, State: alert.StatePending, ActiveAt: at(m), EvaluatedAt: at(2 * m)},
		{ID: "D@e4", Rule: "D", Entity: entity.Ref{ID: "e4"}, Blame: entity.Ref{ID: "hop3"}, State: alert.StateFiring, ActiveAt: at(m), FiredAt: at(3 * m), EvaluatedAt: at(3 * m)},
		{ID: "D@e4", Rule: "D", Entity: entity.Ref{ID: "e4"}, Blame: entity.Ref{ID: "hop2"}, State: alert.StateFiring, ActiveAt: at(m), FiredAt: at(3 * m), EvaluatedAt: at(4 * m)},
	}
	if d := Episodes(moved); len(d) != 1 || d[0].Blame != "hop3" || !d[0].Active.Equal(at(m)) {
		t.Errorf("episode whose blame moved while pending = %+v, want blame hop3 (at firing), active at 1m", d)
	}
	if len(eps) != 2 {
		t.Fatalf("episodes = %+v, want two firings of A", eps)
	}
	if !eps[0].Resolved.Equal(at(3*m)) || !eps[1].Resolved.IsZero() || eps[0].Blame != "e1" {
		t.Errorf("episodes = %+v", eps)
	}
}

func TestMarkdownGolden(t *testing.T) {
	truth := testTruth(t)
	r := Score(truth, join(
		life(scenarios.RuleProxyShedding, scenarios.ProxyID, scenarios.ProxyID, 5*m+15*time.Second, 6*m, 11*m),
		life(scenarios.RuleProxyCircuitOpen, scenarios.FrontendID, scenarios.FrontendID, 6*m, 7*m, 11*m),
		life("HighLatency", scenarios.CheckoutID, scenarios.CheckoutID, 1*m, 2*m, 3*m),
		life(scenarios.RuleOverProvisioned, scenarios.RecommendID, scenarios.RecommendID, 20*m+30*time.Second, 21*m, 23*m),
		life(scenarios.RuleCostCutBurnedBudget, scenarios.CatalogID, scenarios.CatalogID, 38*m, 38*m+45*time.Second, 0),
	), DefaultOptions())
	got := r.Markdown()
	path := filepath.Join("testdata", "report.md")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("markdown differs from %s (rerun with -update if intended):\n%s", path, got)
	}
}
