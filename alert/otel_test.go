package alert

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
)

func sample() Alert {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return Alert{
		ID: Fingerprint("database", "PoolSaturated", "service:shop/checkout"), Group: "database",
		Rule: "PoolSaturated", Kind: "bottleneck", Severity: "critical", State: StateFiring,
		Entity:      entity.Ref{Type: entity.Service, ID: "service:shop/checkout", Name: "checkout"},
		Blame:       entity.Ref{Type: entity.Database, ID: "database:postgresql/db:5432/orders", Name: "orders"},
		Labels:      map[string]string{"team": "payments"},
		Annotations: map[string]string{"summary": "pool saturated"},
		Value:       0.97, ActiveAt: t0, FiredAt: t0.Add(time.Minute), EvaluatedAt: t0.Add(90 * time.Second),
		Evidence: Evidence{
			Evidence: entity.Evidence{Exemplars: []entity.Exemplar{{TraceID: "0af7651916cd43dd8448eb211c80319c", Time: t0, Reason: "slow", Value: 1200}}},
			Values:   map[string]float64{"service:shop/checkout pool.utilization": 0.97},
		},
	}
}

func TestLogRecordRoundTrip(t *testing.T) {
	want := sample()
	logs := plog.NewLogs()
	AppendLogs(logs, []Alert{want})
	lr := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if !IsAlert(lr) {
		t.Fatal("record not recognised as an alert")
	}
	if got := lr.Body().Str(); got != "pool saturated" {
		t.Errorf("body = %q, want the summary", got)
	}
	got, err := FromLogRecord(lr)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || got.Rule != want.Rule || got.State != want.State || got.Blame != want.Blame ||
		got.Entity != want.Entity || got.Value != want.Value || !got.FiredAt.Equal(want.FiredAt) ||
		!got.EvaluatedAt.Equal(want.EvaluatedAt) || got.Labels["team"] != "payments" ||
		len(got.Evidence.Exemplars) != 1 || got.Evidence.Values["service:shop/checkout pool.utilization"] != 0.97 {
		t.Errorf("round trip changed the alert:\n got %+v\nwant %+v", got, want)
	}
	if !got.ResolvedAt.IsZero() {
		t.Errorf("resolved_at = %v, want zero", got.ResolvedAt)
	}
}

func TestFromLogRecordRejectsBadRecords(t *testing.T) {
	for name, edit := range map[string]func(lr plog.LogRecord){
		"not an alert": func(lr plog.LogRecord) { lr.SetEventName("other"); lr.Attributes().PutStr(AttrEventName, "other") },
		"no rule":      func(lr plog.LogRecord) { lr.Attributes().PutStr(AttrRule, "") },
		"bad state":    func(lr plog.LogRecord) { lr.Attributes().PutStr(AttrState, "burning") },
		"bad time":     func(lr plog.LogRecord) { lr.Attributes().PutStr(AttrFiredAt, "yesterday") },
		"bad evidence": func(lr plog.LogRecord) { lr.Attributes().PutStr(AttrEvidence, "{") },
		"no entity id": func(lr plog.LogRecord) { lr.Attributes().PutStr(AttrEntityID, "") },
	} {
		t.Run(name, func(t *testing.T) {
			logs := plog.NewLogs()
			AppendLogs(logs, []Alert{sample()})
			lr := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
			edit(lr)
			if _, err := FromLogRecord(lr); err == nil {
				t.Error("decoded a bad record without error")
			}
		})
	}
}

func TestAppendMetricsSkipsResolved(t *testing.T) {
	firing, resolved := sample(), sample()
	resolved.State = StateResolved
	resolved.Rule = "Other"
	m := pmetric.NewMetrics()
	AppendMetrics(m, []Alert{firing, resolved}, firing.EvaluatedAt)
	dps := m.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
	if dps.Len() != 1 {
		t.Fatalf("%d data points, want 1 (resolved alerts are not in ALERTS)", dps.Len())
	}
	at := dps.At(0).Attributes()
	for k, want := range map[string]string{"alertname": "PoolSaturated", "alertstate": "firing", "blame": firing.Blame.ID, "team": "payments"} {
		if v, _ := at.Get(k); v.Str() != want {
			t.Errorf("%s = %q, want %q", k, v.Str(), want)
		}
	}
}

func TestRuleStatusRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	want := RuleStatus{Group: "surge", Rule: "ProxyShedding", Kind: "bottleneck", Severity: "critical",
		File: "rules/packs/surge.yaml", Health: HealthErr, LastError: "cost limit exceeded",
		LastEvaluation: now.Add(-time.Second), EvaluationDuration: 1500 * time.Microsecond, Active: 2}
	m := pmetric.NewMetrics()
	AppendRuleStatus(m, []RuleStatus{want}, now)
	metric := m.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	if metric.Name() != RuleStatusMetric {
		t.Fatalf("metric %q", metric.Name())
	}
	got := RuleStatusFromDataPoint(metric.Gauge().DataPoints().At(0))
	if got != want {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}
