package correlationprocessor

import (
	"context"
	"errors"
	"sync"
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
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/graph"
)

// sharedProcessors holds the one processor instance per component id that
// the traces, metrics and logs pipelines share.
type sharedProcessors struct {
	mu sync.Mutex
	m  map[component.ID]*correlationProcessor
}

var shared = &sharedProcessors{m: map[component.ID]*correlationProcessor{}}

func (s *sharedProcessors) get(set processor.Settings, cfg *Config) (*correlationProcessor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.m[set.ID]; ok {
		return p, nil
	}
	p, err := newProcessor(set, cfg, time.Now)
	if err != nil {
		return nil, err
	}
	p.owner, p.id = s, set.ID
	s.m[set.ID] = p
	return p, nil
}

func (s *sharedProcessors) remove(id component.ID, p *correlationProcessor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[id] == p {
		delete(s.m, id)
	}
}

// correlationProcessor is the shared instance: it builds the graph from
// every pipeline it is in and emits derived metrics and alerts.
type correlationProcessor struct {
	cfg    *Config
	logger *zap.Logger
	graph  *graph.Graph
	tel    *telemetry
	// now is the clock; tests replace it.
	now func() time.Time

	owner *sharedProcessors
	id    component.ID

	// augment, when set, adds to every snapshot before it is handed out or
	// emitted (the cross-chain tracker's relayer features, with
	// graph.Merge). It runs outside the graph's lock on the snapshot copy.
	augment func(snap *entity.Snapshot, at time.Time)
	// evaluate, when set, runs after every tick with the tick's snapshot;
	// the rule engine hooks in here and emits through emitAlerts.
	evaluate func(ctx context.Context, snap *entity.Snapshot, now time.Time)

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
	return &correlationProcessor{
		cfg:    cfg,
		logger: set.Logger,
		graph:  graph.New(&cfg.Settings, tel),
		tel:    tel,
		now:    now,
	}, nil
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

// start starts the emit loop on the first pipeline's Start.
func (p *correlationProcessor) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refs++
	if p.refs > 1 {
		return
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go p.loop(p.stop, p.done)
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
		p.owner.remove(p.id, p)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *correlationProcessor) loop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(p.cfg.EmitInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := p.tick(context.Background(), p.now()); err != nil {
				p.logger.Warn("emitting derived metrics failed", zap.Error(err))
			}
		}
	}
}

// tick advances the graph to now and emits the derived metrics of its
// snapshot into the metrics pipelines. The snapshot is built under the
// graph's lock; encoding and sending happen outside it.
func (p *correlationProcessor) tick(ctx context.Context, now time.Time) error {
	snap := p.graph.Tick(now)
	if p.augment != nil {
		p.augment(snap, now)
	}
	var err error
	if next := p.metricsConsumers(); len(next) > 0 {
		md := pmetric.NewMetrics()
		graph.AppendDerived(md, snap, now)
		if md.ResourceMetrics().Len() > 0 {
			for _, n := range next {
				err = errors.Join(err, n.ConsumeMetrics(ctx, md))
			}
		}
	}
	if p.evaluate != nil {
		p.evaluate(ctx, snap, now)
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

// pipelineRef is one pipeline's handle on the shared processor.
type pipelineRef struct {
	p *correlationProcessor
}

func (r pipelineRef) Start(context.Context, component.Host) error {
	r.p.start()
	return nil
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
	t.p.graph.ConsumeTraces(td, t.p.now())
	return t.next.ConsumeTraces(ctx, td)
}

type metricsProcessor struct {
	pipelineRef
	next consumer.Metrics
}

func (m *metricsProcessor) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	m.p.graph.ConsumeMetrics(md, m.p.now())
	return m.next.ConsumeMetrics(ctx, md)
}

type logsProcessor struct {
	pipelineRef
	next consumer.Logs
}

func (l *logsProcessor) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	l.p.graph.ConsumeLogs(ld, l.p.now())
	return l.next.ConsumeLogs(ctx, ld)
}
