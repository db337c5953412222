package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/testbin"
)

const alertmanagerBinary = "/usr/bin/prometheus-alertmanager"

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually polls cond every 100 ms until it holds or d passes: the
// other side is a real process.
func eventually(t *testing.T, what string, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %v", what, err)
}

// start runs cmd with its output in dir/name.log, shown when the test
// fails, and kills it at the end.
func start(t *testing.T, cmd *exec.Cmd, dir, name string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("%s output:\n%s", name, out)
		}
	})
}

func startAlertmanager(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat(alertmanagerBinary); err != nil {
		t.Skipf("Alertmanager not installed (%s missing): apt-get install prometheus-alertmanager to run this test", alertmanagerBinary)
	}
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, exec.Command(alertmanagerBinary, "--config.file="+conf, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+addr, "--cluster.listen-address="), dir, "alertmanager")
	base := "http://" + addr
	eventually(t, "Alertmanager to be ready", 30*time.Second, func() error {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("ready: %s", resp.Status)
		}
		return nil
	})
	return base
}

// podConfig is configs/<role>.yaml as shipped with only what the pod
// provides changed: loopback ports instead of the pod's, temporary
// directories instead of the volume claim and the Secret volume. Every
// replaced text must be there, so a changed config fails here rather than
// run unchanged.
func podConfig(t *testing.T, role, dir string, ports map[string]int) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("configs", role+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(data)
	replace := []struct{ old, new string }{
		{"endpoint: 0.0.0.0:4317", fmt.Sprintf("endpoint: 127.0.0.1:%d", ports["otlp"])},
		{"endpoint: 0.0.0.0:8480", fmt.Sprintf("endpoint: 127.0.0.1:%d", ports["api"])},
		{"endpoint: 0.0.0.0:13133", fmt.Sprintf("endpoint: 127.0.0.1:%d", ports["health"])},
		{"host: 0.0.0.0\n", "host: 127.0.0.1\n"},
		{"port: 8888\n", fmt.Sprintf("port: %d\n", ports["metrics"])},
		{"filename: /etc/junction-api-token/token", "filename: " + filepath.Join(dir, "secret", "token")},
		{"/var/lib/junction/", dir + "/"},
	}
	if role == "single-node" {
		replace = append(replace, struct{ old, new string }{"endpoint: 0.0.0.0:4318", fmt.Sprintf("endpoint: 127.0.0.1:%d", ports["otlphttp"])})
	}
	for _, r := range replace {
		if !strings.Contains(cfg, r.old) {
			t.Fatalf("configs/%s.yaml has no %q", role, r.old)
		}
		cfg = strings.ReplaceAll(cfg, r.old, r.new)
	}
	p := filepath.Join(dir, role+".yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func get(url, token string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestStoreServesTheRulersAlerts runs bin/junction on the store's and the
// single node's shipped configs beside a real Alertmanager, sends alert
// log records as the ruler sends them (encoded by alert.AppendLogs, over
// OTLP/gRPC to the store's receiver), and checks what a user of the
// deployment sees: the query API refuses requests without the Secret's
// token and with a wrong one, lists the alert with the token, takes a new
// token written to the Secret's file without a restart, and Alertmanager
// has the alert.
func TestStoreServesTheRulersAlerts(t *testing.T) {
	bin := testbin.Junction(t)
	for _, role := range []string{"store", "single-node"} {
		t.Run(role, func(t *testing.T) {
			dir := t.TempDir()
			am := startAlertmanager(t, dir)
			ports := map[string]int{}
			for _, k := range []string{"otlp", "otlphttp", "api", "health", "metrics"} {
				ports[k] = freePort(t)
			}
			const token = "first-token"
			secret := newSecretVolume(t, filepath.Join(dir, "secret"), "token", token)
			cmd := exec.Command(bin, "--config=file:"+podConfig(t, role, dir, ports))
			cmd.Env = append(os.Environ(), "ALERTMANAGER_URL="+am, fmt.Sprintf("OTLP_BACKEND=127.0.0.1:%d", freePort(t)))
			start(t, cmd, dir, "junction")
			api := fmt.Sprintf("http://127.0.0.1:%d/api/v1", ports["api"])
			// health_check answers 200 once every component started: what
			// the manifests' readiness probe asks.
			eventually(t, "the readiness probe to pass", 60*time.Second, func() error {
				code, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", ports["health"]), "")
				if err == nil && code != 200 {
					err = fmt.Errorf("health_check: %d %s", code, body)
				}
				return err
			})
			if code, body, err := get(api+"/health", token); err != nil || code != 200 {
				t.Fatalf("/api/v1/health with the token: %d %s %v", code, body, err)
			}

			for _, tok := range []string{"", "wrong-token"} {
				code, body, err := get(api+"/alerts", tok)
				if err != nil || code != http.StatusUnauthorized {
					t.Errorf("token %q: %d %s %v, want 401", tok, code, body, err)
				}
			}

			// The ruler's otlp_grpc/alerts exporter: OTLP/gRPC, no TLS.
			conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", ports["otlp"]), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			now := time.Now().UTC().Truncate(time.Second)
			checkout := entity.Ref{Type: entity.Service, ID: "service:shop/checkout", Name: "checkout"}
			orders := entity.Ref{Type: entity.Database, ID: "database:postgresql/pg:5432/orders", Name: "orders"}
			a := alert.Alert{
				ID: alert.Fingerprint("database", "ConnectionPoolSaturated", checkout.ID), Group: "database",
				Rule: "ConnectionPoolSaturated", Kind: "bottleneck", Severity: "critical", State: alert.StateFiring,
				Entity: checkout, Blame: orders, Value: 1,
				ActiveAt: now.Add(-2 * time.Minute), FiredAt: now.Add(-time.Minute), EvaluatedAt: now,
				Annotations: map[string]string{"summary": "checkout pool on orders saturated"},
			}
			a.Evidence.Exemplars = []entity.Exemplar{{TraceID: "0af7651916cd43dd8448eb211c80319c", Time: now, Reason: "slow", Value: 1200}}
			ld := plog.NewLogs()
			alert.AppendLogs(ld, []alert.Alert{a})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(ld)); err != nil {
				t.Fatalf("sending the alert as the ruler does: %v", err)
			}

			listed := func(tok string) error {
				code, body, err := get(api+"/alerts", tok)
				if err != nil {
					return err
				}
				var out struct {
					Alerts []struct {
						ID, State string
						Blame     entity.Ref
					}
				}
				if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
					return fmt.Errorf("alerts: %d %s", code, body)
				}
				for _, got := range out.Alerts {
					if got.ID == a.ID && got.State == "firing" && got.Blame.ID == orders.ID {
						return nil
					}
				}
				return fmt.Errorf("alert %s not listed: %s", a.ID, body)
			}
			eventually(t, "the alert in the API", 10*time.Second, func() error { return listed(token) })
			code, body, err := get(api+"/alerts/"+a.ID, token)
			if err != nil || code != 200 || !strings.Contains(body, a.Evidence.Exemplars[0].TraceID) {
				t.Errorf("the alert's evidence: %d %s %v", code, body, err)
			}

			if role == "store" {
				// What the ruler's metrics pipeline would send with
				// otlp_grpc/alerts among its exporters: the ALERTS and
				// rule status gauges. The store's metrics pipeline takes
				// them and /api/v1/rules serves the status.
				md := pmetric.NewMetrics()
				alert.AppendMetrics(md, []alert.Alert{a}, now)
				alert.AppendRuleStatus(md, []alert.RuleStatus{{Group: "database", Rule: a.Rule, Kind: a.Kind, Severity: a.Severity,
					File: "builtin:packs/database.yaml", Health: "ok", LastEvaluation: now, EvaluationDuration: time.Millisecond, Active: 1}}, now)
				if _, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md)); err != nil {
					t.Fatalf("sending the ruler's gauges: %v", err)
				}
				eventually(t, "the rule status in the API", 10*time.Second, func() error {
					code, body, err := get(api+"/rules", token)
					if err != nil {
						return err
					}
					var out struct {
						Rules []struct{ Rule, Health string }
					}
					if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
						return fmt.Errorf("rules: %d %s", code, body)
					}
					for _, r := range out.Rules {
						if r.Rule == a.Rule && r.Health == "ok" {
							return nil
						}
					}
					return fmt.Errorf("rule %s not listed: %s", a.Rule, body)
				})
			}

			eventually(t, "the alert in Alertmanager", 30*time.Second, func() error {
				code, body, err := get(am+"/api/v2/alerts", "")
				if err != nil {
					return err
				}
				var list []struct {
					Labels map[string]string `json:"labels"`
				}
				if code != 200 || json.Unmarshal([]byte(body), &list) != nil {
					return fmt.Errorf("%d %s", code, body)
				}
				for _, l := range list {
					if l.Labels["alertname"] == a.Rule && l.Labels["entity"] == checkout.ID && l.Labels["blame"] == orders.ID {
						return nil
					}
				}
				return fmt.Errorf("not in Alertmanager: %s", body)
			})

			// A rotated Secret, updated as the kubelet updates a Secret
			// volume: the old token stops working and the new one works,
			// with no restart.
			const rotated = "second-token"
			secret.update(t, rotated+"\n")
			eventually(t, "the rotated token to be taken", 30*time.Second, func() error { return listed(rotated) })
			if code, _, err := get(api+"/alerts", token); err != nil || code != http.StatusUnauthorized {
				t.Errorf("the old token after the rotation: %d %v, want 401", code, err)
			}
		})
	}
}

// secretVolume lays out files as the kubelet's atomic writer lays out a
// Secret volume: key -> ..data/key, ..data -> a timestamped directory; an
// update writes a new directory and swaps the ..data link with a rename.
type secretVolume struct {
	dir, key string
	gen      int
}

func newSecretVolume(t *testing.T, dir, key, value string) *secretVolume {
	t.Helper()
	v := &secretVolume{dir: dir, key: key}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	v.update(t, value)
	if err := os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key)); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *secretVolume) update(t *testing.T, value string) {
	t.Helper()
	v.gen++
	ts := fmt.Sprintf("..%d", v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, ts, v.key), []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if v.gen > 1 {
		if err := os.RemoveAll(filepath.Join(v.dir, fmt.Sprintf("..%d", v.gen-1))); err != nil {
			t.Fatal(err)
		}
	}
}
