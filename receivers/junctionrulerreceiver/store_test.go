package junctionrulerreceiver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/exporters/durableremotewriteexporter"
	"github.com/junction-sre/junction/internal/mergedgraph"
	"github.com/junction-sre/junction/internal/vmtest"
)

// TestRulesOnTheMergedGraph writes two gateway replicas' shares of a graph
// through the deployed remote-write config into VictoriaMetrics and runs
// the receiver on it with its real store source: an alert fires where the
// merged graph crosses the threshold, and none where only one replica's
// share does.
func TestRulesOnTheMergedGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("starts VictoriaMetrics")
	}
	vm := vmtest.Start(t)
	gateway := filepath.Join("..", "..", "deploy", "configs", "gateway.yaml")
	f := durableremotewriteexporter.NewFactory()
	a, b := vm.Writer(t, f, gateway, "gateway-a"), vm.Writer(t, f, gateway, "gateway-b")

	// checkout fails 20 % on both replicas; cart fails 30 % of 10
	// requests/s on B and never on the 30 requests/s of A: 7.5 % merged,
	// under the rule's 10 %.
	shareA := &entity.Snapshot{Entities: []entity.Entity{
		service("checkout", map[string]float64{"request.rate": 10, "error.ratio": 0.2}),
		service("cart", map[string]float64{"request.rate": 30, "error.ratio": 0}),
	}}
	shareB := &entity.Snapshot{Entities: []entity.Entity{
		service("checkout", map[string]float64{"request.rate": 30, "error.ratio": 0.2}),
		service("cart", map[string]float64{"request.rate": 10, "error.ratio": 0.3}),
	}}
	at := time.Now().Add(-2 * time.Second)
	for _, w := range []struct {
		snap *entity.Snapshot
		exp  interface {
			ConsumeMetrics(context.Context, pmetric.Metrics) error
		}
	}{{shareA, a}, {shareB, b}} {
		md := pmetric.NewMetrics()
		mergedgraph.AppendSeries(md, w.snap, at)
		require.NoError(t, w.exp.ConsumeMetrics(context.Background(), md))
	}
	vm.Flush(t)

	cfg := createDefaultConfig().(*Config)
	cfg.Store.Endpoint = vm.URL
	cfg.Rules.Files = []string{rulesFile}
	logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
	set := receivertest.NewNopSettings(NewFactory().Type())
	set.ID = component.MustNewIDWithName(typeStr, "store")
	lr, err := NewFactory().CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	mr, err := NewFactory().CreateMetrics(context.Background(), set, cfg, metrics)
	require.NoError(t, err)
	for _, c := range []component.Component{lr, mr} {
		require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
		t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	}

	// The first evaluation runs at start.
	require.Eventually(t, func() bool { return len(metrics.AllMetrics()) > 0 }, 20*time.Second, 50*time.Millisecond,
		"no rule status from the ruler")
	got := decodeAlerts(t, logs.AllLogs())
	require.Len(t, got, 1, "alerts: %v", got)
	require.Contains(t, got[0], "latency Errors on service:shop/checkout firing")
	require.Contains(t, gauge(metrics.AllMetrics()[0], "ALERTS")[0], "alertname:Errors")
}
