package alert

import (
	"encoding/json"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
)

// Attribute names of an alert log record. The body is the summary.
const (
	EventName = "junction.alert"

	AttrEventName   = "event.name"
	AttrID          = "junction.alert.id"
	AttrGroup       = "junction.alert.group"
	AttrRule        = "junction.alert.rule"
	AttrKind        = "junction.alert.kind"
	AttrSeverity    = "junction.alert.severity"
	AttrState       = "junction.alert.state"
	AttrValue       = "junction.alert.value"
	AttrActiveAt    = "junction.alert.active_at"
	AttrFiredAt     = "junction.alert.fired_at"
	AttrResolvedAt  = "junction.alert.resolved_at"
	AttrLabels      = "junction.alert.labels"
	AttrAnnotations = "junction.alert.annotations"
	AttrEvidence    = "junction.alert.evidence" // JSON of Evidence
	AttrEntityType  = entity.AttrEntityType
	AttrEntityID    = entity.AttrEntityID
	AttrEntityName  = entity.AttrEntityName
	AttrBlameType   = "junction.blame.type"
	AttrBlameID     = "junction.blame.id"
	AttrBlameName   = "junction.blame.name"

	// MetricName is the ALERTS-style gauge: 1 for every pending or firing
	// instance at each evaluation, with labels alertname, alertstate,
	// severity, kind, entity and blame.
	MetricName = "ALERTS"

	// ScopeName is the instrumentation scope of alert records and metrics.
	ScopeName = "github.com/junction-sre/junction/rules"
)

// AppendLogs appends one log record per alert to logs, in one resource and
// scope.
func AppendLogs(logs plog.Logs, alerts []Alert) {
	if len(alerts) == 0 {
		return
	}
	sl := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName(ScopeName)
	for i := range alerts {
		a := &alerts[i]
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(a.EvaluatedAt))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(a.EvaluatedAt))
		lr.SetEventName(EventName)
		lr.SetSeverityNumber(severityNumber(a))
		lr.SetSeverityText(a.Severity)
		lr.Body().SetStr(a.Summary())
		at := lr.Attributes()
		at.PutStr(AttrEventName, EventName)
		at.PutStr(AttrID, a.ID)
		at.PutStr(AttrGroup, a.Group)
		at.PutStr(AttrRule, a.Rule)
		at.PutStr(AttrKind, a.Kind)
		at.PutStr(AttrSeverity, a.Severity)
		at.PutStr(AttrState, string(a.State))
		at.PutDouble(AttrValue, a.Value)
		putTime(at, AttrActiveAt, a.ActiveAt)
		putTime(at, AttrFiredAt, a.FiredAt)
		putTime(at, AttrResolvedAt, a.ResolvedAt)
		at.PutStr(AttrEntityType, string(a.Entity.Type))
		at.PutStr(AttrEntityID, a.Entity.ID)
		at.PutStr(AttrEntityName, a.Entity.Name)
		at.PutStr(AttrBlameType, string(a.Blame.Type))
		at.PutStr(AttrBlameID, a.Blame.ID)
		at.PutStr(AttrBlameName, a.Blame.Name)
		putMap(at, AttrLabels, a.Labels)
		putMap(at, AttrAnnotations, a.Annotations)
		at.PutStr(AttrEvidence, mustJSON(a.Evidence))
	}
}

// AppendMetrics appends the ALERTS gauge for the pending and firing alerts
// at ts.
func AppendMetrics(metrics pmetric.Metrics, alerts []Alert, ts time.Time) {
	sm := metrics.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(ScopeName)
	m := sm.Metrics().AppendEmpty()
	m.SetName(MetricName)
	m.SetDescription("1 for every pending or firing Junction alert instance")
	g := m.SetEmptyGauge()
	for i := range alerts {
		a := &alerts[i]
		if a.State != StatePending && a.State != StateFiring {
			continue
		}
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.SetDoubleValue(1)
		at := dp.Attributes()
		at.PutStr("alertname", a.Rule)
		at.PutStr("alertstate", string(a.State))
		at.PutStr("severity", a.Severity)
		at.PutStr("kind", a.Kind)
		at.PutStr("group", a.Group)
		at.PutStr("entity", a.Entity.ID)
		at.PutStr("entity_type", string(a.Entity.Type))
		at.PutStr("blame", a.Blame.ID)
		for k, v := range a.Labels {
			if _, taken := at.Get(k); !taken {
				at.PutStr(k, v)
			}
		}
	}
}

// IsAlert reports whether lr is an alert record.
func IsAlert(lr plog.LogRecord) bool {
	if lr.EventName() == EventName {
		return true
	}
	v, ok := lr.Attributes().Get(AttrEventName)
	return ok && v.Str() == EventName
}

// FromLogRecord decodes an alert record written by AppendLogs.
func FromLogRecord(lr plog.LogRecord) (Alert, error) {
	if !IsAlert(lr) {
		return Alert{}, fmt.Errorf("log record is not a %s event", EventName)
	}
	at := lr.Attributes()
	str := func(k string) string {
		if v, ok := at.Get(k); ok {
			return v.AsString()
		}
		return ""
	}
	a := Alert{
		ID:       str(AttrID),
		Group:    str(AttrGroup),
		Rule:     str(AttrRule),
		Kind:     str(AttrKind),
		Severity: str(AttrSeverity),
		State:    State(str(AttrState)),
		Entity: entity.Ref{
			Type: entity.Type(str(AttrEntityType)), ID: str(AttrEntityID), Name: str(AttrEntityName),
		},
		Blame: entity.Ref{
			Type: entity.Type(str(AttrBlameType)), ID: str(AttrBlameID), Name: str(AttrBlameName),
		},
		Labels:      getMap(at, AttrLabels),
		Annotations: getMap(at, AttrAnnotations),
		EvaluatedAt: lr.Timestamp().AsTime(),
	}
	if v, ok := at.Get(AttrValue); ok {
		a.Value = v.Double()
	}
	var err error
	if a.ActiveAt, err = getTime(at, AttrActiveAt); err != nil {
		return Alert{}, err
	}
	if a.FiredAt, err = getTime(at, AttrFiredAt); err != nil {
		return Alert{}, err
	}
	if a.ResolvedAt, err = getTime(at, AttrResolvedAt); err != nil {
		return Alert{}, err
	}
	if ev := str(AttrEvidence); ev != "" {
		if err := json.Unmarshal([]byte(ev), &a.Evidence); err != nil {
			return Alert{}, fmt.Errorf("alert %q: attribute %s: %w", a.Rule, AttrEvidence, err)
		}
	}
	if a.ID == "" {
		a.ID = Fingerprint(a.Group, a.Rule, a.Entity.ID)
	}
	if err := a.Validate(); err != nil {
		return Alert{}, err
	}
	return a, nil
}

func severityNumber(a *Alert) plog.SeverityNumber {
	if a.State == StateResolved {
		return plog.SeverityNumberInfo
	}
	switch a.Severity {
	case "critical", "page":
		return plog.SeverityNumberError
	case "warning", "ticket":
		return plog.SeverityNumberWarn
	default:
		return plog.SeverityNumberInfo
	}
}

func putTime(at pcommon.Map, k string, t time.Time) {
	if !t.IsZero() {
		at.PutStr(k, t.UTC().Format(time.RFC3339Nano))
	}
}

func getTime(at pcommon.Map, k string) (time.Time, error) {
	v, ok := at.Get(k)
	if !ok || v.Str() == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v.Str())
	if err != nil {
		return time.Time{}, fmt.Errorf("attribute %s: %w", k, err)
	}
	return t, nil
}

func putMap(at pcommon.Map, k string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	mm := at.PutEmptyMap(k)
	mm.EnsureCapacity(len(m))
	for key, v := range m {
		mm.PutStr(key, v)
	}
}

func getMap(at pcommon.Map, k string) map[string]string {
	v, ok := at.Get(k)
	if !ok || v.Type() != pcommon.ValueTypeMap || v.Map().Len() == 0 {
		return nil
	}
	out := make(map[string]string, v.Map().Len())
	for key, val := range v.Map().All() {
		out[key] = val.AsString()
	}
	return out
}
