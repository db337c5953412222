package junctionexporter

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/exporters/junctionexporter/internal/api"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

var (
	checkout = entity.Ref{Type: entity.Service, ID: "service:shop/checkout", Name: "checkout"}
	orders   = entity.Ref{Type: entity.Database, ID: "database:postgresql/pg:5432/orders", Name: "orders"}
)

type testHost map[component.ID]component.Component

func (h testHost) GetExtensions() map[component.ID]component.Component { return h }

type running struct {
	metrics exporter.Metrics
	logs    exporter.Logs
	e       *junctionExporter
	base    string
}

func testConfig(t *testing.T) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Storage.Directory = filepath.Join(t.TempDir(), "data")
	cfg.API.NetAddr.Endpoint = "127.0.0.1:0"
	return cfg
}

// startExporter creates the metrics and logs exporters of one component ID
// and starts them on host; the clock is fixed at t0 + 1h.
func startExporter(t *testing.T, cfg *Config, host component.Host) *running {
	t.Helper()
	return startExporterAt(t, cfg, host, func() time.Time { return t0.Add(time.Hour) })
}

// startExporterAt is startExporter with the given clock.
func startExporterAt(t *testing.T, cfg *Config, host component.Host, now func() time.Time) *running {
	t.Helper()
	return startExporterWith(t, cfg, host, now, exportertest.NewNopSettings(Type))
}

func startExporterWith(t *testing.T, cfg *Config, host component.Host, now func() time.Time, set exporter.Settings) *running {
	t.Helper()
	ctx := context.Background()
	f := NewFactory()
	me, err := f.CreateMetrics(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	le, err := f.CreateLogs(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	registryMu.Lock()
	e := registry[set.ID]
	registryMu.Unlock()
	e.now = now
	if err := me.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	if err := le.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := me.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := le.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return &running{metrics: me, logs: le, e: e, base: "http://" + e.addr.String()}
}

func entityGauges(md pmetric.Metrics, ref entity.Ref, feature string, vs ...float64) {
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(entity.AttrEntityID, ref.ID)
	rm.Resource().Attributes().PutStr(entity.AttrEntityType, string(ref.Type))
	rm.Resource().Attributes().PutStr(entity.AttrEntityName, ref.Name)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(entity.MetricPrefix + feature)
	g := m.SetEmptyGauge()
	for i, v := range vs {
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * time.Minute)))
		dp.SetDoubleValue(v)
	}
}

func edgeGauge(md pmetric.Metrics, src, dst string, feature string, v float64) {
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(entity.EdgeMetricPrefix + feature)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	dp.SetDoubleValue(v)
	dp.Attributes().PutStr(entity.AttrEdgeSource, src)
	dp.Attributes().PutStr(entity.AttrEdgeTarget, dst)
	dp.Attributes().PutStr(entity.AttrEdgeType, string(entity.EdgeDB))
}

func poolAlert(state alert.State) alert.Alert {
	a := alert.Alert{
		ID: alert.Fingerprint("database", "ConnectionPoolSaturated", checkout.ID), Group: "database",
		Rule: "ConnectionPoolSaturated", Kind: "bottleneck", Severity: "critical", State: state,
		Entity: checkout, Blame: orders, Value: 1, ActiveAt: t0, EvaluatedAt: t0,
		Annotations: map[string]string{"summary": "checkout p99 1200ms; pool on orders saturated"},
	}
	a.Evidence.Values = map[string]float64{orders.ID + " pool.utilization": 0.98}
	a.Evidence.Exemplars = []entity.Exemplar{{TraceID: "0af7651916cd43dd8448eb211c80319c", Time: t0, Reason: "slow", Value: 1200}}
	switch state {
	case alert.StateFiring:
		a.FiredAt, a.EvaluatedAt = t0.Add(time.Minute), t0.Add(time.Minute)
	case alert.StateResolved:
		a.FiredAt, a.ResolvedAt, a.EvaluatedAt = t0.Add(time.Minute), t0.Add(30*time.Minute), t0.Add(30*time.Minute)
	}
	return a
}

func alertLogs(alerts ...alert.Alert) plog.Logs {
	ld := plog.NewLogs()
	alert.AppendLogs(ld, alerts)
	return ld
}

// feed sends derived series, a rule status, alerts and one unrelated log
// record, then flushes.
func feed(t *testing.T, r *running) {
	t.Helper()
	ctx := context.Background()
	md := pmetric.NewMetrics()
	entityGauges(md, checkout, "latency.p99_ms", 100, 200, 300)
	entityGauges(md, orders, "pool.utilization", 0.9, 0.98)
	edgeGauge(md, checkout.ID, orders.ID, "request.rate", 12)
	alert.AppendRuleStatus(md, []alert.RuleStatus{{Group: "database", Rule: "ConnectionPoolSaturated", Kind: "bottleneck",
		Severity: "critical", File: "rules/packs/database.yaml", Health: alert.HealthOK, LastEvaluation: t0, EvaluationDuration: 3 * time.Millisecond, Active: 1}}, t0)
	if err := r.metrics.ConsumeMetrics(ctx, md); err != nil {
		t.Fatal(err)
	}
	ld := alertLogs(poolAlert(alert.StatePending), poolAlert(alert.StateFiring))
	other := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	other.Body().SetStr("an ordinary log line")
	if err := r.logs.ConsumeLogs(ctx, ld); err != nil {
		t.Fatal(err)
	}
	if err := r.e.st.Flush(); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, rawURL string, header http.Header) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("GET %s: body %q is not JSON: %v", rawURL, body, err)
		}
	}
	return resp.StatusCode, out
}

func count(v any) int {
	l, _ := v.([]any)
	return len(l)
}

func TestAPI(t *testing.T) {
	r := startExporter(t, testConfig(t), componenttest.NewNopHost())
	feed(t, r)
	rng := "from=" + t0.Add(-time.Minute).Format(time.RFC3339) + "&to=" + t0.Add(time.Hour).Format(time.RFC3339)
	alertID := url.PathEscape(poolAlert(alert.StateFiring).ID)

	tests := []struct {
		name    string
		path    string
		code    int
		check   func(t *testing.T, body map[string]any)
		errWord string // the 400/404 message must contain it
	}{
		{name: "health", path: "/api/v1/health", code: 200, check: func(t *testing.T, b map[string]any) {
			if b["status"] != "ok" || b["api_version"] != 1.0 || b["storage"].(map[string]any)["ok"] != true {
				t.Errorf("health = %v", b)
			}
		}},
		{name: "alerts", path: "/api/v1/alerts?" + rng, code: 200, check: func(t *testing.T, b map[string]any) {
			l := b["alerts"].([]any)
			if len(l) != 1 {
				t.Fatalf("alerts = %v", b)
			}
			a := l[0].(map[string]any)
			if a["state"] != "firing" || a["blame"].(map[string]any)["id"] != orders.ID {
				t.Errorf("alert = %v", a)
			}
			if ev, ok := a["evidence"]; ok {
				t.Errorf("list carries evidence: %v", ev)
			}
		}},
		{name: "alerts by state and entity", path: "/api/v1/alerts?state=pending,firing&entity=" + url.QueryEscape(orders.ID) + "&" + rng, code: 200,
			check: func(t *testing.T, b map[string]any) {
				if count(b["alerts"]) != 1 {
					t.Errorf("blamed entity filter: %v", b)
				}
			}},
		{name: "alerts empty", path: "/api/v1/alerts?state=resolved&" + rng, code: 200, check: func(t *testing.T, b map[string]any) {
			if l, ok := b["alerts"].([]any); !ok || len(l) != 0 {
				t.Errorf("want an empty list, got %v", b)
			}
		}},
		{name: "alerts by severity none", path: "/api/v1/alerts?severity=warning&" + rng, code: 200, check: func(t *testing.T, b map[string]any) {
			if count(b["alerts"]) != 0 {
				t.Errorf("severity filter: %v", b)
			}
		}},
		{name: "alerts bad state", path: "/api/v1/alerts?state=burning", code: 400, errWord: "state"},
		{name: "alerts bad limit", path: "/api/v1/alerts?limit=0", code: 400, errWord: "limit"},
		{name: "alerts limit too large", path: "/api/v1/alerts?limit=5001", code: 400, errWord: "limit"},
		{name: "alerts bad from", path: "/api/v1/alerts?from=yesterday", code: 400, errWord: "from"},
		{name: "alerts from after to", path: "/api/v1/alerts?from=2026-11-26T13:00:00Z&to=2026-11-26T12:00:00Z", code: 400, errWord: "from"},
		{name: "alert", path: "/api/v1/alerts/" + alertID, code: 200, check: func(t *testing.T, b map[string]any) {
			a := b["alert"].(map[string]any)
			ev := a["evidence"].(map[string]any)
			if count(ev["exemplars"]) != 1 || ev["values"] == nil {
				t.Errorf("evidence = %v", ev)
			}
			h := b["history"].([]any)
			if len(h) != 2 || h[0].(map[string]any)["state"] != "pending" || h[1].(map[string]any)["state"] != "firing" {
				t.Errorf("history = %v", h)
			}
		}},
		{name: "alert unknown", path: "/api/v1/alerts/nope%2FNope%40service:x", code: 404, errWord: "nope/Nope@service:x"},
		{name: "timeline", path: "/api/v1/alerts/timeline?" + rng, code: 200, check: func(t *testing.T, b map[string]any) {
			iv := b["intervals"].([]any)
			if len(iv) != 2 {
				t.Fatalf("intervals = %v", iv)
			}
			last := iv[1].(map[string]any)
			if last["state"] != "firing" || last["to"] != t0.Add(time.Hour).Format(time.RFC3339) {
				t.Errorf("still-firing interval should end at the range end: %v", last)
			}
		}},
		{name: "timeline bad state", path: "/api/v1/alerts/timeline?state=x", code: 400, errWord: "state"},
		{name: "graph", path: "/api/v1/graph?" + rng, code: 200, check: func(t *testing.T, b map[string]any) {
			nodes, edges := b["nodes"].([]any), b["edges"].([]any)
			if len(nodes) != 2 || len(edges) != 1 {
				t.Fatalf("graph = %v", b)
			}
			for _, n := range nodes {
				n := n.(map[string]any)
				switch n["id"] {
				case orders.ID:
					if n["blamed"] != true {
						t.Errorf("orders not blamed: %v", n)
					}
				case checkout.ID:
					h := n["health"].(map[string]any)
					if n["stats"].(map[string]any)["latency.p99_ms"] != 200.0 || h["critical"].(float64) < 0.9 || count(n["alerts"]) != 1 {
						t.Errorf("checkout node = %v", n)
					}
				}
			}
			if e := edges[0].(map[string]any); e["id"] != checkout.ID+"->"+orders.ID+"#db" || e["stats"].(map[string]any)["request.rate"] != 12.0 {
				t.Errorf("edge = %v", e)
			}
		}},
		{name: "graph by type", path: "/api/v1/graph?type=database&" + rng, code: 200, check: func(t *testing.T, b map[string]any) {
			if count(b["nodes"]) != 1 || count(b["edges"]) != 0 {
				t.Errorf("graph type=database = %v", b)
			}
		}},
		{name: "graph empty range", path: "/api/v1/graph?from=2020-01-01T00:00:00Z&to=2020-01-01T01:00:00Z", code: 200, check: func(t *testing.T, b map[string]any) {
			if l, ok := b["nodes"].([]any); !ok || len(l) != 0 {
				t.Errorf("graph of an empty range = %v", b)
			}
		}},
		{name: "graph bad type", path: "/api/v1/graph?type=planet", code: 400, errWord: "type"},
		{name: "entities", path: "/api/v1/entities", code: 200, check: func(t *testing.T, b map[string]any) {
			if count(b["entities"]) != 2 {
				t.Errorf("entities = %v", b)
			}
		}},
		{name: "entities by type and q", path: "/api/v1/entities?type=service&q=check", code: 200, check: func(t *testing.T, b map[string]any) {
			l := b["entities"].([]any)
			if len(l) != 1 || l[0].(map[string]any)["features"].(map[string]any)["latency.p99_ms"] != 300.0 {
				t.Errorf("entities = %v", b)
			}
		}},
		{name: "entities none", path: "/api/v1/entities?type=relayer", code: 200, check: func(t *testing.T, b map[string]any) {
			if l, ok := b["entities"].([]any); !ok || len(l) != 0 {
				t.Errorf("entities = %v", b)
			}
		}},
		{name: "entities bad type", path: "/api/v1/entities?type=x", code: 400, errWord: "type"},
		{name: "entity", path: "/api/v1/entities/" + url.PathEscape(checkout.ID), code: 200, check: func(t *testing.T, b map[string]any) {
			if b["id"] != checkout.ID || b["type"] != "service" || count(b["alerts"]) != 1 {
				t.Errorf("entity = %v", b)
			}
		}},
		{name: "entity unknown", path: "/api/v1/entities/service:none%2Fnone", code: 404, errWord: "service:none/none"},
		{name: "series", path: "/api/v1/series?entity=" + url.QueryEscape(checkout.ID) + "&feature=latency.p99_ms&step=1m&" + rng, code: 200,
			check: func(t *testing.T, b map[string]any) {
				pts := b["points"].([]any)
				if len(pts) != 3 || b["step"] != "1m" {
					t.Fatalf("series = %v", b)
				}
				p := pts[2].([]any)
				if p[0] != float64(t0.Add(2*time.Minute).UnixMilli()) || p[1] != 300.0 {
					t.Errorf("last point = %v", p)
				}
			}},
		{name: "series default step", path: "/api/v1/series?entity=" + url.QueryEscape(checkout.ID) + "&feature=latency.p99_ms&" + rng, code: 200,
			check: func(t *testing.T, b map[string]any) {
				if b["step"] != "12s" || count(b["points"]) != 3 {
					t.Errorf("series = %v", b)
				}
			}},
		{name: "series no data in range", path: "/api/v1/series?entity=" + url.QueryEscape(checkout.ID) + "&feature=latency.p99_ms&from=1000&to=2000", code: 200,
			check: func(t *testing.T, b map[string]any) {
				if l, ok := b["points"].([]any); !ok || len(l) != 0 {
					t.Errorf("series = %v", b)
				}
			}},
		{name: "series without entity", path: "/api/v1/series?feature=latency.p99_ms", code: 400, errWord: "entity"},
		{name: "series without feature", path: "/api/v1/series?entity=x", code: 400, errWord: "feature"},
		{name: "series bad step", path: "/api/v1/series?entity=x&feature=y&step=often", code: 400, errWord: "step"},
		{name: "series too many points", path: "/api/v1/series?entity=x&feature=y&step=1ms", code: 400, errWord: "step"},
		{name: "series unknown entity", path: "/api/v1/series?entity=service:no%2Fone&feature=latency.p99_ms&" + rng, code: 404, errWord: "service:no/one"},
		{name: "rules", path: "/api/v1/rules", code: 200, check: func(t *testing.T, b map[string]any) {
			l := b["rules"].([]any)
			if len(l) != 1 {
				t.Fatalf("rules = %v", b)
			}
			r := l[0].(map[string]any)
			if r["health"] != "ok" || r["file"] != "rules/packs/database.yaml" || r["evaluation_duration"] != 3e6 || r["active"] != 1.0 {
				t.Errorf("rule = %v", r)
			}
		}},
		{name: "unknown endpoint", path: "/api/v2/alerts", code: 404, errWord: "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, r.base+tt.path, nil)
			if code != tt.code {
				t.Fatalf("GET %s = %d %v, want %d", tt.path, code, body, tt.code)
			}
			if tt.errWord != "" {
				msg, _ := body["error"].(string)
				if !strings.Contains(msg, tt.errWord) {
					t.Errorf("error %q does not mention %q", msg, tt.errWord)
				}
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
	if st := r.e.st.Stats(); st.Alerts.Stored != 2 || r.e.logsSkipped.Load() != 1 {
		t.Errorf("stored %d alert records (want 2), skipped %d log records (want 1)", st.Alerts.Stored, r.e.logsSkipped.Load())
	}
}

// TestFiringAlertsResentAfterRestart: an alert firing when the collector
// stopped reaches Alertmanager from the new process without a state change.
func TestFiringAlertsResentAfterRestart(t *testing.T) {
	cfg := testConfig(t)
	r := startExporter(t, cfg, componenttest.NewNopHost())
	if err := r.logs.ConsumeLogs(context.Background(), alertLogs(poolAlert(alert.StatePending), poolAlert(alert.StateFiring))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.metrics.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.logs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	got := make(chan string, 10)
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var batch []struct {
			Labels map[string]string `json:"labels"`
		}
		_ = json.NewDecoder(req.Body).Decode(&batch)
		for _, a := range batch {
			got <- a.Labels["alertname"] + " " + a.Labels["entity"]
		}
	}))
	defer am.Close()
	cfg.Alertmanager.Endpoint = am.URL
	startExporter(t, cfg, componenttest.NewNopHost())
	select {
	case a := <-got:
		if want := "ConnectionPoolSaturated " + checkout.ID; a != want {
			t.Fatalf("Alertmanager got %q, want %q", a, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the firing alert was not sent after the restart")
	}
}

// TestAPILargeGraph serves a graph of 1k nodes and 5k edges through the
// API (docs/benchmarks.md measures the same graph over an hour).
func TestAPILargeGraph(t *testing.T) {
	r := startExporter(t, testConfig(t), componenttest.NewNopHost())
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		if err := r.metrics.ConsumeMetrics(ctx, benchBatch(t0.Add(time.Duration(i)*15*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.e.st.Flush(); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, r.base+"/api/v1/graph?from="+t0.Format(time.RFC3339)+"&to="+t0.Add(time.Hour).Format(time.RFC3339), nil)
	if code != 200 || count(body["nodes"]) != 1000 || count(body["edges"]) != 5000 {
		t.Fatalf("graph = %d with %d nodes, %d edges; want 1000 and 5000", code, count(body["nodes"]), count(body["edges"]))
	}
	e := body["edges"].([]any)[0].(map[string]any)
	if st := e["stats"].(map[string]any); len(st) != 4 {
		t.Errorf("edge %v stats = %v, want 4 stats", e["id"], st)
	}
	code, body = get(t, r.base+"/api/v1/entities?limit=5000", nil)
	if code != 200 || count(body["entities"]) != 1000 {
		t.Fatalf("entities = %d with %d", code, count(body["entities"]))
	}
}

// TestOpenAPIMatchesServer keeps docs/openapi.yaml and the server in step:
// the same paths, each one served.
func TestOpenAPIMatchesServer(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := cm.ToStringMap()["paths"].(map[string]any)
	documented := make([]string, 0, len(paths))
	for p := range paths {
		documented = append(documented, p)
	}
	sort.Strings(documented)
	served := slices.Sorted(slices.Values(api.Routes))
	if !slices.Equal(documented, served) {
		t.Fatalf("docs/openapi.yaml paths %v, server routes %v", documented, served)
	}
	r := startExporter(t, testConfig(t), componenttest.NewNopHost())
	for _, p := range served {
		// state=bad makes the stream answer at once (400) instead of streaming.
		code, body := get(t, r.base+strings.ReplaceAll(p, "{id}", "x")+"?state=bad", nil)
		if msg, _ := body["error"].(string); code == 404 && strings.Contains(msg, "no such endpoint") {
			t.Errorf("%s is documented but not served", p)
		}
	}
}

func TestOwnTelemetry(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer tel.Shutdown(context.Background())
	set := exportertest.NewNopSettings(Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	r := startExporterWith(t, testConfig(t), componenttest.NewNopHost(), func() time.Time { return t0.Add(time.Hour) }, set)
	feed(t, r)
	for name, want := range map[string]int64{
		"otelcol_exporter_junction_samples_written":      7, // 3 + 2 entity samples, 1 edge, 1 rule status
		"otelcol_exporter_junction_alert_records_stored": 2,
		"otelcol_exporter_junction_log_records_skipped":  1,
	} {
		m, err := tel.GetMetric(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		sum, ok := m.Data.(metricdata.Sum[int64])
		if !ok || len(sum.DataPoints) == 0 || sum.DataPoints[0].Value != want {
			t.Errorf("%s = %+v, want %d", name, m.Data, want)
		}
	}
}

func TestAPIBearerToken(t *testing.T) {
	ctx := context.Background()
	f := bearertokenauthextension.NewFactory()
	ecfg := f.CreateDefaultConfig().(*bearertokenauthextension.Config)
	ecfg.BearerToken = configopaque.String("s3cret")
	ext, err := f.Create(ctx, extensiontest.NewNopSettings(f.Type()), ecfg)
	if err != nil {
		t.Fatal(err)
	}
	extID := component.NewID(f.Type())
	host := testHost{extID: ext}
	if err := ext.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	defer ext.Shutdown(ctx)

	cfg := testConfig(t)
	cfg.API.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: extID}})
	r := startExporter(t, cfg, host)
	for _, tt := range []struct {
		name   string
		header http.Header
		code   int
	}{
		{"no token", nil, 401},
		{"wrong token", http.Header{"Authorization": {"Bearer nope"}}, 401},
		{"right token", http.Header{"Authorization": {"Bearer s3cret"}}, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, _ := get(t, r.base+"/api/v1/health", tt.header); code != tt.code {
				t.Errorf("GET /api/v1/health = %d, want %d", code, tt.code)
			}
		})
	}
}

func TestAPIStream(t *testing.T) {
	r := startExporter(t, testConfig(t), componenttest.NewNopHost())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/api/v1/stream?state=firing", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	// The opening comment arrives once the stream is subscribed.
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("first line %q, %v", line, err)
	}
	// pending is filtered out by state=firing; firing comes through.
	if err := r.logs.ConsumeLogs(ctx, alertLogs(poolAlert(alert.StatePending), poolAlert(alert.StateFiring))); err != nil {
		t.Fatal(err)
	}
	var event, data string
	for data == "" {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimSpace(line[7:])
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
	var a alert.Alert
	if err := json.Unmarshal([]byte(data), &a); err != nil {
		t.Fatal(err)
	}
	if event != "alert" || a.State != alert.StateFiring || a.ID != poolAlert(alert.StateFiring).ID {
		t.Fatalf("event %q alert %+v", event, a)
	}
	if code, _ := get(t, r.base+"/api/v1/stream?state=bad", nil); code != 400 {
		t.Errorf("stream with a bad filter = %d, want 400", code)
	}
}

func TestStartUnwritableDirectory(t *testing.T) {
	cfg := testConfig(t)
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Directory = filepath.Join(file, "data")
	if os.Geteuid() != 0 {
		dir := t.TempDir()
		os.Chmod(dir, 0o500)
		cfg.Storage.Directory = dir
	}
	ctx := context.Background()
	f := NewFactory()
	me, err := f.CreateMetrics(ctx, exportertest.NewNopSettings(Type), cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = me.Start(ctx, componenttest.NewNopHost())
	if err == nil || !strings.Contains(err.Error(), "storage.directory") {
		t.Fatalf("Start = %v, want an error naming storage.directory", err)
	}
	if err := me.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestAPIStreamOutlivesWriteTimeout: the alert stream stays open past
// api.write_timeout (the collector's HTTP middleware hid the connection
// from the handler, so the stream used to end at it: every 30 s with the
// default), while other responses keep the deadline.
func TestAPIStreamOutlivesWriteTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.API.WriteTimeout = 300 * time.Millisecond
	r := startExporter(t, cfg, componenttest.NewNopHost())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/api/v1/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("first line %q, %v", line, err)
	}
	// Three write timeouts later the stream still delivers a change.
	time.Sleep(3 * cfg.API.WriteTimeout)
	if err := r.logs.ConsumeLogs(ctx, alertLogs(poolAlert(alert.StateFiring))); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended after api.write_timeout: %v", err)
		}
		if strings.HasPrefix(line, "event: alert") {
			break
		}
	}
	if code, _ := get(t, r.base+"/api/v1/health", nil); code != 200 {
		t.Errorf("health = %d with a write timeout, want 200", code)
	}
}
