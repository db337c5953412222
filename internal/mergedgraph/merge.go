// Package mergedgraph builds entity snapshots for the rule engine from
// series that gateway replicas write to VictoriaMetrics (or any store with
// Prometheus' query API), so rules in a gateway tier see the graph of all
// replicas rather than one replica's share (docs/deploy.md "Merged series").
//
// Each replica emits its snapshot as mergeable series (AppendSeries): every
// value is either a sum, a weighted sum with its weight, a maximum, or the
// count of a latency sketch bin, so the store merges replicas with sum and
// max. Source queries the merged series and rebuilds the snapshot; latency
// quantiles it reads from the summed sketch bins (latency.go).
package mergedgraph

import (
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
)

// Metric names of the mergeable series, as OTel metrics; a Prometheus
// remote-write exporter writes them with dots turned into underscores
// (junction_merge_sum, ...).
const (
	// MetricEntity is 1 for every entity of the snapshot; its attributes
	// carry the entity's identity.
	MetricEntity = "junction.merge.entity"
	// MetricSum is a feature's value, or for a weighted feature its value
	// times its weight. Replicas merge by addition.
	MetricSum = "junction.merge.sum"
	// MetricWeight is the weight of a weighted feature. Replicas merge by
	// addition; the merged value is sum / weight.
	MetricWeight = "junction.merge.weight"
	// MetricMax is a feature merged by taking the largest value, and a
	// weighted feature whose weight was zero or absent on a replica.
	MetricMax = "junction.merge.max"
)

// Attribute keys of the mergeable series beyond the entity and edge
// identity attributes (entity.AttrEntityID, entity.AttrEdgeSource, ...).
// They hold no dots, so they keep their names as labels.
const (
	AttrFeature = "junction_feature"
	// AttrWindow is WindowShort, WindowLong, WindowBaseline or WindowMetric.
	AttrWindow = "junction_window"
	// AttrAttributes holds the entity's attributes as a JSON object, so
	// their keys survive the label-name rules of the store.
	AttrAttributes = "junction_entity_attributes"
)

// Windows: which map of entity.Entity a value belongs to.
const (
	WindowShort    = "1m"       // Entity.Features, Edge.Features
	WindowLong     = "5m"       // Entity.Features5m
	WindowBaseline = "baseline" // Entity.Baseline
	WindowMetric   = "metric"   // Entity.Metrics (raw metric values)
)

// Kind is how the replicas' values of one feature merge.
type Kind int

const (
	// Max keeps the largest value: gauges that every replica sees whole
	// (an entity's metrics arrive on one replica, partitioned by resource)
	// or where the largest is what rules ask about (oldest age, an open
	// circuit breaker, throttling).
	Max Kind = iota
	// Sum adds the replicas' values: rates, counts, cores, bytes, cost.
	Sum
	// Weighted is the mean weighted by another feature of the same entity
	// and window (Merge.Weight) or by the ratio's denominator
	// (Merge.Numerator): exact for ratios whose denominator is the weight
	// (error ratio by request rate, CPU utilization by the CPU requested or
	// the limit), an approximation for a quantile or a mean of shares.
	Weighted
	// Quantile is a latency quantile of the 1 m or 5 m window, read from
	// the replicas' latency sketch bins summed (MetricLatencyBin): the
	// quantile of one sketch fed all their requests, at the resolution of
	// the emitted bins (EmitAccuracy, MaxEmittedBins). A replica whose
	// snapshot has no sketch for the window (a release before the bins)
	// emits the value Weighted by Merge.Weight instead; the merged value
	// comes from the bins whenever any replica emitted bins, from the
	// weighted mean otherwise. Baselines (averages over time, not window
	// sketches) stay Weighted.
	Quantile
)

// Merge is the merge rule of one feature.
type Merge struct {
	Kind Kind
	// Weight names the feature whose value weighs this one (Weighted).
	Weight string
	// WeightBaseline takes the weight from the baseline window whatever
	// the window of the value (surge.factor = rate / baseline rate).
	WeightBaseline bool
	// Numerator, when set, makes the feature a ratio numerator / denominator
	// merged as a whole: with Denominator a feature of the entity, the
	// merged numerator over the merged denominator; otherwise the merged
	// numerator over the sum of the denominators the replicas that had the
	// ratio imply (numerator / value), which counts a service's CPU limit
	// though it is not a feature. Weight is then unused.
	Numerator, Denominator string
}

var (
	byRate   = Merge{Kind: Weighted, Weight: "request.rate"}
	quantile = Merge{Kind: Quantile, Weight: "request.rate"}
	sum      = Merge{Kind: Sum}
)

// merges lists every feature that does not merge by Max. A feature a type
// does not have is simply never emitted.
var merges = map[string]Merge{
	"request.rate":               sum,
	"error.ratio":                byRate,
	"latency.p50_ms":             quantile,
	"latency.p90_ms":             quantile,
	"latency.p99_ms":             quantile,
	"shed.ratio":                 byRate,
	"critical_path.self_share":   byRate,
	"cost.per_1k_requests":       byRate,
	"slo.burn_rate_5m":           byRate,
	"slo.burn_rate_30m":          byRate,
	"slo.burn_rate_1h":           byRate,
	"slo.burn_rate_6h":           byRate,
	"surge.factor":               {Kind: Weighted, Weight: "request.rate", WeightBaseline: true},
	"log.error_rate":             sum,
	"cpu.usage_cores":            sum,
	"cpu.request_cores":          sum,
	"cpu.limit_cores":            sum,
	"cpu.request_utilization":    {Kind: Weighted, Numerator: "cpu.usage_cores", Denominator: "cpu.request_cores"},
	"cpu.limit_utilization":      {Kind: Weighted, Numerator: "cpu.usage_cores", Denominator: "cpu.limit_cores"},
	"memory.usage_bytes":         sum,
	"memory.request_bytes":       sum,
	"memory.limit_bytes":         sum,
	"memory.request_utilization": {Kind: Weighted, Numerator: "memory.usage_bytes", Denominator: "memory.request_bytes"},
	"memory.limit_utilization":   {Kind: Weighted, Numerator: "memory.usage_bytes", Denominator: "memory.limit_bytes"},
	// A pod's metrics reach one replica (partitioned by resource), so the
	// pods a service has on each replica add up.
	"replicas":              sum,
	"restarts":              sum,
	"oom_kills":             sum,
	"cost.per_hour":         sum,
	"pool.pending":          sum,
	"pool.timeouts_rate":    sum,
	"deadlocks.rate":        sum,
	"query.slow_rate":       sum,
	"pending.overflow_rate": sum,
	"messages.throughput":   sum,
	"broadcast.errors_rate": sum,
	"produce.rate":          sum,
	"consume.rate":          sum,
}

// edgeMerges are the merge rules of edge features.
var edgeMerges = map[string]Merge{
	"request.rate":   sum,
	"error.ratio":    byRate,
	"latency.p50_ms": quantile,
	"latency.p99_ms": quantile,
	"latency.share":  byRate,
}

// ratios are the features merged as numerator / denominator, in a stable
// order.
var ratios = func() []string {
	var out []string
	for f, m := range merges {
		if m.Numerator != "" {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}()

// MergeOf returns the merge rule of an entity feature.
func MergeOf(feature string) Merge { return merges[feature] }

// EdgeMergeOf returns the merge rule of an edge feature.
func EdgeMergeOf(feature string) Merge { return edgeMerges[feature] }

// AppendSeries appends snap as mergeable series at ts to md: one resource
// per entity (its identity as resource attributes), one for all edges.
// Latency sketches (entity.Entity.Latency, entity.Edge.Latency) become
// MetricLatencyBin series in place of their window's latency quantiles.
// Each entity's evidence becomes MetricEvidence series, bounded by lim
// (evidence.go); edges' exemplars are not carried (rules read the
// evidence of entities).
func AppendSeries(md pmetric.Metrics, snap *entity.Snapshot, ts time.Time, lim EvidenceLimits) {
	t := pcommon.NewTimestampFromTime(ts)
	for i := range snap.Entities {
		e := &snap.Entities[i]
		rm := md.ResourceMetrics().AppendEmpty()
		ra := rm.Resource().Attributes()
		ra.PutStr(entity.AttrEntityType, string(e.Type))
		ra.PutStr(entity.AttrEntityID, e.ID)
		ra.PutStr(entity.AttrEntityName, e.Name)
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(scopeName)
		w := newWriter(sm, t)
		info := w.gauge(MetricEntity).AppendEmpty()
		info.SetTimestamp(t)
		info.SetDoubleValue(1)
		if e.Virtual {
			info.Attributes().PutBool(entity.AttrVirtual, true)
		}
		attrs, _ := json.Marshal(e.Attributes) // map[string]string always marshals
		info.Attributes().PutStr(AttrAttributes, string(attrs))

		short, long := sketches(e.Latency)
		w.features(e.Features, WindowShort, e.Features, e.Baseline, MergeOf, short)
		w.features(e.Features5m, WindowLong, e.Features5m, e.Baseline, MergeOf, long)
		w.features(e.Baseline, WindowBaseline, e.Baseline, e.Baseline, MergeOf, nil)
		w.features(e.Metrics, WindowMetric, nil, nil, func(string) Merge { return Merge{} }, nil)
		w.bins(WindowShort, short)
		w.bins(WindowLong, long)
		w.evidence(&e.Evidence, lim)
	}
	if len(snap.Edges) == 0 {
		return
	}
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(scopeName)
	w := newWriter(sm, t)
	for i := range snap.Edges {
		ed := &snap.Edges[i]
		w.edge = ed
		short, _ := sketches(ed.Latency)
		w.features(ed.Features, WindowShort, ed.Features, nil, EdgeMergeOf, short)
		w.bins(WindowShort, short)
	}
}

// sketches returns the window sketches of l, nil when l is.
func sketches(l *entity.LatencySketches) (short, long *entity.LatencySketch) {
	if l == nil {
		return nil, nil
	}
	return l.Short, l.Long
}

const scopeName = "github.com/junction-sre/junction/internal/mergedgraph"

// writer appends data points to the three value metrics and the latency
// bins of one scope.
type writer struct {
	sm                  pmetric.ScopeMetrics
	t                   pcommon.Timestamp
	sumM, weightM, maxM pmetric.NumberDataPointSlice
	binM                pmetric.NumberDataPointSlice
	evM                 pmetric.NumberDataPointSlice
	edge                *entity.Edge
}

func newWriter(sm pmetric.ScopeMetrics, t pcommon.Timestamp) *writer {
	return &writer{sm: sm, t: t}
}

func (w *writer) gauge(name string) pmetric.NumberDataPointSlice {
	m := w.sm.Metrics().AppendEmpty()
	m.SetName(name)
	return m.SetEmptyGauge().DataPoints()
}

func (w *writer) point(slot *pmetric.NumberDataPointSlice, name, feature, window string, v float64) {
	a := w.newPoint(slot, name, v, 2)
	a.PutStr(AttrFeature, feature)
	a.PutStr(AttrWindow, window)
	w.edgeLabels(a)
}

// newPoint appends a point of value v to the metric in slot, creating the
// metric on first use, and returns its attributes, with room for n
// attributes and the edge's.
func (w *writer) newPoint(slot *pmetric.NumberDataPointSlice, name string, v float64, n int) pcommon.Map {
	if *slot == (pmetric.NumberDataPointSlice{}) {
		*slot = w.gauge(name)
	}
	dp := slot.AppendEmpty()
	dp.SetTimestamp(w.t)
	dp.SetDoubleValue(v)
	a := dp.Attributes()
	if w.edge != nil {
		n += 3
	}
	a.EnsureCapacity(n)
	return a
}

// bins writes a window's latency sketch at the emitted resolution
// (EmitAccuracy): one point per nonempty bin.
func (w *writer) bins(window string, s *entity.LatencySketch) {
	if s == nil {
		return
	}
	spec, idx, counts := emittedBins(s)
	put := func(bin string, n float64) {
		a := w.newPoint(&w.binM, MetricLatencyBin, n, 3)
		a.PutStr(AttrWindow, window)
		a.PutStr(AttrBin, bin)
		a.PutStr(AttrSketch, spec)
		w.edgeLabels(a)
	}
	if s.Zero > 0 {
		put(BinZero, s.Zero)
	}
	for i, j := range idx {
		put(strconv.FormatInt(j, 10), counts[i])
	}
}

func (w *writer) edgeLabels(a pcommon.Map) {
	if w.edge != nil {
		a.PutStr(entity.AttrEdgeSource, w.edge.Source)
		a.PutStr(entity.AttrEdgeTarget, w.edge.Target)
		a.PutStr(entity.AttrEdgeType, string(w.edge.Type))
	}
}

// features writes one window's values; same and baseline are where the
// weights of that window and of the baseline are found. With the window's
// latency sketch, its quantiles are left to the sketch's bins.
func (w *writer) features(vals map[string]float64, window string, same, baseline map[string]float64, rule func(string) Merge, sketch *entity.LatencySketch) {
	names := make([]string, 0, len(vals))
	for f := range vals {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		v := vals[f]
		m := rule(f)
		switch m.Kind {
		case Sum:
			w.point(&w.sumM, MetricSum, f, window, v)
		case Weighted, Quantile:
			if m.Kind == Quantile && sketch != nil {
				continue
			}
			from := same
			if m.WeightBaseline {
				from = baseline
			}
			wt, ok := from[m.Weight]
			if m.Numerator != "" {
				var num float64
				num, ok = same[m.Numerator]
				if ok && v > 0 {
					wt = num / v
				} else {
					ok = false
				}
			}
			if ok && wt > 0 {
				w.point(&w.sumM, MetricSum, f, window, v*wt)
				w.point(&w.weightM, MetricWeight, f, window, wt)
				continue
			}
			w.point(&w.maxM, MetricMax, f, window, v)
		default:
			w.point(&w.maxM, MetricMax, f, window, v)
		}
	}
}
