package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/junction-sre/junction/scenarios"
	"github.com/junction-sre/junction/scenarios/detect"
)

var telemetryShared sharedRun

// telemetryRun is the documented plan played on the telemetry clock, as
// `make demo` plays it into Junction, shared by the tests.
func telemetryRun(t *testing.T) *Result {
	t.Helper()
	plan := defaultRun(t).Plan
	return telemetryShared.get(t, func() (*Result, error) {
		return RunWith(context.Background(), plan, Options{TelemetryClock: true})
	})
}

// TestTelemetryClockMatchesVirtualClock plays the documented plan once
// more with the processor on `clock::source: telemetry`, as `make demo`
// runs Junction, and scores it against the run ticked on the virtual
// clock: per scenario, every expectation is detected (or missed) alike, by
// the same rule, within one emit interval (or one evaluation interval of
// the rule's group, when longer) of the same latency, and
// resolves alike; no false positive in a healthy phase on either, and at
// most one more or fewer false positive over the whole run.
//
// The runs are not identical alert for alert: on the virtual clock a
// step's telemetry counts at the step's end, the first instant of the
// next 10 s bucket, while on the telemetry clock it counts at its newest
// timestamp, inside the step's own bucket, so a condition can first hold
// one evaluation earlier or later. Instances that hover at a threshold can
// therefore differ; they are logged.
func TestTelemetryClockMatchesVirtualClock(t *testing.T) {
	want, got := defaultRun(t), telemetryRun(t)
	const slack = 15 * time.Second // one emit interval
	timings, err := PackTimings()
	if err != nil {
		t.Fatal(err)
	}
	wr, gr := want.Score(ScoreOptions()), got.Score(ScoreOptions())
	if len(wr.Scenarios) == 0 || len(wr.Scenarios) != len(gr.Scenarios) {
		t.Fatalf("scored %d scenarios on the virtual clock, %d on the telemetry clock", len(wr.Scenarios), len(gr.Scenarios))
	}
	fpWant, fpGot := 0, 0
	for i, w := range wr.Scenarios {
		g := gr.Scenarios[i]
		fpWant += w.FalsePositives
		fpGot += g.FalsePositives
		if g.HealthyFalsePositives > 0 || w.HealthyFalsePositives > 0 {
			t.Errorf("%s: %d false positives in the healthy phase on the telemetry clock, %d on the virtual clock",
				w.Scenario, g.HealthyFalsePositives, w.HealthyFalsePositives)
		}
		for j, we := range w.Expect {
			ge := g.Expect[j]
			name := fmt.Sprintf("%s: %v → %s", w.Scenario, we.Rules, we.Blame)
			switch {
			case ge.Detected != we.Detected || ge.Rule != we.Rule:
				t.Errorf("%s: detected %v by %q on the telemetry clock, %v by %q on the virtual clock", name, ge.Detected, ge.Rule, we.Detected, we.Rule)
			case (ge.Latency - we.Latency).Abs() > max(slack, timings[we.Rule].Interval):
				t.Errorf("%s: latency %v on the telemetry clock, %v on the virtual clock (more than %v apart)",
					name, ge.Latency, we.Latency, max(slack, timings[we.Rule].Interval))
			case ge.Resolved != we.Resolved:
				t.Errorf("%s: resolved %v on the telemetry clock, %v on the virtual clock", name, ge.Resolved, we.Resolved)
			}
		}
	}
	if d := fpGot - fpWant; d > 1 || d < -1 {
		t.Errorf("%d false positives on the telemetry clock, %d on the virtual clock", fpGot, fpWant)
	}
	if wr.Recall == 0 {
		t.Fatal("the virtual-clock run detected nothing: nothing was compared")
	}
	for _, l := range episodeDiff(detect.Episodes(want.Alerts), detect.Episodes(got.Alerts), slack) {
		t.Log(l)
	}
	t.Logf("virtual clock: %s; telemetry clock: %s", wr.Summary(), gr.Summary())
}

// episodeDiff lists the alert instances whose episodes differ between two
// runs by more than slack.
func episodeDiff(want, got []detect.Episode, slack time.Duration) []string {
	type key struct{ rule, entity, blame string }
	index := func(eps []detect.Episode) map[key][]detect.Episode {
		m := map[key][]detect.Episode{}
		for _, e := range eps {
			k := key{e.Rule, e.Entity, e.Blame}
			m[k] = append(m[k], e)
		}
		return m
	}
	w, g := index(want), index(got)
	keys := map[key]bool{}
	for k := range w {
		keys[k] = true
	}
	for k := range g {
		keys[k] = true
	}
	var lines []string
	for k := range keys {
		we, ge := w[k], g[k]
		if len(we) != len(ge) {
			lines = append(lines, fmt.Sprintf("%s on %s blaming %s: %d episodes on the virtual clock, %d on the telemetry clock", k.rule, k.entity, k.blame, len(we), len(ge)))
			continue
		}
		for i := range we {
			if d := ge[i].Fired.Sub(we[i].Fired).Abs(); d > slack {
				lines = append(lines, fmt.Sprintf("%s on %s: fired %v later on the telemetry clock", k.rule, k.entity, ge[i].Fired.Sub(we[i].Fired)))
			}
			if d := ge[i].Resolved.Sub(we[i].Resolved).Abs(); d > slack {
				lines = append(lines, fmt.Sprintf("%s on %s: resolved %v later on the telemetry clock", k.rule, k.entity, ge[i].Resolved.Sub(we[i].Resolved)))
			}
		}
	}
	sort.Strings(lines)
	return lines
}

// TestDemoPlanDetected: `make demo` plays the documented plan, in at most
// 15 minutes at DemoSpeed, into Junction on the telemetry clock; played so,
// every expected alert fires on the expected entity and resolves before
// its scenario ends, so the demo shows each fault come and go.
func TestDemoPlanDetected(t *testing.T) {
	start := time.Date(2026, 11, 26, 12, 0, 3, 0, time.UTC)
	doc, err := DocPlan(scenarios.DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := DemoPlan(DemoStart(start, doc.Duration(), DemoSpeed))
	if err != nil {
		t.Fatal(err)
	}
	real := time.Duration(float64(plan.Duration()) / DemoSpeed)
	if real > 15*time.Minute {
		t.Errorf("the demo plan takes %v of real time at %vx, want at most 15m", real, DemoSpeed)
	}
	if end := plan.End(); end.After(start.Add(real)) || end.Before(start.Add(real-scenarios.DefaultStep)) {
		t.Errorf("the demo plan ends at %v, want the real end %v (at most one step earlier)", end, start.Add(real))
	}
	dt, pt := doc.Truth(), plan.Truth()
	if len(dt) != len(pt) {
		t.Fatalf("the demo plays %d scenarios, docs/detection.md scores %d", len(pt), len(dt))
	}
	for i := range dt {
		if dt[i].Scenario != pt[i].Scenario || dt[i].FaultStart.Sub(doc.Start) != pt[i].FaultStart.Sub(plan.Start) || dt[i].FaultEnd.Sub(doc.Start) != pt[i].FaultEnd.Sub(plan.Start) {
			t.Errorf("demo scenario %d (%s) is timed unlike the documented one (%s)", i, pt[i].Scenario, dt[i].Scenario)
		}
	}

	rep := telemetryRun(t).Score(ScoreOptions())
	t.Logf("demo plan (%v at %vx: %v): %s", plan.Duration(), DemoSpeed, real, rep.Summary())
	for _, sr := range rep.Scenarios {
		for _, er := range sr.Expect {
			if !er.Detected || !er.Resolved {
				t.Errorf("%s: %s → %s detected %v, resolved %v", sr.Scenario, strings.Join(er.Rules, " or "), er.Blame, er.Detected, er.Resolved)
			}
		}
	}
}
