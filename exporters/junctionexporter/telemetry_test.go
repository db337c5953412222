package junctionexporter

import (
	"context"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/junction-sre/junction/exporters/junctionexporter/internal/metadatatest"
)

// TestOwnTelemetryNames checks every instrument of the exporter's own
// telemetry as the collector exports it: the names (dashboards and docs use
// them), units, kinds and the attributes of each data point. The instruments
// come from metadata.yaml through mdatagen.
func TestOwnTelemetryNames(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer tel.Shutdown(context.Background())
	set := exportertest.NewNopSettings(Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	cfg := testConfig(t)
	// Nothing listens there: the notifier exists, so its instruments are
	// observed (with zeros) for this Alertmanager.
	const am = "http://127.0.0.1:1"
	cfg.Alertmanager.Endpoint = am
	r := startExporterWith(t, cfg, componenttest.NewNopHost(), func() time.Time { return t0.Add(time.Hour) }, set)
	feed(t, r)

	type want struct {
		unit     string
		sum      bool     // a monotonic cumulative sum, else a gauge
		dataPts  []string // the attributes of each data point, sorted
		hasValue bool     // the test's input makes at least one point non-zero
	}
	for name, w := range map[string]want{
		"otelcol_exporter_junction_samples_written":         {"{sample}", true, []string{""}, true},
		"otelcol_exporter_junction_samples_dropped":         {"{sample}", true, []string{"reason=no_entity", "reason=storage_full", "reason=unsupported_type"}, false},
		"otelcol_exporter_junction_state_dropped":           {"{item}", true, []string{"kind=edge", "kind=entity", "kind=graph_cache", "kind=rule"}, false},
		"otelcol_exporter_junction_alert_records_stored":    {"{record}", true, []string{""}, true},
		"otelcol_exporter_junction_log_records_skipped":     {"{record}", true, []string{""}, true},
		"otelcol_exporter_junction_alert_instances_evicted": {"{instance}", true, []string{""}, false},
		"otelcol_exporter_junction_stream_dropped":          {"{alert}", true, []string{""}, false},
		"otelcol_exporter_junction_alertmanager_sent":       {"{alert}", true, []string{"alertmanager=" + am}, false},
		"otelcol_exporter_junction_alertmanager_failures":   {"{request}", true, []string{"alertmanager=" + am}, false},
		"otelcol_exporter_junction_alertmanager_dropped":    {"{alert}", true, []string{"alertmanager=" + am, "reason=resend_table_full"}, false},
		"otelcol_exporter_junction_alertmanager_queue_size": {"{alert}", false, []string{"alertmanager=" + am}, false},
	} {
		m, err := tel.GetMetric(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if m.Unit != w.unit {
			t.Errorf("%s unit = %q, want %q", name, m.Unit, w.unit)
		}
		var pts []metricdata.DataPoint[int64]
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			if !w.sum || !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality {
				t.Errorf("%s is a sum (monotonic %v, %v), want sum=%v", name, d.IsMonotonic, d.Temporality, w.sum)
			}
			pts = d.DataPoints
		case metricdata.Gauge[int64]:
			if w.sum {
				t.Errorf("%s is a gauge, want a monotonic sum", name)
			}
			pts = d.DataPoints
		default:
			t.Errorf("%s is %T", name, m.Data)
			continue
		}
		var attrs []string
		nonZero := false
		for _, p := range pts {
			a := ""
			for _, kv := range p.Attributes.ToSlice() {
				a += string(kv.Key) + "=" + kv.Value.String()
			}
			attrs = append(attrs, a)
			nonZero = nonZero || p.Value != 0
		}
		sort.Strings(attrs)
		if len(attrs) != len(w.dataPts) {
			t.Errorf("%s data points have attributes %q, want %q", name, attrs, w.dataPts)
		} else {
			for i := range attrs {
				if attrs[i] != w.dataPts[i] {
					t.Errorf("%s data points have attributes %q, want %q", name, attrs, w.dataPts)
					break
				}
			}
		}
		if w.hasValue && !nonZero {
			t.Errorf("%s: every data point is 0", name)
		}
	}

	// The generated assertion also checks the description that mdatagen
	// writes into the instrument (metadata.yaml's text and its stability).
	metadatatest.AssertEqualExporterJunctionSamplesWritten(t, tel,
		[]metricdata.DataPoint[int64]{{Value: 7}}, metricdatatest.IgnoreTimestamp())
}
