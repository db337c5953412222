package durableremotewriteexporter_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/junction-sre/junction/exporters/durableremotewriteexporter"
	"github.com/junction-sre/junction/internal/promtest"
	"github.com/junction-sre/junction/internal/vmtest"
)

// rejection is how the contrib exporter's own exporterhelper logs a failed
// attempt.
const rejection = "Exporting failed. Rejecting data."

// host hands the exporter the extensions of a collector.
type host map[component.ID]component.Component

func (h host) GetExtensions() map[component.ID]component.Component { return h }

var storageID = component.MustNewIDWithName("file_storage", "queue")

// startStorage starts a file_storage extension on dir, as a collector
// (re)started on the same volume would.
func startStorage(t testing.TB, dir string) (extension.Extension, host) {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	set := extensiontest.NewNopSettings(f.Type())
	set.ID = storageID
	ext, err := f.Create(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := host{storageID: ext}
	if err := ext.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	return ext, h
}

// startExporter starts the exporter on endpoint with its queue in the
// storage of h (in memory unless h is a host), retrying at test speed. Its
// log goes to the test's log and to logs, if given.
func startExporter(t testing.TB, endpoint string, h component.Host, logs ...zapcore.Core) exporter.Metrics {
	t.Helper()
	return startExporterWith(t, endpoint, h, nil, logs...)
}

// startExporterWith is startExporter with the config changed by mutate.
func startExporterWith(t testing.TB, endpoint string, h component.Host, mutate func(*durableremotewriteexporter.Config), logs ...zapcore.Core) exporter.Metrics {
	t.Helper()
	f := durableremotewriteexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*durableremotewriteexporter.Config)
	cfg.RemoteWrite.HTTP.Endpoint = endpoint
	cfg.RemoteWrite.TargetInfo.Enabled = false
	cfg.RemoteWrite.BackOffConfig.InitialInterval = 50 * time.Millisecond
	cfg.RemoteWrite.BackOffConfig.MaxInterval = 200 * time.Millisecond
	if _, ok := h.(host); ok {
		cfg.QueueConfig.Get().StorageID = &storageID
	}
	if mutate != nil {
		mutate(cfg)
	}
	set := exportertest.NewNopSettings(durableremotewriteexporter.Type)
	// The queue's key in the storage is the exporter's id: the same after
	// a restart (NewNopSettings names each exporter afresh).
	set.ID = component.NewID(durableremotewriteexporter.Type)
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	for _, c := range logs {
		set.Logger = set.Logger.WithOptions(zap.WrapCore(func(core zapcore.Core) zapcore.Core { return zapcore.NewTee(core, c) }))
	}
	exp, err := f.CreateMetrics(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	return exp
}

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// tick is one gauge sample of junction_test_tick at t0 + i seconds.
func tick(i int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("junction_test_tick")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * time.Second)))
	dp.SetIntValue(int64(i))
	return md
}

// remoteWriteStore is a store the exporter writes to: VictoriaMetrics
// (internal/vmtest) or Prometheus (internal/promtest).
type remoteWriteStore interface {
	RemoteWriteURL() string
	CountSamples(selector string, from, to time.Time) (int, error)
	Flush(testing.TB)
	Stop()
	Restart(testing.TB)
	String() string
}

// stores runs test once on VictoriaMetrics and once on Prometheus (its
// remote-write receiver), each a subtest of its own.
func stores(t *testing.T, test func(t *testing.T, st remoteWriteStore)) {
	t.Run("victoria-metrics", func(t *testing.T) { test(t, vmtest.Start(t)) })
	// Prometheus refuses a sample older than its series' latest unless
	// told otherwise: a request sent again after the store restarted can
	// be one (docs/deploy.md "Remote write on disk").
	t.Run("prometheus", func(t *testing.T) { test(t, promtest.StartOutOfOrder(t, time.Hour)) })
}

func waitForSamples(t *testing.T, vm remoteWriteStore, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		vm.Flush(t)
		n, err := vm.CountSamples("junction_test_tick", t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if n > want || time.Now().After(deadline) {
			t.Fatalf("%d samples in %s; want %d", n, vm, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Ticks accepted while the store is down wait on disk through a restart of
// the collector, and all arrive once both are back: on VictoriaMetrics and
// on Prometheus.
func TestQueueOnDiskOutlivesRestart(t *testing.T) {
	stores(t, func(t *testing.T, vm remoteWriteStore) {
		dir := t.TempDir()
		storage, h := startStorage(t, dir)
		core, logs := observer.New(zap.InfoLevel)
		exp := startExporter(t, vm.RemoteWriteURL(), h, core)
		for i := 0; i < 5; i++ {
			if err := exp.ConsumeMetrics(context.Background(), tick(i)); err != nil {
				t.Fatalf("tick %d: %v", i, err)
			}
		}
		waitForSamples(t, vm, 5)

		vm.Stop()
		for i := 5; i < 25; i++ {
			if err := exp.ConsumeMetrics(context.Background(), tick(i)); err != nil {
				t.Fatalf("tick %d refused while VictoriaMetrics is down: %v", i, err)
			}
		}
		// The collector restarts while VictoriaMetrics is still down, with a
		// request being retried.
		deadline := time.Now().Add(10 * time.Second)
		for logs.FilterMessageSnippet("Will retry").Len() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no retry logged while VictoriaMetrics is down")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := storage.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		// The request being retried at shutdown stays queued, and the log
		// says so rather than that it was dropped.
		if n := logs.FilterMessageSnippet("Dropping data").Len(); n != 0 {
			t.Errorf("the shutdown logged %d requests as dropped; they stay queued", n)
		}
		// (Requests the queue hands out while it stops fail the same way.)
		if n := logs.FilterMessageSnippet("stays in the persistent queue").FilterLevelExact(zap.InfoLevel).Len(); n == 0 {
			t.Error("the shutdown logged no request kept in the queue at info level")
		}
		storage, h = startStorage(t, dir)
		exp = startExporter(t, vm.RemoteWriteURL(), h)
		defer func() {
			if err := exp.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
			if err := storage.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		}()
		if err := exp.ConsumeMetrics(context.Background(), tick(25)); err != nil {
			t.Fatal(err)
		}
		vm.Restart(t)
		waitForSamples(t, vm, 26)
	})
}

// A request the store refuses for good (a 400) is dropped after one
// attempt and does not hold up what is queued behind it; one it cannot take
// now (a 503) is retried until it can.
func TestPermanentAndRetryableRefusals(t *testing.T) {
	var mu sync.Mutex
	var statuses []int
	replies := []int{http.StatusBadRequest, http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusNoContent}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		status := http.StatusNoContent
		if len(statuses) < len(replies) {
			status = replies[len(statuses)]
		}
		statuses = append(statuses, status)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	core, logs := observer.New(zap.InfoLevel)
	exp := startExporter(t, srv.URL, componenttest.NewNopHost(), core)
	for i := 0; i < 2; i++ {
		if err := exp.ConsumeMetrics(context.Background(), tick(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A shutdown would interrupt the retries: wait for the replies first.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(statuses)
		mu.Unlock()
		if n >= len(replies) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The drop and the retries are logged once each, by the queue; the
	// contrib exporter's advice to enable a sending_queue is not.
	for msg, want := range map[string]int{"Exporting failed. Dropping data.": 1, "Exporting failed. Will retry the request after interval.": 2, rejection: 0} {
		if n := logs.FilterMessageSnippet(msg).Len(); n != want {
			t.Errorf("%d log lines %q; want %d", n, msg, want)
		}
	}
	// Tick 0: 400, dropped. Tick 1: 503, 503, then accepted.
	want := []int{400, 503, 503, 204}
	if len(statuses) != len(want) {
		t.Fatalf("the store saw replies %v; want %v", statuses, want)
	}
	for i := range want {
		if statuses[i] != want[i] {
			t.Fatalf("the store saw replies %v; want %v", statuses, want)
		}
	}
}
