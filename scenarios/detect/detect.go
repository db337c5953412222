// Package detect scores what a detector found against the scenarios'
// ground truth: per scenario, recall, precision, detection latency,
// whether the alerts resolved after the fault, and false positives in the
// healthy phase. It renders the table of docs/detection.md.
package detect

import (
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/scenarios"
)

// Options tune the scoring.
type Options struct {
	// Grace is how long after an expectation's window ends a firing still
	// counts as its detection (the rules' `for` plus evaluation delay).
	// Firing later is a false positive.
	Grace time.Duration
	// RuleGrace is a longer grace for the named rules (e.g. `for` plus
	// two evaluation intervals of a rule whose `for` is longer than
	// Grace).
	RuleGrace map[string]time.Duration
	// MaxLatency, when positive, marks detections slower than it as late
	// (e.g. `for` + 2 evaluation intervals).
	MaxLatency time.Duration
}

// DefaultOptions are 2 minutes of grace and no latency bound.
func DefaultOptions() Options { return Options{Grace: 2 * time.Minute} }

// GraceOf is the grace of rule: Grace, or its RuleGrace when longer.
func (o Options) GraceOf(rule string) time.Duration { return max(o.Grace, o.RuleGrace[rule]) }

// Episode is one alert instance from the time it fired until it resolved.
type Episode struct {
	ID     string
	Rule   string
	Entity string
	// Blame is the blamed entity id when the episode fired (the alerting
	// entity's id when the alert names no other).
	Blame    string
	Active   time.Time
	Fired    time.Time
	Resolved time.Time // zero while still firing when the records end
}

// Episodes folds alert records (any mix of pending, firing and resolved
// records, several per instance) into episodes that fired, sorted by
// firing time. Instances that never fired are left out.
func Episodes(records []alert.Alert) []Episode {
	recs := slices.Clone(records)
	sort.SliceStable(recs, func(i, j int) bool { return recTime(&recs[i]).Before(recTime(&recs[j])) })
	open := map[string]*Episode{}
	var out []*Episode
	for i := range recs {
		a := &recs[i]
		id := a.ID
		if id == "" {
			id = alert.Fingerprint(a.Group, a.Rule, a.Entity.ID)
		}
		ep := open[id]
		switch a.State {
		case alert.StatePending, alert.StateFiring:
			if ep == nil {
				blame := a.Blame.ID
				if blame == "" {
					blame = a.Entity.ID
				}
				ep = &Episode{ID: id, Rule: a.Rule, Entity: a.Entity.ID, Blame: blame, Active: a.ActiveAt}
				if ep.Active.IsZero() {
					ep.Active = recTime(a)
				}
				open[id] = ep
				out = append(out, ep)
			}
			if a.State == alert.StateFiring && ep.Fired.IsZero() {
				ep.Fired = a.FiredAt
				if ep.Fired.IsZero() {
					ep.Fired = recTime(a)
				}
				// The blame users see is the one the alert fired with; it
				// may have changed while pending (the critical path
				// settles as sampled traces complete).
				if a.Blame.ID != "" {
					ep.Blame = a.Blame.ID
				}
			}
		case alert.StateResolved:
			if ep == nil {
				// A lone resolved record (e.g. from alert history) carries
				// its whole life.
				if a.FiredAt.IsZero() {
					continue
				}
				blame := a.Blame.ID
				if blame == "" {
					blame = a.Entity.ID
				}
				ep = &Episode{ID: id, Rule: a.Rule, Entity: a.Entity.ID, Blame: blame, Active: a.ActiveAt, Fired: a.FiredAt}
				out = append(out, ep)
			}
			ep.Resolved = a.ResolvedAt
			if ep.Resolved.IsZero() {
				ep.Resolved = recTime(a)
			}
			delete(open, id)
		}
	}
	eps := make([]Episode, 0, len(out))
	for _, ep := range out {
		if !ep.Fired.IsZero() {
			eps = append(eps, *ep)
		}
	}
	sort.SliceStable(eps, func(i, j int) bool {
		if !eps[i].Fired.Equal(eps[j].Fired) {
			return eps[i].Fired.Before(eps[j].Fired)
		}
		return eps[i].ID < eps[j].ID
	})
	return eps
}

// recTime is when a record was produced: its evaluation, or failing that
// the latest of its lifecycle times.
func recTime(a *alert.Alert) time.Time {
	if !a.EvaluatedAt.IsZero() {
		return a.EvaluatedAt
	}
	t := a.ActiveAt
	for _, u := range []time.Time{a.FiredAt, a.ResolvedAt} {
		if u.After(t) {
			t = u
		}
	}
	return t
}

// ExpectationResult is how one expectation was met.
type ExpectationResult struct {
	scenarios.Expectation
	Detected bool
	// Rule is the rule that fired first for it.
	Rule string
	// FirstFiring is the first matching firing; Latency is FirstFiring
	// minus the start of the expectation's window.
	FirstFiring time.Time
	Latency     time.Duration
	Late        bool
	// Resolved is true when every matching episode resolved before the
	// scenario ended, or within the expectation's Settle after its window.
	Resolved bool
	// WrongBlame lists entities the expected rules blamed instead.
	WrongBlame []string
}

// Firing is one episode of a scenario with its verdict: it detects one of
// the scenario's expectations, or it is a false positive.
type Firing struct {
	Episode
	// Phase is where it fired; Offset is its firing time relative to the
	// scenario's start.
	Phase  scenarios.Phase
	Offset time.Duration
	// Expected is the index in ScenarioResult.Expect of the expectation the
	// firing detects; -1 for a false positive.
	Expected int
}

// FalsePositive reports whether the firing matched no expectation.
func (f *Firing) FalsePositive() bool { return f.Expected < 0 }

// FalsePositive is an episode that matched no expectation.
type FalsePositive = Firing

// ScenarioResult scores one scenario.
type ScenarioResult struct {
	Scenario string
	// Length is the scenario's length.
	Length time.Duration
	Expect []ExpectationResult
	// TruePositives counts episodes that detected an expectation;
	// FalsePositives the others (HealthyFalsePositives of them in the
	// healthy phase). Every episode is one or the other.
	TruePositives, FalsePositives, HealthyFalsePositives int
	// Firings are every episode that fired in the scenario, in firing
	// order, with its verdict; False are the false positives among them.
	Firings []Firing
	False   []FalsePositive
	// Recall is detected expectations / expectations; Precision true
	// positives / all episodes (NaN with none).
	Recall, Precision float64
	// Latency is the slowest detection of the scenario (all expectations
	// detected by then); zero when nothing was detected.
	Latency time.Duration
	// Resolved is true when every detected expectation resolved.
	Resolved bool
}

// Report is the score of a whole run.
type Report struct {
	Options   Options
	Scenarios []ScenarioResult
	// Recall and Precision over all scenarios (micro-averaged); Outside
	// are the episodes that fired outside every scenario (none when the
	// records come from the plan's own run), false positives too.
	Recall, Precision float64
	Outside           []Episode
}

// Score matches alert records against the ground truth.
func Score(truth []scenarios.GroundTruth, records []alert.Alert, opts Options) Report {
	eps := Episodes(records)
	rep := Report{Options: opts, Scenarios: make([]ScenarioResult, len(truth))}
	for i := range truth {
		gt := &truth[i]
		sr := &rep.Scenarios[i]
		sr.Scenario, sr.Length = gt.Scenario, gt.Length
		for _, e := range gt.Expect {
			sr.Expect = append(sr.Expect, ExpectationResult{Expectation: e, Resolved: true})
		}
	}
	var tp, counted, expected, detected int
	for _, ep := range eps {
		i := scenarioAt(truth, ep.Fired)
		if i < 0 {
			rep.Outside = append(rep.Outside, ep)
			continue
		}
		gt, sr := &truth[i], &rep.Scenarios[i]
		rel := ep.Fired.Sub(gt.Start)
		phase := scenarios.PhaseRecover
		switch {
		case gt.Healthy.Contains(rel):
			phase = scenarios.PhaseHealthy
		case gt.Fault.Contains(rel):
			phase = scenarios.PhaseFault
		}
		f := Firing{Episode: ep, Phase: phase, Offset: rel, Expected: matchExpectation(gt, ep, rel, opts.GraceOf(ep.Rule))}
		sr.Firings = append(sr.Firings, f)
		if k := f.Expected; k >= 0 {
			er := &sr.Expect[k]
			if !er.Detected || ep.Fired.Before(er.FirstFiring) {
				er.Detected, er.Rule, er.FirstFiring = true, ep.Rule, ep.Fired
				er.Latency = ep.Fired.Sub(gt.Start.Add(er.Window.Start))
				er.Late = opts.MaxLatency > 0 && er.Latency > opts.MaxLatency
			}
			if ep.Resolved.IsZero() || ep.Resolved.After(gt.Start.Add(er.ResolveBy(gt.Length))) {
				er.Resolved = false
			}
			sr.TruePositives++
			continue
		}
		for k := range sr.Expect {
			er := &sr.Expect[k]
			if slices.Contains(er.Rules, ep.Rule) && ep.Blame != er.Blame && !slices.Contains(er.WrongBlame, ep.Blame) {
				er.WrongBlame = append(er.WrongBlame, ep.Blame)
			}
		}
		sr.FalsePositives++
		if phase == scenarios.PhaseHealthy {
			sr.HealthyFalsePositives++
		}
		sr.False = append(sr.False, f)
	}
	for i := range rep.Scenarios {
		sr := &rep.Scenarios[i]
		found := 0
		sr.Resolved = true
		for k := range sr.Expect {
			er := &sr.Expect[k]
			if !er.Detected {
				er.Resolved = false
				continue
			}
			found++
			sr.Latency = max(sr.Latency, er.Latency)
			sr.Resolved = sr.Resolved && er.Resolved
		}
		if found == 0 {
			sr.Resolved = false
		}
		sr.Recall = ratio(found, len(sr.Expect))
		sr.Precision = ratio(sr.TruePositives, sr.TruePositives+sr.FalsePositives)
		tp += sr.TruePositives
		counted += sr.TruePositives + sr.FalsePositives
		expected += len(sr.Expect)
		detected += found
	}
	counted += len(rep.Outside)
	rep.Recall = ratio(detected, expected)
	rep.Precision = ratio(tp, counted)
	return rep
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func scenarioAt(truth []scenarios.GroundTruth, t time.Time) int {
	for i := range truth {
		if !t.Before(truth[i].Start) && t.Before(truth[i].End()) {
			return i
		}
	}
	return -1
}

// matchExpectation returns the expectation ep detects, or -1: the first
// whose rules include ep's rule, whose blamed entity is ep's and whose
// window (plus grace) holds ep's firing.
func matchExpectation(gt *scenarios.GroundTruth, ep Episode, rel, grace time.Duration) int {
	for k, e := range gt.Expect {
		if slices.Contains(e.Rules, ep.Rule) && ep.Blame == e.Blame && rel >= e.Window.Start && rel <= e.Window.End+grace {
			return k
		}
	}
	return -1
}

// Summary is a one-line summary of the report.
func (r *Report) Summary() string {
	var b strings.Builder
	b.WriteString("recall ")
	b.WriteString(pct(r.Recall))
	b.WriteString(", precision ")
	b.WriteString(pct(r.Precision))
	return b.String()
}
