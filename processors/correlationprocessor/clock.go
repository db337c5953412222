package correlationprocessor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// Clock sources (clock::source).
const (
	// ClockWall reads the machine's clock: telemetry counts at its arrival
	// and the emit loop ticks every emit_interval of real time.
	ClockWall = "wall"
	// ClockTelemetry follows the timestamps of the telemetry itself: the
	// clock is the newest timestamp seen, and the processor ticks whenever
	// that clock moves past a multiple of emit_interval. A replay or a
	// simulation played faster than real time is then windowed, baselined
	// and evaluated exactly as it would be live.
	ClockTelemetry = "telemetry"
)

const defaultClockMaxStep = time.Hour

// ClockConfig is the clock section.
type ClockConfig struct {
	// Source is ClockWall (the default) or ClockTelemetry.
	Source string `mapstructure:"source"`
	// MaxStep bounds how far one batch may move the telemetry clock: a
	// batch whose newest timestamp lies further from the clock (ahead or
	// behind) is counted at the current clock and does not move it, unless
	// the next batch agrees with it, which makes the clock jump there
	// without ticking through the gap. A single bad timestamp therefore
	// cannot throw the clock away, and a replay that resumes after a pause
	// resynchronises after one batch.
	MaxStep time.Duration `mapstructure:"max_step"`
}

// validate checks the clock section. Not Validate: the collector would run
// it a second time without the clock:: prefix.
func (c *ClockConfig) validate() error {
	switch c.Source {
	case ClockWall, ClockTelemetry:
	default:
		return fmt.Errorf("clock::source: must be %q or %q, got %q", ClockWall, ClockTelemetry, c.Source)
	}
	if c.MaxStep <= 0 {
		return fmt.Errorf("clock::max_step must be positive, got %s", c.MaxStep)
	}
	return nil
}

// telemetryClock is the processor's clock under clock::source telemetry.
//
// Ordering: the graph sees ticks and telemetry in the order of their
// timestamps, and the ticks leave the processor (derived metrics to the
// next consumers, rule evaluation, alerts) in the order of their times.
// Consuming a batch therefore runs in two phases:
//
//  1. enter, under mu: the clock advances to the batch's newest timestamp;
//     at every emit boundary it passes, prepare advances the graph and
//     takes the tick's snapshot (in-memory work only); the batch is then
//     added to the graph and the cross-chain tracker; leave releases mu.
//  2. emit, with no lock held, by the goroutine whose batch advanced the
//     clock: the prepared ticks are encoded and sent and the rules
//     evaluated, in order. Each enter that prepares ticks takes a place
//     in a sequence (it waits for the channel the previous one closes), so
//     a later batch that passes the next boundary prepares its tick at
//     once but emits it only after the earlier ticks were emitted.
//
// A slow next consumer thus holds up the goroutine that emits (the
// backpressure the pipeline expects) and, behind it, the emission of later
// ticks, but never the intake of telemetry from other goroutines: no
// export, rule evaluation or storage write runs under mu.
type telemetryClock struct {
	interval, maxStep int64
	wall              func() time.Time
	// prepare runs under mu at every emit boundary the clock passes and
	// returns what emit sends; emit runs outside mu, in boundary order.
	// jumped runs when the clock jumps; outlier for a batch beyond
	// max_step.
	prepare func(at time.Time) preparedTick
	emit    func(t preparedTick)
	jumped  func(from, to time.Time)
	outlier func()

	now atomic.Int64 // unix nanos; 0 until the first timestamp

	mu      sync.Mutex
	next    int64 // the next emit boundary
	pending int64 // newest timestamp of a batch beyond max_step, or 0
	// emitted is closed once the ticks prepared last have been emitted;
	// the next ticks prepared wait for it.
	emitted chan struct{}
}

// clockTicks are the ticks one enter prepared, to emit after leave.
type clockTicks struct {
	ticks []preparedTick
	// prev is closed when the ticks prepared before these are emitted;
	// done is closed when these are.
	prev, done chan struct{}
}

// newTelemetryClock is p's telemetry clock: ticks run p.prepareTick and
// p.emitTick, failures and jumps are logged, outliers counted.
func newTelemetryClock(p *correlationProcessor, wall func() time.Time) *telemetryClock {
	emitted := make(chan struct{})
	close(emitted)
	return &telemetryClock{
		interval: int64(p.cfg.EmitInterval),
		maxStep:  int64(p.cfg.Clock.MaxStep),
		wall:     wall,
		prepare:  p.prepareTick,
		emit: func(t preparedTick) {
			if err := p.emitTick(context.Background(), t); err != nil {
				p.logger.Warn("emitting derived metrics failed", zap.Error(err))
			}
		},
		jumped: func(from, to time.Time) {
			p.logger.Warn("Telemetry clock jumped: two batches in a row lie further than clock::max_step from it; no ticks for the gap",
				zap.Time("from", from), zap.Time("to", to), zap.Duration("max_step", p.cfg.Clock.MaxStep))
		},
		outlier: func() { p.tel.clockOutliers.Add(bgCtx, 1) },
		emitted: emitted,
	}
}

// Now is the clock: the newest accepted telemetry timestamp, or the wall
// clock until telemetry with a timestamp has arrived.
func (c *telemetryClock) Now() time.Time {
	if n := c.now.Load(); n != 0 {
		return time.Unix(0, n).UTC()
	}
	return c.wall()
}

// enter moves the clock to latest (the newest timestamp of a batch about
// to be consumed, 0 when it has none), preparing a tick at every emit
// boundary it moves past (a boundary equal to latest ticks when the clock
// moves beyond it, so the tick sees the data stamped at it), and returns
// with the clock held. The caller adds the batch, calls leave and then
// emit with the ticks returned.
func (c *telemetryClock) enter(latest int64) clockTicks {
	c.mu.Lock()
	var out clockTicks
	cur := c.now.Load()
	switch {
	case latest <= 0:
	case cur == 0:
		c.set(latest)
	case latest <= cur && cur-latest <= c.maxStep:
		// Late or concurrent: counted at the clock.
		c.pending = 0
	case latest > cur && latest-cur <= c.maxStep:
		c.pending = 0
		for c.next < latest {
			c.now.Store(c.next)
			out.ticks = append(out.ticks, c.prepare(time.Unix(0, c.next).UTC()))
			c.next += c.interval
		}
		c.now.Store(latest)
	case c.pending != 0 && abs(latest-c.pending) <= c.maxStep:
		c.jumped(time.Unix(0, cur).UTC(), time.Unix(0, latest).UTC())
		c.set(latest)
	default:
		c.pending = latest
		c.outlier()
	}
	if len(out.ticks) > 0 {
		out.prev, out.done = c.emitted, make(chan struct{})
		c.emitted = out.done
	}
	return out
}

// leave releases the clock taken by enter.
func (c *telemetryClock) leave() { c.mu.Unlock() }

// emitTicks emits the ticks enter prepared, after the ticks prepared
// before them; call it after leave, exactly once per enter that returned
// ticks (a later tick's emission waits for it).
func (c *telemetryClock) emitTicks(t clockTicks) {
	if t.done == nil {
		return
	}
	defer close(t.done)
	<-t.prev
	for _, tk := range t.ticks {
		c.emit(tk)
	}
}

// set puts the clock at t without ticking; the next tick is the first emit
// boundary after t.
func (c *telemetryClock) set(t int64) {
	c.now.Store(t)
	c.next = (t/c.interval + 1) * c.interval
	c.pending = 0
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// latestSpan is the newest end (else start) timestamp of td's spans.
func latestSpan(td ptrace.Traces) int64 {
	var latest pcommon.Timestamp
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				latest = max(latest, s.EndTimestamp(), s.StartTimestamp())
			}
		}
	}
	return int64(latest)
}

// latestPoint is the newest data point timestamp of md.
func latestPoint(md pmetric.Metrics) int64 {
	var latest pcommon.Timestamp
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					for _, dp := range m.Gauge().DataPoints().All() {
						latest = max(latest, dp.Timestamp())
					}
				case pmetric.MetricTypeSum:
					for _, dp := range m.Sum().DataPoints().All() {
						latest = max(latest, dp.Timestamp())
					}
				case pmetric.MetricTypeHistogram:
					for _, dp := range m.Histogram().DataPoints().All() {
						latest = max(latest, dp.Timestamp())
					}
				case pmetric.MetricTypeExponentialHistogram:
					for _, dp := range m.ExponentialHistogram().DataPoints().All() {
						latest = max(latest, dp.Timestamp())
					}
				case pmetric.MetricTypeSummary:
					for _, dp := range m.Summary().DataPoints().All() {
						latest = max(latest, dp.Timestamp())
					}
				}
			}
		}
	}
	return int64(latest)
}

// latestRecord is the newest timestamp (else observed timestamp) of ld's
// log records.
func latestRecord(ld plog.Logs) int64 {
	var latest pcommon.Timestamp
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, r := range sl.LogRecords().All() {
				ts := r.Timestamp()
				if ts == 0 {
					ts = r.ObservedTimestamp()
				}
				latest = max(latest, ts)
			}
		}
	}
	return int64(latest)
}
