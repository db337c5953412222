package alert

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// RuleStatus is the health of one rule after its last evaluation. The
// processor emits it every evaluation as the RuleStatusMetric gauge so that
// the exporter (and any metrics backend) can show rule health.
type RuleStatus struct {
	Group    string `json:"group"`
	Rule     string `json:"rule"`
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	File     string `json:"file"`
	// Health is "ok", "err" or "unknown" (not evaluated yet).
	Health    string `json:"health"`
	LastError string `json:"last_error,omitempty"`
	// LastEvaluation and EvaluationDuration describe the last evaluation.
	LastEvaluation     time.Time     `json:"last_evaluation,omitzero"`
	EvaluationDuration time.Duration `json:"evaluation_duration"`
	// Active is the number of pending or firing instances.
	Active int `json:"active"`
}

// Rule health values.
const (
	HealthOK      = "ok"
	HealthErr     = "err"
	HealthUnknown = "unknown"
)

// RuleStatusMetric is a gauge, one data point per rule, whose value is the
// last evaluation's duration in seconds; the other fields are attributes.
const RuleStatusMetric = "junction.rule.status"

// Attribute names of RuleStatusMetric data points.
const (
	AttrRuleGroup     = "junction.rule.group"
	AttrRuleName      = "junction.rule.name"
	AttrRuleKind      = "junction.rule.kind"
	AttrRuleSeverity  = "junction.rule.severity"
	AttrRuleFile      = "junction.rule.file"
	AttrRuleHealth    = "junction.rule.health"
	AttrRuleLastError = "junction.rule.last_error"
	AttrRuleActive    = "junction.rule.active"
)

// AppendRuleStatus appends the RuleStatusMetric gauge for rules at ts.
func AppendRuleStatus(metrics pmetric.Metrics, rules []RuleStatus, ts time.Time) {
	if len(rules) == 0 {
		return
	}
	sm := metrics.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(ScopeName)
	m := sm.Metrics().AppendEmpty()
	m.SetName(RuleStatusMetric)
	m.SetUnit("s")
	m.SetDescription("Junction rule health; the value is the last evaluation's duration")
	g := m.SetEmptyGauge()
	for _, r := range rules {
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		if !r.LastEvaluation.IsZero() {
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(r.LastEvaluation))
		}
		dp.SetDoubleValue(r.EvaluationDuration.Seconds())
		at := dp.Attributes()
		at.PutStr(AttrRuleGroup, r.Group)
		at.PutStr(AttrRuleName, r.Rule)
		at.PutStr(AttrRuleKind, r.Kind)
		at.PutStr(AttrRuleSeverity, r.Severity)
		at.PutStr(AttrRuleFile, r.File)
		at.PutStr(AttrRuleHealth, r.Health)
		at.PutStr(AttrRuleLastError, r.LastError)
		at.PutInt(AttrRuleActive, int64(r.Active))
	}
}

// RuleStatusFromDataPoint decodes one RuleStatusMetric data point.
func RuleStatusFromDataPoint(dp pmetric.NumberDataPoint) RuleStatus {
	at := dp.Attributes()
	str := func(k string) string {
		if v, ok := at.Get(k); ok {
			return v.AsString()
		}
		return ""
	}
	r := RuleStatus{
		Group: str(AttrRuleGroup), Rule: str(AttrRuleName), Kind: str(AttrRuleKind),
		Severity: str(AttrRuleSeverity), File: str(AttrRuleFile), Health: str(AttrRuleHealth),
		LastError:          str(AttrRuleLastError),
		EvaluationDuration: time.Duration(dp.DoubleValue() * float64(time.Second)),
	}
	if dp.StartTimestamp() != 0 {
		r.LastEvaluation = dp.StartTimestamp().AsTime()
	}
	if v, ok := at.Get(AttrRuleActive); ok {
		r.Active = int(v.Int())
	}
	return r
}
