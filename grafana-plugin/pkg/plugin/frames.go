package plugin

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// Colors of alert states, severities and health arcs, shared by every frame so
// a panel shows the same thing in the same color.
const (
	colorOK       = "green"
	colorWarning  = "yellow"
	colorCritical = "red"
	colorPending  = "orange"
	colorInfo     = "blue"
	colorResolved = "text"
)

func fixedColor(c string) map[string]any {
	return map[string]any{"mode": "fixed", "fixedColor": c}
}

func stateMappings() data.ValueMappings {
	return data.ValueMappings{data.ValueMapper{
		"firing":   {Color: colorCritical, Index: 0},
		"pending":  {Color: colorPending, Index: 1},
		"resolved": {Color: colorOK, Index: 2},
	}}
}

func severityMappings() data.ValueMappings {
	return data.ValueMappings{data.ValueMapper{
		"page":     {Color: colorCritical, Index: 0},
		"critical": {Color: colorCritical, Index: 1},
		"warning":  {Color: colorWarning, Index: 2},
		"info":     {Color: colorInfo, Index: 3},
	}}
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// AlertsFrame is the alert table: one row per alert instance, newest first as
// the API answers. selfUID, when set, links each id to its evidence query.
func AlertsFrame(alerts []Alert, selfUID string) *data.Frame {
	n := len(alerts)
	since := make([]time.Time, n)
	state := make([]string, n)
	severity := make([]string, n)
	kind := make([]string, n)
	rule := make([]string, n)
	entity := make([]string, n)
	entityID := make([]string, n)
	blamed := make([]*string, n)
	summary := make([]string, n)
	id := make([]string, n)
	for i := range alerts {
		a := &alerts[i]
		since[i] = a.Since()
		state[i] = a.State
		severity[i] = a.Severity
		kind[i] = a.Kind
		rule[i] = a.Rule
		entity[i] = a.Entity.Label()
		entityID[i] = a.Entity.ID
		blamed[i] = strPtr(a.Blame.Label())
		summary[i] = a.Annotations["summary"]
		id[i] = a.ID
	}
	stateF := data.NewField("state", nil, state)
	stateF.Config = &data.FieldConfig{Mappings: stateMappings()}
	sevF := data.NewField("severity", nil, severity)
	sevF.Config = &data.FieldConfig{Mappings: severityMappings()}
	idF := data.NewField("id", nil, id)
	if selfUID != "" {
		idF.Config = &data.FieldConfig{Links: []data.DataLink{{
			Title: "Evidence",
			Internal: &data.InternalDataLink{
				DatasourceUID: selfUID,
				Query:         map[string]any{"queryType": QueryTypeEvidence, "alertId": "${__value.raw}"},
			},
		}}}
	}
	f := data.NewFrame("alerts",
		data.NewField("since", nil, since),
		stateF, sevF,
		data.NewField("kind", nil, kind),
		data.NewField("rule", nil, rule),
		data.NewField("entity", nil, entity),
		data.NewField("entity id", nil, entityID),
		data.NewField("blamed entity", nil, blamed),
		data.NewField("summary", nil, summary),
		idF,
	)
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return f
}

// maxTimelineSeries bounds the alert instances of one timeline frame: the
// wide frame holds boundaries x instances cells, and a State timeline panel
// with more rows than this is unreadable anyway.
const maxTimelineSeries = 100

var severityRank = map[string]int{"page": 0, "critical": 0, "warning": 1, "info": 2}

func rankOf(severity string) int {
	if r, ok := severityRank[severity]; ok {
		return r
	}
	return len(severityRank)
}

// TimelineFrame turns state intervals into a wide frame for the State timeline
// panel: a time field with every interval boundary, and per alert instance a
// string field holding its state from that time on (null when inactive).
// Beyond maxTimelineSeries instances the most severe are kept and a notice
// says how many were left out.
func TimelineFrame(intervals []Interval) *data.Frame {
	type series struct {
		id, display string
		spans       []Interval
	}
	byID := map[string]*series{}
	var order []string
	times := map[int64]time.Time{}
	for _, iv := range intervals {
		s, ok := byID[iv.ID]
		if !ok {
			disp := iv.Rule + " on " + iv.Entity.Label()
			if iv.Blame != nil && iv.Blame.ID != "" && iv.Blame.ID != iv.Entity.ID {
				disp += " (blames " + iv.Blame.Label() + ")"
			}
			s = &series{id: iv.ID, display: disp}
			byID[iv.ID] = s
			order = append(order, iv.ID)
		}
		s.spans = append(s.spans, iv)
		times[iv.From.UnixNano()] = iv.From
		times[iv.To.UnixNano()] = iv.To
	}
	sort.Slice(order, func(i, j int) bool {
		ri, rj := rankOf(byID[order[i]].spans[0].Severity), rankOf(byID[order[j]].spans[0].Severity)
		if ri != rj {
			return ri < rj
		}
		return order[i] < order[j]
	})
	dropped := 0
	if len(order) > maxTimelineSeries {
		dropped = len(order) - maxTimelineSeries
		order = order[:maxTimelineSeries]
		times = map[int64]time.Time{}
		for _, id := range order {
			for _, sp := range byID[id].spans {
				times[sp.From.UnixNano()] = sp.From
				times[sp.To.UnixNano()] = sp.To
			}
		}
	}
	keys := make([]int64, 0, len(times))
	for k := range times {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	ts := make([]time.Time, len(keys))
	for i, k := range keys {
		ts[i] = times[k].UTC()
	}
	fields := []*data.Field{data.NewField("time", nil, ts)}
	for _, id := range order {
		s := byID[id]
		vals := make([]*string, len(ts))
		for i, t := range ts {
			for _, sp := range s.spans {
				if !t.Before(sp.From) && t.Before(sp.To) {
					st := sp.State
					vals[i] = &st
					break
				}
			}
		}
		f := data.NewField(id, data.Labels{"rule": s.spans[0].Rule, "entity": s.spans[0].Entity.ID, "severity": s.spans[0].Severity}, vals)
		f.Config = &data.FieldConfig{DisplayNameFromDS: s.display, Mappings: stateMappings()}
		fields = append(fields, f)
	}
	fr := data.NewFrame("alert timeline", fields...)
	fr.Meta = &data.FrameMeta{PreferredVisualization: "state-timeline"}
	if dropped > 0 {
		fr.Meta.Notices = []data.Notice{{
			Severity: data.NoticeSeverityWarning,
			Text:     fmt.Sprintf("%d more alert instances are not shown (at most %d, most severe first): filter by severity, rule or entity", dropped, maxTimelineSeries),
		}}
	}
	return fr
}

func stat(m map[string]float64, k string) *float64 {
	v, ok := m[k]
	if !ok || math.IsNaN(v) {
		return nil
	}
	return &v
}

// normalizedHealth returns arc fractions that sum to 1: an entity with no
// health data is shown as all ok rather than as an empty ring.
func normalizedHealth(h Health) (ok, warning, critical float64) {
	sum := h.OK + h.Warning + h.Critical
	if sum <= 0 || math.IsNaN(sum) {
		return 1, 0, 0
	}
	return h.OK / sum, h.Warning / sum, h.Critical / sum
}

// GraphFrames builds the Node Graph panel's `nodes` and `edges` frames. Blamed
// entities and the edges into them are highlighted; the request rate is the
// main stat and the p99 latency the secondary one.
func GraphFrames(g Graph) (nodes, edges *data.Frame) {
	n := len(g.Nodes)
	var (
		id, title, subtitle, alerts   = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		mainstat, secondary, errRatio = make([]*float64, n), make([]*float64, n), make([]*float64, n)
		arcOK, arcWarn, arcCrit       = make([]float64, n), make([]float64, n), make([]float64, n)
		highlighted, virtual          = make([]bool, n), make([]bool, n)
		color                         = make([]string, n)
	)
	blamed := map[string]bool{}
	for i, nd := range g.Nodes {
		id[i] = nd.ID
		title[i] = nd.Name
		if title[i] == "" {
			title[i] = nd.ID
		}
		subtitle[i] = nd.Type
		mainstat[i] = stat(nd.Stats, "request.rate")
		secondary[i] = stat(nd.Stats, "latency.p99_ms")
		errRatio[i] = stat(nd.Stats, "error.ratio")
		arcOK[i], arcWarn[i], arcCrit[i] = normalizedHealth(nd.Health)
		highlighted[i] = nd.Blamed
		virtual[i] = nd.Virtual
		alerts[i] = strings.Join(nd.Alerts, "\n")
		switch {
		case nd.Blamed || arcCrit[i] > 0:
			color[i] = colorCritical
		case arcWarn[i] > 0:
			color[i] = colorWarning
		default:
			color[i] = colorOK
		}
		if nd.Blamed {
			blamed[nd.ID] = true
		}
	}
	withCfg := func(f *data.Field, cfg data.FieldConfig) *data.Field {
		f.Config = &cfg
		return f
	}
	nodes = data.NewFrame("nodes",
		data.NewField("id", nil, id),
		data.NewField("title", nil, title),
		data.NewField("subtitle", nil, subtitle),
		withCfg(data.NewField("mainstat", nil, mainstat), data.FieldConfig{DisplayName: "Requests", Unit: "reqps"}),
		withCfg(data.NewField("secondarystat", nil, secondary), data.FieldConfig{DisplayName: "p99", Unit: "ms"}),
		withCfg(data.NewField("arc__ok", nil, arcOK), data.FieldConfig{DisplayName: "No alert", Color: fixedColor(colorOK)}),
		withCfg(data.NewField("arc__warning", nil, arcWarn), data.FieldConfig{DisplayName: "Warning", Color: fixedColor(colorWarning)}),
		withCfg(data.NewField("arc__critical", nil, arcCrit), data.FieldConfig{DisplayName: "Critical", Color: fixedColor(colorCritical)}),
		withCfg(data.NewField("detail__error_ratio", nil, errRatio), data.FieldConfig{DisplayName: "Error ratio", Unit: "percentunit"}),
		withCfg(data.NewField("detail__virtual", nil, virtual), data.FieldConfig{DisplayName: "Virtual (seen only from its callers)"}),
		withCfg(data.NewField("detail__alerts", nil, alerts), data.FieldConfig{DisplayName: "Alerts"}),
		data.NewField("highlighted", nil, highlighted),
		data.NewField("color", nil, color),
	)
	nodes.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph}

	m := len(g.Edges)
	var (
		eid, src, dst, etype   = make([]string, m), make([]string, m), make([]string, m), make([]string, m)
		erate, ep99, eerr, esh = make([]*float64, m), make([]*float64, m), make([]*float64, m), make([]*float64, m)
		ehl                    = make([]bool, m)
	)
	for i, e := range g.Edges {
		eid[i], src[i], dst[i], etype[i] = e.ID, e.Source, e.Target, e.Type
		erate[i] = stat(e.Stats, "request.rate")
		ep99[i] = stat(e.Stats, "latency.p99_ms")
		eerr[i] = stat(e.Stats, "error.ratio")
		esh[i] = stat(e.Stats, "latency.share")
		ehl[i] = blamed[e.Target]
	}
	edges = data.NewFrame("edges",
		data.NewField("id", nil, eid),
		data.NewField("source", nil, src),
		data.NewField("target", nil, dst),
		withCfg(data.NewField("mainstat", nil, erate), data.FieldConfig{DisplayName: "Requests", Unit: "reqps"}),
		withCfg(data.NewField("secondarystat", nil, ep99), data.FieldConfig{DisplayName: "p99", Unit: "ms"}),
		withCfg(data.NewField("detail__type", nil, etype), data.FieldConfig{DisplayName: "Edge type"}),
		withCfg(data.NewField("detail__error_ratio", nil, eerr), data.FieldConfig{DisplayName: "Error ratio", Unit: "percentunit"}),
		withCfg(data.NewField("detail__latency_share", nil, esh), data.FieldConfig{DisplayName: "Share of caller latency", Unit: "percentunit"}),
		data.NewField("highlighted", nil, ehl),
	)
	edges.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph}
	return nodes, edges
}

// SeriesFrame is one entity feature as a time series frame with labels, the
// shape Grafana Alerting evaluates (one frame per entity).
func SeriesFrame(s Series) *data.Frame {
	ts := make([]time.Time, len(s.Points))
	vs := make([]*float64, len(s.Points))
	for i, p := range s.Points {
		ts[i] = time.UnixMilli(int64(p[0])).UTC()
		if !math.IsNaN(p[1]) {
			v := p[1]
			vs[i] = &v
		}
	}
	labels := data.Labels{"entity": s.Entity.ID}
	if s.Entity.Type != "" {
		labels["entity_type"] = s.Entity.Type
	}
	vf := data.NewField(s.Feature, labels, vs)
	vf.Config = &data.FieldConfig{DisplayNameFromDS: s.Entity.Label() + " " + s.Feature, Unit: featureUnit(s.Feature)}
	f := data.NewFrame(s.Feature, data.NewField("time", nil, ts), vf)
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}}
	if s.Step != "" {
		f.Meta.Custom = map[string]any{"step": s.Step}
	}
	return f
}

// featureUnit picks a Grafana unit from the feature name's suffix.
func featureUnit(feature string) string {
	switch {
	case strings.HasSuffix(feature, "_ms"):
		return "ms"
	case strings.HasSuffix(feature, "_s") || strings.HasSuffix(feature, "_seconds"):
		return "s"
	case strings.HasSuffix(feature, "_bytes"):
		return "bytes"
	case strings.HasSuffix(feature, ".rate"):
		return "reqps"
	case strings.HasSuffix(feature, ".ratio") || strings.HasSuffix(feature, ".utilization") || strings.HasSuffix(feature, ".share"):
		return "percentunit"
	}
	return ""
}

// EvidenceFrames explains one alert: its exemplar traces (linked to the
// tracing data source when one is configured), log samples, the values the
// rule saw, and the state history.
func EvidenceFrames(d AlertDetail, tracingUID, tracingQueryType string) data.Frames {
	var ev Evidence
	if d.Alert.Evidence != nil {
		ev = *d.Alert.Evidence
	}
	traceLinks := func() *data.FieldConfig {
		if tracingUID == "" {
			return nil
		}
		q := map[string]any{"query": "${__value.raw}"}
		if tracingQueryType != "" {
			q["queryType"] = tracingQueryType
		}
		return &data.FieldConfig{Links: []data.DataLink{{
			Title:    "Open trace",
			Internal: &data.InternalDataLink{DatasourceUID: tracingUID, Query: q},
		}}}
	}

	n := len(ev.Exemplars)
	xt, xid, xspan, xreason, xval := make([]time.Time, n), make([]string, n), make([]string, n), make([]string, n), make([]float64, n)
	for i, x := range ev.Exemplars {
		xt[i], xid[i], xspan[i], xreason[i], xval[i] = x.Time.UTC(), x.TraceID, x.SpanID, x.Reason, x.Value
	}
	tid := data.NewField("trace_id", nil, xid)
	tid.Config = traceLinks()
	traces := data.NewFrame("traces",
		data.NewField("time", nil, xt), tid,
		data.NewField("span_id", nil, xspan),
		data.NewField("reason", nil, xreason),
		data.NewField("value", nil, xval),
	)
	traces.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}

	m := len(ev.LogSamples)
	lt, lsev, lbody, ltpl, lcount, ltid := make([]time.Time, m), make([]string, m), make([]string, m), make([]string, m), make([]int64, m), make([]*string, m)
	for i, l := range ev.LogSamples {
		lt[i], lsev[i], lbody[i], ltpl[i], lcount[i], ltid[i] = l.Time.UTC(), l.Severity, l.Body, l.Template, l.Count, strPtr(l.TraceID)
	}
	ltidF := data.NewField("trace_id", nil, ltid)
	ltidF.Config = traceLinks()
	logs := data.NewFrame("logs",
		data.NewField("time", nil, lt),
		data.NewField("body", nil, lbody),
		data.NewField("severity", nil, lsev),
		data.NewField("template", nil, ltpl),
		data.NewField("count", nil, lcount),
		ltidF,
	)
	logs.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeLogs}

	keys := make([]string, 0, len(ev.Values))
	for k := range ev.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]float64, len(keys))
	for i, k := range keys {
		vals[i] = ev.Values[k]
	}
	values := data.NewFrame("values", data.NewField("metric", nil, keys), data.NewField("value", nil, vals))
	values.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}

	h := len(d.History)
	ht, hs := make([]time.Time, h), make([]string, h)
	for i, c := range d.History {
		ht[i], hs[i] = c.Time.UTC(), c.State
	}
	hsF := data.NewField("state", nil, hs)
	hsF.Config = &data.FieldConfig{Mappings: stateMappings()}
	history := data.NewFrame("history", data.NewField("time", nil, ht), hsF)
	history.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return data.Frames{traces, logs, values, history}
}

// RulesFrame is the rule health table.
func RulesFrame(rules []RuleStatus) *data.Frame {
	n := len(rules)
	group, rule, kind, sev, file, health, lastErr := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	lastEval := make([]*time.Time, n)
	dur := make([]float64, n)
	active := make([]int64, n)
	for i, r := range rules {
		group[i], rule[i], kind[i], sev[i], file[i], health[i], lastErr[i] = r.Group, r.Rule, r.Kind, r.Severity, r.File, r.Health, r.LastError
		if r.LastEvaluation != nil {
			t := r.LastEvaluation.UTC()
			lastEval[i] = &t
		}
		dur[i] = float64(r.EvaluationDuration) / float64(time.Millisecond)
		active[i] = r.Active
	}
	healthF := data.NewField("health", nil, health)
	healthF.Config = &data.FieldConfig{Mappings: data.ValueMappings{data.ValueMapper{
		"ok":      {Color: colorOK, Index: 0},
		"err":     {Color: colorCritical, Index: 1},
		"unknown": {Color: colorResolved, Index: 2},
	}}}
	sevF := data.NewField("severity", nil, sev)
	sevF.Config = &data.FieldConfig{Mappings: severityMappings()}
	durF := data.NewField("evaluation duration", nil, dur)
	durF.Config = &data.FieldConfig{Unit: "ms"}
	f := data.NewFrame("rules",
		data.NewField("group", nil, group),
		data.NewField("rule", nil, rule),
		data.NewField("kind", nil, kind),
		sevF, healthF,
		data.NewField("last error", nil, lastErr),
		data.NewField("last evaluation", nil, lastEval),
		durF,
		data.NewField("active", nil, active),
		data.NewField("file", nil, file),
	)
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return f
}
