package scenarios

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
)

// BenchmarkRunScenario generates one default-length scenario (15 virtual
// minutes, 90 steps) into a sink that drops everything.
func BenchmarkRunScenario(b *testing.B) {
	p, err := NewPlan(Bottleneck)
	if err != nil {
		b.Fatal(err)
	}
	nop := consumertest.NewNop()
	sink := Consumers{Traces: nop, Metrics: nop, Logs: nop}
	b.ReportAllocs()
	var st Stats
	for b.Loop() {
		if st, err = Run(context.Background(), p, sink, Unpaced); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Spans), "spans/op")
}
