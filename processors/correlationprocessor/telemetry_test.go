package correlationprocessor

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/graph"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/metadatatest"
)

// TestOwnTelemetryNames checks the names, units and attributes under which
// the graph's drops and evictions, the cross-chain rejections and the clock
// outliers reach the collector's telemetry: the instruments come from
// metadata.yaml through mdatagen, and dashboards and docs use these names.
func TestOwnTelemetryNames(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	tt, err := newTelemetry(tel.NewTelemetrySettings())
	require.NoError(t, err)

	whats := slices.Sorted(maps.Keys(instrumentNames))
	assert.Equal(t, whats, slices.Sorted(maps.Keys(tt.dropped)), "whats with a dropped counter")
	assert.Equal(t, whats, slices.Sorted(maps.Keys(tt.evicted)), "whats with an evicted counter")

	for i, what := range whats {
		tt.Dropped(what, entity.Service, int64(i+1))
		tt.Evicted(what, "", int64(i+10))
	}
	tt.Dropped("no_such_table", "", 1) // no instrument: not counted, no panic
	tt.xchainRejected.Add(context.Background(), 3)
	tt.xchainHistDropped.Add(context.Background(), 4)
	tt.clockOutliers.Add(context.Background(), 5)

	service := attribute.NewSet(attribute.String("entity_type", "service"))
	for i, what := range whats {
		plural := instrumentNames[what]
		want := []metricdata.DataPoint[int64]{{Attributes: service, Value: int64(i + 1)}}
		assertCounter(t, tel, "otelcol_processor_correlation_"+plural+"_dropped", "{"+plural+"}", want)
		want = []metricdata.DataPoint[int64]{{Attributes: *attribute.EmptySet(), Value: int64(i + 10)}}
		assertCounter(t, tel, "otelcol_processor_correlation_"+plural+"_evicted", "{"+plural+"}", want)
	}
	assertCounter(t, tel, "otelcol_processor_correlation_xchain_events_rejected", "{events}",
		[]metricdata.DataPoint[int64]{{Attributes: *attribute.EmptySet(), Value: 3}})
	assertCounter(t, tel, "otelcol_processor_correlation_xchain_histogram_series_dropped", "{points}",
		[]metricdata.DataPoint[int64]{{Attributes: *attribute.EmptySet(), Value: 4}})
	assertCounter(t, tel, "otelcol_processor_correlation_clock_outlier_batches", "{batches}",
		[]metricdata.DataPoint[int64]{{Attributes: *attribute.EmptySet(), Value: 5}})

	// The generated assertion also checks the description that mdatagen
	// writes into the instrument (metadata.yaml's text and its stability).
	metadatatest.AssertEqualProcessorCorrelationEntitiesDropped(t, tel,
		[]metricdata.DataPoint[int64]{{Attributes: service, Value: int64(slices.Index(whats, graph.WhatEntity) + 1)}},
		metricdatatest.IgnoreTimestamp())
}

func assertCounter(t *testing.T, tel *componenttest.Telemetry, name, unit string, want []metricdata.DataPoint[int64]) {
	t.Helper()
	m, err := tel.GetMetric(name)
	if !assert.NoError(t, err, name) {
		return
	}
	assert.Equal(t, unit, m.Unit, name)
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !assert.True(t, ok, "%s is %T, want a Sum[int64]", name, m.Data) {
		return
	}
	assert.True(t, sum.IsMonotonic, "%s is monotonic", name)
	metricdatatest.AssertEqual(t, metricdata.Sum[int64]{
		Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: want,
	}, sum, metricdatatest.IgnoreTimestamp())
}
