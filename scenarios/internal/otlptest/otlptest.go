// Package otlptest runs a real OTLP/gRPC receiver (the collector's otlp
// receiver) on loopback for the simulator's tests, with a sink per signal.
package otlptest

import (
	"context"
	"net"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// Receiver is a started otlp receiver and what it received.
type Receiver struct {
	// Addr is its gRPC endpoint, host:port.
	Addr    string
	Traces  *consumertest.TracesSink
	Metrics *consumertest.MetricsSink
	Logs    *consumertest.LogsSink
}

// Start runs an otlp receiver (gRPC only) on a free loopback port until
// the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{Addr: l.Addr().String(), Traces: new(consumertest.TracesSink),
		Metrics: new(consumertest.MetricsSink), Logs: new(consumertest.LogsSink)}
	l.Close()
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = r.Addr
	cfg.Protocols.HTTP = configoptional.None[otlpreceiver.HTTPConfig]()
	set := receivertest.NewNopSettings(component.MustNewType("otlp"))
	ctx := context.Background()
	tr, err := f.CreateTraces(ctx, set, cfg, r.Traces)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := f.CreateMetrics(ctx, set, cfg, r.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := f.CreateLogs(ctx, set, cfg, r.Logs)
	if err != nil {
		t.Fatal(err)
	}
	// The three share one server; starting one starts it.
	for _, c := range []component.Component{tr, mr, lr} {
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, c := range []component.Component{tr, mr, lr} {
			_ = c.Shutdown(context.Background())
		}
	})
	return r
}
