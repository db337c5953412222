package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/junction-sre/junction/scenarios"
	"github.com/junction-sre/junction/scenarios/detect"
)

var update = flag.Bool("update", false, "rewrite docs/detection.md from this run")

// sharedRun is one detection run shared by the tests that read it.
type sharedRun struct {
	once sync.Once
	res  *Result
	err  error
}

func (r *sharedRun) get(t *testing.T, run func() (*Result, error)) *Result {
	t.Helper()
	r.once.Do(func() { r.res, r.err = run() })
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.res
}

var defaultShared sharedRun

// defaultRun is one run of every scenario with the default plan, shared by
// the tests (about 15 s on one core).
func defaultRun(t *testing.T) *Result {
	t.Helper()
	return defaultShared.get(t, func() (*Result, error) {
		plan, err := DocPlan(scenarios.DefaultSeed)
		if err != nil {
			return nil, err
		}
		return Run(context.Background(), plan)
	})
}

// TestScenariosDetected is the end-to-end detection test: for every
// scenario, each expected alert fires on the expected blamed entity within
// onset + `for` + 2 evaluation intervals of its window's start, every
// detecting episode resolves before the scenario ends, and no alert fires
// that no expectation names: every firing is a detection, any other is a
// false positive that fails the test, in whatever phase and scenario.
func TestScenariosDetected(t *testing.T) {
	res := defaultRun(t)
	timings, err := PackTimings()
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Score(ScoreOptions())
	t.Logf("%d alert records, %d ticks; %s", len(res.Alerts), res.Ticks, rep.Summary())
	if len(rep.Scenarios) != len(scenarios.Names()) {
		t.Fatalf("scored %d scenarios, want every one of %v", len(rep.Scenarios), scenarios.Names())
	}
	for _, sr := range rep.Scenarios {
		t.Run(sr.Scenario, func(t *testing.T) {
			for _, er := range sr.Expect {
				want := fmt.Sprintf("%s → %s", strings.Join(er.Rules, " or "), er.Blame)
				if !er.Detected {
					t.Errorf("%s: not detected (expected rules blamed instead: %v)", want, er.WrongBlame)
					continue
				}
				tm, ok := timings[er.Rule]
				if !ok {
					t.Fatalf("rule %s is not in the built-in packs", er.Rule)
				}
				bound := Bound(er.Rule, sr.Scenario, er.Blame, tm)
				if er.Latency > bound {
					t.Errorf("%s: %s fired %v after its window started, later than %v (onset %v + for %v + 2 × %v interval of group %s)",
						want, er.Rule, er.Latency, bound, OnsetOf(er.Rule, sr.Scenario, er.Blame).Wait, tm.For, tm.Interval, tm.Group)
				} else {
					t.Logf("%s: %s fired after %v (bound %v)", want, er.Rule, er.Latency, bound)
				}
				if !er.Resolved {
					t.Errorf("%s: still firing when the scenario ended", want)
				}
			}
			for _, fp := range sr.False {
				t.Errorf("false positive: %s on %s (blamed %s) fired in the %s phase at +%v, and no expectation of %s names it",
					fp.Rule, fp.Entity, fp.Blame, fp.Phase, fp.Offset, sr.Scenario)
			}
			if sr.TruePositives+sr.FalsePositives != len(sr.Firings) {
				t.Errorf("%d firings, %d true and %d false positives: a firing counted neither way", len(sr.Firings), sr.TruePositives, sr.FalsePositives)
			}
		})
	}
	for _, ep := range rep.Outside {
		t.Errorf("false positive: %s on %s (blamed %s) fired at %s, outside every scenario", ep.Rule, ep.Entity, ep.Blame, ep.Fired.Format(time.RFC3339))
	}
	if rep.Precision != 1 {
		t.Errorf("precision %v, want 1", rep.Precision)
	}
}

// TestEveryAlertResolves: every alert that fires during the run resolves
// before the run ends (the last scenario's recovery is at least 35
// minutes): an alert still firing long after every fault is gone says
// nothing true about the system and hides the next fault on its entity.
func TestEveryAlertResolves(t *testing.T) {
	res := defaultRun(t)
	truth := res.Plan.Truth()
	for _, ep := range detect.Episodes(res.Alerts) {
		if !ep.Resolved.IsZero() {
			continue
		}
		where := "outside every scenario"
		for _, gt := range truth {
			if !ep.Fired.Before(gt.Start) && ep.Fired.Before(gt.End()) {
				where = fmt.Sprintf("in %s at +%v", gt.Scenario, ep.Fired.Sub(gt.Start))
			}
		}
		t.Errorf("%s on %s (blamed %s) fired %s and was still firing when the run ended %v later",
			ep.Rule, ep.Entity, ep.Blame, where, res.Plan.End().Sub(ep.Fired))
	}
}

// TestDetectionDocInSync checks that docs/detection.md, up to the
// real-app section, is what junction-detection writes for the default run;
// -update rewrites that part.
func TestDetectionDocInSync(t *testing.T) {
	res := defaultRun(t)
	path := "../../docs/detection.md"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: %s)", err, Command)
	}
	got := SpliceDocument(Document(res), old)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		old = []byte(got)
	}
	if string(old) != got {
		t.Errorf("docs/detection.md is out of date; regenerate it with `%s` or `go test ./scenarios/e2e -run TestDetectionDocInSync -update`", Command)
	}
}

// TestPackTimings checks that rule timings come from the packs.
func TestPackTimings(t *testing.T) {
	timings, err := PackTimings()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rule           string
		interval, for_ time.Duration
	}{
		{scenarios.RuleProxyShedding, 15 * time.Second, time.Minute},
		{scenarios.RuleProxyCircuitOpen, 15 * time.Second, 0},
		{scenarios.RuleCrossChainMessagesStuck, 30 * time.Second, time.Minute},
		{scenarios.RuleOverProvisioned, time.Minute, 10 * time.Minute},
	} {
		got, ok := timings[tc.rule]
		if !ok || got.Interval != tc.interval || got.For != tc.for_ {
			t.Errorf("%s: got %+v (found %v), want interval %v for %v", tc.rule, got, ok, tc.interval, tc.for_)
		}
	}
	for _, gt := range defaultTruth(t) {
		for _, e := range gt.Expect {
			for _, r := range e.Rules {
				if _, ok := timings[r]; !ok {
					t.Errorf("%s expects %s, which no built-in pack defines", gt.Scenario, r)
				}
			}
		}
	}
}

func defaultTruth(t *testing.T) []scenarios.GroundTruth {
	plan, err := DocPlan(scenarios.DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	return plan.Truth()
}

// TestRunRejectsBadPlan checks a bad plan is refused before anything runs.
func TestRunRejectsBadPlan(t *testing.T) {
	plan, err := scenarios.NewPlan(scenarios.Surge)
	if err != nil {
		t.Fatal(err)
	}
	plan.Step = 0
	if _, err := Run(context.Background(), plan); err == nil {
		t.Fatal("a plan with a zero step ran")
	}
}

// TestOnsetsJustified: every onset belongs to a rule some scenario expects
// and says what the rule's condition waits for; it never exceeds the
// fault of the scenarios that expect the rule.
func TestOnsetsJustified(t *testing.T) {
	timings, err := PackTimings()
	if err != nil {
		t.Fatal(err)
	}
	grace := ScoreOptions()
	for key, o := range Onsets {
		rule := key.Rule
		if _, ok := timings[rule]; !ok {
			t.Errorf("onset for %s, which no built-in pack defines", rule)
		}
		if o.Wait <= 0 || strings.TrimSpace(o.Why) == "" {
			t.Errorf("onset for %+v: %v with reason %q; want a positive wait and its reason", key, o.Wait, o.Why)
		}
		expected := false
		for _, gt := range defaultTruth(t) {
			if key.Scenario != "" && key.Scenario != gt.Scenario {
				continue
			}
			for _, e := range gt.Expect {
				if key.Blame != "" && key.Blame != e.Blame {
					continue
				}
				for _, r := range e.Rules {
					if r != rule || OnsetOf(r, gt.Scenario, e.Blame) != o {
						continue
					}
					expected = true
					// A detection counts up to the grace after the window.
					if w := e.Window.End - e.Window.Start + grace.GraceOf(r); o.Wait+timings[rule].Bound() > w {
						t.Errorf("%+v: onset %v + %v exceeds the %v (window and grace) the %s scenario expects it in", key, o.Wait, timings[rule].Bound(), w, gt.Scenario)
					}
				}
			}
		}
		if !expected {
			t.Errorf("onset for %+v, which no expectation uses", key)
		}
	}
}
