package correlationprocessor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/derived"
	"github.com/junction-sre/junction/internal/mergedgraph"
	"github.com/junction-sre/junction/internal/sharedcomponent"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/graph"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/xchain"
	"github.com/junction-sre/junction/rules"
)

// shared holds the one processor instance per component id that the
// traces, metrics and logs pipelines share.
var shared sharedcomponent.Map[*correlationProcessor]

func getShared(set processor.Settings, cfg *Config) (*correlationProcessor, error) {
	return shared.Get(set.ID, func() (*correlationProcessor, error) {
		p, err := newProcessor(set, cfg, time.Now)
		if err != nil {
			return nil, err
		}
		p.owner, p.id = &shared, set.ID
		return p, nil
	})
}

// correlationProcessor is the shared instance: it builds the graph from
// every pipeline it is in and emits derived metrics and alerts.
type correlationProcessor struct {
	cfg    *Config
	logger *zap.Logger
	graph  *graph.Graph
	tel    *telemetry
	telset component.TelemetrySettings
	// now is the clock; tests replace it. Under clock::source telemetry it
	// is clock.Now.
	now   func() time.Time
	clock *telemetryClock // nil under the wall clock
	// ticker returns the emit loop's ticks and their stop function; tests
	// replace it and call tick themselves.
	ticker func(d time.Duration) (<-chan time.Time, func())

	owner *sharedcomponent.Map[*correlationProcessor]
	id    component.ID

	// augment, when set, adds to every snapshot before it is handed out or
	// emitted (the cross-chain tracker's relayer features, with
	// graph.Merge). It runs outside the graph's lock on the snapshot copy.
	augment func(snap *entity.Snapshot, at time.Time)
	// evaluate, when set, runs after every tick with the tick's snapshot;
	// the rule engine hooks in here and emits through emitAlerts.
	evaluate func(ctx context.Context, snap *entity.Snapshot, now time.Time)

	// xchain and rules are created by the first Start and kept until the
	// last Shutdown; nil before and after. The consume paths and hooks
	// load them without taking mu.
	xchain atomic.Pointer[xchain.Tracker]
	rules  atomic.Pointer[rules.Manager]
	// relayerMetrics are the metric names the cross-chain tracker reads.
	relayerMetrics map[string]bool
	// hist turns cumulative relayer histograms into the mean of their new
	// observations.
	hist *histMeans

	mu          sync.Mutex // guards the fields below
	metricsNext []consumer.Metrics
	logsNext    []consumer.Logs
	refs        int
	stop        chan struct{}
	done        chan struct{}
}

var _ entity.Source = (*correlationProcessor)(nil)

func newProcessor(set processor.Settings, cfg *Config, now func() time.Time) (*correlationProcessor, error) {
	tel, err := newTelemetry(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	p := &correlationProcessor{
		cfg:            cfg,
		logger:         set.Logger,
		graph:          graph.New(cfg.Graph(), tel),
		tel:            tel,
		telset:         set.TelemetrySettings,
		now:            now,
		ticker:         realTicker,
		relayerMetrics: relayerMetricNames(cfg.XChain.Metrics.LatestHeight, cfg.XChain.Metrics.FinalizedHeight),
		hist:           newHistMeans(cfg.XChain.MaxMetricScopes, cfg.XChain.MetricStaleness, tel),
	}
	p.augment = p.augmentXChain
	if cfg.Clock.Source == ClockTelemetry {
		p.clock = newTelemetryClock(p, now)
		p.now = p.clock.Now
		p.ticker = noTicker
	}
	if cfg.Rules.Enabled() {
		p.evaluate = p.evaluateRules
	}
	return p, nil
}

func (p *correlationProcessor) setTraces(consumer.Traces) {}

func (p *correlationProcessor) setMetrics(next consumer.Metrics) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.metricsNext = append(p.metricsNext, next)
}

func (p *correlationProcessor) setLogs(next consumer.Logs) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logsNext = append(p.logsNext, next)
}

// start starts the cross-chain tracker, the rule manager and the emit loop
// on the first pipeline's Start. A failed start leaves nothing running.
func (p *correlationProcessor) start(ctx context.Context, host component.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refs++
	if p.refs > 1 {
		return nil
	}
	if err := p.startParts(ctx, host); err != nil {
		p.refs = 0
		if p.owner != nil {
			p.owner.Remove(p.id, p)
		}
		return err
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go p.loop(p.stop, p.done)
	return nil
}

// startParts creates and starts the cross-chain tracker and the rule
// manager.
func (p *correlationProcessor) startParts(ctx context.Context, host component.Host) error {
	tr, err := p.startXChain(ctx, host)
	if err != nil {
		return err
	}
	if p.cfg.Rules.Enabled() {
		m, err := rules.NewManager(p.cfg.Rules.Manager(), rules.Settings{
			Logger:        p.logger.With(zap.String("part", "rules")),
			MeterProvider: p.telset.MeterProvider,
			Now:           func() time.Time { return p.now() },
		})
		if err != nil {
			err = fmt.Errorf("rules: the rule files do not load; fix them or change rules::files:\n%w", err)
			return errors.Join(err, tr.Shutdown(ctx))
		}
		p.rules.Store(m)
	}
	p.xchain.Store(tr)
	return nil
}

// stopParts saves the alert state and shuts the cross-chain tracker down.
func (p *correlationProcessor) stopParts(ctx context.Context) error {
	var err error
	if m := p.rules.Swap(nil); m != nil {
		if serr := m.SaveState(); serr != nil {
			err = fmt.Errorf("rules::state_file: %w", serr)
		}
		err = errors.Join(err, m.Close())
	}
	if tr := p.xchain.Swap(nil); tr != nil {
		err = errors.Join(err, tr.Shutdown(ctx))
	}
	return err
}

// shutdown stops the emit loop on the last pipeline's Shutdown; further
// calls do nothing.
func (p *correlationProcessor) shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.refs == 0 {
		p.mu.Unlock()
		return nil
	}
	p.refs--
	if p.refs > 0 {
		p.mu.Unlock()
		return nil
	}
	stop, done := p.stop, p.done
	p.mu.Unlock()
	close(stop)
	if p.owner != nil {
		p.owner.Remove(p.id, p)
	}
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return errors.Join(err, p.stopParts(ctx))
}

func (p *correlationProcessor) loop(stop, done chan struct{}) {
	defer close(done)
	ticks, stopTicks := p.ticker(p.cfg.EmitInterval)
	defer stopTicks()
	// Rule files reload beside the ticks, as wherever rules run
	// (rules.Manager.RunReloads); the ticks evaluate them.
	ctx, cancel := context.WithCancel(context.Background())
	var reloads sync.WaitGroup
	if m := p.rules.Load(); m != nil {
		reloads.Go(func() { m.RunReloads(ctx) })
	}
	defer reloads.Wait()
	defer cancel()
	for {
		select {
		case <-stop:
			return
		case <-ticks:
			if err := p.tick(ctx, p.now()); err != nil {
				p.logger.Warn("emitting derived metrics failed", zap.Error(err))
			}
		}
	}
}

func realTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// noTicker never ticks: the telemetry clock, Embedded's caller or a test
// calls tick.
func noTicker(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }

// tick advances the graph to now and emits the derived metrics of its
// snapshot into the metrics pipelines, then evaluates the rules on it: the
// emit loop's tick, Embedded.Tick.
func (p *correlationProcessor) tick(ctx context.Context, now time.Time) error {
	return p.emitTick(ctx, p.prepareTick(now))
}

// preparedTick is a tick's snapshot, taken and not yet emitted.
type preparedTick struct {
	at   time.Time
	snap *entity.Snapshot
}

// prepareTick advances the graph to at and takes the tick's snapshot, with
// the cross-chain tracker's relayer features merged in. It is in-memory
// work only (the graph's and the tracker's locks are taken and released
// inside); the telemetry clock runs it under its lock so the snapshot
// holds exactly the telemetry stamped before at.
func (p *correlationProcessor) prepareTick(at time.Time) preparedTick {
	snap := p.graph.TickMergeable(at, p.cfg.MergeableSeries)
	if p.augment != nil {
		p.augment(snap, at)
	}
	return preparedTick{at: at, snap: snap}
}

// emitTick encodes the tick's derived metrics and sends them to the next
// metrics consumers, evaluates the rules on its snapshot (emitting alerts)
// and writes what the tracker has left to store (messages expired by the
// snapshot). It holds no lock of the processor's: a slow consumer delays
// only the caller.
func (p *correlationProcessor) emitTick(ctx context.Context, t preparedTick) error {
	var err error
	if next := p.metricsConsumers(); len(next) > 0 {
		md := pmetric.NewMetrics()
		derived.Append(md, t.snap, t.at)
		if p.cfg.MergeableSeries {
			mergedgraph.AppendSeries(md, t.snap, t.at, mergedgraph.EvidenceLimits{
				Exemplars: p.cfg.Limits.MaxExemplars, LogSamples: p.cfg.Limits.MaxLogSamples, Stuck: p.cfg.XChain.MaxEvidence,
			})
		}
		if md.ResourceMetrics().Len() > 0 {
			for _, n := range next {
				err = errors.Join(err, n.ConsumeMetrics(ctx, md))
			}
		}
	}
	if p.evaluate != nil {
		p.evaluate(ctx, t.snap, t.at)
	}
	if tr := p.xchain.Load(); tr != nil {
		if werr := tr.Flush(ctx); werr != nil {
			p.logger.Warn("Writing expired cross-chain messages failed", zap.Error(werr))
		}
	}
	return err
}

func (p *correlationProcessor) metricsConsumers() []consumer.Metrics {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.metricsNext
}

func (p *correlationProcessor) logsConsumers() []consumer.Logs {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logsNext
}

// Snapshot returns the entity graph as of at (entity.Source). The snapshot
// is sorted and never modified afterwards.
func (p *correlationProcessor) Snapshot(ctx context.Context, at time.Time) (*entity.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	snap := p.graph.Snapshot(at)
	if p.augment != nil {
		p.augment(snap, at)
	}
	return snap, nil
}

// emitAlerts sends alert records into the logs pipelines (alert.AppendLogs)
// and the ALERTS and rule status gauges into the metrics pipelines
// (alert.AppendMetrics, alert.AppendRuleStatus) of this processor.
func (p *correlationProcessor) emitAlerts(ctx context.Context, alerts []alert.Alert, status []alert.RuleStatus, now time.Time) error {
	var err error
	if next := p.logsConsumers(); len(next) > 0 && len(alerts) > 0 {
		ld := plog.NewLogs()
		alert.AppendLogs(ld, alerts)
		for _, n := range next {
			err = errors.Join(err, n.ConsumeLogs(ctx, ld))
		}
	}
	if next := p.metricsConsumers(); len(next) > 0 {
		md := pmetric.NewMetrics()
		if len(alerts) > 0 {
			alert.AppendMetrics(md, alerts, now)
		}
		alert.AppendRuleStatus(md, status, now)
		if md.ResourceMetrics().Len() > 0 {
			for _, n := range next {
				err = errors.Join(err, n.ConsumeMetrics(ctx, md))
			}
		}
	}
	return err
}

// writeXChain commits the cross-chain tracker's storage write of a batch
// (observeSpans, observeLogs), with no lock of the processor's held.
func (p *correlationProcessor) writeXChain(ctx context.Context, w *xchain.Write) {
	if err := w.Commit(ctx); err != nil {
		p.logger.Warn("Some cross-chain events were not recorded", zap.Error(err))
	}
}

// pipelineRef is one pipeline's handle on the shared processor.
type pipelineRef struct {
	p *correlationProcessor
}

func (r pipelineRef) Start(ctx context.Context, host component.Host) error {
	return r.p.start(ctx, host)
}

func (r pipelineRef) Shutdown(ctx context.Context) error { return r.p.shutdown(ctx) }

func (pipelineRef) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

type tracesProcessor struct {
	pipelineRef
	next consumer.Traces
}

func (t *tracesProcessor) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	c := t.p.clock
	var ticks clockTicks
	if c != nil {
		ticks = c.enter(latestSpan(td))
	}
	t.p.graph.ConsumeTraces(td, t.p.now())
	w := t.p.observeSpans(ctx, td)
	if c != nil {
		c.leave()
	}
	t.p.writeXChain(ctx, w)
	if c != nil {
		c.emitTicks(ticks)
	}
	return t.next.ConsumeTraces(ctx, td)
}

type metricsProcessor struct {
	pipelineRef
	next consumer.Metrics
}

func (m *metricsProcessor) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	c := m.p.clock
	var ticks clockTicks
	if c != nil {
		ticks = c.enter(latestPoint(md))
	}
	m.p.graph.ConsumeMetrics(md, m.p.now())
	m.p.observeRelayerMetrics(md)
	if c != nil {
		c.leave()
		c.emitTicks(ticks)
	}
	return m.next.ConsumeMetrics(ctx, md)
}

type logsProcessor struct {
	pipelineRef
	next consumer.Logs
}

func (l *logsProcessor) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	c := l.p.clock
	var ticks clockTicks
	if c != nil {
		ticks = c.enter(latestRecord(ld))
	}
	l.p.graph.ConsumeLogs(ld, l.p.now())
	w := l.p.observeLogs(ctx, ld)
	if c != nil {
		c.leave()
	}
	l.p.writeXChain(ctx, w)
	if c != nil {
		c.emitTicks(ticks)
	}
	return l.next.ConsumeLogs(ctx, ld)
}
