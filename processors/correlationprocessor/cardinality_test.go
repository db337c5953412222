package correlationprocessor

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/junction-sre/junction/entity"
)

// counterValues reads every otelcol_processor_correlation_* counter by
// name and entity_type attribute ("" when absent).
func counterValues(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				typ, _ := dp.Attributes.Value(attribute.Key(attrEntityType))
				if out[m.Name] == nil {
					out[m.Name] = map[string]int64{}
				}
				out[m.Name][typ.AsString()] += dp.Value
			}
		}
	}
	return out
}

func telemetrySettings(r *sdkmetric.ManualReader) (s componentTelemetry) {
	s = nopSettings()
	s.TelemetrySettings.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	return s
}

// TestCardinalityBounded streams one million distinct services, each with
// its own pod and one server span, through a processor bounded to 1000
// entities per type: the graph stays at the bound and the drop counters
// count every entity that did not fit.
func TestCardinalityBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams one million resources")
	}
	const (
		total    = 1_000_000
		perBatch = 1000
		maxPer   = 1000
	)
	reader := sdkmetric.NewManualReader()
	cfg := testConfig()
	cfg.Limits.MaxEntitiesPerType = maxPer
	cfg.CriticalPath.SampleRatio = 0
	h := newHarness(t, "cardinality", cfg, telemetrySettings(reader))
	ctx := context.Background()

	for b := 0; b < total/perBatch; b++ {
		td := ptrace.NewTraces()
		for i := 0; i < perBatch; i++ {
			n := strconv.Itoa(b*perBatch + i)
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "svc-"+n)
			rs.Resource().Attributes().PutStr("k8s.namespace.name", "ns")
			rs.Resource().Attributes().PutStr("k8s.pod.name", "pod-"+n)
			sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetTraceID(pcommon.TraceID{byte(b), byte(b >> 8), byte(i), byte(i >> 8), 1})
			sp.SetSpanID(pcommon.SpanID{1})
			sp.SetParentSpanID(pcommon.SpanID{byte(i), byte(i >> 8), byte(b), byte(b >> 8), 2})
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Millisecond)))
		}
		require.NoError(t, h.traces.ConsumeTraces(ctx, td))
	}

	perType, edges := h.p.graph.Len()
	assert.Equal(t, maxPer, perType[entity.Service])
	assert.Equal(t, maxPer, perType[entity.Pod])
	assert.Zero(t, edges)

	got := counterValues(t, reader)
	assert.Equal(t, map[string]int64{"service": total - maxPer, "pod": total - maxPer}, got["otelcol_processor_correlation_entities_dropped"])
	// The kept services' server spans wait for their clients in the pending store.
	pendingDropped := got["otelcol_processor_correlation_pending_spans_dropped"][""]
	assert.Equal(t, int64(0), pendingDropped, "1000 kept services' spans fit the pending store")

	// Everything ages out after entity_ttl, and the evictions are counted.
	h.p.tick(ctx, t0.Add(cfg.Limits.EntityTTL+time.Minute))
	perType, _ = h.p.graph.Len()
	assert.Zero(t, perType[entity.Service]+perType[entity.Pod])
	got = counterValues(t, reader)
	assert.Equal(t, map[string]int64{"service": maxPer, "pod": maxPer}, got["otelcol_processor_correlation_entities_evicted"])
}

// TestPendingSpansBounded fills the pending store past its bound.
func TestPendingSpansBounded(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	cfg := testConfig()
	cfg.Limits.MaxPendingSpans = 100
	h := newHarness(t, "pending", cfg, telemetrySettings(reader))
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty()
	ss.Resource().Attributes().PutStr("service.name", "caller")
	spans := ss.ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < 250; i++ {
		sp := spans.AppendEmpty()
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetTraceID(pcommon.TraceID{byte(i), 1})
		sp.SetSpanID(pcommon.SpanID{byte(i), 2})
		sp.Attributes().PutStr("peer.service", "peer-"+strconv.Itoa(i))
	}
	require.NoError(t, h.traces.ConsumeTraces(context.Background(), td))
	got := counterValues(t, reader)
	assert.Equal(t, int64(150), got["otelcol_processor_correlation_pending_spans_dropped"][""])

	// The 100 that stayed expire into virtual services and edges.
	h.p.tick(context.Background(), t0.Add(cfg.Limits.PendingSpanTTL+time.Second))
	perType, edges := h.p.graph.Len()
	assert.Equal(t, 101, perType[entity.Service], "caller and 100 virtual peers")
	assert.Equal(t, 100, edges)
}

type componentTelemetry = processorSettings
