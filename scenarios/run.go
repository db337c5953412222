package scenarios

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Sink receives the generated batches. A collector processor or exporter
// that consumes all three signals satisfies it; Consumers adapts three
// separate consumers.
type Sink interface {
	ConsumeTraces(ctx context.Context, td ptrace.Traces) error
	ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error
	ConsumeLogs(ctx context.Context, ld plog.Logs) error
}

// Consumers is a Sink made of one consumer per signal; a nil consumer
// drops its signal.
type Consumers struct {
	Traces  consumer.Traces
	Metrics consumer.Metrics
	Logs    consumer.Logs
}

// ConsumeTraces implements Sink.
func (c Consumers) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if c.Traces == nil {
		return nil
	}
	return c.Traces.ConsumeTraces(ctx, td)
}

// ConsumeMetrics implements Sink.
func (c Consumers) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if c.Metrics == nil {
		return nil
	}
	return c.Metrics.ConsumeMetrics(ctx, md)
}

// ConsumeLogs implements Sink.
func (c Consumers) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if c.Logs == nil {
		return nil
	}
	return c.Logs.ConsumeLogs(ctx, ld)
}

// Clock paces a run. Before the batches of the step ending at virtual time
// t are handed to the sink, Run calls Wait(ctx, t); the clock returns when
// they are due. A test's clock can also use Wait as its hook to evaluate
// rules at virtual time t.
type Clock interface {
	Wait(ctx context.Context, t time.Time) error
}

// ClockFunc adapts a function to Clock.
type ClockFunc func(ctx context.Context, t time.Time) error

// Wait implements Clock.
func (f ClockFunc) Wait(ctx context.Context, t time.Time) error { return f(ctx, t) }

// Unpaced is the clock that never waits: the run goes as fast as the sink
// takes the batches.
var Unpaced Clock = ClockFunc(func(ctx context.Context, _ time.Time) error { return ctx.Err() })

// Paced plays virtual time at Speed virtual seconds per real second from
// the real instant of the first Wait, which stands for the virtual time
// Start (or, when Start is zero, the time of that first Wait). With Start
// set to the plan's start a step is delivered once it has fully elapsed,
// so data is never ahead of the real clock at speed 1. Speed 0 means
// unpaced. Only pacing reads the real clock; the generated data depends on
// the virtual clock alone.
type Paced struct {
	Speed float64
	Start time.Time
	// Now and Sleep default to the real clock; tests inject their own.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	realStart, virtStart time.Time
}

// Wait implements Clock.
func (p *Paced) Wait(ctx context.Context, t time.Time) error {
	if p.Speed <= 0 {
		return ctx.Err()
	}
	now, sleep := p.Now, p.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	if p.realStart.IsZero() {
		p.realStart, p.virtStart = now(), p.Start
		if p.virtStart.IsZero() {
			p.virtStart = t
		}
	}
	due := p.realStart.Add(time.Duration(float64(t.Sub(p.virtStart)) / p.Speed))
	if d := due.Sub(now()); d > 0 {
		return sleep(ctx, d)
	}
	return ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// Step is one step of a run as Progress reports it.
type Step struct {
	// Time is the virtual end of the step.
	Time     time.Time
	Scenario string
	Phase    Phase
	// Spans, Points and Records count what the step emitted.
	Spans, Points, Records int
}

// Options tune a run beyond its plan.
type Options struct {
	// Progress, when set, is called after every step.
	Progress func(Step)
}

// Stats are what a run emitted and what its bounded state dropped.
type Stats struct {
	Steps                  int
	Spans, Points, Records int
	// DroppedMessages counts cross-chain messages and stream events the
	// simulator did not track because its bounded queues were full.
	DroppedMessages int
}

// Run generates the plan's batches step by step in virtual time and hands
// each step's traces, metrics and logs to sink, pacing with clock. It
// stops at the first sink or clock error.
func Run(ctx context.Context, plan *Plan, sink Sink, clock Clock) (Stats, error) {
	return RunWithOptions(ctx, plan, sink, clock, Options{})
}

// RunWithOptions is Run with progress reporting.
func RunWithOptions(ctx context.Context, plan *Plan, sink Sink, clock Clock, opts Options) (Stats, error) {
	if plan == nil || sink == nil || clock == nil {
		return Stats{}, errors.New("scenarios: Run needs a plan, a sink and a clock")
	}
	if err := plan.Validate(); err != nil {
		return Stats{}, fmt.Errorf("scenarios: invalid plan: %w", err)
	}
	g := newGenerator(plan)
	var st Stats
	for off := time.Duration(0); off < plan.Duration(); off += plan.Step {
		b := g.step(off)
		end := plan.Start.Add(off + plan.Step)
		if err := clock.Wait(ctx, end); err != nil {
			return st, err
		}
		if b.traces.SpanCount() > 0 {
			if err := sink.ConsumeTraces(ctx, b.traces); err != nil {
				return st, fmt.Errorf("scenarios: traces at %s: %w", end.Format(time.RFC3339), err)
			}
		}
		if b.metrics.DataPointCount() > 0 {
			if err := sink.ConsumeMetrics(ctx, b.metrics); err != nil {
				return st, fmt.Errorf("scenarios: metrics at %s: %w", end.Format(time.RFC3339), err)
			}
		}
		if b.logs.LogRecordCount() > 0 {
			if err := sink.ConsumeLogs(ctx, b.logs); err != nil {
				return st, fmt.Errorf("scenarios: logs at %s: %w", end.Format(time.RFC3339), err)
			}
		}
		st.Steps++
		st.Spans += b.spans
		st.Points += b.points
		st.Records += b.records
		st.DroppedMessages = g.dropped
		if opts.Progress != nil {
			sc, ph, _, _ := plan.At(off)
			opts.Progress(Step{Time: end, Scenario: sc.Name, Phase: ph, Spans: b.spans, Points: b.points, Records: b.records})
		}
	}
	return st, nil
}
