// Package junctionrulerreceiver is the ruler of a Junction gateway tier: a
// receiver that reads the merged entity graph of all gateway replicas from
// the store they remote-write to (VictoriaMetrics or Prometheus, through
// internal/mergedgraph), evaluates the rule files on it with
// rules.Manager.Run, and emits alert log records into its logs pipelines
// and the ALERTS and rule status gauges into its metrics pipelines, as the
// correlation processor does on a single node. One instance per component
// id serves both pipelines.
package junctionrulerreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/junction-sre/junction/rules"
)

const (
	typeStr   = "junction_ruler"
	stability = component.StabilityLevelAlpha
)

// Defaults (docs/rules.md "Running rules in the collector").
const (
	// defaultLookback covers two of the replicas' default emit intervals:
	// one tick plus the remote-write delay (docs/deploy.md "Merged
	// series").
	defaultLookback = 30 * time.Second
	// defaultTimeout bounds the queries of one snapshot.
	defaultTimeout = 10 * time.Second
	// defaultRuleFiles are the built-in rule packs.
	defaultRuleFiles      = rules.BuiltinPrefix + "packs"
	defaultReloadInterval = 30 * time.Second
	defaultCostLimit      = rules.DefaultCostLimit
)

// NewFactory returns the factory of the junction_ruler receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		component.MustNewType(typeStr),
		createDefaultConfig,
		receiver.WithLogs(createLogs, stability),
		receiver.WithMetrics(createMetrics, stability),
	)
}

func createDefaultConfig() component.Config {
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = defaultTimeout
	return &Config{
		Store: StoreConfig{ClientConfig: client, Lookback: defaultLookback},
		Rules: RulesConfig{
			Files:          []string{defaultRuleFiles},
			ReloadInterval: defaultReloadInterval,
			CostLimit:      defaultCostLimit,
		},
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := getRuler(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.setLogs(next)
	return &pipelineRef{r: r}, nil
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := getRuler(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.setMetrics(next)
	return &pipelineRef{r: r}, nil
}
