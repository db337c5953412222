package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/internal/vmtest"
)

var (
	singleNodeConfig = filepath.Join("..", "..", "collector", "config.yaml")
	selfDashboard    = filepath.Join("..", "..", "grafana-plugin", "provisioning", "dashboards", "junction-self.json")
)

// telemetryFlags turn the process's own metrics on, served for Prometheus
// on addr.
func telemetryFlags(addr string) []string {
	host, port, _ := net.SplitHostPort(addr)
	return []string{
		"--set=service::telemetry::metrics::level=normal",
		fmt.Sprintf("--set=service::telemetry::metrics::readers=[{pull: {exporter: {prometheus: {host: %q, port: %s}}}}]", host, port),
	}
}

// scrapeNames returns the metric names the process serves on addr.
func scrapeNames(t *testing.T, addr string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// startOTLP returns OTLP/gRPC exporters sending synchronously to addr, as
// an application's SDK would.
func startOTLP(t *testing.T, addr string) (exporter.Traces, exporter.Metrics, exporter.Logs) {
	t.Helper()
	f := otlpexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpexporter.Config)
	cfg.ClientConfig.Endpoint = addr
	cfg.ClientConfig.TLS.Insecure = true
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	te, me, le := startExporters(t, f, exportertest.NewNopSettings(f.Type()), cfg)
	for _, c := range []component.Component{te, me, le} {
		t.Cleanup(func() { _ = c.Shutdown(context.Background()) })
	}
	return te, me, le
}

// grafanaVars stands in for what Grafana puts in for the dashboard's
// variables.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*")

// panelQuery is one query of a dashboard panel: the PromQL with Grafana's
// variables filled in, and its metric selectors.
type panelQuery struct {
	panel, expr string
	selectors   []*parser.VectorSelector
}

// named reports whether every selector of the query names its metric.
func (q panelQuery) named() bool {
	for _, vs := range q.selectors {
		if vs.Name == "" {
			return false
		}
	}
	return true
}

// dashboardQueries parses every query of the dashboard as PromQL.
func dashboardQueries(t *testing.T, file string) []panelQuery {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct {
				Type string `json:"type"`
				UID  string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	p := parser.NewParser(parser.Options{})
	var out []panelQuery
	for _, panel := range d.Panels {
		if panel.Type == "row" {
			continue
		}
		if panel.Datasource.Type != "prometheus" || panel.Datasource.UID != "${datasource}" || len(panel.Targets) == 0 {
			t.Errorf("%s: panel %q: datasource %+v, %d queries; want the ${datasource} Prometheus variable and a query", file, panel.Title, panel.Datasource, len(panel.Targets))
		}
		for _, target := range panel.Targets {
			q := panelQuery{panel: panel.Title, expr: grafanaVars.Replace(target.Expr)}
			expr, err := p.ParseExpr(q.expr)
			if err != nil {
				t.Errorf("%s: panel %q: %s: %v", file, panel.Title, target.Expr, err)
				continue
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					q.selectors = append(q.selectors, vs)
				}
				return nil
			})
			out = append(out, q)
		}
	}
	return out
}

// instantQuery runs expr on vm now and returns how many series it gave.
func instantQuery(vm *vmtest.VictoriaMetrics, expr string) (int, error) {
	resp, err := http.Get(vm.URL + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", resp.Status, r.Error)
	}
	return len(r.Data.Result), nil
}

// documentedMetrics returns the otelcol_* names the docs describe: counters
// that appear only once something was dropped are documented there.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("docs: %v %v", files, err)
	}
	re := regexp.MustCompile(`otelcol_[a-z0-9_]+[a-z0-9]`)
	names := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range re.FindAllString(string(b), -1) {
			names[n] = true
		}
	}
	return names
}

// TestSelfDashboardReadsJunctionTelemetry checks the self-monitoring
// dashboard against what Junction serves: a gateway process on the
// deployed config fed through Kafka, and a single node on the embedded
// default config fed over OTLP, each with its own metrics on for
// Prometheus, scraped by VictoriaMetrics. Every query parses as PromQL;
// every metric a query names is served by one of them; a query that picks
// metrics by a name pattern (counters that appear at the first drop)
// matches a documented name; every query runs on the scraped series, and
// every panel with a query that names its metrics shows data.
func TestSelfDashboardReadsJunctionTelemetry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the junction binary")
	}
	// VictoriaMetrics scrapes both processes, as the Prometheus behind
	// the dashboard would.
	gwTelemetry, singleTelemetry := freeAddr(t), freeAddr(t)
	scrape := filepath.Join(t.TempDir(), "scrape.yaml")
	if err := os.WriteFile(scrape, fmt.Appendf(nil, "scrape_configs:\n  - job_name: junction\n    scrape_interval: 1s\n    static_configs:\n      - targets: [%q, %q]\n", gwTelemetry, singleTelemetry), 0o644); err != nil {
		t.Fatal(err)
	}
	vm := vmtest.Start(t, "-promscrape.config="+scrape)
	broker := startBroker(t)
	brokers := broker.ListenAddrs()
	backend, spans := startBackend(t)
	runGatewayTo(t, "gateway-0", brokers[0], vm.RemoteWriteURL(), backend, t.TempDir(), telemetryFlags(gwTelemetry)...)
	waitGroupStable(t, broker, membersPerReplica)

	single := freeAddr(t)
	runJunction(t, "single", singleNodeConfig, nil, append(telemetryFlags(singleTelemetry),
		"--set=receivers::otlp::protocols::grpc::endpoint="+single,
		"--set=receivers::otlp::protocols::http::endpoint="+freeAddr(t),
		"--set=exporters::junction::api::endpoint="+freeAddr(t),
		"--set=exporters::junction::storage::directory="+t.TempDir(),
		"--set=processors::correlation::emit_interval=1s",
		"--set=processors::correlation::rules::state_file="+filepath.Join(t.TempDir(), "state.json"),
	)...)

	ctx := context.Background()
	recorded, sent := recordTraces(t, shortPlan(t))
	kte, kme, kle := agentExporter(t, brokers)
	t.Cleanup(func() {
		for _, c := range []component.Component{kte, kme, kle} {
			_ = c.Shutdown(context.Background())
		}
	})
	ote, ome, ole := startOTLP(t, single)
	for _, td := range recorded {
		// Each its own copy: the agent's exporter merges batches in its
		// queue, which moves their spans.
		kafkaCopy := ptrace.NewTraces()
		td.CopyTo(kafkaCopy)
		if err := kte.ConsumeTraces(ctx, kafkaCopy); err != nil {
			t.Fatal(err)
		}
		if err := ote.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("payment declined")
	if err := ole.ConsumeLogs(ctx, ld); err != nil {
		t.Fatal(err)
	}
	if err := ome.ConsumeMetrics(ctx, testTick("checkout", time.Now())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the gateway to send the traces on", 30*time.Second, func() (bool, string) {
		return spans.count() >= sent, describe(spans.count(), "spans")
	})

	queries := dashboardQueries(t, selfDashboard)
	var literal []string
	for _, q := range queries {
		for _, vs := range q.selectors {
			if vs.Name != "" {
				literal = append(literal, vs.Name)
			}
		}
	}
	// Rules are evaluated and the store writes at the next tick.
	served := map[string]bool{}
	waitFor(t, "every metric the dashboard names to be served", 30*time.Second, func() (bool, string) {
		served = scrapeNames(t, gwTelemetry)
		for n := range scrapeNames(t, singleTelemetry) {
			served[n] = true
		}
		var missing []string
		for _, n := range literal {
			if !served[n] {
				missing = append(missing, n)
			}
		}
		sort.Strings(missing)
		return len(missing) == 0, "not served: " + strings.Join(missing, ", ")
	})
	documented := documentedMetrics(t)
	for _, q := range queries {
		for _, vs := range q.selectors {
			if vs.Name != "" {
				continue
			}
			var pattern *labels.Matcher
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					pattern = m
				}
			}
			if pattern == nil {
				t.Errorf("panel %q: %s selects no metric name", q.panel, vs)
				continue
			}
			matched := false
			for n := range documented {
				matched = matched || pattern.Matches(n)
			}
			for n := range served {
				matched = matched || pattern.Matches(n)
			}
			if !matched {
				t.Errorf("panel %q: %s matches no metric Junction serves or documents", q.panel, vs)
			}
		}
	}

	// Every query runs on the scraped series; every panel with a query
	// that names its metrics shows data (counters picked by name pattern
	// appear at the first drop, so their panels may be empty).
	waitFor(t, "every panel to show data from the scraped series", 60*time.Second, func() (bool, string) {
		shows := map[string]bool{}
		needs := map[string]bool{}
		for _, q := range queries {
			n, err := instantQuery(vm, q.expr)
			if err != nil {
				t.Fatalf("panel %q: %s: %v", q.panel, q.expr, err)
			}
			if q.named() {
				needs[q.panel] = true
				shows[q.panel] = shows[q.panel] || n > 0
			}
		}
		var empty []string
		for p := range needs {
			if !shows[p] {
				empty = append(empty, p)
			}
		}
		sort.Strings(empty)
		return len(empty) == 0, "no data in: " + strings.Join(empty, ", ")
	})
}
