package scenarios

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/junction-sre/junction/scenarios/internal/otlptest"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestOTLPGRPCEndToEnd plays a scenario into a real otlp receiver over
// gRPC and checks that everything arrived intact.
func TestOTLPGRPCEndToEnd(t *testing.T) {
	rcv := otlptest.Start(t)
	addr, ts, ms, ls := rcv.Addr, rcv.Traces, rcv.Metrics, rcv.Logs
	ctx := context.Background()

	sink, err := DialOTLP(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sink.Timeout = 20 * time.Second

	p, err := NewPlan("crosschain")
	if err != nil {
		t.Fatal(err)
	}
	p.Healthy, p.Fault, p.Recover = time.Minute, time.Minute, 30*time.Second
	noMinFault(p)
	st, err := Run(ctx, p, sink, Unpaced)
	if err != nil {
		t.Fatal(err)
	}
	// Exports are synchronous: the receiver has consumed every batch when
	// Run returns.
	if got := ts.SpanCount(); got != st.Spans {
		t.Errorf("receiver got %d spans, simulator sent %d", got, st.Spans)
	}
	if got := ls.LogRecordCount(); got != st.Records {
		t.Errorf("receiver got %d log records, simulator sent %d", got, st.Records)
	}
	points := 0
	names := map[string]bool{}
	for _, md := range ms.AllMetrics() {
		points += md.DataPointCount()
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				for k := 0; k < sms.At(j).Metrics().Len(); k++ {
					names[sms.At(j).Metrics().At(k).Name()] = true
				}
			}
		}
	}
	if points != st.Points {
		t.Errorf("receiver got %d data points, simulator sent %d", points, st.Points)
	}
	for _, n := range []string{"backlog_size", "wallet_balance", "envoy_cluster_upstream_rq", "db.client.connection.wait_time", "k8s.pod.cpu.usage", "kafka.consumer_group.lag"} {
		if !names[n] {
			t.Errorf("metric %s did not arrive", n)
		}
	}
	// The same plan in-process yields the same bytes as what crossed the wire.
	r := record(t, p)
	want := newRecorder()
	for _, td := range ts.AllTraces() {
		if err := want.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	got := newRecorder()
	for _, b := range r.traces {
		if err := got.ConsumeTraces(ctx, b.v); err != nil {
			t.Fatal(err)
		}
	}
	if want.sum() != got.sum() {
		t.Error("traces received over gRPC differ from the traces generated in process")
	}
}

func TestOTLPSinkReportsUnreachableEndpoint(t *testing.T) {
	sink, err := DialOTLP(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sink.Timeout = 200 * time.Millisecond
	p := shortPlan(t, "surge")
	_, err = Run(context.Background(), p, sink, Unpaced)
	if err == nil {
		t.Fatal("Run against a closed port succeeded")
	}
}
