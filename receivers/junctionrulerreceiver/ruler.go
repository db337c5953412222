package junctionrulerreceiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/mergedgraph"
	"github.com/junction-sre/junction/internal/sharedcomponent"
	"github.com/junction-sre/junction/rules"
)

// rulers holds the one ruler per component id that the logs and metrics
// pipelines share: one rule manager, one alert state, one evaluation per
// group interval, whatever the number of pipelines.
var rulers sharedcomponent.Map[*ruler]

func getRuler(set receiver.Settings, cfg *Config) (*ruler, error) {
	return rulers.Get(set.ID, func() (*ruler, error) {
		r, err := newRuler(set, cfg)
		if err != nil {
			return nil, err
		}
		r.owner = &rulers
		return r, nil
	})
}

// ruler runs rules.Manager.Run on the merged graph and hands what each
// evaluation yields to its pipelines.
type ruler struct {
	cfg    *Config
	set    receiver.Settings
	logger *zap.Logger
	obs    *receiverhelper.ObsReport
	tel    *telemetry
	owner  *sharedcomponent.Map[*ruler]

	// newSource returns the snapshot source of the config; tests replace
	// it with a fake. client is the store's HTTP client.
	newSource func(cfg *StoreConfig, client *http.Client) (entity.Source, error)
	// noWatch is rules.Settings.NoWatch (tests under testing/synctest).
	noWatch bool

	mu      sync.Mutex // guards the fields below
	logs    consumer.Logs
	metrics consumer.Metrics
	refs    int
	cancel  context.CancelFunc
	done    chan struct{}
	manager *rules.Manager
}

func newRuler(set receiver.Settings, cfg *Config) (*ruler, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	tel, err := newTelemetry(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	r := &ruler{cfg: cfg, set: set, logger: set.Logger, obs: obs, tel: tel}
	r.newSource = r.storeSource
	return r, nil
}

// storeSource is the query-backed snapshot source over the store.
func (r *ruler) storeSource(cfg *StoreConfig, client *http.Client) (entity.Source, error) {
	return mergedgraph.New(mergedgraph.Config{URL: cfg.Endpoint, Lookback: cfg.Lookback, Client: client, EvidenceFailed: r.evidenceFailed})
}

// evidenceFailed is told when a snapshot's evidence could not be read
// (the rules run on it all the same; an alert keeps the evidence it had)
// or some of its items did not decode.
func (r *ruler) evidenceFailed(err error) {
	r.tel.evidenceFailures.Add(context.Background(), 1)
	r.logger.Warn("Evidence of the merged graph not read from the store, or not all of it; rules evaluated all the same, alerts without evidence keep the exemplars, log samples and stuck messages they had",
		zap.String("endpoint", r.cfg.Store.Endpoint), zap.Error(err))
}

func (r *ruler) setLogs(next consumer.Logs) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = next
}

func (r *ruler) setMetrics(next consumer.Metrics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metrics = next
}

// start loads the rule files and starts evaluating on the first
// pipeline's Start; a failed start leaves nothing running.
func (r *ruler) start(ctx context.Context, host component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs++
	if r.refs > 1 {
		return nil
	}
	src, m, err := r.startParts(ctx, host)
	if err != nil {
		r.refs = 0
		r.owner.Remove(r.set.ID, r)
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done, r.manager = cancel, make(chan struct{}), m
	go func(done chan struct{}) {
		defer close(done)
		// Run returns nil when its context is done, after saving the
		// alert state.
		_ = m.Run(runCtx, src, r.emit)
	}(r.done)
	return nil
}

func (r *ruler) startParts(ctx context.Context, host component.Host) (entity.Source, *rules.Manager, error) {
	client, err := r.cfg.Store.ToClient(ctx, host.GetExtensions(), r.set.TelemetrySettings)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	src, err := r.newSource(&r.cfg.Store, client)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	m, err := rules.NewManager(r.cfg.Rules.Manager(), rules.Settings{
		Logger:        r.logger.With(zap.String("part", "rules")),
		MeterProvider: r.set.MeterProvider,
		NoWatch:       r.noWatch,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("rules: the rule files do not load; fix them or change rules::files:\n%w", err)
	}
	return &timedSource{src: src, timeout: r.cfg.Store.Timeout, tel: r.tel, logger: r.logger, endpoint: r.cfg.Store.Endpoint}, m, nil
}

// shutdown stops evaluating on the last pipeline's Shutdown, once the
// evaluation under way is emitted and the alert state saved; further calls
// do nothing.
func (r *ruler) shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.refs == 0 {
		r.mu.Unlock()
		return nil
	}
	r.refs--
	if r.refs > 0 {
		r.mu.Unlock()
		return nil
	}
	cancel, done, m := r.cancel, r.done, r.manager
	r.cancel, r.done, r.manager = nil, nil, nil
	r.mu.Unlock()
	r.owner.Remove(r.set.ID, r)
	cancel()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return errors.Join(err, m.Close())
}

func (r *ruler) consumers() (consumer.Logs, consumer.Metrics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs, r.metrics
}

// emit is Run's notify: the alerts of one evaluation as junction.alert log
// records (alert.AppendLogs) into the logs pipeline, the ALERTS gauge
// (alert.AppendMetrics) and every rule's status (alert.AppendRuleStatus)
// into the metrics pipeline, as the correlation processor emits them.
func (r *ruler) emit(ctx context.Context, now time.Time, alerts []alert.Alert, status []alert.RuleStatus) {
	logs, metrics := r.consumers()
	if logs != nil && len(alerts) > 0 {
		ld := plog.NewLogs()
		alert.AppendLogs(ld, alerts)
		n := ld.LogRecordCount()
		octx := r.obs.StartLogsOp(ctx)
		err := logs.ConsumeLogs(octx, ld)
		r.obs.EndLogsOp(octx, typeStr, n, err)
		if err != nil {
			r.logger.Warn("Alert records not accepted by the logs pipeline", zap.Int("alerts", n), zap.Error(err))
		}
	}
	if metrics != nil {
		md := pmetric.NewMetrics()
		if len(alerts) > 0 {
			alert.AppendMetrics(md, alerts, now)
		}
		alert.AppendRuleStatus(md, status, now)
		if n := md.DataPointCount(); n > 0 {
			octx := r.obs.StartMetricsOp(ctx)
			err := metrics.ConsumeMetrics(octx, md)
			r.obs.EndMetricsOp(octx, typeStr, n, err)
			if err != nil {
				r.logger.Warn("ALERTS and rule status not accepted by the metrics pipeline", zap.Int("points", n), zap.Error(err))
			}
		}
	}
}

// timedSource bounds each snapshot by the store's timeout and counts the
// snapshots that could not be read (Run then skips that evaluation and
// keeps the alert state).
type timedSource struct {
	src      entity.Source
	timeout  time.Duration
	tel      *telemetry
	logger   *zap.Logger
	endpoint string
}

func (s *timedSource) Snapshot(ctx context.Context, at time.Time) (*entity.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	snap, err := s.src.Snapshot(ctx, at)
	if err != nil {
		s.tel.snapshotFailures.Add(ctx, 1)
		return nil, fmt.Errorf("the merged graph could not be read from store::endpoint %s: %w", s.endpoint, err)
	}
	return snap, nil
}

// pipelineRef is one pipeline's handle on the shared ruler: the ruler runs
// while any pipeline has started it and not shut it down. A second Start
// or Shutdown of the same pipeline does nothing.
type pipelineRef struct {
	r       *ruler
	mu      sync.Mutex
	started bool
}

func (p *pipelineRef) Start(ctx context.Context, host component.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return nil
	}
	if err := p.r.start(ctx, host); err != nil {
		return err
	}
	p.started = true
	return nil
}

func (p *pipelineRef) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return nil
	}
	p.started = false
	return p.r.shutdown(ctx)
}
