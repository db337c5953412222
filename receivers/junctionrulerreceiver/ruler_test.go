package junctionrulerreceiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/rules"
)

var rulesFile = filepath.Join("testdata", "rules.yaml")

// fakeSource is an entity.Source that returns snap, or err for the first
// failures calls, and records the times it was asked for.
type fakeSource struct {
	mu       sync.Mutex
	snap     *entity.Snapshot
	failures int
	calls    []time.Time
}

func (f *fakeSource) Snapshot(_ context.Context, at time.Time) (*entity.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, at)
	if len(f.calls) <= f.failures {
		return nil, errors.New("connection refused")
	}
	s := *f.snap
	s.Time = at
	return &s, nil
}

func (f *fakeSource) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

func service(name string, features map[string]float64) entity.Entity {
	return entity.Entity{Ref: entity.Ref{Type: entity.Service, ID: "service:shop/" + name, Name: name}, Features: features}
}

// slowCheckout: checkout is slow and failing, cart is fine.
func slowCheckout() *entity.Snapshot {
	s := &entity.Snapshot{Entities: []entity.Entity{
		service("checkout", map[string]float64{"latency.p99_ms": 900, "error.ratio": 0.2}),
		service("cart", map[string]float64{"latency.p99_ms": 100, "error.ratio": 0}),
	}}
	s.Sort()
	return s
}

// harness is a ruler in a logs and a metrics pipeline, with sinks.
type harness struct {
	r       *ruler
	parts   []component.Component
	logs    *consumertest.LogsSink
	metrics *consumertest.MetricsSink
	tel     *componenttest.Telemetry
}

// newHarness creates the receiver in the pipelines named (logs, metrics)
// through its factory, with src in place of the store.
func newHarness(t *testing.T, name string, cfg *Config, src entity.Source, pipelines ...string) *harness {
	t.Helper()
	f := NewFactory()
	h := &harness{logs: new(consumertest.LogsSink), metrics: new(consumertest.MetricsSink), tel: componenttest.NewTelemetry()}
	set := receivertest.NewNopSettings(f.Type())
	set.ID = component.MustNewIDWithName(typeStr, name)
	set.TelemetrySettings = h.tel.NewTelemetrySettings()
	for _, p := range pipelines {
		var c component.Component
		var err error
		switch p {
		case "logs":
			c, err = f.CreateLogs(context.Background(), set, cfg, h.logs)
		case "metrics":
			c, err = f.CreateMetrics(context.Background(), set, cfg, h.metrics)
		}
		require.NoError(t, err)
		h.parts = append(h.parts, c)
	}
	h.r = h.parts[0].(*pipelineRef).r
	for _, c := range h.parts[1:] {
		require.Same(t, h.r, c.(*pipelineRef).r, "the pipelines of one component id must share one ruler")
	}
	h.r.newSource = func(*StoreConfig, *http.Client) (entity.Source, error) { return src, nil }
	h.r.noWatch = true
	return h
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	for _, c := range h.parts {
		require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	}
}

func (h *harness) shutdown(t *testing.T) {
	t.Helper()
	for _, c := range h.parts {
		require.NoError(t, c.Shutdown(context.Background()))
	}
}

func testConfig(files ...string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Store.Endpoint = "http://vm:8428"
	cfg.Rules.Files = files
	return cfg
}

// alertKey is what a user sees of an alert record.
func alertKey(a alert.Alert) string {
	return fmt.Sprintf("%s %s on %s %s at %s: %s", a.Group, a.Rule, a.Entity.ID, a.State, a.EvaluatedAt.Format(time.TimeOnly), a.Summary())
}

func decodeAlerts(t *testing.T, lds []plog.Logs) []string {
	t.Helper()
	var out []string
	for _, ld := range lds {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					require.True(t, alert.IsAlert(lrs.At(k)), "a record that is no junction.alert")
					a, err := alert.FromLogRecord(lrs.At(k))
					require.NoError(t, err)
					out = append(out, alertKey(a))
				}
			}
		}
	}
	return out
}

// gauge returns the data points of the metric named name in md, each as
// its attributes and timestamp.
func gauge(md pmetric.Metrics, name string) []string {
	var out []string
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if ms.At(k).Name() != name {
					continue
				}
				dps := ms.At(k).Gauge().DataPoints()
				for l := 0; l < dps.Len(); l++ {
					dp := dps.At(l)
					out = append(out, fmt.Sprintf("%v at %s", dp.Attributes().AsRaw(), dp.Timestamp().AsTime().Format(time.TimeOnly)))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func sumOf(t *testing.T, tt *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tt.GetMetric(name)
	require.NoError(t, err, name)
	var n int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		n += dp.Value
	}
	return n
}

// TestRulerEmitsWhatTheRulesYield drives rules.Manager.Run through the
// receiver on a fake clock and checks that its pipelines get, for every
// evaluation, exactly the alerts and rule statuses that the same rules
// yield on the same snapshots (here through Manager.EvalDue, as the
// processor evaluates on a single node), encoded as the single node
// encodes them.
func TestRulerEmitsWhatTheRulesYield(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{snap: slowCheckout()}
		cfg := testConfig(rulesFile)
		cfg.Rules.StateFile = filepath.Join(t.TempDir(), "state.json")
		h := newHarness(t, "yield", cfg, src, "logs", "metrics")
		h.start(t)
		time.Sleep(35 * time.Second) // fake time: evaluations at 0, 10, 20 and 30 s
		synctest.Wait()
		h.shutdown(t)

		at := src.times()
		require.Len(t, at, 4, "evaluations")
		ref, err := rules.NewManager(rules.Config{Files: []string{rulesFile}}, rules.Settings{Logger: zap.NewNop()})
		require.NoError(t, err)
		var want []string
		var wantAlerts, wantStatus [][]string
		for _, ts := range at {
			snap, err := src.Snapshot(context.Background(), ts)
			require.NoError(t, err)
			alerts, status := ref.EvalDue(context.Background(), snap, ts)
			for _, a := range alerts {
				want = append(want, alertKey(a))
			}
			md := pmetric.NewMetrics()
			alert.AppendMetrics(md, alerts, ts)
			alert.AppendRuleStatus(md, status, ts)
			wantAlerts = append(wantAlerts, gauge(md, alert.MetricName))
			wantStatus = append(wantStatus, gauge(md, alert.RuleStatusMetric))
		}
		require.Equal(t, want, decodeAlerts(t, h.logs.AllLogs()))
		// What a user sees: Slow pending for its 20s, then firing; Errors
		// firing at once; cart never alerts.
		require.Contains(t, want, "latency Slow on service:shop/checkout pending at 00:00:00: checkout p99 900ms")
		require.Contains(t, want, "latency Slow on service:shop/checkout firing at 00:00:20: checkout p99 900ms")
		require.NotContains(t, fmt.Sprint(want), "cart")

		// One metrics batch per evaluation: the ALERTS gauge of the
		// pending and firing alerts and one status point per rule, stamped
		// with the evaluation's time.
		mds := h.metrics.AllMetrics()
		require.Len(t, mds, len(at))
		for i, md := range mds {
			require.Equal(t, wantAlerts[i], gauge(md, alert.MetricName), "ALERTS of evaluation %d", i)
			require.Equal(t, wantStatus[i], gauge(md, alert.RuleStatusMetric), "rule status of evaluation %d", i)
			require.Len(t, gauge(md, alert.RuleStatusMetric), 2)
		}
		require.Contains(t, fmt.Sprint(gauge(mds[3], alert.RuleStatusMetric)), "junction.rule.health:ok")

		require.Equal(t, int64(len(want)), sumOf(t, h.tel, "otelcol_receiver_accepted_log_records"))
		require.FileExists(t, cfg.Rules.StateFile, "the alert state is saved")
	})
}

// TestSnapshotFailureSkipsAnEvaluation: while the store cannot be read no
// alert is emitted or resolved; the failure is counted and the next
// evaluation goes on from the kept state.
func TestSnapshotFailureSkipsAnEvaluation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{snap: slowCheckout(), failures: 1}
		h := newHarness(t, "storedown", testConfig(rulesFile), src, "logs", "metrics")
		h.start(t)
		synctest.Wait()
		require.Empty(t, h.logs.AllLogs(), "alerts emitted without a snapshot")
		require.Empty(t, h.metrics.AllMetrics(), "rule status emitted without a snapshot")
		require.Equal(t, int64(1), sumOf(t, h.tel, metricSnapshotFailures))

		time.Sleep(15 * time.Second) // the next evaluation at 10 s
		synctest.Wait()
		h.shutdown(t)
		got := decodeAlerts(t, h.logs.AllLogs())
		require.Contains(t, got, "latency Slow on service:shop/checkout pending at 00:00:10: checkout p99 900ms")
		require.Len(t, h.metrics.AllMetrics(), 1)
	})
}

// TestLogsPipelineOnly: a ruler in a logs pipeline alone emits its alert
// records and needs no metrics pipeline.
func TestLogsPipelineOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "logsonly", testConfig(rulesFile), &fakeSource{snap: slowCheckout()}, "logs")
		h.start(t)
		synctest.Wait()
		h.shutdown(t)
		require.Len(t, decodeAlerts(t, h.logs.AllLogs()), 2)
	})
}

// TestBrokenRulesFailStart: rule files with errors stop the collector at
// start with every error and where it is; nothing keeps running, and the
// receiver can be created again.
func TestBrokenRulesFailStart(t *testing.T) {
	broken := filepath.Join("testdata", "broken.yaml")
	h := newHarness(t, "broken", testConfig(broken), &fakeSource{snap: slowCheckout()}, "logs", "metrics")
	err := h.parts[0].Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "rules::files")
	require.ErrorContains(t, err, "broken.yaml:7:")
	require.ErrorContains(t, err, "latency.p99")
	// Shutdown after a failed Start does nothing.
	h.shutdown(t)
	h.shutdown(t)
	kept := rulers.Has(component.MustNewIDWithName(typeStr, "broken"))
	require.False(t, kept, "a ruler that failed to start is kept for the next create")
}

// TestShutdownIsIdempotent: the ruler runs until the last of its pipelines
// shuts down; a pipeline's second Shutdown does nothing.
func TestShutdownIsIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{snap: slowCheckout()}
		h := newHarness(t, "twice", testConfig(rulesFile), src, "logs", "metrics")
		h.start(t)
		synctest.Wait()
		require.NoError(t, h.parts[0].Shutdown(context.Background()))
		require.NoError(t, h.parts[0].Shutdown(context.Background()))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Len(t, src.times(), 2, "one pipeline's shutdown stopped the ruler")
		h.shutdown(t)
		require.NoError(t, h.parts[1].Shutdown(context.Background()))
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.Len(t, src.times(), 2, "the ruler evaluates after its last shutdown")
	})
}

var _ receiver.Factory = NewFactory()
