package junctionexporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/exporters/junctionexporter/internal/alertmanager"
	"github.com/junction-sre/junction/exporters/junctionexporter/internal/api"
	"github.com/junction-sre/junction/exporters/junctionexporter/internal/metadata"
	"github.com/junction-sre/junction/exporters/junctionexporter/internal/store"
)

// The metrics and logs exporters of one component ID share one instance:
// one store, one API server, one notifier.
var (
	registryMu sync.Mutex
	registry   = map[component.ID]*junctionExporter{}
)

func shared(set exporter.Settings, cfg *Config) (*junctionExporter, error) {
	registryMu.Lock()
	defer registryMu.Unlock()
	e := registry[set.ID]
	if e == nil {
		e = &junctionExporter{cfg: cfg, set: set, now: time.Now}
		registry[set.ID] = e
	}
	e.users++
	return e, nil
}

type junctionExporter struct {
	cfg *Config
	set exporter.Settings
	now func() time.Time

	users     int // guarded by registryMu
	startOnce sync.Once
	startErr  error

	st       *store.Store
	hub      *api.Hub
	srv      *http.Server
	addr     net.Addr
	notifier *alertmanager.Notifier
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	reg      metric.Registration

	logsSkipped  atomic.Int64
	storeErrors  atomic.Int64
	shutdownDone bool // guarded by registryMu
}

func (e *junctionExporter) start(ctx context.Context, host component.Host) error {
	e.startOnce.Do(func() { e.startErr = e.doStart(ctx, host) })
	return e.startErr
}

func (e *junctionExporter) doStart(ctx context.Context, host component.Host) error {
	cfg := e.cfg
	st, err := store.Open(store.Options{
		Dir: cfg.Storage.Directory, Retention: cfg.Storage.Retention, FlushInterval: cfg.Storage.FlushInterval,
		MinFreeBytes: cfg.Storage.MinFreeBytes, MaxEntities: cfg.MaxEntities, MaxEdges: cfg.MaxEdges,
		MaxRules: cfg.MaxRules, EntityTTL: cfg.EntityTTL, MaxAlertInstances: cfg.Storage.MaxAlertInstances,
		MaxAlertHistory: cfg.Storage.MaxAlertHistory, AlertLogMaxBytes: cfg.Storage.AlertLogMaxBytes,
		GraphWindow: cfg.GraphCache.Window, GraphMaxSeries: cfg.GraphCache.MaxSeries, Now: e.now,
	})
	if err != nil {
		return fmt.Errorf("junction exporter: %w", err)
	}
	e.st = st
	e.hub = api.NewHub(cfg.API.MaxStreams)
	handler := api.NewHandler(st, e.hub, api.Options{BuildVersion: e.set.BuildInfo.Version, Now: e.now})
	srv, err := cfg.API.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, handler)
	if err != nil {
		st.Close()
		return fmt.Errorf("junction exporter: api: %w", err)
	}
	// The stream outlives api.write_timeout: the deadline is set per
	// response outside the collector's middleware (api.WriteDeadlines).
	srv.Handler = api.WriteDeadlines(api.JSONErrors(srv.Handler), srv.WriteTimeout)
	srv.WriteTimeout = 0
	ln, err := cfg.API.ToListener(ctx)
	if err != nil {
		st.Close()
		return fmt.Errorf("junction exporter: api.endpoint %q: %w", cfg.API.NetAddr.Endpoint, err)
	}
	e.srv, e.addr = srv, ln.Addr()
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel

	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.set.Logger.Error("junction API server stopped", zap.Error(err))
		}
	}()
	go func() {
		defer e.wg.Done()
		e.flushLoop(runCtx)
	}()

	if eps := cfg.Alertmanager.EndpointList(); len(eps) > 0 {
		am := cfg.Alertmanager
		n, err := alertmanager.New(alertmanager.Options{
			Endpoints: eps, ResendInterval: am.ResendInterval, Timeout: am.Timeout, QueueSize: am.QueueSize, Now: e.now,
			GeneratorURL: "http://" + e.addr.String() + "/api/v1/alerts",
			Logger:       slog.New(zapslog.NewHandler(e.set.Logger.Core())),
		})
		if err != nil {
			_ = srv.Close()
			cancel()
			e.wg.Wait()
			st.Close()
			return fmt.Errorf("junction exporter: %w", err)
		}
		e.notifier = n
		n.Start()
		// Alerts firing before a restart do not change state when the
		// rules report them again: send them now, and resend them from
		// here on, or Alertmanager would resolve them on its own.
		n.Notify(st.Alerts(store.AlertFilter{States: []alert.State{alert.StateFiring}, To: e.now()}))
	}
	if err := e.registerTelemetry(); err != nil {
		e.set.Logger.Warn("junction exporter telemetry not registered", zap.Error(err))
	}
	e.set.Logger.Info("junction API listening", zap.String("address", e.addr.String()), zap.String("storage.directory", cfg.Storage.Directory))
	return nil
}

// flushLoop makes received alerts durable every storage.flush_interval;
// series reach disk by VictoriaMetrics' background flush on the same
// interval (store.Checkpoint).
func (e *junctionExporter) flushLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.Storage.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.st.Checkpoint(); err != nil {
				e.set.Logger.Error("junction storage flush failed", zap.Error(err))
			}
		}
	}
}

func (e *junctionExporter) shutdown(ctx context.Context) error {
	registryMu.Lock()
	e.users--
	last := e.users <= 0 && !e.shutdownDone
	if last {
		e.shutdownDone = true
		if registry[e.set.ID] == e {
			delete(registry, e.set.ID)
		}
	}
	registryMu.Unlock()
	if !last || e.st == nil {
		return nil
	}
	if e.reg != nil {
		_ = e.reg.Unregister()
	}
	// Close ends open streams too; their handlers watch the request context.
	err := e.srv.Close()
	e.cancel()
	e.wg.Wait()
	if e.notifier != nil {
		// Sends what is still queued for at most alertmanager.timeout.
		e.notifier.Stop(ctx)
	}
	if ferr := e.st.Flush(); ferr != nil {
		err = errors.Join(err, ferr)
	}
	return errors.Join(err, e.st.Close())
}

func (e *junctionExporter) consumeMetrics(_ context.Context, md pmetric.Metrics) error {
	e.st.AddMetrics(md)
	if e.st.ReadOnly() {
		return fmt.Errorf("junction exporter: series not stored: storage.directory %q has less than storage.min_free_bytes free", e.cfg.Storage.Directory)
	}
	return nil
}

func (e *junctionExporter) consumeLogs(_ context.Context, ld plog.Logs) error {
	var alerts []alert.Alert
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if !alert.IsAlert(lr) {
					e.logsSkipped.Add(1)
					continue
				}
				a, err := alert.FromLogRecord(lr)
				if err != nil {
					e.logsSkipped.Add(1)
					e.set.Logger.Debug("alert record not decoded", zap.Error(err))
					continue
				}
				alerts = append(alerts, a)
			}
		}
	}
	if len(alerts) == 0 {
		return nil
	}
	changed, err := e.st.AddAlerts(alerts)
	e.hub.Publish(changed)
	if e.notifier != nil {
		e.notifier.Notify(changed)
	}
	if err != nil {
		e.storeErrors.Add(1)
		return fmt.Errorf("junction exporter: store alerts: %w", err)
	}
	return nil
}

// registerTelemetry observes the exporter's own telemetry. The instruments
// are declared in metadata.yaml and generated by mdatagen into
// internal/metadata (make generate); one callback reads the store's, the
// hub's and the notifier's counters once per collection for all of them.
func (e *junctionExporter) registerTelemetry() error {
	tb, err := metadata.NewTelemetryBuilder(e.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("junction exporter: own telemetry: %w", err)
	}
	written, dropped, stateDropped := tb.ExporterJunctionSamplesWritten, tb.ExporterJunctionSamplesDropped, tb.ExporterJunctionStateDropped
	stored, skipped, evicted := tb.ExporterJunctionAlertRecordsStored, tb.ExporterJunctionLogRecordsSkipped, tb.ExporterJunctionAlertInstancesEvicted
	streamDropped := tb.ExporterJunctionStreamDropped
	amSent, amFailures, amDropped := tb.ExporterJunctionAlertmanagerSent, tb.ExporterJunctionAlertmanagerFailures, tb.ExporterJunctionAlertmanagerDropped
	amQueue := tb.ExporterJunctionAlertmanagerQueueSize
	m := metadata.Meter(e.set.TelemetrySettings)
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := e.st.Stats()
		o.ObserveInt64(written, st.SamplesWritten)
		o.ObserveInt64(dropped, st.SamplesSkipped, metric.WithAttributes(attribute.String("reason", "unsupported_type")))
		o.ObserveInt64(dropped, st.SamplesRejected, metric.WithAttributes(attribute.String("reason", "storage_full")))
		o.ObserveInt64(dropped, st.SamplesNoEntity, metric.WithAttributes(attribute.String("reason", "no_entity")))
		o.ObserveInt64(stateDropped, st.EntityDrops, metric.WithAttributes(attribute.String("kind", "entity")))
		o.ObserveInt64(stateDropped, st.EdgeDrops, metric.WithAttributes(attribute.String("kind", "edge")))
		o.ObserveInt64(stateDropped, st.RuleDrops, metric.WithAttributes(attribute.String("kind", "rule")))
		o.ObserveInt64(stateDropped, st.RollupRefused, metric.WithAttributes(attribute.String("kind", "graph_cache")))
		o.ObserveInt64(stored, st.Alerts.Stored)
		o.ObserveInt64(skipped, e.logsSkipped.Load())
		o.ObserveInt64(evicted, st.Alerts.Evicted)
		o.ObserveInt64(streamDropped, e.hub.Dropped())
		if e.notifier != nil {
			ns := e.notifier.Stats()
			for _, ep := range ns.Endpoints {
				am := metric.WithAttributes(attribute.String("alertmanager", ep.Endpoint))
				o.ObserveInt64(amSent, ep.Sent, am)
				o.ObserveInt64(amFailures, ep.Failures, am)
				o.ObserveInt64(amDropped, ep.Dropped, am)
				o.ObserveInt64(amQueue, int64(ep.Queue), am)
			}
			o.ObserveInt64(amDropped, ns.NotResent, metric.WithAttributes(attribute.String("reason", "resend_table_full")))
		}
		return nil
	}, written, dropped, stateDropped, stored, skipped, evicted, streamDropped, amSent, amFailures, amDropped, amQueue)
	if err != nil {
		return err
	}
	e.reg = reg
	return nil
}
