package junctionrulerreceiver

import (
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"
)

// Names of the receiver's own telemetry (docs/rules.md "Running rules in the collector").
const (
	meterName              = "github.com/junction-sre/junction/receivers/junctionrulerreceiver"
	metricSnapshotFailures = "otelcol_receiver_junction_ruler_snapshot_failures"
)

type telemetry struct {
	snapshotFailures metric.Int64Counter
}

func newTelemetry(set component.TelemetrySettings) (*telemetry, error) {
	m := set.MeterProvider.Meter(meterName)
	c, err := m.Int64Counter(metricSnapshotFailures, metric.WithUnit("{snapshot}"),
		metric.WithDescription("Merged graph snapshots that could not be read from the store; the evaluation they were for was skipped and alert state kept"))
	if err != nil {
		return nil, err
	}
	return &telemetry{snapshotFailures: c}, nil
}
