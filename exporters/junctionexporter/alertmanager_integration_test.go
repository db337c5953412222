package junctionexporter

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/junction-sre/junction/alert"
)

const alertmanagerBinary = "/usr/bin/prometheus-alertmanager"

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every 100 ms until it holds or the deadline passes:
// the other side is a real process.
func waitFor(t testing.TB, what string, d time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, lastErr)
}

// startProcess starts cmd with its output in logPath, shown if the test
// fails, and kills it when the test ends.
func startProcess(t testing.TB, cmd *exec.Cmd, logPath string) {
	t.Helper()
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
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), out)
		}
	})
}

func startAlertmanager(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(alertmanagerBinary); err != nil {
		t.Skipf("Alertmanager not installed (%s missing): apt-get install prometheus-alertmanager to run this test", alertmanagerBinary)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(alertmanagerBinary, "--config.file="+conf, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	startProcess(t, cmd, filepath.Join(dir, "alertmanager.log"))
	base := "http://" + addr
	waitFor(t, "Alertmanager to be ready", 30*time.Second, func() (bool, error) {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == 200, nil
	})
	return base
}

type amAlert struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
}

func listAlerts(base string) ([]amAlert, error) {
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []amAlert
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

func TestAlertmanagerFiringThenResolved(t *testing.T) {
	amURL := startAlertmanager(t)
	cfg := testConfig(t)
	cfg.Alertmanager.Endpoint = amURL
	r := startExporterAt(t, cfg, componenttest.NewNopHost(), time.Now)
	ctx := context.Background()

	// Alertmanager rejects alerts that ended long ago; use current times.
	now := time.Now().UTC().Truncate(time.Second)
	firing := poolAlert(alert.StateFiring)
	firing.ActiveAt, firing.FiredAt, firing.EvaluatedAt = now.Add(-2*time.Minute), now.Add(-time.Minute), now.Add(-time.Minute)
	if err := r.logs.ConsumeLogs(ctx, alertLogs(firing)); err != nil {
		t.Fatal(err)
	}
	find := func() (*amAlert, error) {
		list, err := listAlerts(amURL)
		for i := range list {
			if list[i].Labels["alertname"] == firing.Rule && list[i].Labels["entity"] == checkout.ID {
				return &list[i], err
			}
		}
		return nil, err
	}
	waitFor(t, "the firing alert in Alertmanager", 30*time.Second, func() (bool, error) {
		a, err := find()
		return a != nil && a.Status.State == "active", err
	})
	a, _ := find()
	if a.Labels["blame"] != orders.ID || a.Labels["severity"] != "critical" {
		t.Errorf("labels in Alertmanager = %v", a.Labels)
	}

	resolved := firing
	resolved.State, resolved.ResolvedAt, resolved.EvaluatedAt = alert.StateResolved, now, now
	if err := r.logs.ConsumeLogs(ctx, alertLogs(resolved)); err != nil {
		t.Fatal(err)
	}
	// Alertmanager's v2 list leaves out alerts whose endsAt has passed.
	waitFor(t, "the alert to resolve in Alertmanager", 30*time.Second, func() (bool, error) {
		a, err := find()
		if a != nil {
			err = fmt.Errorf("still listed: %+v (notifier %+v)", *a, r.e.notifier.Stats())
		}
		return a == nil && err == nil, err
	})
	// The notifier counts a send after Alertmanager answered it.
	waitFor(t, "the notifier to count both sends", 10*time.Second, func() (bool, error) {
		st := r.e.notifier.Stats()
		return st.Sent >= 2 && st.Queue == 0 && st.Failures == 0, fmt.Errorf("notifier stats %+v", st)
	})
}
