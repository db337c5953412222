package correlationprocessor

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/graph"
)

const scopeName = "github.com/junction-sre/junction/processors/correlationprocessor"

// instrumentNames maps what the graph drops or evicts to the plural used in
// the instrument names: otelcol_processor_correlation_<plural>_dropped and
// otelcol_processor_correlation_<plural>_evicted (docs/entities.md).
var instrumentNames = map[string]string{
	graph.WhatEntity:      "entities",
	graph.WhatEdge:        "edges",
	graph.WhatPendingSpan: "pending_spans",
	graph.WhatSeries:      "series",
	graph.WhatMetric:      "metrics",
	graph.WhatPod:         "pods",
	graph.WhatTemplate:    "templates",
	graph.WhatTrace:       "sampled_traces",
	graph.WhatTraceSpan:   "sampled_spans",
}

// AttrEntityType is the attribute of drop and eviction counters that names
// the entity type concerned.
const attrEntityType = "entity_type"

type telemetry struct {
	dropped map[string]metric.Int64Counter
	evicted map[string]metric.Int64Counter
	byType  map[entity.Type]metric.AddOption

	// xchainRejected counts spans and log records whose xchain.*
	// attributes are malformed; xchainHistDropped relayer histogram
	// series not tracked because their table was full.
	xchainRejected    metric.Int64Counter
	xchainHistDropped metric.Int64Counter
	// clockOutliers counts batches beyond clock::max_step of the
	// telemetry clock.
	clockOutliers metric.Int64Counter
}

func newTelemetry(set component.TelemetrySettings) (*telemetry, error) {
	meter := set.MeterProvider.Meter(scopeName)
	t := &telemetry{
		dropped: map[string]metric.Int64Counter{},
		evicted: map[string]metric.Int64Counter{},
		byType:  map[entity.Type]metric.AddOption{},
	}
	for what, plural := range instrumentNames {
		d, err := meter.Int64Counter("otelcol_processor_correlation_"+plural+"_dropped",
			metric.WithDescription(fmt.Sprintf("Number of %s dropped because their table was full", plural)),
			metric.WithUnit("{"+plural+"}"))
		if err != nil {
			return nil, fmt.Errorf("creating the %s dropped counter: %w", plural, err)
		}
		e, err := meter.Int64Counter("otelcol_processor_correlation_"+plural+"_evicted",
			metric.WithDescription(fmt.Sprintf("Number of %s evicted because they aged out or made room", plural)),
			metric.WithUnit("{"+plural+"}"))
		if err != nil {
			return nil, fmt.Errorf("creating the %s evicted counter: %w", plural, err)
		}
		t.dropped[what], t.evicted[what] = d, e
	}
	var err error
	if t.xchainRejected, err = meter.Int64Counter("otelcol_processor_correlation_xchain_events_rejected",
		metric.WithDescription("Number of spans and log records with malformed xchain.* attributes left out of the cross-chain message records"),
		metric.WithUnit("{events}")); err != nil {
		return nil, fmt.Errorf("creating the xchain rejected counter: %w", err)
	}
	if t.xchainHistDropped, err = meter.Int64Counter("otelcol_processor_correlation_xchain_histogram_series_dropped",
		metric.WithDescription("Number of relayer histogram data points dropped because the series table (xchain::max_metric_scopes) was full"),
		metric.WithUnit("{points}")); err != nil {
		return nil, fmt.Errorf("creating the xchain histogram series counter: %w", err)
	}
	if t.clockOutliers, err = meter.Int64Counter("otelcol_processor_correlation_clock_outlier_batches",
		metric.WithDescription("Number of batches whose newest timestamp lay further than clock::max_step from the telemetry clock; they count at the clock"),
		metric.WithUnit("{batches}")); err != nil {
		return nil, fmt.Errorf("creating the clock outlier counter: %w", err)
	}
	for _, typ := range entity.Types {
		t.byType[typ] = metric.WithAttributeSet(attribute.NewSet(attribute.String(attrEntityType, string(typ))))
	}
	return t, nil
}

func (t *telemetry) opts(typ entity.Type) []metric.AddOption {
	if o, ok := t.byType[typ]; ok {
		return []metric.AddOption{o}
	}
	return nil
}

// Dropped implements graph.Counters.
func (t *telemetry) Dropped(what string, typ entity.Type, n int64) {
	if c, ok := t.dropped[what]; ok {
		c.Add(bgCtx, n, t.opts(typ)...)
	}
}

// Evicted implements graph.Counters.
func (t *telemetry) Evicted(what string, typ entity.Type, n int64) {
	if c, ok := t.evicted[what]; ok {
		c.Add(bgCtx, n, t.opts(typ)...)
	}
}

var bgCtx = context.Background()
