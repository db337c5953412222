package plugin

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Query types, as the QueryEditor sets `queryType`.
const (
	QueryTypeAlerts        = "alerts"
	QueryTypeAlertTimeline = "alertTimeline"
	QueryTypeGraph         = "graph"
	QueryTypeSeries        = "series"
	QueryTypeEvidence      = "evidence"
	QueryTypeRules         = "rules"
)

// maxSeriesEntities bounds how many entities one series query fans out to
// (a multi-value template variable can expand to many).
const maxSeriesEntities = 50

// QueryModel is the JSON of one query (src/types.ts JunctionQuery).
type QueryModel struct {
	QueryType string `json:"queryType"`

	// alerts, alertTimeline and the live stream
	State    string `json:"state,omitempty"`
	Severity string `json:"severity,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Entity   string `json:"entity,omitempty"` // also series: comma list of entity ids
	Rule     string `json:"rule,omitempty"`
	Limit    int    `json:"limit,omitempty"`

	// graph
	EntityType string `json:"entityType,omitempty"`

	// series
	Feature string `json:"feature,omitempty"`
	Step    string `json:"step,omitempty"`

	// evidence
	AlertID string `json:"alertId,omitempty"`
}

// ParseQuery reads and checks one query's JSON; queryType falls back to the
// DataQuery's own QueryType.
func ParseQuery(raw json.RawMessage, queryType string) (QueryModel, error) {
	var q QueryModel
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &q); err != nil {
			return q, fmt.Errorf("the query is not valid JSON: %w", err)
		}
	}
	if q.QueryType == "" {
		q.QueryType = queryType
	}
	if q.QueryType == "" {
		q.QueryType = QueryTypeAlerts
	}
	switch q.QueryType {
	case QueryTypeAlerts, QueryTypeAlertTimeline, QueryTypeGraph, QueryTypeRules:
	case QueryTypeSeries:
		if len(q.Entities()) == 0 {
			return q, fmt.Errorf("series query: entity is empty: pick the entity whose feature to plot")
		}
		if len(q.Entities()) > maxSeriesEntities {
			return q, fmt.Errorf("series query: entity lists %d entities; at most %d per query", len(q.Entities()), maxSeriesEntities)
		}
		if strings.TrimSpace(q.Feature) == "" {
			return q, fmt.Errorf("series query: feature is empty: name a feature such as latency.p99_ms")
		}
		if q.Step != "" {
			if d, err := time.ParseDuration(q.Step); err != nil || d < time.Second {
				return q, fmt.Errorf("series query: step %q is not a duration of at least 1s (e.g. 15s, 1m)", q.Step)
			}
		}
	case QueryTypeEvidence:
		if strings.TrimSpace(q.AlertID) == "" {
			return q, fmt.Errorf("evidence query: alertId is empty: pick the alert to explain")
		}
	default:
		return q, fmt.Errorf("unknown queryType %q: use one of alerts, alertTimeline, graph, series, evidence, rules", q.QueryType)
	}
	if q.Limit < 0 {
		return q, fmt.Errorf("limit is %d: it must be 0 (server default) or more", q.Limit)
	}
	return q, nil
}

// Filter is the alert filter of the query.
func (q QueryModel) Filter() AlertFilter {
	return AlertFilter{State: q.State, Severity: q.Severity, Kind: q.Kind, Entity: q.Entity, Rule: q.Rule, Limit: q.Limit}
}

// Entities splits the entity field, which a multi-value variable fills as
// "a,b" or "{a,b}".
func (q QueryModel) Entities() []string {
	s := strings.TrimSpace(q.Entity)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
