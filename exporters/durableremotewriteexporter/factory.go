// Package durableremotewriteexporter is the contrib prometheus_remote_write
// exporter behind the collector's standard sending_queue, whose storage can
// be a file_storage extension: ticks queued while the remote-write endpoint
// is down survive a restart or a kill of the collector.
//
// The remote-write exporter of contrib v0.165.1 has its own in-memory queue
// (remote_write_queue) and a WAL that cannot be reopened once a kill tore its
// last entry; replacing both by sending_queue is an open contrib proposal
// (opentelemetry-collector-contrib#33137). This exporter does that from the
// outside: it builds the contrib exporter with its queue and retries off and
// gives its push to the collector's exporterhelper, which queues (on disk
// with storage), retries with retry_on_failure, and reports the usual
// otelcol_exporter_* telemetry.
package durableremotewriteexporter

import (
	"context"
	"strings"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Type is the component type.
var Type = component.MustNewType("durable_remote_write")

// remoteWrite is the contrib exporter's factory this exporter wraps.
var remoteWrite = prometheusremotewriteexporter.NewFactory()

const stability = component.StabilityLevelAlpha

// Defaults that differ from the remote-write exporter's or the queue's own.
const (
	// One consumer sends the queue in order, as the remote-write exporter
	// does by default: Prometheus-compatible stores may refuse a sample
	// older than one already written for its series.
	defaultNumConsumers = 1
	// 10 000 requests, as the remote-write exporter's queue.
	defaultQueueSize = 10000
	// Retries go on long enough to ride out a restart of the store.
	defaultMaxElapsedTime = 30 * time.Minute
)

// NewFactory returns the durable_remote_write exporter's factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(Type, createDefaultConfig,
		exporter.WithMetrics(createMetrics, stability))
}

func createDefaultConfig() component.Config {
	rw := *remoteWrite.CreateDefaultConfig().(*prometheusremotewriteexporter.Config)
	rw.RemoteWriteQueue.Enabled = false
	rw.BackOffConfig.MaxElapsedTime = defaultMaxElapsedTime
	queue := exporterhelper.NewDefaultQueueConfig()
	queue.NumConsumers = defaultNumConsumers
	queue.QueueSize = defaultQueueSize
	return &Config{RemoteWrite: rw, QueueConfig: configoptional.Some(queue)}
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	c := cfg.(*Config)
	// The contrib exporter sends each request once: the queue retries.
	inner := c.RemoteWrite
	inner.BackOffConfig.Enabled = false
	innerSet := set
	innerSet.ID = innerID(set.ID)
	innerSet.Logger = set.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return withoutRejections{c}
	}))
	rw, err := remoteWrite.CreateMetrics(ctx, innerSet, &inner)
	if err != nil {
		return nil, err
	}
	if q := c.QueueConfig.Get(); q != nil && q.StorageID != nil {
		set.Logger = set.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return keptOnShutdown{c}
		}))
	}
	return exporterhelper.NewMetrics(ctx, set, cfg, rw.ConsumeMetrics,
		// The contrib exporter bounds each attempt with timeout itself.
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}),
		exporterhelper.WithRetry(c.RemoteWrite.BackOffConfig),
		exporterhelper.WithQueue(c.QueueConfig),
		exporterhelper.WithCapabilities(rw.Capabilities()),
		exporterhelper.WithStart(rw.Start),
		exporterhelper.WithShutdown(rw.Shutdown))
}

// innerID names the contrib exporter inside exporter id, so that its own
// otelcol_exporter_* telemetry (one send per attempt) is told apart from
// this exporter's (queue and retries): durable_remote_write/x ->
// prometheus_remote_write/durable_remote_write_x.
func innerID(id component.ID) component.ID {
	name := Type.String()
	if id.Name() != "" {
		name += "_" + id.Name()
	}
	return component.NewIDWithName(remoteWrite.Type(), strings.ReplaceAll(name, "/", "_"))
}

// rejection is how the contrib exporter's exporterhelper logs each failed
// attempt, at error level, advising a sending_queue: this exporter's queue
// logs the retry or the drop itself.
const rejection = "Exporting failed. Rejecting data."

// withoutRejections drops the contrib exporter's rejection lines.
type withoutRejections struct{ zapcore.Core }

func (c withoutRejections) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if strings.HasPrefix(e.Message, rejection) {
		return ce
	}
	return c.Core.Check(e, ce)
}

func (c withoutRejections) With(fields []zapcore.Field) zapcore.Core {
	return withoutRejections{c.Core.With(fields)}
}

// On shutdown the queue logs a request whose retries were interrupted as
// dropped, at error level, though a persistent queue keeps it and sends it
// after the restart.
const (
	dropped             = "Exporting failed. Dropping data."
	shutdownInterrupted = "interrupted due to shutdown"
	keptMessage         = "Export interrupted by shutdown; the request stays in the persistent queue and is sent after the restart."
)

// keptOnShutdown says so instead, at info level, for a queue on storage.
type keptOnShutdown struct{ zapcore.Core }

func (c keptOnShutdown) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if strings.HasPrefix(e.Message, dropped) {
		if !c.Enabled(e.Level) {
			return ce
		}
		return ce.AddCore(e, c)
	}
	return c.Core.Check(e, ce)
}

func (c keptOnShutdown) With(fields []zapcore.Field) zapcore.Core {
	return keptOnShutdown{c.Core.With(fields)}
}

func (c keptOnShutdown) Write(e zapcore.Entry, fields []zapcore.Field) error {
	for _, f := range fields {
		if err, ok := f.Interface.(error); ok && f.Type == zapcore.ErrorType && strings.HasPrefix(err.Error(), shutdownInterrupted) {
			if !c.Enabled(zapcore.InfoLevel) {
				return nil
			}
			e.Level, e.Message = zapcore.InfoLevel, keptMessage
		}
	}
	return c.Core.Write(e, fields)
}
