package derived

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

// Kind says what a decoded data point is.
type Kind uint8

const (
	// Series is a point stored only as a series sample: ALERTS, or another
	// metric of a resource that names its entity.
	Series Kind = iota
	// EntityFeature is an entity's feature (entity.MetricPrefix+feature on
	// a resource that names the entity).
	EntityFeature
	// EdgeFeature is an edge's feature (entity.EdgeMetricPrefix+feature
	// with the edge's source and target).
	EdgeFeature
	// RuleStatus is a rule status point (alert.RuleStatusMetric; decode it
	// with alert.RuleStatusFromDataPoint).
	RuleStatus
)

// Resource is the entity a resource of derived metrics names; Entity.ID
// is empty when it names none (the edges' resource, ALERTS).
type Resource struct {
	Entity  entity.Ref
	Virtual bool
	// Attributes are the resource's attributes, as sent.
	Attributes pcommon.Map
}

// Edge is the identity of an edge feature's point.
type Edge struct {
	Source, Target string
	Type           entity.EdgeType
}

// Point is one decoded gauge or sum data point. Strings and maps refer to
// the decoded pdata: the batch is valid while md is.
type Point struct {
	Kind Kind
	// Resource indexes Batch.Resources.
	Resource int
	// Metric is the metric's name; Feature the feature it carries
	// (EntityFeature, EdgeFeature).
	Metric, Feature string
	// Edge is set for EdgeFeature.
	Edge Edge
	// Time is the point's timestamp in Unix milliseconds (Decode's now
	// when the point has none).
	Time  int64
	Value float64
	// DataPoint is the point itself (labels, RuleStatus decoding).
	DataPoint pmetric.NumberDataPoint
}

// Batch is the decoded form of one pdata metrics batch. Reuse it with
// Reset.
type Batch struct {
	Resources []Resource
	Points    []Point
	// Skipped counts data points of types that are not stored
	// (histograms, exponential histograms, summaries); NoEntity the points
	// of other metrics on a resource without junction.entity.id, which
	// would merge the series of different resources and are not stored.
	Skipped, NoEntity int
}

// Reset empties b, keeping its capacity.
func (b *Batch) Reset() {
	clear(b.Resources)
	clear(b.Points)
	b.Resources, b.Points = b.Resources[:0], b.Points[:0]
	b.Skipped, b.NoEntity = 0, 0
}

// Decode appends md's gauge and sum points to b: what Append encodes
// (entity and edge features), rule status points, ALERTS, and the other
// metrics of resources that name their entity. nowMs stands in for a
// missing timestamp. Edge feature points without source or target are
// kept as Series points.
func Decode(b *Batch, md pmetric.Metrics, nowMs int64) {
	for _, rm := range md.ResourceMetrics().All() {
		ri := len(b.Resources)
		res := resource(rm.Resource().Attributes())
		b.Resources = append(b.Resources, res)
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				b.decodeMetric(m, ri, res.Entity.ID != "", nowMs)
			}
		}
	}
}

func (b *Batch) decodeMetric(m pmetric.Metric, ri int, named bool, nowMs int64) {
	var dps pmetric.NumberDataPointSlice
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps = m.Gauge().DataPoints()
	case pmetric.MetricTypeSum:
		dps = m.Sum().DataPoints()
	default:
		b.Skipped += dataPointCount(m)
		return
	}
	name := m.Name()
	derived := strings.HasPrefix(name, entity.MetricPrefix)
	if !named && name != alert.MetricName && !derived {
		b.NoEntity += dps.Len()
		return
	}
	kind, feature := Series, ""
	switch {
	case name == alert.RuleStatusMetric:
		kind = RuleStatus
	case strings.HasPrefix(name, entity.EdgeMetricPrefix):
		kind, feature = EdgeFeature, name[len(entity.EdgeMetricPrefix):]
	case derived && named:
		kind, feature = EntityFeature, name[len(entity.MetricPrefix):]
	}
	for _, dp := range dps.All() {
		p := Point{Kind: kind, Resource: ri, Metric: name, Feature: feature, Time: nowMs, Value: dp.DoubleValue(), DataPoint: dp}
		if dp.Timestamp() != 0 {
			p.Time = dp.Timestamp().AsTime().UnixMilli()
		}
		if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
			p.Value = float64(dp.IntValue())
		}
		if kind == EdgeFeature {
			p.Edge = edge(dp.Attributes())
			if p.Edge.Source == "" || p.Edge.Target == "" {
				p.Kind, p.Feature = Series, ""
			}
		}
		b.Points = append(b.Points, p)
	}
}

// resource reads the entity a resource names. The type falls back to the
// id's prefix ("database:..." is a database).
func resource(attrs pcommon.Map) Resource {
	str := func(k string) string {
		if v, ok := attrs.Get(k); ok {
			return v.AsString()
		}
		return ""
	}
	r := Resource{
		Entity:     entity.Ref{Type: entity.Type(str(entity.AttrEntityType)), ID: str(entity.AttrEntityID), Name: str(entity.AttrEntityName)},
		Attributes: attrs,
	}
	if r.Entity.Type == "" {
		r.Entity.Type = TypeFromID(r.Entity.ID)
	}
	if v, ok := attrs.Get(entity.AttrVirtual); ok {
		r.Virtual = v.Type() == pcommon.ValueTypeBool && v.Bool() || v.AsString() == "true"
	}
	return r
}

// TypeFromID reads the entity type from an id ("database:..." -> database).
func TypeFromID(id string) entity.Type {
	if i := strings.IndexByte(id, ':'); i > 0 {
		return entity.Type(id[:i])
	}
	return ""
}

func edge(attrs pcommon.Map) Edge {
	var e Edge
	if v, ok := attrs.Get(entity.AttrEdgeSource); ok {
		e.Source = v.AsString()
	}
	if v, ok := attrs.Get(entity.AttrEdgeTarget); ok {
		e.Target = v.AsString()
	}
	if v, ok := attrs.Get(entity.AttrEdgeType); ok {
		e.Type = entity.EdgeType(v.AsString())
	}
	return e
}

func dataPointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}
