package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/entity"
)

func TestDeterministic(t *testing.T) {
	p := shortPlan(t, "all")
	a, b := record(t, p), record(t, p)
	if a.sum() != b.sum() {
		t.Fatal("two runs of the same plan emitted different batches")
	}
	p2 := shortPlan(t, "all")
	p2.Seed++
	if c := record(t, p2); c.sum() == a.sum() {
		t.Fatal("a different seed emitted the same batches")
	}
}

func TestRunReportsStatsAndProgress(t *testing.T) {
	p := shortPlan(t, "surge", "streaming")
	r := newRecorder()
	var steps []Step
	st, err := RunWithOptions(context.Background(), p, r, r.clock(), Options{Progress: func(s Step) { steps = append(steps, s) }})
	if err != nil {
		t.Fatal(err)
	}
	want := int(p.Duration() / p.Step)
	if st.Steps != want || len(steps) != want {
		t.Fatalf("steps = %d (progress %d), want %d", st.Steps, len(steps), want)
	}
	if !steps[0].Time.Equal(p.Start.Add(p.Step)) || steps[0].Phase != PhaseHealthy || steps[0].Scenario != Surge {
		t.Errorf("first step = %+v", steps[0])
	}
	if last := steps[len(steps)-1]; last.Scenario != Streaming || last.Phase != PhaseRecover || !last.Time.Equal(p.End()) {
		t.Errorf("last step = %+v", last)
	}
	var spans int
	r.eachSpan(func(time.Time, pcommon.Map, ptrace.Span) { spans++ })
	if spans != st.Spans || spans == 0 {
		t.Errorf("stats say %d spans, the sink got %d", st.Spans, spans)
	}
}

func TestRunStopsOnSinkAndClockErrors(t *testing.T) {
	p := shortPlan(t, "surge")
	boom := errors.New("boom")
	n := 0
	clock := ClockFunc(func(context.Context, time.Time) error {
		if n++; n == 3 {
			return boom
		}
		return nil
	})
	st, err := Run(context.Background(), p, newRecorder(), clock)
	if !errors.Is(err, boom) || st.Steps != 2 {
		t.Fatalf("Run = %d steps, %v; want 2 steps and the clock's error", st.Steps, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, p, newRecorder(), Unpaced); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context = %v", err)
	}
}

func TestPlanValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Plan)
		want   string
	}{
		{"default", func(*Plan) {}, ""},
		{"short step", func(p *Plan) { p.Step = time.Millisecond }, "step"},
		{"fault not a multiple of step", func(p *Plan) { p.Fault = 95 * time.Second }, "fault 1m35s: must be a multiple"},
		{"no healthy phase", func(p *Plan) { p.Healthy = 0 }, "healthy 0s: must be positive"},
		{"rate", func(p *Plan) { p.EdgeRate = 0 }, "edge rate"},
		{"no scenarios", func(p *Plan) { p.Scenarios = nil }, "no scenarios"},
		{"no start", func(p *Plan) { p.Start = time.Time{} }, "start"},
		{"foreign scenario", func(p *Plan) { p.Scenarios = append(p.Scenarios, &Scenario{Name: "mine"}) }, "scenario mine: not a defined scenario"},
		{"nil scenario", func(p *Plan) { p.Scenarios[0] = nil }, "not a defined scenario"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan()
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(p)
			err = p.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := Select("surge,nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Select of an unknown scenario = %v", err)
	}
	if s, err := Select("cost, surge"); err != nil || len(s) != 2 || s[0].Name != CostCut {
		t.Errorf("Select(cost, surge) = %v, %v", s, err)
	}
}

func TestGroundTruthConsistent(t *testing.T) {
	for _, timing := range []struct{ h, f, r time.Duration }{
		{5 * time.Minute, 5 * time.Minute, 5 * time.Minute},
		{time.Minute, 20 * time.Second, 10 * time.Second},
		{30 * time.Minute, time.Hour, 10 * time.Minute},
	} {
		p, err := NewPlan("all")
		if err != nil {
			t.Fatal(err)
		}
		p.Healthy, p.Fault, p.Recover = timing.h, timing.f, timing.r
		if err := p.Validate(); err != nil {
			t.Fatalf("%v: %v", timing, err)
		}
		truths := p.Truth()
		if len(truths) != len(Names()) {
			t.Fatalf("%d truths for %d scenarios", len(truths), len(Names()))
		}
		for i, gt := range truths {
			if gt.Start.Before(p.Start) || gt.End().After(p.End()) {
				t.Errorf("%s: scenario %v-%v outside the plan %v-%v", gt.Scenario, gt.Start, gt.End(), p.Start, p.End())
			}
			if i > 0 && !gt.Start.Equal(truths[i-1].End()) {
				t.Errorf("%s does not start where %s ends", gt.Scenario, truths[i-1].Scenario)
			}
			for _, e := range gt.Expect {
				abs := gt.Start.Add(e.Window.Start)
				sc, ph, _, ok := p.At(abs.Sub(p.Start))
				if !ok || sc.Name != gt.Scenario || ph != PhaseFault {
					t.Errorf("%s: expectation %v starts in %v of %v", gt.Scenario, e.Rules, ph, sc)
				}
				typ, _, _ := strings.Cut(e.Blame, ":")
				if !isEntityType(typ) {
					t.Errorf("%s: blamed %q is not an entity id", gt.Scenario, e.Blame)
				}
			}
		}
	}
	bad := GroundTruth{Scenario: "x", Healthy: Window{0, time.Minute}, Fault: Window{time.Minute, 2 * time.Minute}, Length: 3 * time.Minute,
		Expect: []Expectation{{Rules: []string{"R"}, Blame: "service:a/b", Window: Window{30 * time.Second, 2 * time.Minute}}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "outside the fault") {
		t.Errorf("a window starting in the healthy phase validates: %v", err)
	}
}

func isEntityType(s string) bool {
	for _, t := range entity.Types {
		if string(t) == s {
			return true
		}
	}
	return false
}

func TestGroundTruthBlamesEmittedEntities(t *testing.T) {
	want := map[string]string{
		ProxyID:     "proxy edge-proxy with cluster frontend",
		InventoryID: "service shop/inventory",
		DatabaseID:  "database",
		RelayerID:   "relayer",
		StreamID:    "stream",
		RecommendID: "service shop/recommendations",
		CatalogID:   "service shop/catalog",
		FrontendID:  "service shop/frontend",
		CheckoutID:  "service shop/checkout",
		OrdersID:    "service shop/orders",
		ProxySvcID:  "service ingress/edge-proxy",
	}
	p := shortPlan(t, "all")
	for _, gt := range p.Truth() {
		for _, e := range gt.Expect {
			if _, ok := want[e.Blame]; !ok {
				t.Errorf("%s blames %s, which this test does not know", gt.Scenario, e.Blame)
			}
		}
	}
	if DatabaseID != "database:postgresql/postgres.shop.svc:5432/shop" || ProxyID != "proxy:edge-proxy/frontend" ||
		RelayerID != "relayer:hermes/osmosis-1/noble-1" || StreamID != "stream:order-events/dashboard-feed" {
		t.Errorf("entity ids changed: %s %s %s %s (docs/scenarios.md lists them)", DatabaseID, ProxyID, RelayerID, StreamID)
	}
	// The identity attributes of each blamed entity are in the telemetry.
	r := record(t, shortPlan(t, "streaming"))
	found := map[string]bool{}
	r.eachSpan(func(_ time.Time, res pcommon.Map, sp ptrace.Span) {
		a := sp.Attributes()
		switch {
		case attrStr(res, "service.name") == ProxyService && attrStr(a, "upstream_cluster") == ProxyCluster:
			found[ProxyID] = true
		case attrStr(a, "db.system.name") != "":
			found[entity.ID(entity.Database, attrStr(a, "db.system.name"), attrStr(a, "server.address")+":"+attrStr(a, "server.port"), attrStr(a, "db.namespace"))] = true
		case attrStr(a, "xchain.source.chain") != "":
			found[entity.ID(entity.Relayer, attrStr(res, "service.name"), attrStr(a, "xchain.source.chain"), attrStr(a, "xchain.destination.chain"))] = true
		case sp.Kind() == ptrace.SpanKindConsumer:
			found[entity.ID(entity.Stream, attrStr(a, "messaging.destination.name"), attrStr(a, "messaging.consumer.group.name"))] = true
		}
		if sp.Kind() == ptrace.SpanKindServer {
			found[entity.ID(entity.Service, attrStr(res, "service.namespace"), attrStr(res, "service.name"))] = true
		}
	})
	for id, what := range want {
		if !found[id] {
			t.Errorf("no telemetry identifies %s (%s)", id, what)
		}
	}
}

func TestPacedClock(t *testing.T) {
	real := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var slept []time.Duration
	c := &Paced{Speed: 10, Now: func() time.Time { return real }, Sleep: func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		real = real.Add(d)
		return nil
	}}
	v := DefaultStart
	for i := 0; i < 4; i++ {
		if err := c.Wait(context.Background(), v.Add(time.Duration(i)*10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// 10 virtual seconds per step at speed 10: one real second each.
	if len(slept) != 3 || slept[0] != time.Second || slept[2] != time.Second {
		t.Errorf("slept %v, want three sleeps of 1s", slept)
	}
	// Anchored at the plan's start, the first step waits for itself to
	// elapse: its data is never ahead of the real clock.
	slept = nil
	c = &Paced{Speed: 1, Start: v, Now: c.Now, Sleep: c.Sleep}
	if err := c.Wait(context.Background(), v.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if len(slept) != 1 || slept[0] != 10*time.Second {
		t.Errorf("slept %v before the first step, want 10s", slept)
	}
}

// TestTracesWellFormed checks ids, timing, parents and the CLIENT/SERVER
// pairing of every span, and follows bottleneck traces from the edge to
// inventory three hops down.
func TestTracesWellFormed(t *testing.T) {
	p := shortPlan(t, "bottleneck")
	r := record(t, p)
	type rec struct {
		svc  string
		span ptrace.Span
	}
	spans := map[pcommon.SpanID]rec{}
	r.eachSpan(func(_ time.Time, res pcommon.Map, sp ptrace.Span) {
		if sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() {
			t.Fatalf("span %q without ids", sp.Name())
		}
		if _, dup := spans[sp.SpanID()]; dup {
			t.Fatalf("span id %s used twice", sp.SpanID())
		}
		if sp.EndTimestamp() < sp.StartTimestamp() {
			t.Fatalf("span %q ends before it starts", sp.Name())
		}
		for _, k := range []string{"service.name", "service.namespace", "k8s.namespace.name", "k8s.pod.name", "k8s.deployment.name"} {
			if attrStr(res, k) == "" {
				t.Fatalf("span %q: resource lacks %s", sp.Name(), k)
			}
		}
		spans[sp.SpanID()] = rec{attrStr(res, "service.name"), sp}
	})
	hops := map[string]int{} // longest CLIENT->SERVER chain ending at each service
	for _, s := range spans {
		sp := s.span
		if sp.ParentSpanID().IsEmpty() {
			continue
		}
		parent, ok := spans[sp.ParentSpanID()]
		if !ok {
			t.Fatalf("span %q of %s: parent %s missing", sp.Name(), s.svc, sp.ParentSpanID())
		}
		if parent.span.TraceID() != sp.TraceID() {
			t.Fatalf("span %q: parent in another trace", sp.Name())
		}
		if sp.StartTimestamp() < parent.span.StartTimestamp() {
			t.Fatalf("span %q starts before its parent %q", sp.Name(), parent.span.Name())
		}
		switch sp.Kind() {
		case ptrace.SpanKindServer:
			if parent.span.Kind() != ptrace.SpanKindClient || parent.svc == s.svc {
				t.Fatalf("SERVER span %q of %s: parent %q of %s is not another service's CLIENT span", sp.Name(), s.svc, parent.span.Name(), parent.svc)
			}
			if sp.EndTimestamp() > parent.span.EndTimestamp() {
				t.Fatalf("SERVER span %q outlasts its CLIENT span", sp.Name())
			}
		case ptrace.SpanKindConsumer:
			if parent.span.Kind() != ptrace.SpanKindProducer {
				t.Fatalf("CONSUMER span %q: parent is %v", sp.Name(), parent.span.Kind())
			}
		}
	}
	// depth of SERVER spans below the edge proxy's ingress span
	var depth func(sp ptrace.Span) int
	depth = func(sp ptrace.Span) int {
		if sp.ParentSpanID().IsEmpty() {
			return 0
		}
		d := depth(spans[sp.ParentSpanID()].span)
		if sp.Kind() == ptrace.SpanKindServer {
			d++
		}
		return d
	}
	for _, s := range spans {
		if s.span.Kind() == ptrace.SpanKindServer {
			hops[s.svc] = max(hops[s.svc], depth(s.span))
		}
	}
	if hops[Inventory] != 3 || hops[Checkout] != 2 || hops[Frontend] != 1 {
		t.Errorf("hops below the edge = %v, want frontend 1, checkout 2, inventory 3", hops)
	}
	// Inventory's gRPC pair carries rpc.system and server.address.
	n := 0
	for _, s := range spans {
		if s.svc == Inventory && s.span.Kind() == ptrace.SpanKindServer {
			c := spans[s.span.ParentSpanID()].span.Attributes()
			if attrStr(c, "rpc.system") != "grpc" || attrStr(c, "server.address") != "inventory.shop.svc" {
				t.Fatalf("client span of inventory: %v", c.AsRaw())
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no inventory SERVER spans")
	}
}

// quantile returns the q-quantile of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[int(math.Min(float64(len(ds)-1), q*float64(len(ds))))]
}

// TestFaultsAreVisible checks, per scenario, that the signals its rules
// read are healthy before the fault and clearly faulty during it.
func TestFaultsAreVisible(t *testing.T) {
	healthy := func(p *Plan) win { return win{20 * time.Second, p.Healthy} }
	fault := func(p *Plan) win { return win{p.Healthy + time.Minute, p.Healthy + p.FaultOf(p.Scenarios[0])} }
	type check func(t *testing.T, p *Plan, r *recorder)
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	tests := []struct {
		scenario string
		checks   []check
	}{
		{Surge, []check{
			func(t *testing.T, p *Plan, r *recorder) {
				shed := func(w win) float64 {
					from, to := w.from, w.to
					var n, s float64
					r.eachLog(func(_ time.Time, res pcommon.Map, lr plog.LogRecord) {
						off := lr.Timestamp().AsTime().Sub(p.Start)
						st, ok := lr.Attributes().Get("status")
						if !ok || off < from || off >= to {
							return
						}
						n++
						if st.Int() == 429 || st.Int() == 503 {
							s++
						}
					})
					return ratio(s, n)
				}
				if h, f := shed(healthy(p)), shed(fault(p)); h != 0 || f < 0.3 {
					t.Errorf("access-log shed ratio healthy %.2f fault %.2f; want 0 and > 0.3", h, f)
				}
			},
			func(t *testing.T, p *Plan, r *recorder) {
				pts := r.points("envoy_cluster_circuit_breakers_default_rq_open")
				if h, f := meanIn(p, pts, healthy(p)), meanIn(p, pts, fault(p)); h != 0 || f < 0.9 {
					t.Errorf("circuit open healthy %.2f fault %.2f", h, f)
				}
				xx := func(class string, w win) float64 {
					return increase(p, r.points("envoy_cluster_upstream_rq_xx", "envoy_response_code_class", class), w)
				}
				shed := func(w win) float64 { return ratio(xx("4", w)+xx("5", w), xx("2", w)+xx("4", w)+xx("5", w)) }
				if h, f := shed(healthy(p)), shed(fault(p)); h != 0 || f < 0.3 {
					t.Errorf("envoy shed ratio healthy %.2f fault %.2f", h, f)
				}
				ovf := r.points("envoy_cluster_upstream_rq_pending_overflow")
				if h, f := increase(p, ovf, healthy(p)), increase(p, ovf, fault(p)); h != 0 || f < 100 {
					t.Errorf("pending overflow increase healthy %v fault %v", h, f)
				}
			},
		}},
		{Bottleneck, []check{
			func(t *testing.T, p *Plan, r *recorder) {
				thr := r.points("container_cpu_cfs_throttled_periods_total", "container", Inventory)
				per := r.points("container_cpu_cfs_periods_total", "container", Inventory)
				h := ratio(increase(p, thr, healthy(p)), increase(p, per, healthy(p)))
				f := ratio(increase(p, thr, fault(p)), increase(p, per, fault(p)))
				if h > 0.05 || f < 0.3 {
					t.Errorf("inventory throttling healthy %.2f fault %.2f", h, f)
				}
				other := r.points("container_cpu_cfs_throttled_periods_total", "container", Checkout)
				if increase(p, other, fault(p)) > 0 {
					t.Error("checkout is throttled too; only inventory should be")
				}
			},
			func(t *testing.T, p *Plan, r *recorder) {
				p99 := func(svc string, w win) time.Duration {
					from, to := w.from, w.to
					var ds []time.Duration
					r.eachSpan(func(_ time.Time, res pcommon.Map, sp ptrace.Span) {
						off := sp.StartTimestamp().AsTime().Sub(p.Start)
						if attrStr(res, "service.name") == svc && sp.Kind() == ptrace.SpanKindServer && off >= from && off < to {
							ds = append(ds, sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime()))
						}
					})
					return quantile(ds, 0.99)
				}
				for _, svc := range []string{Inventory, Checkout, Frontend, ProxyService} {
					if h, f := p99(svc, healthy(p)), p99(svc, fault(p)); f < 2*h {
						t.Errorf("%s p99 healthy %v fault %v; want at least double", svc, h, f)
					}
				}
				if h, f := p99(Catalog, healthy(p)), p99(Catalog, fault(p)); f > 2*h {
					t.Errorf("catalog p99 %v -> %v: off the bottleneck's path, it should not slow down", h, f)
				}
			},
		}},
		{DBPool, []check{
			func(t *testing.T, p *Plan, r *recorder) {
				used := r.points("db.client.connection.count", "db.client.connection.state", "used", "service.name", Orders)
				mx := r.points("db.client.connection.max", "service.name", Orders)
				h := ratio(meanIn(p, used, healthy(p)), meanIn(p, mx, healthy(p)))
				f := ratio(meanIn(p, used, fault(p)), meanIn(p, mx, fault(p)))
				if h > 0.5 || f < 0.9 {
					t.Errorf("orders pool utilization healthy %.2f fault %.2f", h, f)
				}
				pend := r.points("db.client.connection.pending_requests", "service.name", Orders)
				to := r.points("db.client.connection.timeouts", "service.name", Orders)
				if meanIn(p, pend, healthy(p)) != 0 || meanIn(p, pend, fault(p)) < 1 || increase(p, to, fault(p)) < 1 || increase(p, to, healthy(p)) != 0 {
					t.Errorf("pending healthy %v fault %v, timeouts healthy %v fault %v", meanIn(p, pend, healthy(p)), meanIn(p, pend, fault(p)),
						increase(p, to, healthy(p)), increase(p, to, fault(p)))
				}
				locks := r.points("pg_locks_count", "mode", "sharelock")
				if meanIn(p, locks, healthy(p)) != 0 || meanIn(p, locks, fault(p)) < 10 {
					t.Error("no lock waits (pg_locks_count sharelock) in the fault")
				}
				waiting := r.points("pg_locks_waiting_count")
				if meanIn(p, waiting, healthy(p)) != 0 || meanIn(p, waiting, fault(p)) < 6 {
					t.Errorf("sessions waiting for a lock: healthy %v, fault %v", meanIn(p, waiting, healthy(p)), meanIn(p, waiting, fault(p)))
				}
				nb := r.points("pg_stat_database_numbackends")
				if f := meanIn(p, nb, fault(p)); f < 0.85*MaxBackends || meanIn(p, nb, healthy(p)) > 0.6*MaxBackends {
					t.Errorf("numbackends healthy %v fault %v of %d", meanIn(p, nb, healthy(p)), f, MaxBackends)
				}
			},
		}},
		{CrossChain, []check{
			func(t *testing.T, p *Plan, r *recorder) {
				// The relayer stalls after the congestion (half of this
				// short fault): 90 s of messages at 0.3/s, ~27, pile up.
				bl := r.points("backlog_size")
				end := fault(p).to
				if h, f := meanIn(p, bl, healthy(p)), meanIn(p, bl, win{end - p.Step, end}); h > 10 || f < 15 {
					t.Errorf("backlog healthy %.1f at the fault's end %.1f", h, f)
				}
				wb := r.points("wallet_balance", "chain", DestinationChain)
				hb := -increase(p, wb, healthy(p)) / (p.Healthy - 20*time.Second).Minutes()
				fb := -increase(p, wb, fault(p)) / (p.FaultOf(p.Scenarios[0]) - time.Minute).Minutes()
				if fb < 5*hb {
					t.Errorf("destination wallet burn per minute healthy %.0f fault %.0f; want x5", hb, fb)
				}
				head, fin := r.points("chain_head_height", "chain", DestinationChain), r.points("chain_finalized_height", "chain", DestinationChain)
				fe := fault(p).to
				lag := meanIn(p, head, win{fe - p.Step, fe}) - meanIn(p, fin, win{fe - p.Step, fe})
				if lag < 30 {
					t.Errorf("destination finality lag at the fault's end = %v blocks", lag)
				}
				// after recovery the backlog drains
				if end := meanIn(p, bl, win{p.Duration() - p.Step, p.Duration()}); end > 10 {
					t.Errorf("backlog after recovery = %v", end)
				}
			},
			func(t *testing.T, p *Plan, r *recorder) {
				stages := map[string]int{}
				r.eachLog(func(_ time.Time, _ pcommon.Map, lr plog.LogRecord) {
					if s := attrStr(lr.Attributes(), "xchain.stage"); s != "" {
						stages[s]++
						if attrStr(lr.Attributes(), "xchain.message.id") == "" {
							t.Fatal("stage event without a message id")
						}
					}
				})
				for _, s := range []string{StageSent, StageSourceFinalized, StageRelayed, StageExecuted, StageAcknowledged} {
					if stages[s] == 0 {
						t.Errorf("no %s events: %v", s, stages)
					}
				}
			},
		}},
		{Streaming, []check{
			func(t *testing.T, p *Plan, r *recorder) {
				lag := r.points("kafka.consumer_group.lag_sum")
				if h, f := meanIn(p, lag, healthy(p)), meanIn(p, lag, fault(p)); h > 5 || f < 100 {
					t.Errorf("lag healthy %.1f fault %.1f", h, f)
				}
				if end := meanIn(p, lag, win{p.Duration() - p.Step, p.Duration()}); end > 5 {
					t.Errorf("lag after recovery = %v", end)
				}
			},
		}},
		{CostCut, []check{
			func(t *testing.T, p *Plan, r *recorder) {
				split := p.Healthy + costSplit(p.FaultOf(p.Scenarios[0]))
				use := r.points("k8s.pod.cpu.usage", "k8s.deployment.name", Recommendations)
				req := r.points("k8s.container.cpu_request", "k8s.deployment.name", Recommendations)
				// sums over pods: mean per point times points per step
				util := func(w win) float64 {
					return ratio(meanIn(p, use, w), meanIn(p, req, w))
				}
				if h, f := util(healthy(p)), util(win{p.Healthy + time.Minute, split}); h < 0.3 || f > 0.05 {
					t.Errorf("recommendations CPU request utilization healthy %.2f idle %.2f", h, f)
				}
				pods := map[string]bool{}
				for _, pt := range req {
					if off := pt.t.Sub(p.Start); off > p.Healthy && off <= split {
						pods[pt.series] = true
					}
				}
				if len(pods) != 8 {
					t.Errorf("idle phase has %d recommendations pods, want 8", len(pods))
				}
			},
			func(t *testing.T, p *Plan, r *recorder) {
				split := p.Healthy + costSplit(p.FaultOf(p.Scenarios[0]))
				errs := func(w win) float64 {
					from, to := w.from, w.to
					var n, e float64
					r.eachSpan(func(_ time.Time, res pcommon.Map, sp ptrace.Span) {
						off := sp.StartTimestamp().AsTime().Sub(p.Start)
						if attrStr(res, "service.name") == Catalog && sp.Kind() == ptrace.SpanKindServer && off >= from && off < to {
							n++
							if sp.Status().Code() == ptrace.StatusCodeError {
								e++
							}
						}
					})
					return ratio(e, n)
				}
				if h, f := errs(healthy(p)), errs(win{split + 30*time.Second, p.Healthy + p.FaultOf(p.Scenarios[0])}); h > 0.01 || f < 0.1 {
					t.Errorf("catalog error ratio healthy %.3f after the cut %.3f", h, f)
				}
				lim := r.points("k8s.container.cpu_limit", "k8s.deployment.name", Catalog)
				if h, f := meanIn(p, lim, healthy(p)), meanIn(p, lim, win{split + p.Step, p.Healthy + p.FaultOf(p.Scenarios[0])}); f >= h {
					t.Errorf("catalog CPU limit healthy %v after the cut %v", h, f)
				}
			},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.scenario, func(t *testing.T) {
			p := shortPlan(t, tc.scenario)
			r := record(t, p)
			for _, c := range tc.checks {
				c(t, p, r)
			}
		})
	}
}

// TestCrossChainStuckLongEnough plays the crosschain scenario at its real
// length: at the fault's end the oldest message has waited more than the
// 30 minutes after which messages count as stuck, and in recovery the
// backlog drains, timing out what waited past the packet timeout.
func TestCrossChainStuckLongEnough(t *testing.T) {
	p, err := NewPlan(CrossChain)
	if err != nil {
		t.Fatal(err)
	}
	p.Healthy, p.Recover = time.Minute, 2*time.Minute
	gt := p.Truth()[0]
	if gt.Fault.End-gt.Fault.Start != 40*time.Minute || p.Duration() != 43*time.Minute {
		t.Fatalf("fault %v, plan %v; want the scenario's 40m minimum", gt.Fault, p.Duration())
	}
	r := record(t, p)
	end := gt.Fault.End
	var age float64
	for _, pt := range r.points("backlog_oldest_timestamp") {
		if pt.t.Equal(p.Start.Add(end)) {
			age = float64(pt.t.Unix()) - pt.v
		}
	}
	if age < 1800 {
		t.Errorf("oldest backlog age at the fault's end = %.0fs, want > 1800s", age)
	}
	if b := meanIn(p, r.points("backlog_size"), win{p.Duration() - p.Step, p.Duration()}); b > 10 {
		t.Errorf("backlog after recovery = %v", b)
	}
	timedOut := 0
	r.eachLog(func(_ time.Time, _ pcommon.Map, lr plog.LogRecord) {
		if attrStr(lr.Attributes(), "xchain.stage") == StageTimedOut {
			timedOut++
		}
	})
	if timedOut == 0 {
		t.Error("no message timed out after a 40-minute stall")
	}
	failed := map[bool]int{}
	r.eachLog(func(_ time.Time, _ pcommon.Map, lr plog.LogRecord) {
		if attrStr(lr.Attributes(), "xchain.stage") == StageFailed {
			failed[lr.Timestamp().AsTime().Before(p.Start.Add(gt.Fault.End))]++
		}
	})
	if failed[true] != 0 || failed[false] == 0 {
		t.Errorf("failed messages before the fault's end %d, after %d; want none, then some in the drain", failed[true], failed[false])
	}
}

func TestMinimumPhases(t *testing.T) {
	tests := []struct {
		scenario                string
		fault, recover          time.Duration
		wantFault, wantRecovery time.Duration
	}{
		{Surge, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute},
		{CrossChain, 5 * time.Minute, 5 * time.Minute, 40 * time.Minute, 5 * time.Minute},
		{CrossChain, time.Hour, 5 * time.Minute, time.Hour, 5 * time.Minute},
		{CostCut, 5 * time.Minute, 5 * time.Minute, 30 * time.Minute, 35 * time.Minute},
		{CostCut, 40 * time.Minute, time.Hour, 40 * time.Minute, time.Hour},
	}
	for _, tc := range tests {
		p, err := NewPlan(tc.scenario)
		if err != nil {
			t.Fatal(err)
		}
		p.Fault, p.Recover = tc.fault, tc.recover
		gt := p.Truth()[0]
		if f, r := gt.Fault.End-gt.Fault.Start, gt.Length-gt.Fault.End; f != tc.wantFault || r != tc.wantRecovery {
			t.Errorf("%s with -fault %v -recover %v: fault %v recovery %v, want %v and %v", tc.scenario, tc.fault, tc.recover, f, r, tc.wantFault, tc.wantRecovery)
		}
		if p.Duration() != gt.Length {
			t.Errorf("%s: plan %v, scenario %v", tc.scenario, p.Duration(), gt.Length)
		}
		if _, ph, into, ok := p.At(gt.Fault.End - time.Second); !ok || ph != PhaseFault || into != gt.Fault.End-gt.Fault.Start-time.Second {
			t.Errorf("%s: At(fault end - 1s) = %v %v %v", tc.scenario, ph, into, ok)
		}
	}
}

// TestMetricsNameBlamedEntities checks that the scraped metrics carry the
// identity parts of the entities the ground truth blames.
func TestMetricsNameBlamedEntities(t *testing.T) {
	r := record(t, shortPlan(t, Surge))
	type probe struct {
		metric string
		id     func(res, attrs pcommon.Map) string
		want   string
	}
	probes := []probe{
		{"pg_stat_database_numbackends", func(res, a pcommon.Map) string {
			return entity.ID(entity.Database, DBSystem, attrStr(res, "server.address")+":"+attrStr(res, "server.port"), attrStr(a, "datname"))
		}, DatabaseID},
		{"db.client.connection.max", func(res, a pcommon.Map) string {
			return entity.ID(entity.Database, attrStr(a, "db.system.name"), attrStr(a, "server.address")+":"+attrStr(a, "server.port"), attrStr(a, "db.namespace"))
		}, DatabaseID},
		{"envoy_cluster_upstream_rq_xx", func(res, a pcommon.Map) string {
			return entity.ID(entity.Proxy, attrStr(res, "service.name"), attrStr(a, "envoy_cluster_name"))
		}, ProxyID},
		{"backlog_size", func(res, a pcommon.Map) string {
			return entity.ID(entity.Relayer, attrStr(res, "service.name"), attrStr(a, "chain"), attrStr(a, "counterparty_chain"))
		}, RelayerID},
		{"kafka.consumer_group.lag", func(res, a pcommon.Map) string {
			return entity.ID(entity.Stream, attrStr(a, "topic"), attrStr(a, "group"))
		}, StreamID},
	}
	for _, pr := range probes {
		seen := 0
		for _, b := range r.metrics {
			rms := b.v.ResourceMetrics()
			for i := 0; i < rms.Len(); i++ {
				res := rms.At(i).Resource().Attributes()
				ms := rms.At(i).ScopeMetrics().At(0).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					if m.Name() != pr.metric {
						continue
					}
					var attrs pcommon.Map
					switch m.Type() {
					case pmetric.MetricTypeGauge:
						attrs = m.Gauge().DataPoints().At(0).Attributes()
					default:
						attrs = m.Sum().DataPoints().At(0).Attributes()
					}
					if got := pr.id(res, attrs); got != pr.want {
						t.Fatalf("%s names %s, want %s", pr.metric, got, pr.want)
					}
					seen++
				}
			}
		}
		if seen == 0 {
			t.Errorf("no %s emitted", pr.metric)
		}
	}
}

func TestTruthRoundTrip(t *testing.T) {
	p, err := NewPlan("all")
	if err != nil {
		t.Fatal(err)
	}
	want := p.Truth()
	for i := range want {
		want[i].Offset = 0 // not printed
	}
	for _, format := range []string{"json", "yaml"} {
		b, err := MarshalTruth(p.Truth(), format)
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalTruth(b)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", format, got, want)
		}
	}
	if _, err := UnmarshalTruth([]byte(`[{"scenario": "x", "start": "soon"}]`)); err == nil || !strings.Contains(err.Error(), "ground truth 0 (x): start") {
		t.Errorf("bad start: %v", err)
	}
}

// TestAccessLogLines checks that every access-log body is the JSON line
// its parsed attributes came from.
func TestAccessLogLines(t *testing.T) {
	r := record(t, shortPlan(t, Surge))
	n := 0
	r.eachLog(func(_ time.Time, res pcommon.Map, lr plog.LogRecord) {
		st, ok := lr.Attributes().Get("status")
		if !ok {
			return
		}
		n++
		var line struct {
			Status      int     `json:"status"`
			RequestTime float64 `json:"request_time"`
			Upstream    string  `json:"upstream"`
			TraceID     string  `json:"trace_id"`
		}
		if err := json.Unmarshal([]byte(lr.Body().Str()), &line); err != nil {
			t.Fatalf("access log body %q: %v", lr.Body().Str(), err)
		}
		rt, _ := lr.Attributes().Get("request_time")
		if int64(line.Status) != st.Int() || line.Upstream != ProxyCluster || math.Abs(line.RequestTime-rt.Double()) > 0.001 ||
			line.TraceID != lr.TraceID().String() || attrStr(res, "service.name") != ProxyService {
			t.Fatalf("access log %q disagrees with its attributes %v", lr.Body().Str(), lr.Attributes().AsRaw())
		}
	})
	if n == 0 {
		t.Fatal("no access log records")
	}
}

func TestOtherSteps(t *testing.T) {
	for _, step := range []time.Duration{time.Second, 30 * time.Second, time.Minute} {
		p := shortPlan(t, Surge, Streaming)
		p.Step = step
		st, err := Run(context.Background(), p, newRecorder(), Unpaced)
		if err != nil {
			t.Fatalf("step %v: %v", step, err)
		}
		if want := int(p.Duration() / step); st.Steps != want || st.Spans == 0 {
			t.Errorf("step %v: %+v, want %d steps", step, st, want)
		}
	}
}
