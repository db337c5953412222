// Package vmtest runs a VictoriaMetrics single-node server (Debian's
// victoria-metrics package) for tests of the merged graph
// (internal/mergedgraph), the ruler and the gateway tier.
package vmtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
)

// Binary is where Debian's victoria-metrics package installs the server.
const Binary = "/usr/bin/victoria-metrics"

// VictoriaMetrics is a running server.
type VictoriaMetrics struct {
	// URL is its base, http://127.0.0.1:port.
	URL  string
	addr string
	dir  string
	log  *os.File
	cmd  *exec.Cmd
	// flags are added to the server's command line.
	flags []string
}

// Start runs VictoriaMetrics on a free loopback port with its data in a
// temporary directory, and stops it when the test ends. The test is
// skipped when the binary is not installed (apt-get install
// victoria-metrics). Retention is 100 years so that the simulator's
// virtual timestamps are kept, and -search.latencyOffset is 1s, as
// docs/deploy.md asks of the VictoriaMetrics a ruler queries (Debian's
// 1.79 ignores the per-query latency_offset the source sends). flags are
// added to its command line.
func Start(t testing.TB, flags ...string) *VictoriaMetrics {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("VictoriaMetrics not installed (%s missing): apt-get install victoria-metrics to run this test", Binary)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "victoria-metrics.log"))
	if err != nil {
		t.Fatal(err)
	}
	vm := &VictoriaMetrics{URL: "http://" + addr, addr: addr, dir: dir, log: logf, flags: flags}
	t.Cleanup(func() {
		vm.Stop()
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("victoria-metrics log:\n%s", b)
			}
		}
	})
	vm.Restart(t)
	return vm
}

// Restart starts the server again after Stop, on the same address and
// data directory.
func (vm *VictoriaMetrics) Restart(t testing.TB) {
	t.Helper()
	cmd := exec.Command(Binary, append([]string{"-storageDataPath=" + filepath.Join(vm.dir, "data"), "-httpListenAddr=" + vm.addr,
		"-retentionPeriod=100y", "-search.latencyOffset=1s", "-search.disableCache", "-loggerLevel=WARN"}, vm.flags...)...)
	cmd.Stdout, cmd.Stderr = vm.log, vm.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	vm.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(vm.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("VictoriaMetrics at %s not ready after 30s: %v", vm.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Flush makes every ingested sample searchable.
func (vm *VictoriaMetrics) Flush(t testing.TB) {
	t.Helper()
	resp, err := http.Get(vm.URL + "/internal/force_flush")
	if err != nil {
		t.Fatalf("flushing VictoriaMetrics: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("flushing VictoriaMetrics: %s", resp.Status)
	}
}

// Stop stops the server (idempotent): tests of an unreachable store call it
// themselves.
func (vm *VictoriaMetrics) Stop() {
	if vm.cmd == nil || vm.cmd.ProcessState != nil || vm.cmd.Process == nil {
		return
	}
	// SIGTERM: VictoriaMetrics writes what it holds in memory to disk
	// before it exits, as it does when a pod stops.
	_ = vm.cmd.Process.Signal(syscall.SIGTERM)
	_ = vm.cmd.Wait()
}

// CountSamples counts the samples of the series matching selector whose
// timestamps are between from and to (whole seconds, both included), with
// client_golang's query API client.
func (vm *VictoriaMetrics) CountSamples(selector string, from, to time.Time) (int, error) {
	return CountSamplesAt(vm.URL, selector, from, to)
}

// CountSamplesAt is CountSamples on the query API at url (any store with
// Prometheus' query API: internal/promtest uses it too).
func CountSamplesAt(url, selector string, from, to time.Time) (int, error) {
	q := fmt.Sprintf("sum(count_over_time(%s[%ds]))", selector, int(to.Sub(from)/time.Second)+1)
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		return 0, err
	}
	v, _, _, err := v1.NewAPI(c).Query(context.Background(), q, to.Truncate(time.Second))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", q, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return 0, fmt.Errorf("%s: result type %s, want vector", q, v.Type())
	}
	if len(vec) == 0 {
		return 0, nil
	}
	return int(vec[0].Value), nil
}

// Writer is the remote-write exporter made by f as the collector config
// file configures it (exporters::<f's type>), as replica, writing
// synchronously to the server: its endpoint is the server's, its
// external label junction_replica is replica, and its sending_queue is off,
// so each batch is stored when ConsumeMetrics returns. The config must
// label every series with junction_replica, as a gateway's does. Callers
// pass the factory (durableremotewriteexporter.NewFactory()), so that this
// package depends on no exporter.
func (vm *VictoriaMetrics) Writer(t testing.TB, f exporter.Factory, file, replica string) exporter.Metrics {
	t.Helper()
	return WriterTo(t, vm.RemoteWriteURL(), f, file, replica)
}

// WriterTo is Writer for the remote-write endpoint of any store
// (internal/promtest uses it).
func WriterTo(t testing.TB, endpoint string, f exporter.Factory, file, replica string) exporter.Metrics {
	t.Helper()
	return writer(t, endpoint, f, file, "exporters::"+f.Type().String(), map[string]any{"sending_queue": map[string]any{"enabled": false}}, replica)
}

// ContribWriter is the contrib prometheus_remote_write exporter (f is
// prometheusremotewriteexporter.NewFactory()) configured from the
// durable_remote_write section of file, the same translation and labels
// without the durable exporter's queue: it writes synchronously (its own
// remote_write_queue off). Durable_remote_write sends through this very
// exporter, so the series are the ones a replica writes; packages below
// exporters/ test on it without importing an exporter of Junction's.
func (vm *VictoriaMetrics) ContribWriter(t testing.TB, f exporter.Factory, file, replica string) exporter.Metrics {
	t.Helper()
	return ContribWriterTo(t, vm.RemoteWriteURL(), f, file, replica)
}

// ContribWriterTo is ContribWriter for the remote-write endpoint of any
// store (internal/promtest uses it).
func ContribWriterTo(t testing.TB, endpoint string, f exporter.Factory, file, replica string) exporter.Metrics {
	t.Helper()
	return writer(t, endpoint, f, file, "exporters::durable_remote_write", map[string]any{"remote_write_queue": map[string]any{"enabled": false}}, replica, "sending_queue")
}

func writer(t testing.TB, endpoint string, f exporter.Factory, file, key string, extra map[string]any, replica string, drop ...string) exporter.Metrics {
	t.Helper()
	cm, err := confmaptest.LoadConf(file)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := cm.Sub(key)
	if err != nil {
		t.Fatal(err)
	}
	if !sub.IsSet("external_labels::junction_replica") {
		t.Fatalf("%s: %s must label every series with external_labels::junction_replica", file, key)
	}
	if len(drop) > 0 {
		m := sub.ToStringMap()
		for _, k := range drop {
			delete(m, k)
		}
		sub = confmap.NewFromStringMap(m)
	}
	over := map[string]any{
		"http":            map[string]any{"endpoint": endpoint},
		"external_labels": map[string]any{"junction_replica": replica},
	}
	for k, v := range extra {
		over[k] = v
	}
	if err := sub.Merge(confmap.NewFromStringMap(over)); err != nil {
		t.Fatal(err)
	}
	cfg := f.CreateDefaultConfig()
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatalf("%s: %s: %v", file, key, err)
	}
	exp, err := f.CreateMetrics(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// RemoteWriteURL is the server's Prometheus remote-write endpoint.
func (vm *VictoriaMetrics) RemoteWriteURL() string { return vm.URL + "/api/v1/write" }

func (vm *VictoriaMetrics) String() string { return fmt.Sprintf("VictoriaMetrics at %s", vm.URL) }

// QueryURL is the base of its Prometheus query API.
func (vm *VictoriaMetrics) QueryURL() string { return vm.URL }
