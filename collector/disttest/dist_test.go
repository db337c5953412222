// Package disttest checks the built junction binary the way a user meets it:
// its commands, its embedded default config and config errors.
package disttest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/junction-sre/junction/internal/testbin"
)

func run(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbin.Junction(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	root, err := testbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, rel)
}

// The components every Junction build must carry (builder-config.yaml), by
// the type names v0.165 lists; configs may still use the older names
// (filelog, kubeletstats, k8sattributes, otlp, otlphttp,
// prometheusremotewrite, spanmetrics), which the components keep as aliases.
var wantComponents = map[string][]string{
	"receivers":  {"otlp", "prometheus", "file_log", "kubelet_stats", "k8s_cluster", "kafka"},
	"processors": {"memory_limiter", "batch", "k8s_attributes", "resource", "transform", "filter", "correlation"},
	"exporters":  {"otlp_grpc", "otlp_http", "debug", "prometheus_remote_write", "prometheus", "file", "durable_remote_write", "kafka", "nop", "junction"},
	"connectors": {"span_metrics", "forward"},
	"extensions": {"health_check", "pprof", "file_storage", "bearertokenauth"},
}

func TestComponentsListsTheDistribution(t *testing.T) {
	out, err := run(t, t.TempDir(), "components")
	if err != nil {
		t.Fatalf("junction components: %v\n%s", err, out)
	}
	var listed map[string]any
	if err := yaml.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("components output is not YAML: %v\n%s", err, out)
	}
	for kind, names := range wantComponents {
		have := map[string]bool{}
		items, _ := listed[kind].([]any)
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				have[fmt.Sprint(m["name"])] = true
			}
		}
		for _, n := range names {
			if !have[n] {
				t.Errorf("%s: %q missing from `junction components`", kind, n)
			}
		}
	}
}

func TestValidateDefaultConfig(t *testing.T) {
	if out, err := run(t, t.TempDir(), "validate", "--config", repoFile(t, "collector/config.yaml")); err != nil {
		t.Fatalf("validate collector/config.yaml: %v\n%s", err, out)
	}
	// No --config: the embedded default is validated.
	if out, err := run(t, t.TempDir(), "validate"); err != nil {
		t.Fatalf("validate (embedded default): %v\n%s", err, out)
	}
}

// TestSetChangesTheEmbeddedDefault: --set without --config changes one key
// of the embedded default instead of replacing the whole config; a bad
// value is named.
func TestSetChangesTheEmbeddedDefault(t *testing.T) {
	if out, err := run(t, t.TempDir(), "validate", "--set", "processors::correlation::clock::source=telemetry"); err != nil {
		t.Fatalf("validate --set (embedded default): %v\n%s", err, out)
	}
	out, err := run(t, t.TempDir(), "validate", "--set", "processors::correlation::clock::source=event")
	if err == nil {
		t.Fatalf("validate accepted clock::source=event:\n%s", out)
	}
	if !strings.Contains(out, `processors::correlation: clock::source: must be "wall" or "telemetry", got "event"`) {
		t.Errorf("error does not name the key and value:\n%s", out)
	}
	if strings.Contains(out, "no receiver configuration") {
		t.Errorf("--set replaced the embedded default:\n%s", out)
	}
}

func TestDefaultConfigCommandPrintsTheEmbeddedConfig(t *testing.T) {
	out, err := run(t, t.TempDir(), "default-config")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(repoFile(t, "collector/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Error("`junction default-config` differs from collector/config.yaml")
	}
}

func TestMisspeltKeyIsNamed(t *testing.T) {
	dir := t.TempDir()
	cfg, err := os.ReadFile(repoFile(t, "collector/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(cfg), "check_interval:", "check_intervall:", 1)
	if bad == string(cfg) {
		t.Fatal("default config has no check_interval to misspell")
	}
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, dir, "validate", "--config", path)
	if err == nil {
		t.Fatalf("validate accepted a misspelt key:\n%s", out)
	}
	if !strings.Contains(out, "check_intervall") {
		t.Errorf("error does not name the misspelt key:\n%s", out)
	}
}

// TestRunsOnEmbeddedDefaults starts junction with no flags, as `make run`
// does, and sends it OTLP over HTTP.
func TestRunsOnEmbeddedDefaults(t *testing.T) {
	dir := t.TempDir()
	jn := testbin.Start(t, dir)
	logs := jn.Logs

	waitHTTP(t, "http://127.0.0.1:13133/", logs)
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},` +
		`"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",` +
		`"name":"GET /cart","kind":2,"startTimeUnixNano":"1764158400000000000","endTimeUnixNano":"1764158400100000000"}]}]}]}`
	resp, err := http.Post("http://127.0.0.1:4318/v1/traces", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("OTLP/HTTP export: %v\n%s", err, logs.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP/HTTP export: status %d", resp.StatusCode)
	}
	// A malformed payload is refused with a client error, not accepted.
	resp, err = http.Post("http://127.0.0.1:4318/v1/traces", "application/json", strings.NewReader(`{"resourceSpans":[{`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed OTLP/HTTP: status %d, want 400", resp.StatusCode)
	}

	// The junction exporter's API answers on loopback, its store is under
	// ./data, and the built-in rule packs report their status after the
	// first evaluation.
	waitHTTP(t, "http://127.0.0.1:8480/api/v1/health", logs)
	if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
		t.Errorf("no data directory under the working directory: %v", err)
	}
	var rules struct {
		Rules []struct {
			Rule, Health string
		} `json:"rules"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(rules.Rules) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no rule status from /api/v1/rules within 60s\n%s", logs.String())
		}
		time.Sleep(500 * time.Millisecond)
		resp, err := http.Get("http://127.0.0.1:8480/api/v1/rules")
		if err != nil {
			continue
		}
		_ = json.NewDecoder(resp.Body).Decode(&rules)
		resp.Body.Close()
	}
	for _, r := range rules.Rules {
		if r.Health == "err" {
			t.Errorf("rule %s is unhealthy on the default config", r.Rule)
		}
	}
	if len(rules.Rules) < 20 {
		t.Errorf("%d rules reported, want every rule of the built-in packs", len(rules.Rules))
	}
}

// waitHTTP polls url until it answers 200: the process starts in its own
// time, which a test can only observe.
func waitHTTP(t *testing.T, url string, logs *testbin.Logs) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60s: %v\n%s", url, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDemoScript runs `make demo`'s script, scripts/demo.sh, as a user
// would, on one scenario at 300 times real speed (15 simulated minutes in
// 3 s) with its data in a temporary directory: Junction on its default
// config with the demo's --set flags, the simulator and the live view. The
// surge's expected alerts fire on the edge proxy and the view scores them;
// Ctrl-C (SIGINT) then stops the script and Junction.
func TestDemoScript(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	root, err := testbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(), "JUNCTION_BIN="+testbin.Junction(t), "DEMO_SPEED=300", "DEMO_SCENARIOS=surge", "DEMO_DATA="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out testbin.Logs
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()

	deadline := time.After(3 * time.Minute)
	for !strings.Contains(out.String(), "Junction keeps running") {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("demo.sh exited before the scenarios were over: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("the demo did not finish within 3 minutes:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	got := out.String()
	for _, want := range []string{
		"junction-demo: 1 scenarios, 15m0s at 300x speed",
		"── [1/1] surge: fault until",
		"▲ FIRING    ProxyShedding               proxy:edge-proxy/frontend",
		"▲ FIRING    ProxyCircuitOpen            proxy:edge-proxy/frontend",
		"▼ resolved  ProxyShedding               proxy:edge-proxy/frontend",
		"  surge      recall 100%",
		"healthy false positives 0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}

	// Ctrl-C: the script stops Junction and exits.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		stopped = true
	case <-time.After(30 * time.Second):
		t.Fatalf("demo.sh did not stop within 30s of SIGINT:\n%s", out.String())
	}
	// Junction went with it: its health check no longer answers.
	if resp, err := http.Get("http://127.0.0.1:13133/"); err == nil {
		resp.Body.Close()
		t.Errorf("Junction still answers on 127.0.0.1:13133 after the demo stopped")
	}
}
