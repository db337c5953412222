package rules

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Names of the rule engine's own telemetry (documented in docs/rules.md).
const (
	meterName                = "github.com/junction-sre/junction/rules"
	metricEvaluationDuration = "otelcol_processor_correlation_rule_evaluation_duration"
	metricEvaluationFailures = "otelcol_processor_correlation_rule_evaluation_failures"
	metricEvaluations        = "otelcol_processor_correlation_rule_evaluations"
	metricRuleHealth         = "otelcol_processor_correlation_rule_health"
	metricActiveAlerts       = "otelcol_processor_correlation_rule_active_alerts"
	metricAlertsDropped      = "otelcol_processor_correlation_rule_alerts_dropped"
	metricReloads            = "otelcol_processor_correlation_rule_reloads"
	metricReloadFailures     = "otelcol_processor_correlation_rule_reload_failures"
	metricStateWriteFailures = "otelcol_processor_correlation_rule_state_write_failures"
	attrGroup                = "group"
	attrRule                 = "rule"
)

type telemetry struct {
	duration      metric.Float64Histogram
	evaluations   metric.Int64Counter
	failures      metric.Int64Counter
	dropped       metric.Int64Counter
	reloads       metric.Int64Counter
	reloadFails   metric.Int64Counter
	stateFailures metric.Int64Counter
	health        metric.Int64ObservableGauge
	active        metric.Int64ObservableGauge
	reg           metric.Registration
}

func newTelemetry(mp metric.MeterProvider, status func() []ruleObservation) (*telemetry, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(meterName)
	t := &telemetry{}
	var err error
	if t.duration, err = m.Float64Histogram(metricEvaluationDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of one evaluation of a rule over all entities of its type"),
		metric.WithExplicitBucketBoundaries(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5)); err != nil {
		return nil, err
	}
	if t.evaluations, err = m.Int64Counter(metricEvaluations, metric.WithUnit("{evaluation}"),
		metric.WithDescription("Rule evaluations")); err != nil {
		return nil, err
	}
	if t.failures, err = m.Int64Counter(metricEvaluationFailures, metric.WithUnit("{evaluation}"),
		metric.WithDescription("Rule evaluations that ended with an error (including the cost limit)")); err != nil {
		return nil, err
	}
	if t.dropped, err = m.Int64Counter(metricAlertsDropped, metric.WithUnit("{alert}"),
		metric.WithDescription("New alert instances dropped because a rule had the maximum number of active instances")); err != nil {
		return nil, err
	}
	if t.reloads, err = m.Int64Counter(metricReloads, metric.WithUnit("{reload}"),
		metric.WithDescription("Successful rule reloads")); err != nil {
		return nil, err
	}
	if t.reloadFails, err = m.Int64Counter(metricReloadFailures, metric.WithUnit("{reload}"),
		metric.WithDescription("Rule reloads rejected because a rule file had errors; the last good rules keep running")); err != nil {
		return nil, err
	}
	if t.stateFailures, err = m.Int64Counter(metricStateWriteFailures, metric.WithUnit("{write}"),
		metric.WithDescription("Failed writes of the alert state file")); err != nil {
		return nil, err
	}
	if t.health, err = m.Int64ObservableGauge(metricRuleHealth, metric.WithUnit("1"),
		metric.WithDescription("1 when the rule's last evaluation succeeded, 0 when it failed")); err != nil {
		return nil, err
	}
	if t.active, err = m.Int64ObservableGauge(metricActiveAlerts, metric.WithUnit("{alert}"),
		metric.WithDescription("Pending and firing alert instances of the rule")); err != nil {
		return nil, err
	}
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, s := range status() {
			attrs := metric.WithAttributes(attribute.String(attrGroup, s.group), attribute.String(attrRule, s.rule))
			o.ObserveInt64(t.health, s.health, attrs)
			o.ObserveInt64(t.active, int64(s.active), attrs)
		}
		return nil
	}, t.health, t.active)
	if err != nil {
		return nil, err
	}
	return t, nil
}

type ruleObservation struct {
	group, rule string
	health      int64
	active      int
}

func (t *telemetry) recordEval(ctx context.Context, r *rule, d time.Duration, failed bool, dropped int64) {
	attrs := metric.WithAttributes(attribute.String(attrGroup, r.group), attribute.String(attrRule, r.name))
	t.duration.Record(ctx, d.Seconds(), attrs)
	t.evaluations.Add(ctx, 1, attrs)
	if failed {
		t.failures.Add(ctx, 1, attrs)
	}
	if dropped > 0 {
		t.dropped.Add(ctx, dropped, attrs)
	}
}
