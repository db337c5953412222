// Command junction-sim plays Junction's scenarios: a simulated shop behind
// an edge proxy, with Postgres, a Kafka-fed dashboard and a cross-chain
// relayer, healthy and then with injected faults, sent as OTLP over gRPC.
//
//	junction-sim -endpoint 127.0.0.1:4317 -scenario surge,database -speed 10
//	junction-sim -print-truth yaml
//
// See docs/scenarios.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/junction-sre/junction/scenarios"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, time.Now); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "junction-sim:", err)
		os.Exit(1)
	}
}

type config struct {
	endpoint   string
	scenario   string
	start      string
	printTruth string
	truthOut   string
	quiet      bool
	progress   string
	speed      float64
	timeout    time.Duration
}

// run parses args, builds the plan and plays it. now picks the virtual
// start when -start is "now"; it is never used while generating.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	plan, err := scenarios.NewPlan("all")
	if err != nil {
		return err
	}
	var c config
	fs := flag.NewFlagSet("junction-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.endpoint, "endpoint", "127.0.0.1:4317", "OTLP/gRPC endpoint (host:port, plaintext)")
	fs.StringVar(&c.scenario, "scenario", "all", "scenarios to play, comma-separated, in order: all or "+strings.Join(scenarios.Names(), ","))
	fs.Uint64Var(&plan.Seed, "seed", plan.Seed, "random seed: the same seed and flags give the same telemetry")
	fs.Float64Var(&c.speed, "speed", 1, "virtual seconds per real second; 0 = as fast as the endpoint takes it")
	fs.DurationVar(&plan.Healthy, "healthy", plan.Healthy, "length of each scenario's healthy phase")
	fs.DurationVar(&plan.Fault, "fault", plan.Fault, "length of each scenario's fault phase")
	fs.DurationVar(&plan.Recover, "recover", plan.Recover, "length of each scenario's recovery phase")
	fs.DurationVar(&plan.Step, "step", plan.Step, "virtual time between batches (the scrape interval)")
	fs.Float64Var(&plan.EdgeRate, "rate", plan.EdgeRate, "healthy requests per second at the edge proxy")
	fs.StringVar(&c.start, "start", "now", `virtual start time, RFC 3339, or "now" (rounded down to the step)`)
	fs.StringVar(&c.printTruth, "print-truth", "", "print the plan's ground truth as yaml or json and exit")
	fs.StringVar(&c.truthOut, "truth-out", "", "also write the ground truth as JSON to this file before playing")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "per-export timeout, including waiting for the endpoint")
	fs.BoolVar(&c.quiet, "quiet", false, "print only the final summary")
	fs.StringVar(&c.progress, "progress", "text", "phase changes as text lines or json lines (scenario, phase, time, fault window)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if plan.Scenarios, err = scenarios.Select(c.scenario); err != nil {
		return fmt.Errorf("-scenario: %w", err)
	}
	if c.progress != "text" && c.progress != "json" {
		return fmt.Errorf("-progress %q: want text or json", c.progress)
	}
	if c.speed < 0 {
		return fmt.Errorf("-speed %v: must be 0 or positive", c.speed)
	}
	if c.start == "now" {
		plan.Start = now().UTC().Truncate(max(plan.Step, time.Second))
	} else if plan.Start, err = time.Parse(time.RFC3339, c.start); err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	if err := plan.Validate(); err != nil {
		return fmt.Errorf("invalid flags: %w", err)
	}

	if c.printTruth != "" {
		b, err := scenarios.MarshalTruth(plan.Truth(), c.printTruth)
		if err != nil {
			return fmt.Errorf("-print-truth: %w", err)
		}
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	if c.truthOut != "" {
		b, err := scenarios.MarshalTruth(plan.Truth(), "json")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.truthOut, b, 0o644); err != nil {
			return fmt.Errorf("-truth-out: %w", err)
		}
	}

	sink, err := scenarios.DialOTLP(c.endpoint)
	if err != nil {
		return fmt.Errorf("-endpoint: %w", err)
	}
	defer sink.Close()
	sink.Timeout = c.timeout

	if c.progress == "text" {
		fmt.Fprintf(stdout, "junction-sim: %d scenario(s) (%s), %v virtual from %s, seed %d, speed %v, to %s\n",
			len(plan.Scenarios), c.scenario, plan.Duration(), plan.Start.Format(time.RFC3339), plan.Seed, c.speed, c.endpoint)
	}
	var last string
	truth := map[string]scenarios.GroundTruth{}
	for _, gt := range plan.Truth() {
		truth[gt.Scenario] = gt
	}
	enc := json.NewEncoder(stdout)
	opts := scenarios.Options{Progress: func(s scenarios.Step) {
		if c.quiet {
			return
		}
		key := s.Scenario + "/" + string(s.Phase)
		if key == last {
			return
		}
		last = key
		began := s.Time.Add(-plan.Step)
		if c.progress == "json" {
			gt := truth[s.Scenario]
			_ = enc.Encode(phaseEvent{Time: began, Scenario: s.Scenario, Phase: string(s.Phase),
				FaultStart: gt.FaultStart, FaultEnd: gt.FaultEnd, End: gt.End()})
			return
		}
		fmt.Fprintf(stdout, "%s  %-10s %-8s phase\n", began.Format(time.RFC3339), s.Scenario, s.Phase)
	}}
	clock := scenarios.Clock(scenarios.Unpaced)
	if c.speed > 0 {
		clock = &scenarios.Paced{Speed: c.speed, Start: plan.Start}
	}
	st, err := scenarios.RunWithOptions(ctx, plan, sink, clock, opts)
	if c.progress == "json" {
		_ = enc.Encode(struct {
			Done    bool  `json:"done"`
			Steps   int   `json:"steps"`
			Spans   int   `json:"spans"`
			Points  int   `json:"points"`
			Records int   `json:"records"`
			Err     error `json:"-"`
		}{true, st.Steps, st.Spans, st.Points, st.Records, err})
		return err
	}
	fmt.Fprintf(stdout, "junction-sim: %d steps, %d spans, %d data points, %d log records sent", st.Steps, st.Spans, st.Points, st.Records)
	if st.DroppedMessages > 0 {
		fmt.Fprintf(stdout, ", %d messages not tracked (bounded queues full)", st.DroppedMessages)
	}
	fmt.Fprintln(stdout)
	return err
}

// phaseEvent is one -progress json line: a scenario entering a phase.
type phaseEvent struct {
	Time       time.Time `json:"time"`
	Scenario   string    `json:"scenario"`
	Phase      string    `json:"phase"`
	FaultStart time.Time `json:"fault_start"`
	FaultEnd   time.Time `json:"fault_end"`
	End        time.Time `json:"end"`
}
