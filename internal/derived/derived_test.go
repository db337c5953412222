package derived

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 15, 0, time.UTC)

func testSnapshot() *entity.Snapshot {
	snap := &entity.Snapshot{
		Time: t0,
		Entities: []entity.Entity{
			{
				Ref:        entity.Ref{Type: entity.Service, ID: entity.ID(entity.Service, "shop", "checkout"), Name: "checkout"},
				Attributes: map[string]string{"service.namespace": "shop", "service.name": "checkout"},
				Features:   map[string]float64{"requests.rate": 12.5, "errors.ratio": 0.02, "latency.p99_ms": 310},
				Features5m: map[string]float64{"requests.rate": 11}, // not encoded: short window only
			},
			{
				Ref:        entity.Ref{Type: entity.Database, ID: entity.ID(entity.Database, "postgresql", "db:5432", "orders"), Name: "orders"},
				Virtual:    true,
				Attributes: map[string]string{"db.system.name": "postgresql", "server.address": "db"},
				Features:   map[string]float64{"requests.rate": 4},
			},
			{
				// No features: Append leaves it out.
				Ref: entity.Ref{Type: entity.Pod, ID: entity.ID(entity.Pod, "shop", "checkout-0"), Name: "checkout-0"},
			},
		},
		Edges: []entity.Edge{
			{Source: "service:shop/checkout", Target: "database:postgresql/db:5432/orders", Type: entity.EdgeDB,
				Features: map[string]float64{"requests.rate": 4, "latency.p99_ms": 42}},
			{Source: "service:shop/web", Target: "service:shop/checkout", Type: entity.EdgeHTTP,
				Features: map[string]float64{"requests.rate": 12.5}},
		},
	}
	snap.Sort()
	return snap
}

// fromBatch rebuilds the part of a snapshot the encoding carries from a
// decoded batch.
func fromBatch(t *testing.T, b *Batch, at time.Time) *entity.Snapshot {
	t.Helper()
	out := &entity.Snapshot{Time: at}
	ents := map[string]*entity.Entity{}
	edges := map[string]*entity.Edge{}
	for _, p := range b.Points {
		require.Equal(t, at.UnixMilli(), p.Time, "point %s", p.Metric)
		switch p.Kind {
		case EntityFeature:
			r := b.Resources[p.Resource]
			e := ents[r.Entity.ID]
			if e == nil {
				e = &entity.Entity{Ref: r.Entity, Virtual: r.Virtual, Attributes: map[string]string{}, Features: map[string]float64{}}
				for k, v := range r.Attributes.All() {
					if !strings.HasPrefix(k, "junction.entity.") {
						e.Attributes[k] = v.AsString()
					}
				}
				ents[r.Entity.ID] = e
			}
			e.Features[p.Feature] = p.Value
		case EdgeFeature:
			k := entity.Edge{Source: p.Edge.Source, Target: p.Edge.Target, Type: p.Edge.Type}.Key()
			e := edges[k]
			if e == nil {
				e = &entity.Edge{Source: p.Edge.Source, Target: p.Edge.Target, Type: p.Edge.Type, Features: map[string]float64{}}
				edges[k] = e
			}
			e.Features[p.Feature] = p.Value
		default:
			t.Fatalf("point %s decoded as kind %d", p.Metric, p.Kind)
		}
	}
	for _, e := range ents {
		out.Entities = append(out.Entities, *e)
	}
	for _, e := range edges {
		out.Edges = append(out.Edges, *e)
	}
	out.Sort()
	return out
}

// TestRoundTrip encodes a snapshot with Append, decodes it with Decode and
// gets back the entities' identity, attributes and short-window features
// and the edges' features.
func TestRoundTrip(t *testing.T) {
	snap := testSnapshot()
	md := pmetric.NewMetrics()
	Append(md, snap, t0)

	var b Batch
	Decode(&b, md, t0.Add(time.Hour).UnixMilli())
	require.Zero(t, b.Skipped)
	require.Zero(t, b.NoEntity)

	want := &entity.Snapshot{Time: t0}
	for _, e := range snap.Entities {
		if len(e.Features) == 0 {
			continue
		}
		want.Entities = append(want.Entities, entity.Entity{Ref: e.Ref, Virtual: e.Virtual, Attributes: e.Attributes, Features: e.Features})
	}
	for _, e := range snap.Edges {
		want.Edges = append(want.Edges, entity.Edge{Source: e.Source, Target: e.Target, Type: e.Type, Features: e.Features})
	}
	require.Equal(t, want, fromBatch(t, &b, t0))

	// Reset keeps nothing of the previous batch.
	b.Reset()
	require.Empty(t, b.Points)
	require.Empty(t, b.Resources)
}

// TestDecodeOtherMetrics: what the exporter receives beside the derived
// features is classified as the store needs it.
func TestDecodeOtherMetrics(t *testing.T) {
	md := pmetric.NewMetrics()
	now := t0.Add(time.Minute)

	// A resource without entity: ALERTS and rule status are kept, another
	// metric is not (its series would merge), a histogram is skipped.
	rm := md.ResourceMetrics().AppendEmpty()
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	alerts := ms.AppendEmpty()
	alerts.SetName(alert.MetricName)
	dp := alerts.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetIntValue(1) // no timestamp: decoded at now
	status := ms.AppendEmpty()
	status.SetName(alert.RuleStatusMetric)
	status.SetEmptyGauge().DataPoints().AppendEmpty().SetTimestamp(pcommon.NewTimestampFromTime(t0))
	other := ms.AppendEmpty()
	other.SetName("http.server.request.duration")
	other.SetEmptySum().DataPoints().AppendEmpty().SetDoubleValue(3)
	other.Sum().DataPoints().AppendEmpty().SetDoubleValue(4)
	hist := ms.AppendEmpty()
	hist.SetName("junction.latency")
	hist.SetEmptyHistogram().DataPoints().AppendEmpty()
	// An edge point without its target stays a series only.
	broken := ms.AppendEmpty()
	broken.SetName(entity.EdgeMetricPrefix + "requests.rate")
	broken.SetEmptyGauge().DataPoints().AppendEmpty().Attributes().PutStr(entity.AttrEdgeSource, "service:a")

	// A resource naming its entity by id only: the type comes from the
	// id, and its other metrics are kept as series.
	rm = md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(entity.AttrEntityID, "database:postgresql/db:5432/orders")
	rm.Resource().Attributes().PutStr(entity.AttrVirtual, "true")
	ms = rm.ScopeMetrics().AppendEmpty().Metrics()
	pool := ms.AppendEmpty()
	pool.SetName("db.client.connection.count")
	pool.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(7)
	feat := ms.AppendEmpty()
	feat.SetName(entity.MetricPrefix + "requests.rate")
	feat.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(2)

	var b Batch
	Decode(&b, md, now.UnixMilli())
	require.Equal(t, 1, b.Skipped)
	require.Equal(t, 2, b.NoEntity)
	require.Len(t, b.Resources, 2)
	require.Equal(t, entity.Ref{Type: entity.Database, ID: "database:postgresql/db:5432/orders"}, b.Resources[1].Entity)
	require.True(t, b.Resources[1].Virtual)

	type got struct {
		Kind     Kind
		Resource int
		Metric   string
		Feature  string
		Time     int64
		Value    float64
	}
	var points []got
	for _, p := range b.Points {
		points = append(points, got{p.Kind, p.Resource, p.Metric, p.Feature, p.Time, p.Value})
	}
	require.Equal(t, []got{
		{Series, 0, alert.MetricName, "", now.UnixMilli(), 1},
		{RuleStatus, 0, alert.RuleStatusMetric, "", t0.UnixMilli(), 0},
		{Series, 0, entity.EdgeMetricPrefix + "requests.rate", "", now.UnixMilli(), 0},
		{Series, 1, "db.client.connection.count", "", now.UnixMilli(), 7},
		{EntityFeature, 1, entity.MetricPrefix + "requests.rate", "requests.rate", now.UnixMilli(), 2},
	}, points)
}

// BenchmarkDecode decodes the derived metrics of 1000 entities with three
// features each and 2000 edges.
func BenchmarkDecode(b *testing.B) {
	snap := &entity.Snapshot{Time: t0}
	for i := range 1000 {
		id := entity.ID(entity.Service, "shop", "svc-"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		snap.Entities = append(snap.Entities, entity.Entity{
			Ref:        entity.Ref{Type: entity.Service, ID: id, Name: id},
			Attributes: map[string]string{"service.name": id},
			Features:   map[string]float64{"requests.rate": 1, "errors.ratio": 0, "latency.p99_ms": 10},
		})
		for j := range 2 {
			snap.Edges = append(snap.Edges, entity.Edge{Source: id, Target: id + "-" + string(rune('0'+j)), Type: entity.EdgeHTTP,
				Features: map[string]float64{"requests.rate": 1}})
		}
	}
	md := pmetric.NewMetrics()
	Append(md, snap, t0)
	var batch Batch
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		Decode(&batch, md, t0.UnixMilli())
	}
	if len(batch.Points) != 5000 {
		b.Fatalf("decoded %d points, want 5000", len(batch.Points))
	}
}
