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
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
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

// blackhole accepts connections and never answers, as an Alertmanager
// behind a dead network does: every POST to it costs alertmanager.timeout.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

// TestTwoAlertmanagersOneDown: with one real Alertmanager and one that
// never answers, every alert reaches the live one, the down one is tried
// again at each resend and counted, and neither ConsumeLogs nor Shutdown
// waits for it longer than alertmanager.timeout.
func TestTwoAlertmanagersOneDown(t *testing.T) {
	live := startAlertmanager(t)
	down := blackhole(t)
	cfg := testConfig(t)
	cfg.Alertmanager.Endpoints = []string{live, down}
	cfg.Alertmanager.ResendInterval = time.Second
	cfg.Alertmanager.Timeout = 500 * time.Millisecond
	r := startExporterAt(t, cfg, componenttest.NewNopHost(), time.Now)
	ctx := context.Background()

	now := time.Now().UTC().Truncate(time.Second)
	var alerts []alert.Alert
	for _, name := range []string{"checkout", "cart", "payment"} {
		a := poolAlert(alert.StateFiring)
		a.Entity = entity.Ref{Type: entity.Service, ID: "service:shop/" + name, Name: name}
		a.ID = alert.Fingerprint("database", a.Rule, a.Entity.ID)
		a.ActiveAt, a.FiredAt, a.EvaluatedAt = now.Add(-2*time.Minute), now.Add(-time.Minute), now.Add(-time.Minute)
		alerts = append(alerts, a)
	}
	began := time.Now()
	if err := r.logs.ConsumeLogs(ctx, alertLogs(alerts...)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > cfg.Alertmanager.Timeout {
		t.Errorf("ConsumeLogs took %s with an Alertmanager down", d)
	}
	active := func(entityID string) (bool, error) {
		list, err := listAlerts(live)
		for _, a := range list {
			if a.Labels["entity"] == entityID && a.Status.State == "active" {
				return true, nil
			}
		}
		return false, err
	}
	waitFor(t, "the three alerts in the live Alertmanager", 30*time.Second, func() (bool, error) {
		for _, a := range alerts {
			if ok, err := active(a.Entity.ID); !ok {
				return false, fmt.Errorf("%s not active (%v); notifier %+v", a.Entity.ID, err, r.e.notifier.Stats())
			}
		}
		return true, nil
	})
	// The down one is tried again at every resend: two failed POSTs, and
	// their alerts dropped and counted.
	waitFor(t, "the down Alertmanager to be tried twice", 30*time.Second, func() (bool, error) {
		st := r.e.notifier.Stats()
		d := st.Endpoints[1]
		return d.Endpoint == down && d.Failures >= 2 && d.Dropped >= 6, fmt.Errorf("notifier %+v", st)
	})
	st := r.e.notifier.Stats()
	if l, d := st.Endpoints[0], st.Endpoints[1]; l.Endpoint != live || l.Sent < 3 || l.Failures != 0 || l.Dropped != 0 || d.Sent != 0 {
		t.Errorf("live %+v, down %+v", l, d)
	}

	// A resolution reaches the live one although the down one holds a
	// POST open.
	resolved := alerts[0]
	resolved.State, resolved.ResolvedAt, resolved.EvaluatedAt = alert.StateResolved, now, now
	if err := r.logs.ConsumeLogs(ctx, alertLogs(resolved)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resolution in the live Alertmanager", 30*time.Second, func() (bool, error) {
		ok, err := active(resolved.Entity.ID)
		return !ok && err == nil, err
	})

	began = time.Now()
	if err := r.metrics.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.logs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Shutdown sends what is queued for at most alertmanager.timeout;
	// the rest is closing the store.
	d := time.Since(began)
	t.Logf("Shutdown took %s", d)
	if d > cfg.Alertmanager.Timeout+2*time.Second {
		t.Errorf("Shutdown took %s with an Alertmanager down (alertmanager.timeout %s)", d, cfg.Alertmanager.Timeout)
	}
	if err := r.logs.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}
