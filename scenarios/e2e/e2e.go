// Package e2e runs the scenario simulator into a real correlation
// processor in process, on a virtual clock, with the built-in rule packs,
// and scores the alerts it raises against the scenarios' ground truth
// (scenarios/detect). Its tests are Junction's end-to-end detection tests;
// the junction-detection command renders docs/detection.md from the same
// run.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"gopkg.in/yaml.v3"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/processors/correlationprocessor"
	"github.com/junction-sre/junction/rules"
	"github.com/junction-sre/junction/rules/packs"
	"github.com/junction-sre/junction/scenarios"
	"github.com/junction-sre/junction/scenarios/detect"
)

// RuleFiles are the rule files the run evaluates: the packs built into the
// binary, as in Junction's default config.
var RuleFiles = []string{rules.BuiltinPrefix + "packs"}

// Result is one detection run.
type Result struct {
	Plan  *scenarios.Plan
	Stats scenarios.Stats
	// Alerts are every alert record the processor emitted, in order.
	Alerts []alert.Alert
	// Ticks counts the processor's emit steps.
	Ticks int
}

// Options tune a run.
type Options struct {
	// TelemetryClock runs the processor on `clock::source: telemetry`, as
	// `make demo` runs Junction: the processor keeps time from the
	// timestamps of the simulated telemetry and ticks by itself whenever
	// they move past an emit boundary, instead of reading the virtual clock
	// and being ticked on it. Result.Ticks is then not counted.
	TelemetryClock bool
}

// Run plays plan unpaced into a correlation processor with the default
// configuration and the built-in rule packs. The processor reads the
// virtual clock as the arrival time of every batch, and ticks every
// emit_interval of virtual time, as the collector's emit loop would: the
// ticks that fall before a step's end are run before that step's data is
// delivered, then the data arrives at the step's end.
func Run(ctx context.Context, plan *scenarios.Plan) (*Result, error) {
	return RunWith(ctx, plan, Options{})
}

// RunWith is Run with options.
func RunWith(ctx context.Context, plan *scenarios.Plan, opts Options) (*Result, error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	cfg := correlationprocessor.DefaultConfig()
	cfg.Rules.Files = RuleFiles
	cfg.Rules.ReloadInterval = 0
	sink := &alertSink{}
	var now time.Time
	set := correlationprocessor.EmbeddedSettings{
		Config: cfg,
		Now:    func() time.Time { return now },
		Logs:   sink,
	}
	if opts.TelemetryClock {
		cfg.Clock.Source = correlationprocessor.ClockTelemetry
		set.Now = nil
	}
	p, err := correlationprocessor.NewEmbedded(ctx, set)
	if err != nil {
		return nil, fmt.Errorf("starting the correlation processor: %w", err)
	}
	res := &Result{Plan: plan}
	interval := p.EmitInterval()
	next := plan.Start.Add(interval)
	tickUntil := func(ctx context.Context, t time.Time, inclusive bool) error {
		for !opts.TelemetryClock && (next.Before(t) || (inclusive && next.Equal(t))) {
			now = next
			if err := p.Tick(ctx, next); err != nil {
				return fmt.Errorf("tick at %s: %w", next.Format(time.RFC3339), err)
			}
			res.Ticks++
			next = next.Add(interval)
		}
		now = t
		return ctx.Err()
	}
	clock := scenarios.ClockFunc(func(ctx context.Context, t time.Time) error {
		return tickUntil(ctx, t, false)
	})
	res.Stats, err = scenarios.Run(ctx, plan, p, clock)
	if err == nil {
		err = tickUntil(ctx, plan.End(), true)
	}
	err = errors.Join(err, p.Shutdown(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, err
	}
	if err := sink.err(); err != nil {
		return nil, err
	}
	res.Alerts = sink.alerts
	return res, nil
}

// Score scores the run with opts.
func (r *Result) Score(opts detect.Options) detect.Report {
	return detect.Score(r.Plan.Truth(), r.Alerts, opts)
}

// Command regenerates the simulator part of docs/detection.md in place,
// keeping the real-app section (from RealAppMarker on).
const Command = "go run ./scenarios/cmd/junction-detection -w docs/detection.md"

// RealAppMarker is the line of docs/detection.md from which on the
// document is another command's (the detection results on a real
// instrumented application); junction-detection -w keeps it as it is.
const RealAppMarker = "<!-- real-app -->"

// DocPlan is the plan docs/detection.md is generated from: every scenario
// with the default timing and start, and the given seed.
func DocPlan(seed uint64) (*scenarios.Plan, error) {
	plan, err := scenarios.NewPlan("all")
	if err != nil {
		return nil, err
	}
	plan.Seed = seed
	return plan, nil
}

// Document renders the simulator part of docs/detection.md for the run,
// naming Command (and the seed when it is not the default) as the way to
// regenerate it.
func Document(r *Result) string {
	cmd := Command
	if r.Plan.Seed != scenarios.DefaultSeed {
		cmd = fmt.Sprintf("go run ./scenarios/cmd/junction-detection -seed %d -w docs/detection.md", r.Plan.Seed)
	}
	doc := detect.Document(r.Plan, r.Score(ScoreOptions()), cmd, RealAppMarker)
	bounds, err := boundsMarkdown(r.Plan)
	if err != nil {
		return doc + "\nDetection bounds: " + err.Error() + "\n"
	}
	return doc + bounds
}

// DemoSpeed is how many times faster than real time `make demo` plays the
// demo plan: its 3 hours in 12 minutes. Junction keeps time from the
// telemetry's timestamps (`clock::source: telemetry`) to follow it.
const DemoSpeed = 15

// DemoPlan is the plan `make demo` plays from start: the named scenarios
// (every scenario when none is named), with the timing of
// docs/detection.md, so that the demo of every scenario scores as
// documented.
func DemoPlan(start time.Time, names ...string) (*scenarios.Plan, error) {
	if len(names) == 0 {
		names = []string{"all"}
	}
	plan, err := scenarios.NewPlan(names...)
	if err != nil {
		return nil, err
	}
	plan.Start = start
	return plan, plan.Validate()
}

// DemoStart is the virtual start that makes a plan of duration d, played
// from the real instant now at speed, end at the real instant it finishes:
// the telemetry is never stamped ahead of the real clock, which Junction's
// store and API read for "now".
func DemoStart(now time.Time, d time.Duration, speed float64) time.Time {
	real := time.Duration(float64(d) / speed)
	return now.Add(real - d).Truncate(scenarios.DefaultStep)
}

// ScoreOptions are the options docs/detection.md is scored with: a firing
// counts as a detection up to `for` plus two evaluation intervals of its
// rule after its window ends, and at least 2 minutes: a condition that
// still holds when the fault ends fires that much later.
func ScoreOptions() detect.Options {
	opts := detect.DefaultOptions()
	timings, err := PackTimings()
	if err != nil {
		// The packs are embedded; TestPackTimings fails on this. Score
		// with the default grace meanwhile.
		return opts
	}
	opts.RuleGrace = make(map[string]time.Duration, len(timings))
	for rule, t := range timings {
		if b := t.Bound(); b > opts.Grace {
			opts.RuleGrace[rule] = b
		}
	}
	return opts
}

// SpliceDocument returns the document generated followed by the part of
// the existing document old from the line RealAppMarker on (nothing when
// old has no such line): what junction-detection -w writes.
func SpliceDocument(generated string, old []byte) string {
	rest := ""
	for off := 0; off < len(old); {
		end := bytes.IndexByte(old[off:], '\n')
		line := old[off:]
		if end >= 0 {
			line = old[off : off+end]
		}
		if strings.TrimSpace(string(line)) == RealAppMarker {
			rest = string(old[off:])
			break
		}
		if end < 0 {
			break
		}
		off += end + 1
	}
	if rest == "" {
		return generated
	}
	return strings.TrimRight(generated, "\n") + "\n\n" + rest
}

// alertSink decodes the alert records the processor emits.
type alertSink struct {
	mu     sync.Mutex
	alerts []alert.Alert
	errs   []error
}

func (s *alertSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *alertSink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	as, err := detect.AlertsFromLogs(ld)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alerts = append(s.alerts, as...)
	if err != nil && len(s.errs) < 10 {
		s.errs = append(s.errs, err)
	}
	return nil
}

func (s *alertSink) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// RuleTiming is how long a rule of the packs takes to fire at least: its
// group's evaluation interval and its `for`.
type RuleTiming struct {
	File     string
	Group    string
	Interval time.Duration
	For      time.Duration
}

// Bound is `for` plus two evaluation intervals: how soon after its
// condition holds the rule must fire.
func (t RuleTiming) Bound() time.Duration { return t.For + 2*t.Interval }

// PackTimings reads every rule's group interval and `for` from the
// built-in packs (rules/packs), by alert name.
func PackTimings() (map[string]RuleTiming, error) {
	files, err := fs.Glob(packs.FS, "*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	type ruleDoc struct {
		Alert string `yaml:"alert"`
		For   string `yaml:"for"`
	}
	type doc struct {
		Groups []struct {
			Name     string    `yaml:"name"`
			Interval string    `yaml:"interval"`
			Rules    []ruleDoc `yaml:"rules"`
		} `yaml:"groups"`
	}
	out := map[string]RuleTiming{}
	for _, f := range files {
		data, err := fs.ReadFile(packs.FS, f)
		if err != nil {
			return nil, err
		}
		var d doc
		if err := yaml.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("rules/packs/%s: %w", f, err)
		}
		for _, g := range d.Groups {
			iv, err := parseDur(g.Interval)
			if iv == 0 {
				iv = rules.DefaultGroupInterval
			}
			if err != nil {
				return nil, fmt.Errorf("rules/packs/%s: group %s: interval: %w", f, g.Name, err)
			}
			for _, r := range g.Rules {
				fd, err := parseDur(r.For)
				if err != nil {
					return nil, fmt.Errorf("rules/packs/%s: rule %s: for: %w", f, r.Alert, err)
				}
				out[r.Alert] = RuleTiming{File: f, Group: g.Name, Interval: iv, For: fd}
			}
		}
	}
	return out, nil
}

func parseDur(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
