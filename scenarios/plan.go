package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Phase is the part of a scenario a virtual instant falls in.
type Phase string

// Phases of every scenario, in order.
const (
	PhaseHealthy Phase = "healthy"
	PhaseFault   Phase = "fault"
	PhaseRecover Phase = "recover"
)

// Defaults of a plan.
const (
	DefaultSeed    = 7
	DefaultStep    = 10 * time.Second
	DefaultHealthy = 5 * time.Minute
	DefaultFault   = 5 * time.Minute
	DefaultRecover = 5 * time.Minute
	// DefaultEdgeRate is the healthy request rate at the edge proxy.
	DefaultEdgeRate = 10.0
)

// DefaultStart is the virtual start of plans that set none: a fixed instant
// so that runs are reproducible.
var DefaultStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// Plan is what a run generates: the scenarios in order, each a healthy phase,
// a fault phase and a recovery phase, on a virtual clock that starts at
// Start and advances by Step.
type Plan struct {
	// Seed makes the run reproducible: the same plan yields the same batches.
	Seed uint64
	// Start is the virtual time of the first batch.
	Start time.Time
	// Step is the virtual time between two batches (one scrape interval).
	Step time.Duration
	// Healthy, Fault and Recover are the lengths of each scenario's phases;
	// a scenario whose symptoms take longer to build up has a longer fault
	// (FaultOf).
	Healthy, Fault, Recover time.Duration
	// EdgeRate is the healthy request rate at the edge proxy, per second.
	EdgeRate float64
	// Scenarios are run one after the other.
	Scenarios []*Scenario
}

// NewPlan returns a plan with the default timing for the named scenarios;
// "all" (or no name) selects every scenario in Names order.
func NewPlan(names ...string) (*Plan, error) {
	sc, err := Select(names...)
	if err != nil {
		return nil, err
	}
	return &Plan{
		Seed:      DefaultSeed,
		Start:     DefaultStart,
		Step:      DefaultStep,
		Healthy:   DefaultHealthy,
		Fault:     DefaultFault,
		Recover:   DefaultRecover,
		EdgeRate:  DefaultEdgeRate,
		Scenarios: sc,
	}, nil
}

// Validate reports every problem of the plan.
func (p *Plan) Validate() error {
	var errs []error
	if p.Step < time.Second {
		errs = append(errs, fmt.Errorf("step %v: must be at least 1s", p.Step))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"healthy", p.Healthy}, {"fault", p.Fault}, {"recover", p.Recover}} {
		switch {
		case d.v <= 0:
			errs = append(errs, fmt.Errorf("%s %v: must be positive", d.name, d.v))
		case p.Step > 0 && d.v%p.Step != 0:
			errs = append(errs, fmt.Errorf("%s %v: must be a multiple of the step %v", d.name, d.v, p.Step))
		}
	}
	if p.EdgeRate <= 0 || p.EdgeRate > 1000 {
		errs = append(errs, fmt.Errorf("edge rate %v: must be in (0, 1000] requests per second", p.EdgeRate))
	}
	if len(p.Scenarios) == 0 {
		errs = append(errs, errors.New("no scenarios"))
	}
	if p.Start.IsZero() {
		errs = append(errs, errors.New("start: no virtual start time"))
	}
	for _, sc := range p.Scenarios {
		if sc == nil || sc.expect == nil || sc.apply == nil {
			errs = append(errs, fmt.Errorf("scenario %v: not a defined scenario (use Select or Lookup)", sc))
			return errors.Join(errs...)
		}
		if f := p.FaultOf(sc); p.Step > 0 && f != p.Fault && f%p.Step != 0 {
			errs = append(errs, fmt.Errorf("scenario %s: its fault of %v must be a multiple of the step %v", sc.Name, f, p.Step))
		}
		if r := p.RecoverOf(sc); p.Step > 0 && r != p.Recover && r%p.Step != 0 {
			errs = append(errs, fmt.Errorf("scenario %s: its recovery of %v must be a multiple of the step %v", sc.Name, r, p.Step))
		}
	}
	for _, gt := range p.Truth() {
		if err := gt.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// FaultOf is the length of sc's fault phase: the plan's Fault, or longer
// when the scenario needs more time for its symptoms to build up
// (Scenario.MinFault).
func (p *Plan) FaultOf(sc *Scenario) time.Duration {
	if sc == nil {
		return p.Fault
	}
	return max(p.Fault, sc.MinFault)
}

// RecoverOf is the length of sc's recovery phase: the plan's Recover, or
// longer when the detecting alerts take longer to resolve
// (Scenario.MinRecover).
func (p *Plan) RecoverOf(sc *Scenario) time.Duration {
	if sc == nil {
		return p.Recover
	}
	return max(p.Recover, sc.MinRecover)
}

// lengthOf is the length of sc: healthy + fault + recover.
func (p *Plan) lengthOf(sc *Scenario) time.Duration {
	return p.Healthy + p.FaultOf(sc) + p.RecoverOf(sc)
}

// Duration is the virtual length of the whole plan.
func (p *Plan) Duration() time.Duration {
	var d time.Duration
	for _, sc := range p.Scenarios {
		d += p.lengthOf(sc)
	}
	return d
}

// End is the virtual end of the plan.
func (p *Plan) End() time.Time { return p.Start.Add(p.Duration()) }

// At returns the scenario running at virtual offset off from Start, its
// phase and how long that phase has been running. ok is false outside the
// plan.
func (p *Plan) At(off time.Duration) (sc *Scenario, ph Phase, into time.Duration, ok bool) {
	if off < 0 {
		return nil, "", 0, false
	}
	for _, s := range p.Scenarios {
		l := p.lengthOf(s)
		if off >= l {
			off -= l
			continue
		}
		f := p.FaultOf(s)
		switch {
		case off < p.Healthy:
			return s, PhaseHealthy, off, true
		case off < p.Healthy+f:
			return s, PhaseFault, off - p.Healthy, true
		default:
			return s, PhaseRecover, off - p.Healthy - f, true
		}
	}
	return nil, "", 0, false
}

// Truth returns the ground truth of every scenario of the plan, in order.
func (p *Plan) Truth() []GroundTruth {
	out := make([]GroundTruth, 0, len(p.Scenarios))
	var off time.Duration
	for _, sc := range p.Scenarios {
		f := p.FaultOf(sc)
		gt := GroundTruth{
			Scenario:   sc.Name,
			Summary:    sc.Summary,
			Start:      p.Start.Add(off),
			Offset:     off,
			Healthy:    Window{0, p.Healthy},
			Fault:      Window{p.Healthy, p.Healthy + f},
			Length:     p.lengthOf(sc),
			Expect:     sc.expectations(p.Healthy, f),
			FaultStart: p.Start.Add(off + p.Healthy),
			FaultEnd:   p.Start.Add(off + p.Healthy + f),
		}
		out = append(out, gt)
		off += gt.Length
	}
	return out
}

// Window is a span of virtual time relative to a scenario's start.
type Window struct {
	Start time.Duration `json:"start"`
	End   time.Duration `json:"end"`
}

// Contains reports whether rel lies in [Start, End).
func (w Window) Contains(rel time.Duration) bool { return rel >= w.Start && rel < w.End }

// Expectation is one alert a scenario must raise: one of Rules, blaming the
// entity Blame, firing during Window.
type Expectation struct {
	// Rules are the alert names that detect the fault; any one of them
	// counts.
	Rules []string
	// Blame is the entity the alert must point at (entity.ID format).
	Blame string
	// Window is when the fault behind this expectation is injected,
	// relative to the scenario's start.
	Window Window
	// Settle is how long after Window's end the alert may keep firing and
	// still count as resolved, when that is later than the scenario's end:
	// alerts over long windows (an error budget's 30-minute burn rate, a
	// wallet's hourly burn) outlast their fault by definition. Zero: the
	// alert must resolve before the scenario ends.
	Settle time.Duration
}

// ResolveBy is the latest instant, relative to the scenario's start, at
// which an alert detecting e may resolve: the end of the scenario of
// length length, or the end of e's window plus its Settle when later.
func (e Expectation) ResolveBy(length time.Duration) time.Duration {
	return max(length, e.Window.End+e.Settle)
}

// GroundTruth is what a scenario injects and what a detector must find.
type GroundTruth struct {
	Scenario string
	Summary  string
	// Start is the scenario's virtual start; Offset the same relative to
	// the plan's start.
	Start  time.Time
	Offset time.Duration
	// Healthy and Fault are the phases relative to Start; the rest up to
	// Length is recovery.
	Healthy Window
	Fault   Window
	Length  time.Duration
	// FaultStart and FaultEnd are Fault in absolute virtual time.
	FaultStart, FaultEnd time.Time
	// Expect are the alerts the scenario must raise; an alert that fires
	// and matches none of them is a false positive.
	Expect []Expectation
}

// End is the scenario's absolute virtual end.
func (gt *GroundTruth) End() time.Time { return gt.Start.Add(gt.Length) }

// Validate checks that every expectation's window lies inside the fault
// phase and that every expectation names rules and a blamed entity.
func (gt *GroundTruth) Validate() error {
	var errs []error
	if len(gt.Expect) == 0 {
		errs = append(errs, fmt.Errorf("scenario %s: no expected alerts", gt.Scenario))
	}
	if gt.Healthy.Start != 0 || gt.Healthy.End != gt.Fault.Start || gt.Fault.End > gt.Length || gt.Fault.Start >= gt.Fault.End {
		errs = append(errs, fmt.Errorf("scenario %s: phases healthy %v fault %v length %v do not follow each other", gt.Scenario, gt.Healthy, gt.Fault, gt.Length))
	}
	for i, e := range gt.Expect {
		if len(e.Rules) == 0 || e.Blame == "" {
			errs = append(errs, fmt.Errorf("scenario %s: expectation %d: needs rules and a blamed entity", gt.Scenario, i))
		}
		if e.Settle < 0 {
			errs = append(errs, fmt.Errorf("scenario %s: expectation %d (%s): negative settle %v", gt.Scenario, i, strings.Join(e.Rules, "|"), e.Settle))
		}
		if e.Window.Start < gt.Fault.Start || e.Window.End > gt.Fault.End || e.Window.Start >= e.Window.End {
			errs = append(errs, fmt.Errorf("scenario %s: expectation %d (%s): window %v-%v outside the fault %v-%v",
				gt.Scenario, i, strings.Join(e.Rules, "|"), e.Window.Start, e.Window.End, gt.Fault.Start, gt.Fault.End))
		}
	}
	return errors.Join(errs...)
}

// truthDoc is the printed form of a GroundTruth: durations as Go duration
// strings, times in RFC 3339.
type truthDoc struct {
	Scenario   string           `json:"scenario" yaml:"scenario"`
	Summary    string           `json:"summary" yaml:"summary"`
	Start      string           `json:"start" yaml:"start"`
	Healthy    windowDoc        `json:"healthy" yaml:"healthy"`
	Fault      windowDoc        `json:"fault" yaml:"fault"`
	Length     string           `json:"length" yaml:"length"`
	Expect     []expectationDoc `json:"expect" yaml:"expect"`
	FaultStart string           `json:"fault_start" yaml:"fault_start"`
	FaultEnd   string           `json:"fault_end" yaml:"fault_end"`
}

type windowDoc struct {
	Start string `json:"start" yaml:"start"`
	End   string `json:"end" yaml:"end"`
}

type expectationDoc struct {
	Rules  []string  `json:"rules" yaml:"rules"`
	Blame  string    `json:"blame" yaml:"blame"`
	Window windowDoc `json:"window" yaml:"window"`
	Settle string    `json:"settle,omitempty" yaml:"settle,omitempty"`
}

func docWindow(w Window) windowDoc { return windowDoc{w.Start.String(), w.End.String()} }

func (gt *GroundTruth) doc() truthDoc {
	d := truthDoc{
		Scenario:   gt.Scenario,
		Summary:    gt.Summary,
		Start:      gt.Start.Format(time.RFC3339),
		Healthy:    docWindow(gt.Healthy),
		Fault:      docWindow(gt.Fault),
		Length:     gt.Length.String(),
		FaultStart: gt.FaultStart.Format(time.RFC3339),
		FaultEnd:   gt.FaultEnd.Format(time.RFC3339),
	}
	for _, e := range gt.Expect {
		ed := expectationDoc{Rules: e.Rules, Blame: e.Blame, Window: docWindow(e.Window)}
		if e.Settle > 0 {
			ed.Settle = e.Settle.String()
		}
		d.Expect = append(d.Expect, ed)
	}
	return d
}

// MarshalTruth prints ground truths as "json" or "yaml".
func MarshalTruth(truths []GroundTruth, format string) ([]byte, error) {
	docs := make([]truthDoc, len(truths))
	for i := range truths {
		docs[i] = truths[i].doc()
	}
	switch format {
	case "json":
		return json.MarshalIndent(docs, "", "  ")
	case "yaml":
		return yaml.Marshal(docs)
	default:
		return nil, fmt.Errorf("ground truth format %q: want json or yaml", format)
	}
}

// UnmarshalTruth reads ground truths printed by MarshalTruth (JSON or
// YAML; JSON is YAML), e.g. the file junction-sim -truth-out wrote.
func UnmarshalTruth(b []byte) ([]GroundTruth, error) {
	var docs []truthDoc
	if err := yaml.Unmarshal(b, &docs); err != nil {
		return nil, fmt.Errorf("ground truth: %w", err)
	}
	out := make([]GroundTruth, 0, len(docs))
	for i, d := range docs {
		gt, err := d.truth()
		if err != nil {
			return nil, fmt.Errorf("ground truth %d (%s): %w", i, d.Scenario, err)
		}
		out = append(out, gt)
	}
	return out, nil
}

func (d truthDoc) truth() (GroundTruth, error) {
	var errs []error
	tm := func(key, v string) time.Time {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		return t
	}
	dur := func(key, v string) time.Duration {
		x, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		return x
	}
	win := func(key string, w windowDoc) Window {
		return Window{dur(key+".start", w.Start), dur(key+".end", w.End)}
	}
	gt := GroundTruth{
		Scenario:   d.Scenario,
		Summary:    d.Summary,
		Start:      tm("start", d.Start),
		Healthy:    win("healthy", d.Healthy),
		Fault:      win("fault", d.Fault),
		Length:     dur("length", d.Length),
		FaultStart: tm("fault_start", d.FaultStart),
		FaultEnd:   tm("fault_end", d.FaultEnd),
	}
	for i, e := range d.Expect {
		ex := Expectation{Rules: e.Rules, Blame: e.Blame, Window: win(fmt.Sprintf("expect[%d].window", i), e.Window)}
		if e.Settle != "" {
			ex.Settle = dur(fmt.Sprintf("expect[%d].settle", i), e.Settle)
		}
		gt.Expect = append(gt.Expect, ex)
	}
	if len(errs) == 0 {
		if err := gt.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return gt, errors.Join(errs...)
}
