package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
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

	"github.com/junction-sre/junction/entity/querysource/querysourcetest"
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

// dashboardSelectors parses every query of the dashboard as PromQL and
// returns its metric selectors, by panel title.
func dashboardSelectors(t *testing.T, file string) map[string][]*parser.VectorSelector {
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
	out := map[string][]*parser.VectorSelector{}
	for _, panel := range d.Panels {
		if panel.Type == "row" {
			continue
		}
		if panel.Datasource.Type != "prometheus" || panel.Datasource.UID != "${datasource}" || len(panel.Targets) == 0 {
			t.Errorf("%s: panel %q: datasource %+v, %d queries; want the ${datasource} Prometheus variable and a query", file, panel.Title, panel.Datasource, len(panel.Targets))
		}
		for _, target := range panel.Targets {
			expr, err := p.ParseExpr(grafanaVars.Replace(target.Expr))
			if err != nil {
				t.Errorf("%s: panel %q: %s: %v", file, panel.Title, target.Expr, err)
				continue
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					out[panel.Title] = append(out[panel.Title], vs)
				}
				return nil
			})
		}
	}
	return out
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
// Prometheus. Every query parses as PromQL; every metric a query names is
// served by one of them; a query that picks metrics by a name pattern
// (counters that appear at the first drop) matches a documented name.
func TestSelfDashboardReadsJunctionTelemetry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the junction binary")
	}
	vm := querysourcetest.Start(t)
	broker := startBroker(t)
	brokers := broker.ListenAddrs()
	backend, spans := startBackend(t)
	gwTelemetry := freeAddr(t)
	runGatewayTo(t, "gateway-0", brokers[0], vm.RemoteWriteURL(), backend, t.TempDir(), telemetryFlags(gwTelemetry)...)
	waitGroupStable(t, broker, membersPerReplica)

	single, singleTelemetry := freeAddr(t), freeAddr(t)
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

	selectors := dashboardSelectors(t, selfDashboard)
	var literal []string
	for _, vss := range selectors {
		for _, vs := range vss {
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
	for title, vss := range selectors {
		for _, vs := range vss {
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
				t.Errorf("panel %q: %s selects no metric name", title, vs)
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
				t.Errorf("panel %q: %s matches no metric Junction serves or documents", title, vs)
			}
		}
	}
}
