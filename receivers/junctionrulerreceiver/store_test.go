package junctionrulerreceiver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/exporters/durableremotewriteexporter"
	"github.com/junction-sre/junction/internal/mergedgraph"
	"github.com/junction-sre/junction/internal/promtest"
	"github.com/junction-sre/junction/internal/vmtest"
)

// TestRulesOnTheMergedGraph writes two gateway replicas' shares of a graph
// through the deployed remote-write config into VictoriaMetrics and runs
// the receiver on it with its real store source: an alert fires where the
// merged graph crosses the threshold, and none where only one replica's
// share does.
//
// It runs once on VictoriaMetrics and once on Prometheus.
func TestRulesOnTheMergedGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("starts VictoriaMetrics and Prometheus")
	}
	t.Run("victoria-metrics", func(t *testing.T) { rulesOnTheMergedGraph(t, vmtest.Start(t)) })
	t.Run("prometheus", func(t *testing.T) { rulesOnTheMergedGraph(t, promtest.Start(t)) })
}

// metricStore is a store gateways write to and the ruler reads from.
type metricStore interface {
	Writer(t testing.TB, f exporter.Factory, file, replica string) exporter.Metrics
	Flush(testing.TB)
	QueryURL() string
}

func rulesOnTheMergedGraph(t *testing.T, vm metricStore) {
	gateway := filepath.Join("..", "..", "deploy", "configs", "gateway.yaml")
	f := durableremotewriteexporter.NewFactory()
	a, b := vm.Writer(t, f, gateway, "gateway-a"), vm.Writer(t, f, gateway, "gateway-b")

	// checkout fails 20 % on both replicas; cart fails 30 % of 10
	// requests/s on B and never on the 30 requests/s of A: 7.5 % merged,
	// under the rule's 10 %.
	at := time.Now().Add(-2 * time.Second).Truncate(time.Millisecond)
	shareA, shareB := mergedShares(at)
	for _, w := range []struct {
		snap *entity.Snapshot
		exp  interface {
			ConsumeMetrics(context.Context, pmetric.Metrics) error
		}
	}{{shareA, a}, {shareB, b}} {
		md := pmetric.NewMetrics()
		mergedgraph.AppendSeries(md, w.snap, at, mergedgraph.EvidenceLimits{Exemplars: 5, LogSamples: 5, Stuck: 10})
		require.NoError(t, w.exp.ConsumeMetrics(context.Background(), md))
	}
	vm.Flush(t)

	cfg := createDefaultConfig().(*Config)
	cfg.Store.Endpoint = vm.QueryURL()
	cfg.Rules.Files = []string{rulesFile}
	logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
	set := receivertest.NewNopSettings(NewFactory().Type())
	set.ID = component.MustNewIDWithName(typeStr, "store-"+strings.ReplaceAll(t.Name(), "/", "-"))
	lr, err := NewFactory().CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	mr, err := NewFactory().CreateMetrics(context.Background(), set, cfg, metrics)
	require.NoError(t, err)
	for _, c := range []component.Component{lr, mr} {
		require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
		t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	}

	// The first evaluation runs at start.
	require.Eventually(t, func() bool { return len(metrics.AllMetrics()) > 0 }, 20*time.Second, 50*time.Millisecond,
		"no rule status from the ruler")
	got := decodeAlerts(t, logs.AllLogs())
	require.Len(t, got, 1, "alerts: %v", got)
	require.Contains(t, got[0], "latency Errors on service:shop/checkout firing")
	require.Contains(t, gauge(metrics.AllMetrics()[0], "ALERTS")[0], "alertname:Errors")

	// The alert carries the evidence one node that saw both shares keeps:
	// failed exemplars newest first, then the slowest, each up to
	// max_exemplars (5); a template's log lines counted over both replicas
	// with its latest line.
	alerts := alertsOf(t, logs.AllLogs())
	require.Len(t, alerts, 1)
	ev := alerts[0].Evidence
	require.Equal(t, []string{"b0", "a1", "b1", "a2", "b2", "a0", "b3", "a3", "b4", "a4"}, traceIDs(ev.Exemplars),
		"5 failed exemplars (newest first), then 5 slow ones (slowest first), of 12")
	require.Equal(t, "error", ev.Exemplars[0].Reason)
	require.Equal(t, at.Add(-time.Second).UTC(), ev.Exemplars[0].Time.UTC())
	require.Equal(t, 900.0, ev.Exemplars[5].Value)
	require.Len(t, ev.LogSamples, 1)
	require.Equal(t, entity.LogSample{Time: at.Add(-time.Second).UTC(), Severity: "ERROR", Template: "payment <*> declined", Body: "payment 42 declined", Count: 12, TraceID: "b0"},
		func() entity.LogSample { l := ev.LogSamples[0]; l.Time = l.Time.UTC(); return l }())
}

// mergedShares are two replicas' shares of a graph at at: checkout fails
// 20 % on both replicas; cart fails 30 % of 10 requests/s on B and never on
// the 30 requests/s of A: 7.5 % merged, under the rule's 10 %. Checkout's
// evidence is split over both: 6 failed and 6 slow requests, one log
// template.
func mergedShares(at time.Time) (a, b *entity.Snapshot) {
	ex := func(id, reason string, d time.Duration, ms float64) entity.Exemplar {
		return entity.Exemplar{TraceID: id, SpanID: id + "00", Time: at.Add(d), Reason: reason, Value: ms}
	}
	ca := service("checkout", map[string]float64{"request.rate": 10, "error.ratio": 0.2})
	ca.Evidence = entity.Evidence{
		Exemplars: []entity.Exemplar{
			ex("a1", "error", -3*time.Second, 40), ex("a2", "error", -5*time.Second, 41), ex("a3", "error", -7*time.Second, 42),
			ex("a0", "slow", -20*time.Second, 900), ex("a3", "slow", -21*time.Second, 700), ex("a4", "slow", -22*time.Second, 500),
		},
		LogSamples: []entity.LogSample{{Time: at.Add(-4 * time.Second), Severity: "ERROR", Template: "payment <*> declined", Body: "payment 7 declined", Count: 5, TraceID: "a1"}},
	}
	cb := service("checkout", map[string]float64{"request.rate": 30, "error.ratio": 0.2})
	cb.Evidence = entity.Evidence{
		Exemplars: []entity.Exemplar{
			ex("b0", "error", -1*time.Second, 50), ex("b1", "error", -4*time.Second, 51), ex("b2", "error", -6*time.Second, 52),
			ex("b3", "slow", -30*time.Second, 800), ex("b4", "slow", -31*time.Second, 600), ex("b5", "slow", -32*time.Second, 400),
		},
		LogSamples: []entity.LogSample{{Time: at.Add(-time.Second), Severity: "ERROR", Template: "payment <*> declined", Body: "payment 42 declined", Count: 7, TraceID: "b0"}},
	}
	a = &entity.Snapshot{Entities: []entity.Entity{ca, service("cart", map[string]float64{"request.rate": 30, "error.ratio": 0})}}
	b = &entity.Snapshot{Entities: []entity.Entity{cb, service("cart", map[string]float64{"request.rate": 10, "error.ratio": 0.3})}}
	return a, b
}

// alertsOf decodes every alert record of lds.
func alertsOf(t *testing.T, lds []plog.Logs) []alert.Alert {
	t.Helper()
	var out []alert.Alert
	for _, ld := range lds {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					a, err := alert.FromLogRecord(lrs.At(k))
					require.NoError(t, err)
					out = append(out, a)
				}
			}
		}
	}
	return out
}

func traceIDs(xs []entity.Exemplar) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.TraceID
	}
	return out
}

// TestEvidenceUnreadable: a store that answers the graph's queries but
// not the evidence query (here a proxy in front of VictoriaMetrics that
// refuses it) loses no alert: the rules run on the merged graph, the alert
// fires as before without evidence, the ruler warns and counts it in
// otelcol_receiver_junction_ruler_evidence_failures, and no snapshot
// counts as failed.
func TestEvidenceUnreadable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts VictoriaMetrics")
	}
	vm := vmtest.Start(t)
	gateway := filepath.Join("..", "..", "deploy", "configs", "gateway.yaml")
	f := durableremotewriteexporter.NewFactory()
	at := time.Now().Add(-2 * time.Second).Truncate(time.Millisecond)
	shareA, shareB := mergedShares(at)
	for replica, snap := range map[string]*entity.Snapshot{"gateway-a": shareA, "gateway-b": shareB} {
		md := pmetric.NewMetrics()
		mergedgraph.AppendSeries(md, snap, at, mergedgraph.EvidenceLimits{Exemplars: 5, LogSamples: 5, Stuck: 10})
		require.NoError(t, vm.Writer(t, f, gateway, replica).ConsumeMetrics(context.Background(), md))
	}
	vm.Flush(t)

	target, err := url.Parse(vm.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if strings.Contains(r.Form.Get("query"), "junction_merge_evidence") {
			refused.Add(1)
			http.Error(w, "the evidence query is refused", http.StatusServiceUnavailable)
			return
		}
		// ParseForm read a POST's body: hand the store the same form.
		body := r.PostForm.Encode()
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()

	cfg := createDefaultConfig().(*Config)
	cfg.Store.Endpoint = srv.URL
	cfg.Rules.Files = []string{rulesFile}
	logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
	tel := componenttest.NewTelemetry()
	core, observed := observer.New(zap.WarnLevel)
	set := receivertest.NewNopSettings(NewFactory().Type())
	set.ID = component.MustNewIDWithName(typeStr, "noevidence")
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	lr, err := NewFactory().CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	mr, err := NewFactory().CreateMetrics(context.Background(), set, cfg, metrics)
	require.NoError(t, err)
	for _, c := range []component.Component{lr, mr} {
		require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
		t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	}
	require.Eventually(t, func() bool { return len(metrics.AllMetrics()) > 0 }, 20*time.Second, 50*time.Millisecond,
		"no rule status from the ruler")

	got := decodeAlerts(t, logs.AllLogs())
	require.Len(t, got, 1, "alerts: %v", got)
	require.Contains(t, got[0], "latency Errors on service:shop/checkout firing")
	a := alertsOf(t, logs.AllLogs())[0]
	require.Empty(t, a.Evidence.Exemplars)
	require.Empty(t, a.Evidence.LogSamples)
	require.InDelta(t, 0.2, a.Evidence.Values["service:shop/checkout error.ratio"], 1e-9, "the merged values are still there")
	require.Positive(t, refused.Load())
	require.Equal(t, int64(1), sumOf(t, tel, metricEvidenceFailures))
	_, err = tel.GetMetric(metricSnapshotFailures)
	require.Error(t, err, "a snapshot without evidence counted as failed")
	warns := observed.FilterMessageSnippet("Evidence of the merged graph not read").All()
	require.Len(t, warns, 1)
	require.Contains(t, fmt.Sprint(warns[0].ContextMap()["error"]), "503 Service Unavailable: the evidence query is refused")
}
