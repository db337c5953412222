package xchain

import (
	"errors"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

const meterScope = "github.com/junction-sre/junction/processors/correlationprocessor/internal/xchain"

// telemetry is the Tracker's own telemetry (docs/crosschain.md "Own
// telemetry").
type telemetry struct {
	pending        metric.Int64UpDownCounter
	closed         metric.Int64Counter
	evicted        metric.Int64Counter
	expired        metric.Int64Counter
	duplicates     metric.Int64Counter
	eventsDropped  metric.Int64Counter
	storageErrors  metric.Int64Counter
	corruptRecords metric.Int64Counter
	feesUnpriced   metric.Int64Counter
	scopesDropped  metric.Int64Counter
}

func newTelemetry(mp metric.MeterProvider) (*telemetry, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(meterScope)
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("1"))
		errs = append(errs, err)
		return c
	}
	t := &telemetry{
		closed:         counter("otelcol_processor_correlation_xchain_messages_closed", "Cross-chain messages that reached a terminal stage."),
		evicted:        counter("otelcol_processor_correlation_xchain_messages_evicted", "Pending cross-chain messages evicted because max_messages was reached."),
		expired:        counter("otelcol_processor_correlation_xchain_messages_expired", "Cross-chain messages pending longer than max_age, reported as timed out."),
		duplicates:     counter("otelcol_processor_correlation_xchain_events_duplicate", "Cross-chain events for a stage already known, ignored."),
		eventsDropped:  counter("otelcol_processor_correlation_xchain_events_dropped", "Cross-chain events dropped because max_relayers was reached."),
		storageErrors:  counter("otelcol_processor_correlation_xchain_storage_errors", "Failed writes of cross-chain message state to the storage extension."),
		corruptRecords: counter("otelcol_processor_correlation_xchain_records_corrupt", "Unreadable cross-chain message records found in storage at start and deleted."),
		feesUnpriced:   counter("otelcol_processor_correlation_xchain_fees_unpriced", "Fees left out of fee.per_message because their denom has no price."),
		scopesDropped:  counter("otelcol_processor_correlation_xchain_metric_scopes_dropped", "Relayer metric values dropped because max_metric_scopes was reached."),
	}
	var err error
	t.pending, err = m.Int64UpDownCounter("otelcol_processor_correlation_xchain_messages_pending",
		metric.WithDescription("Cross-chain messages sent and not yet terminal."), metric.WithUnit("1"))
	errs = append(errs, err)
	return t, errors.Join(errs...)
}
