package correlationprocessor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

// tickAlerts ticks at now and returns the alerts of the log records and
// the data points of the ALERTS and rule status gauges the tick emitted.
func tickAlerts(t *testing.T, h *harness, now time.Time) ([]alert.Alert, []pcommon.Map, []pcommon.Map) {
	t.Helper()
	nl, nm := len(h.ls.AllLogs()), len(h.ms.AllMetrics())
	h.clock.t = now
	require.NoError(t, h.p.tick(context.Background(), now))
	var alerts []alert.Alert
	for _, ld := range h.ls.AllLogs()[nl:] {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					require.True(t, alert.IsAlert(lr))
					name, ok := lr.Attributes().Get(alert.AttrEventName)
					require.True(t, ok)
					require.Equal(t, "junction.alert", name.Str())
					a, err := alert.FromLogRecord(lr)
					require.NoError(t, err)
					alerts = append(alerts, a)
				}
			}
		}
	}
	gauge := func(metric string) []pcommon.Map {
		var out []pcommon.Map
		for _, md := range h.ms.AllMetrics()[nm:] {
			for i := 0; i < md.ResourceMetrics().Len(); i++ {
				sms := md.ResourceMetrics().At(i).ScopeMetrics()
				for j := 0; j < sms.Len(); j++ {
					ms := sms.At(j).Metrics()
					for k := 0; k < ms.Len(); k++ {
						if m := ms.At(k); m.Name() == metric {
							require.Equal(t, pmetric.MetricTypeGauge, m.Type())
							for d := 0; d < m.Gauge().DataPoints().Len(); d++ {
								out = append(out, m.Gauge().DataPoints().At(d).Attributes())
							}
						}
					}
				}
			}
		}
		return out
	}
	return alerts, gauge(alert.MetricName), gauge(alert.RuleStatusMetric)
}

func str(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

// TestRulesFireAndResolve runs a rule file on the golden http case
// (checkout fails half of its requests; frontend calls it) on explicit
// ticks: the alert on frontend, blamed on checkout, is pending at the
// first evaluation, firing after its for, and resolved once checkout's
// errors left the window.
func TestRulesFireAndResolve(t *testing.T) {
	cfg := testConfig()
	cfg.Rules.Files = []string{filepath.Join("testdata", "rules", "dependency.yaml")}
	cfg.Rules.StateFile = filepath.Join(t.TempDir(), "alerts.json")
	h := newHarness(t, "rules", cfg, nopSettings())
	last := feedDir(t, h, filepath.Join("testdata", "golden", "http"))
	frontend := entity.Ref{Type: entity.Service, ID: "service:shop/frontend", Name: "frontend"}
	checkout := entity.Ref{Type: entity.Service, ID: "service:shop/checkout", Name: "checkout"}

	first := last.Add(15 * time.Second)
	alerts, gauge, status := tickAlerts(t, h, first)
	require.Len(t, alerts, 1)
	a := alerts[0]
	assert.Equal(t, alert.StatePending, a.State)
	assert.Equal(t, "dependencies/DependencyFailing@service:shop/frontend", a.ID)
	assert.Equal(t, frontend, a.Entity)
	assert.Equal(t, checkout, a.Blame)
	assert.Equal(t, "critical", a.Severity)
	assert.Equal(t, "shop", a.Labels["team"])
	assert.Equal(t, "frontend calls checkout, which fails 50% of its requests", a.Annotations["summary"])
	assert.Equal(t, first, a.ActiveAt.UTC())
	require.Len(t, gauge, 1)
	assert.Equal(t, "pending", str(gauge[0], "alertstate"))
	assert.Equal(t, checkout.ID, str(gauge[0], "blame"))
	require.Len(t, status, 1)
	assert.Equal(t, "DependencyFailing", str(status[0], alert.AttrRuleName))
	assert.Equal(t, "1", str(status[0], alert.AttrRuleActive))

	// Not yet due: the group's interval has not passed.
	alerts, _, _ = tickAlerts(t, h, first.Add(5*time.Second))
	assert.Empty(t, alerts)

	second := first.Add(15 * time.Second)
	alerts, gauge, _ = tickAlerts(t, h, second)
	require.Len(t, alerts, 1)
	assert.Equal(t, alert.StateFiring, alerts[0].State)
	assert.Equal(t, first, alerts[0].ActiveAt.UTC())
	assert.Equal(t, second, alerts[0].FiredAt.UTC())
	assert.Equal(t, checkout, alerts[0].Blame)
	require.Len(t, gauge, 1)
	assert.Equal(t, "firing", str(gauge[0], "alertstate"))
	assert.Equal(t, "DependencyFailing", str(gauge[0], "alertname"))
	assert.FileExists(t, cfg.Rules.StateFile, "alert state is saved after evaluations")

	// A minute and a half later checkout's failed requests are out of the
	// one-minute window: the alert resolves, and the ALERTS gauge no
	// longer has it.
	third := second.Add(90 * time.Second)
	snap, err := h.p.Snapshot(context.Background(), third)
	require.NoError(t, err)
	e, ok := snap.Entity(checkout.ID)
	require.True(t, ok)
	assert.NotContains(t, e.Features, "error.ratio")
	alerts, gauge, _ = tickAlerts(t, h, third)
	require.Len(t, alerts, 1)
	assert.Equal(t, alert.StateResolved, alerts[0].State)
	assert.Equal(t, third, alerts[0].ResolvedAt.UTC())
	assert.Empty(t, gauge)

	alerts, _, status = tickAlerts(t, h, third.Add(15*time.Second))
	assert.Empty(t, alerts, "a resolved alert is emitted once")
	require.Len(t, status, 1)
}

// TestRulePacksOnGoldenProxy starts the processor with the repository's
// rule packs and evaluates them on the golden proxy case: the circuit
// breaker of envoy-edge/weather is open.
func TestRulePacksOnGoldenProxy(t *testing.T) {
	cfg := testConfig()
	cfg.Rules.Files = []string{filepath.Join("..", "..", "rules", "packs")}
	h := newHarness(t, "packs", cfg, nopSettings())
	last := feedDir(t, h, filepath.Join("testdata", "golden", "proxy"))
	alerts, _, status := tickAlerts(t, h, last.Add(15*time.Second))
	byRule := map[string]alert.Alert{}
	for _, a := range alerts {
		byRule[a.Rule] = a
	}
	weather := entity.Ref{Type: entity.Proxy, ID: "proxy:envoy-edge/weather", Name: "envoy-edge weather"}
	require.Contains(t, byRule, "ProxyCircuitOpen")
	assert.Equal(t, alert.StateFiring, byRule["ProxyCircuitOpen"].State, "no for: fires at once")
	assert.Equal(t, weather.ID, byRule["ProxyCircuitOpen"].Entity.ID)
	assert.Equal(t, weather.ID, byRule["ProxyCircuitOpen"].Blame.ID, "no upstream spans: the proxy is blamed")
	require.Contains(t, byRule, "ProxyPendingOverflow")
	assert.Equal(t, alert.StatePending, byRule["ProxyPendingOverflow"].State)
	for _, s := range status {
		assert.NotEqual(t, string(alert.HealthErr), str(s, alert.AttrRuleHealth), "rule %s: %s", str(s, alert.AttrRuleName), str(s, alert.AttrRuleLastError))
	}
}

// TestRulesBrokenAtStart checks that a rule file with errors fails Start
// with every error's file:line:col, and that nothing keeps running.
func TestRulesBrokenAtStart(t *testing.T) {
	cfg := testConfig()
	cfg.Rules.Files = []string{filepath.Join("testdata", "rules", "broken.yaml")}
	h := createHarness(t, "brokenrules", cfg, nopSettings())
	err := h.start(componenttest.NewNopHost())
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "rules::files")
	assert.Contains(t, msg, filepath.Join("testdata", "rules", "broken.yaml")+":8:30: expr: undefined field")
	assert.Contains(t, msg, filepath.Join("testdata", "rules", "broken.yaml")+":13:14: for:")
	assert.Nil(t, h.p.rules.Load())
	assert.Nil(t, h.p.xchain.Load(), "the tracker started before the rules is shut down")
}

// TestRulesReload changes the rule file under a running processor: a
// broken version keeps the running rules, a good one replaces them.
func TestRulesReload(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join("testdata", "rules", "dependency.yaml"))
	require.NoError(t, err)
	path := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(path, good, 0o600))
	cfg := testConfig()
	cfg.Rules.Files = []string{dir}
	h := newHarness(t, "reload", cfg, nopSettings())
	ruleNames := func() []string {
		var out []string
		for _, s := range h.p.rules.Load().Status() {
			out = append(out, s.Rule)
		}
		return out
	}

	require.NoError(t, writeAtomic(path, []byte("groups: [{name: x, rules: [{alert: A, for_each: service, expr: 'service.nope > 1'}]}]\n")))
	_, _ = h.p.rules.Load().ReloadIfChanged()
	assert.Equal(t, []string{"DependencyFailing"}, ruleNames(), "a broken file keeps the running rules")

	renamed := []byte(string(good[:len(good)-1]) + "\n      - alert: SlowService\n        kind: bottleneck\n        for_each: service\n        expr: service.latency.p99_ms > 1000\n")
	require.NoError(t, writeAtomic(path, renamed))
	_, _ = h.p.rules.Load().ReloadIfChanged()
	assert.Equal(t, []string{"DependencyFailing", "SlowService"}, ruleNames())

	// The running processor's own watcher (rules.Manager.RunReloads)
	// picks up the next change without being asked.
	require.NoError(t, writeAtomic(path, good))
	assert.Eventually(t, func() bool { return slices.Equal(ruleNames(), []string{"DependencyFailing"}) },
		20*time.Second, 20*time.Millisecond, "the processor's watcher did not reload the rules")
}

// writeAtomic replaces path as deployments do (a new file renamed over
// the old), so the running emit loop's watcher never reads a partial file.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// TestRulePacksOnStuckMessage runs the repository's rule packs on the
// cross-chain tracker's features: a message pending for more than 15
// minutes raises CrossChainMessagesStuck on its relayer, firing after a
// minute, and resolves once the message is executed.
func TestRulePacksOnStuckMessage(t *testing.T) {
	cfg := testConfig()
	cfg.Rules.Files = []string{filepath.Join("..", "..", "rules", "packs")}
	h := newHarness(t, "packsxchain", cfg, nopSettings())
	ctx := context.Background()
	require.NoError(t, h.traces.ConsumeTraces(ctx, xchainSpans("hermes", ptrace.SpanKindInternal,
		xstage{id: "osmosis-1/channel-0/9", stage: "sent", at: t0, srcTx: "AA09"},
		xstage{id: "osmosis-1/channel-0/9", stage: "relayed", at: t0.Add(time.Second), dstTx: "BB09"})))

	stuck := func(alerts []alert.Alert) *alert.Alert {
		for i := range alerts {
			if alerts[i].Rule == "CrossChainMessagesStuck" {
				return &alerts[i]
			}
		}
		return nil
	}
	alerts, _, _ := tickAlerts(t, h, t0.Add(10*time.Minute))
	assert.Nil(t, stuck(alerts), "10 minutes is not stuck yet")

	alerts, _, _ = tickAlerts(t, h, t0.Add(16*time.Minute))
	a := stuck(alerts)
	require.NotNil(t, a)
	assert.Equal(t, alert.StatePending, a.State)
	assert.Equal(t, hermesRoute, a.Entity.ID)
	assert.Equal(t, hermesRoute, a.Blame.ID)
	assert.InDelta(t, (16 * time.Minute).Seconds(), a.Evidence.Values[hermesRoute+" messages.oldest_pending_age_s"], 1e-6)
	assert.NotEmpty(t, a.Evidence.Stuck, "the alert carries the stuck message as evidence")

	alerts, _, _ = tickAlerts(t, h, t0.Add(17*time.Minute))
	a = stuck(alerts)
	require.NotNil(t, a)
	assert.Equal(t, alert.StateFiring, a.State)
	assert.Equal(t, "hermes osmosis-1->cosmoshub-4: 1 messages pending, oldest 1020s", a.Annotations["summary"])

	h.clock.t = t0.Add(17*time.Minute + 10*time.Second)
	require.NoError(t, h.logs.ConsumeLogs(ctx, xchainLogs("hermes",
		xstage{id: "osmosis-1/channel-0/9", stage: "executed", at: h.clock.t, dstTx: "BB09"})))
	alerts, _, _ = tickAlerts(t, h, t0.Add(17*time.Minute+30*time.Second))
	a = stuck(alerts)
	require.NotNil(t, a)
	assert.Equal(t, alert.StateResolved, a.State)
}
