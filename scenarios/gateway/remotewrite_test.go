package gateway

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/entity/querysource"
	"github.com/junction-sre/junction/entity/querysource/querysourcetest"
)

// gatewayRemoteWrite is the gateway's prometheus_remote_write exporter as
// deployed (bounded queue, retries, WAL), with the WAL in dir, and its
// WAL flushes and retries at test speed.
func gatewayRemoteWrite(t *testing.T, endpoint string) exporter.Metrics {
	t.Helper()
	f := prometheusremotewriteexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*prometheusremotewriteexporter.Config)
	loadSub(t, gatewayConfig, "exporters::prometheus_remote_write", cfg)
	if !cfg.RemoteWriteQueue.Enabled || !cfg.BackOffConfig.Enabled {
		t.Fatalf("%s: the gateway's remote write must queue and retry", gatewayConfig)
	}
	if cfg.WAL.Get() != nil {
		t.Fatalf("%s: the gateway's remote write keeps a WAL, which a kill can leave unopenable (docs/deploy.md)", gatewayConfig)
	}
	cfg.ExternalLabels["junction_replica"] = "gateway-0"
	cfg.HTTP.Endpoint = endpoint
	cfg.BackOffConfig.InitialInterval = 50 * time.Millisecond
	cfg.BackOffConfig.MaxInterval = 200 * time.Millisecond
	set := exportertest.NewNopSettings(f.Type())
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	exp, err := f.CreateMetrics(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	return exp
}

// TestRemoteWriteRidesOutVictoriaMetricsOutage writes a replica's
// mergeable series while VictoriaMetrics is up, down and up again, through
// the deployed remote-write config: what was written during the outage
// waits in the queue, is retried, and arrives; nothing is lost.
func TestRemoteWriteRidesOutVictoriaMetricsOutage(t *testing.T) {
	vm := querysourcetest.Start(t)
	exp := gatewayRemoteWrite(t, vm.RemoteWriteURL())
	defer func() {
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()

	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	const step = 15 * time.Second
	snap := &entity.Snapshot{Entities: []entity.Entity{{
		Ref:      entity.Ref{Type: entity.Service, ID: "service:shop/checkout", Name: "checkout"},
		Features: map[string]float64{"request.rate": 10, "error.ratio": 0.01, "latency.p99_ms": 120},
	}}}
	emit := func(i int) {
		md := pmetric.NewMetrics()
		querysource.AppendSeries(md, snap, t0.Add(time.Duration(i)*step))
		if err := exp.ConsumeMetrics(context.Background(), md); err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
	}
	// junction_merge_sum holds request.rate, error.ratio*rate and
	// latency*rate: three samples per tick.
	const perTick, ticks = 3, 30
	last := t0.Add((ticks - 1) * step)
	count := func() int {
		vm.Flush(t)
		n, err := vm.CountSamples("junction_merge_sum", t0, last)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	for i := 0; i < 10; i++ {
		emit(i)
	}
	waitFor(t, "the first ticks in VictoriaMetrics", 30*time.Second, func() (bool, string) {
		n := count()
		return n == 10*perTick, describe(n, "samples")
	})

	vm.Stop()
	for i := 10; i < 20; i++ {
		emit(i)
	}
	// Retries against the stopped server; then it comes back.
	time.Sleep(500 * time.Millisecond)
	vm.Restart(t)
	for i := 20; i < ticks; i++ {
		emit(i)
	}
	waitFor(t, "every tick in VictoriaMetrics after the outage", 60*time.Second, func() (bool, string) {
		n := count()
		return n == ticks*perTick, describe(n, "samples of "+strconv.Itoa(ticks*perTick))
	})
}

