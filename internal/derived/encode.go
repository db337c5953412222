// Package derived is the one encoding of Junction's derived metrics: the
// correlation processor appends an entity snapshot's features to pdata
// metrics with Append, and the junction exporter reads them back with
// Decode. Both sides live here so that a change to one is a change to the
// other, checked by the round-trip test.
//
// The encoding: per entity one resource carrying junction.entity.type,
// junction.entity.id, junction.entity.name (junction.entity.virtual when
// virtual) and the entity's identity attributes, with one gauge per
// feature named entity.MetricPrefix+feature; and one resource for all
// edges, with one gauge per edge feature named
// entity.EdgeMetricPrefix+feature whose data points carry
// junction.edge.source, junction.edge.target and junction.edge.type.
package derived

import (
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
)

// ScopeName is the instrumentation scope of derived metrics.
const ScopeName = "github.com/junction-sre/junction/processors/correlationprocessor"

var units = func() map[string]string {
	m := map[string]string{}
	for _, fs := range entity.Schema {
		for _, f := range fs {
			m[f.Name] = f.Unit
		}
	}
	return m
}()

// metricNames maps a schema feature to its metric name, so encoding a
// snapshot builds no name string per entity.
var metricNames = func() map[string]string {
	m := map[string]string{}
	for _, fs := range entity.Schema {
		for _, f := range fs {
			m[f.Name] = entity.MetricPrefix + f.Name
		}
	}
	return m
}()

func metricName(f string) string {
	if n, ok := metricNames[f]; ok {
		return n
	}
	return entity.MetricPrefix + f
}

var edgeUnits = func() map[string]string {
	m := map[string]string{}
	for _, f := range entity.EdgeSchema {
		m[f.Name] = f.Unit
	}
	return m
}()

// Append appends the snapshot's short-window features to md: per
// entity one resource (junction.entity.* and identity attributes) with one
// gauge per feature named entity.MetricPrefix+feature, and one resource for
// all edges with one gauge per edge feature named
// entity.EdgeMetricPrefix+feature whose data points carry the edge's
// source, target and type. Metrics and points are in a stable order.
func Append(md pmetric.Metrics, snap *entity.Snapshot, ts time.Time) {
	t := pcommon.NewTimestampFromTime(ts)
	var names []string
	for i := range snap.Entities {
		e := &snap.Entities[i]
		if len(e.Features) == 0 {
			continue
		}
		rm := md.ResourceMetrics().AppendEmpty()
		ra := rm.Resource().Attributes()
		keys := make([]string, 0, len(e.Attributes))
		for k := range e.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ra.EnsureCapacity(len(keys) + 4)
		for _, k := range keys {
			ra.PutStr(k, e.Attributes[k])
		}
		ra.PutStr(entity.AttrEntityType, string(e.Type))
		ra.PutStr(entity.AttrEntityID, e.ID)
		ra.PutStr(entity.AttrEntityName, e.Name)
		if e.Virtual {
			ra.PutBool(entity.AttrVirtual, true)
		}
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(ScopeName)
		names = names[:0]
		for f := range e.Features {
			names = append(names, f)
		}
		sort.Strings(names)
		sm.Metrics().EnsureCapacity(len(names))
		for _, f := range names {
			m := sm.Metrics().AppendEmpty()
			m.SetName(metricName(f))
			m.SetUnit(units[f])
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(t)
			dp.SetDoubleValue(e.Features[f])
		}
	}
	if len(snap.Edges) == 0 {
		return
	}
	byFeature := map[string][]int{}
	for i := range snap.Edges {
		for f := range snap.Edges[i].Features {
			byFeature[f] = append(byFeature[f], i)
		}
	}
	if len(byFeature) == 0 {
		return
	}
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(ScopeName)
	names = names[:0]
	for f := range byFeature {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		m := sm.Metrics().AppendEmpty()
		m.SetName(entity.EdgeMetricPrefix + f)
		m.SetUnit(edgeUnits[f])
		g := m.SetEmptyGauge()
		g.DataPoints().EnsureCapacity(len(byFeature[f]))
		for _, i := range byFeature[f] {
			e := &snap.Edges[i]
			dp := g.DataPoints().AppendEmpty()
			dp.SetTimestamp(t)
			dp.SetDoubleValue(e.Features[f])
			dp.Attributes().EnsureCapacity(3)
			dp.Attributes().PutStr(entity.AttrEdgeSource, e.Source)
			dp.Attributes().PutStr(entity.AttrEdgeTarget, e.Target)
			dp.Attributes().PutStr(entity.AttrEdgeType, string(e.Type))
		}
	}
}
