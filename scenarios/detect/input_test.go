package detect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/scenarios"
)

func TestAlertsFromLogsRoundTrip(t *testing.T) {
	recs := life(scenarios.RuleProxyShedding, scenarios.ProxyID, scenarios.ProxyID, 5*m+15*time.Second, 6*m, 11*m)
	ld := plog.NewLogs()
	alert.AppendLogs(ld, recs)
	// a record that is not an alert, and one that claims to be but is broken
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.LogRecords().AppendEmpty().Body().SetStr("GET / 200")
	bad := sl.LogRecords().AppendEmpty()
	bad.SetEventName(alert.EventName)
	got, err := AlertsFromLogs(ld)
	if err == nil || !strings.Contains(err.Error(), "has no rule") {
		t.Errorf("broken alert record: err = %v", err)
	}
	if len(got) != len(recs) {
		t.Fatalf("decoded %d alerts, want %d", len(got), len(recs))
	}
	r := Score(testTruth(t), got, DefaultOptions())
	if e := r.Scenarios[0].Expect[0]; !e.Detected || e.Latency != time.Minute || !e.Resolved {
		t.Errorf("after the log round trip: %+v", e)
	}
}

func TestDocumentGolden(t *testing.T) {
	p, err := scenarios.NewPlan("surge", "cost")
	if err != nil {
		t.Fatal(err)
	}
	r := Score(p.Truth(), join(
		life(scenarios.RuleProxyShedding, scenarios.ProxyID, scenarios.ProxyID, 5*m+15*time.Second, 6*m, 11*m),
		life(scenarios.RuleProxyCircuitOpen, scenarios.ProxyID, scenarios.ProxyID, 5*m+15*time.Second, 7*m, 11*m),
	), Options{Grace: time.Minute, MaxLatency: 90 * time.Second})
	got := Document(p, r, "make detection", "<!-- real-app -->")
	path := filepath.Join("testdata", "detection.md")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("document differs from %s (rerun with -update if intended):\n%s", path, got)
	}
}
