// Command junction-demo is the live view of `make demo`: it plays the
// scenarios (scenarios/e2e.DemoPlan: all six, 3 hours of simulated time)
// at 15 times real speed into Junction over OTLP/gRPC, and prints the
// alerts Junction raises as they fire and resolve, with the blamed entity
// and a summary of the evidence, read from the junction exporter's API
// (docs/api.md). It exits when the scenarios are over.
//
// Played faster than real time, the telemetry is stamped in the past, so
// that it ends at the real instant the demo ends, and Junction must keep
// time from those stamps (`clock::source: telemetry`, as scripts/demo.sh
// starts it). Lines are prefixed with the simulated time.
//
//	junction-demo -endpoint 127.0.0.1:4317 -api http://127.0.0.1:8480
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/junction-sre/junction/scenarios"
	"github.com/junction-sre/junction/scenarios/detect"
	"github.com/junction-sre/junction/scenarios/e2e"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, time.Now); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		if ctx.Err() != nil {
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "junction-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("junction-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", "127.0.0.1:4317", "Junction's OTLP/gRPC endpoint")
	api := fs.String("api", "http://127.0.0.1:8480", "Junction's query API (junction exporter)")
	seed := fs.Uint64("seed", scenarios.DefaultSeed, "simulator seed")
	speed := fs.Float64("speed", e2e.DemoSpeed, "virtual seconds per real second; above 1, Junction must run with clock::source telemetry")
	only := fs.String("scenarios", "", "comma-separated scenarios to play (default all: "+strings.Join(scenarios.Names(), ",")+")")
	timeout := fs.Duration("timeout", 30*time.Second, "per-export timeout, including waiting for Junction to come up")
	pending := fs.Bool("pending", false, "also show alerts going pending, and pending ones clearing without firing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *speed <= 0 {
		return fmt.Errorf("-speed %v: must be positive", *speed)
	}
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	plan, err := e2e.DemoPlan(now().UTC(), names...)
	if err != nil {
		return fmt.Errorf("-scenarios: %w", err)
	}
	plan.Start = e2e.DemoStart(now().UTC(), plan.Duration(), *speed)
	plan.Seed = *seed
	sink, err := scenarios.DialOTLP(*endpoint)
	if err != nil {
		return fmt.Errorf("-endpoint: %w", err)
	}
	defer sink.Close()
	sink.Timeout = *timeout

	// The view prints the simulated time: the time of the last step sent.
	var simNow atomic.Int64
	simNow.Store(plan.Start.UnixNano())
	v := newView(stdout, *api, func() time.Time { return time.Unix(0, simNow.Load()) })
	v.showPending, v.since = *pending, plan.Start
	v.printf("junction-demo: %d scenarios, %v at %vx speed (%v), into %s; alerts from %s; times are simulated",
		len(plan.Scenarios), plan.Duration(), *speed, time.Duration(float64(plan.Duration()) / *speed).Round(time.Second), *endpoint, *api)
	vctx, stopView := context.WithCancel(ctx)
	viewDone := make(chan struct{})
	go func() {
		defer close(viewDone)
		v.watch(vctx)
	}()

	p := newProgress(v, plan)
	stats, err := scenarios.RunWithOptions(ctx, plan, sink, &scenarios.Paced{Speed: *speed, Start: plan.Start},
		scenarios.Options{Progress: func(s scenarios.Step) {
			simNow.Store(s.Time.UnixNano())
			p.step(s)
		}})
	// Let the last resolutions arrive before the view stops: two steps,
	// and at least the time Junction's pipeline takes to hand an alert
	// record to its store (the batch processor's timeout and the store's
	// stream).
	if err == nil {
		select {
		case <-ctx.Done():
		case <-time.After(max(time.Duration(float64(2*plan.Step) / *speed), 2*time.Second)):
		}
	}
	stopView()
	<-viewDone
	if err != nil {
		return err
	}
	fired, resolved := v.counts()
	v.printf("scenarios done: %d steps, %d spans, %d points, %d log records sent; %d alerts fired, %d resolved",
		stats.Steps, stats.Spans, stats.Points, stats.Records, fired, resolved)
	if records, dropped := v.shown(); len(records) > 0 {
		rep := detect.Score(plan.Truth(), records, detect.DefaultOptions())
		v.printf("score against the ground truth: %s", rep.Summary())
		for _, sr := range rep.Scenarios {
			line := fmt.Sprintf("  %-10s recall %s, latency %v, resolved %v, healthy false positives %d",
				sr.Scenario, pct(sr.Recall), sr.Latency.Round(time.Second), sr.Resolved, sr.HealthyFalsePositives)
			v.printf("%s", line)
		}
		if dropped > 0 {
			v.printf("  (%d alert records beyond the first %d were not scored)", dropped, maxTracked)
		}
	}
	return nil
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", v*100)
}

// progress prints each phase change of the plan.
type progress struct {
	v     *view
	truth []scenarios.GroundTruth
	last  string
}

func newProgress(v *view, plan *scenarios.Plan) *progress {
	return &progress{v: v, truth: plan.Truth()}
}

func (p *progress) step(s scenarios.Step) {
	key := s.Scenario + "/" + string(s.Phase)
	if key == p.last {
		return
	}
	p.last = key
	for i, gt := range p.truth {
		if gt.Scenario != s.Scenario {
			continue
		}
		var until time.Time
		switch s.Phase {
		case scenarios.PhaseHealthy:
			until = gt.FaultStart
		case scenarios.PhaseFault:
			until = gt.FaultEnd
		default:
			until = gt.End()
		}
		line := fmt.Sprintf("── [%d/%d] %s: %s until %s", i+1, len(p.truth), gt.Scenario, s.Phase, until.Local().Format("15:04:05"))
		if s.Phase == scenarios.PhaseFault {
			line += " ── " + gt.Summary
			for _, e := range gt.Expect {
				line += fmt.Sprintf("\n            expect %v → %s", e.Rules, e.Blame)
			}
		}
		p.v.printf("%s", line)
		return
	}
}
