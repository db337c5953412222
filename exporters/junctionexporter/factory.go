// Package junctionexporter stores Junction's derived series and alerts in
// embedded VictoriaMetrics storage, serves the query API the Grafana plugin
// reads, and notifies Alertmanager.
package junctionexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Type is the component type.
var Type = component.MustNewType("junction")

const stability = component.StabilityLevelAlpha

// Defaults.
const (
	defaultDirectory         = "./data"
	defaultRetention         = 30 * 24 * time.Hour
	defaultFlushInterval     = 5 * time.Second
	defaultMinFreeBytes      = 64 << 20
	defaultMaxAlertInstances = 10000
	defaultMaxAlertHistory   = 100
	defaultAlertLogMaxBytes  = 64 << 20
	// defaultEndpoint is loopback: nothing is served on a public
	// interface unless configured.
	defaultEndpoint    = "127.0.0.1:8480"
	defaultMaxStreams  = 64
	defaultMaxEntities = 100000
	defaultMaxEdges    = 500000
	defaultMaxRules    = 10000
	defaultEntityTTL   = time.Hour
	// The graph rollup covers Grafana's usual "last hour" and costs at
	// most about 50 MB at the default bound.
	defaultGraphWindow    = time.Hour
	defaultGraphMaxSeries = 50000
	// Alertmanager: Prometheus' resend_delay and Alertmanager timeout
	// defaults; the queue as Prometheus' notifier queue capacity.
	defaultResendInterval = time.Minute
	defaultAMTimeout      = 10 * time.Second
	defaultAMQueueSize    = 10000
)

// NewFactory returns the junction exporter's factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(Type, createDefaultConfig,
		exporter.WithMetrics(createMetrics, stability),
		exporter.WithLogs(createLogs, stability))
}

func createDefaultConfig() component.Config {
	api := confighttp.NewDefaultServerConfig()
	api.NetAddr.Endpoint = defaultEndpoint
	return &Config{
		Storage: StorageConfig{
			Directory: defaultDirectory, Retention: defaultRetention, FlushInterval: defaultFlushInterval,
			MinFreeBytes: defaultMinFreeBytes, MaxAlertInstances: defaultMaxAlertInstances,
			MaxAlertHistory: defaultMaxAlertHistory, AlertLogMaxBytes: defaultAlertLogMaxBytes,
		},
		API: APIConfig{ServerConfig: api, MaxStreams: defaultMaxStreams},
		Alertmanager: AlertmanagerConfig{
			ResendInterval: defaultResendInterval, Timeout: defaultAMTimeout, QueueSize: defaultAMQueueSize,
		},
		MaxEntities: defaultMaxEntities, MaxEdges: defaultMaxEdges, MaxRules: defaultMaxRules,
		EntityTTL:  defaultEntityTTL,
		GraphCache: GraphCacheConfig{Window: defaultGraphWindow, MaxSeries: defaultGraphMaxSeries},
	}
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	e, err := shared(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewMetrics(ctx, set, cfg, e.consumeMetrics,
		exporterhelper.WithStart(e.start), exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}))
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	e, err := shared(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, e.consumeLogs,
		exporterhelper.WithStart(e.start), exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}))
}
