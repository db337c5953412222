// Package promtest runs a private Prometheus server (Debian's prometheus
// package) with its remote-write receiver on, for tests that write
// Junction's series by remote write and read them back through the query
// API: the same tests run on VictoriaMetrics (internal/vmtest), so a
// difference between the two stores fails a test.
package promtest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/exporter"

	"github.com/junction-sre/junction/internal/vmtest"
)

// Binary is where Debian's prometheus package installs the server.
const Binary = "/usr/bin/prometheus"

// config is the server's configuration: no scrapes (tests write by remote
// write), everything else Prometheus' defaults, as a user runs it (no
// out-of-order window: out-of-order samples are refused).
const config = `global:
  evaluation_interval: 1h
`

// Prometheus is a running server.
type Prometheus struct {
	// URL is its base, http://127.0.0.1:port, where the query API answers
	// at /api/v1/query.
	URL  string
	addr string
	dir  string
	log  *os.File
	cmd  *exec.Cmd
	// flags are added to the server's command line.
	flags []string
}

// StartOutOfOrder is Start with storage::tsdb::out_of_order_time_window
// set to window (Prometheus 2.39 and later), so that samples older than a
// series' latest, such as a request a remote-write queue sends again after
// the server restarted, are kept instead of refused (docs/deploy.md).
func StartOutOfOrder(t testing.TB, window time.Duration, flags ...string) *Prometheus {
	t.Helper()
	return start(t, config+"storage:\n  tsdb:\n    out_of_order_time_window: "+window.String()+"\n", flags)
}

// Start runs Prometheus on a free loopback port with its TSDB in a
// temporary directory and --web.enable-remote-write-receiver, and stops it
// when the test ends. Without the binary (apt-get install prometheus) the
// test is skipped, or fails when the CI environment variable is set: CI
// installs it (.ci/run). flags are added to its command line.
func Start(t testing.TB, flags ...string) *Prometheus {
	t.Helper()
	return start(t, config, flags)
}

func start(t testing.TB, config string, flags []string) *Prometheus {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Prometheus not installed (%s missing) in CI: .ci/run installs the prometheus package", Binary)
		}
		t.Skipf("Prometheus not installed (%s missing): apt-get install prometheus to run this test", Binary)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{URL: "http://" + addr, addr: addr, dir: dir, log: logf, flags: flags}
	t.Cleanup(func() {
		p.Stop()
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("prometheus log:\n%s", b)
			}
		}
	})
	p.Restart(t)
	return p
}

// Restart starts the server again after Stop, on the same address and
// TSDB. Retention is 100 years so that the tests' virtual timestamps are
// kept.
func (p *Prometheus) Restart(t testing.TB) {
	t.Helper()
	cmd := exec.Command(Binary, append([]string{
		"--config.file=" + filepath.Join(p.dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(p.dir, "data"),
		"--storage.tsdb.retention.time=100y",
		"--web.listen-address=" + p.addr,
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	}, p.flags...)...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus at %s not ready after 30s: %v", p.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Flush does nothing: Prometheus answers queries from its head as soon as
// a remote-write request is acknowledged. It is here so that tests treat
// both stores alike.
func (p *Prometheus) Flush(testing.TB) {}

// Stop stops the server (idempotent).
func (p *Prometheus) Stop() {
	if p.cmd == nil || p.cmd.ProcessState != nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

// CountSamples counts the samples of the series matching selector whose
// timestamps are between from and to (whole seconds, both included).
func (p *Prometheus) CountSamples(selector string, from, to time.Time) (int, error) {
	return vmtest.CountSamplesAt(p.URL, selector, from, to)
}

// Writer is vmtest.VictoriaMetrics.Writer writing to this server.
func (p *Prometheus) Writer(t testing.TB, f exporter.Factory, file, replica string) exporter.Metrics {
	t.Helper()
	return vmtest.WriterTo(t, p.RemoteWriteURL(), f, file, replica)
}

// ContribWriter is vmtest.VictoriaMetrics.ContribWriter writing to this
// server.
func (p *Prometheus) ContribWriter(t testing.TB, f exporter.Factory, file, replica string) exporter.Metrics {
	t.Helper()
	return vmtest.ContribWriterTo(t, p.RemoteWriteURL(), f, file, replica)
}

// RemoteWriteURL is the server's remote-write receiver.
func (p *Prometheus) RemoteWriteURL() string { return p.URL + "/api/v1/write" }

func (p *Prometheus) String() string { return fmt.Sprintf("Prometheus at %s", p.URL) }

// QueryURL is the base of its Prometheus query API.
func (p *Prometheus) QueryURL() string { return p.URL }
