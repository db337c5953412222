package scenarios_test

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/junction-sre/junction/scenarios"
)

// Feeding the scenarios to in-process consumers (in an end-to-end test,
// the correlation processor), evaluating at every step's virtual time.
func Example() {
	plan, err := scenarios.NewPlan("surge", "streaming")
	if err != nil {
		panic(err)
	}
	plan.Healthy, plan.Fault, plan.Recover = time.Minute, 2*time.Minute, time.Minute
	traces, metrics, logs := new(consumertest.TracesSink), new(consumertest.MetricsSink), new(consumertest.LogsSink)
	evaluations := 0
	clock := scenarios.ClockFunc(func(ctx context.Context, t time.Time) error {
		evaluations++ // e.g. set the processor's clock to t and evaluate its rules
		return nil
	})
	st, err := scenarios.Run(context.Background(), plan, scenarios.Consumers{Traces: traces, Metrics: metrics, Logs: logs}, clock)
	if err != nil {
		panic(err)
	}
	fmt.Println(st.Steps, "steps,", evaluations, "evaluations; every span arrived:", traces.SpanCount() == st.Spans)
	for _, gt := range plan.Truth() {
		for _, e := range gt.Expect {
			fmt.Printf("%s: %v -> %s from %v to %v\n", gt.Scenario, e.Rules, e.Blame, gt.Start.Add(e.Window.Start).Format("15:04"), gt.Start.Add(e.Window.End).Format("15:04"))
		}
	}
	// Output:
	// 48 steps, 48 evaluations; every span arrived: true
	// surge: [ProxyShedding] -> proxy:edge-proxy/frontend from 09:01 to 09:03
	// surge: [ProxyCircuitOpen] -> proxy:edge-proxy/frontend from 09:01 to 09:03
	// surge: [ProxyPendingOverflow] -> proxy:edge-proxy/frontend from 09:01 to 09:03
	// surge: [ProxySurge] -> proxy:edge-proxy/frontend from 09:01 to 09:03
	// surge: [ErrorBudgetBurn] -> service:ingress/edge-proxy from 09:01 to 09:03
	// streaming: [DashboardStale] -> stream:order-events/dashboard-feed from 09:05 to 09:07
}
