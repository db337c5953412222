package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/scenarios"
)

const groupID = "junction-gateway"

// shortPlan is the bottleneck scenario with one-minute phases: a few
// thousand traces through every hop of the simulated shop.
func shortPlan(t testing.TB) *scenarios.Plan {
	t.Helper()
	plan, err := scenarios.NewPlan(scenarios.Bottleneck)
	if err != nil {
		t.Fatal(err)
	}
	plan.Healthy, plan.Fault, plan.Recover = time.Minute, time.Minute, time.Minute
	return plan
}

// waitGroupStable waits until the consumer group has want members, each
// with partitions assigned, so the test's data is split by the group's
// assignment and not by who joined first.
func waitGroupStable(t testing.TB, c *kfake.Cluster, want int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	waitFor(t, fmt.Sprintf("consumer group %s to be stable with %d members", groupID, want), 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		groups, err := adm.DescribeGroups(ctx, groupID)
		if err != nil {
			return false, err.Error()
		}
		g := groups[groupID]
		assigned := 0
		for _, m := range g.Members {
			if ca, ok := m.Assigned.AsConsumer(); ok && len(ca.Topics) > 0 {
				assigned++
			}
		}
		return g.State == "Stable" && len(g.Members) == want && assigned == want,
			fmt.Sprintf("state %q, %d members, %d with partitions", g.State, len(g.Members), assigned)
	})
}

// spansByTrace counts the spans of every trace in batches.
func spansByTrace(batches []ptrace.Traces) map[pcommon.TraceID]int {
	out := map[pcommon.TraceID]int{}
	for _, td := range batches {
		forEachSpan(td, func(_ pcommon.Resource, s ptrace.Span) { out[s.TraceID()]++ })
	}
	return out
}

// instrumentedServices are the services that report SERVER spans
// themselves: none of them may turn up as a virtual peer.
func instrumentedServices(batches []ptrace.Traces) map[string]bool {
	out := map[string]bool{}
	for _, td := range batches {
		forEachSpan(td, func(res pcommon.Resource, s ptrace.Span) {
			if s.Kind() == ptrace.SpanKindServer {
				if v, ok := res.Attributes().Get("service.name"); ok {
					out[v.Str()] = true
				}
			}
		})
	}
	return out
}

// settle waits until the sink has seen enough ticks after now for every
// pending client span to have been paired or expired into a virtual peer,
// and returns the graph of the latest tick.
func settle(t testing.TB, name string, d *derivedSink) graphView {
	t.Helper()
	start, _ := d.latest()
	// pending_span_ttl 1s at a 200ms emit interval: 10 ticks is twice the TTL.
	waitFor(t, name+" to tick past the pending-span TTL", 30*time.Second, func() (bool, string) {
		n, _ := d.latest()
		return n >= start+10, describe(n-start, "ticks")
	})
	_, md := d.latest()
	return viewOf(md)
}

// TestTracesSplitByTraceID sends the simulator's traces through the
// agent's kafka exporter (partitioned by trace id, as deployed) to two
// gateway replicas in one consumer group. Every trace must land whole on
// one replica, no span may be lost or read twice, and the replicas together
// must build the same edges and virtual peers as one node that saw
// everything: every CLIENT/SERVER edge paired, no instrumented service
// mistaken for a virtual peer.
func TestTracesSplitByTraceID(t *testing.T) {
	batches, sent := recordTraces(t, shortPlan(t))
	want := spansByTrace(batches)
	if sent == 0 || len(want) < 100 {
		t.Fatalf("the plan produced %d spans in %d traces, want a few thousand", sent, len(want))
	}

	// The reference: one node that sees every trace.
	single := &derivedSink{}
	sp, _ := newCorrelation(t, "single", newCorrelationConfig(), single)
	for _, td := range batches {
		if err := sp.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}

	broker := startBroker(t)
	brokers := broker.ListenAddrs()
	replicas := []*replica{startReplica(t, "r0", brokers), startReplica(t, "r1", brokers)}
	waitGroupStable(t, broker, len(replicas)*membersPerReplica)

	te, me, le := agentExporter(t, brokers)
	for _, td := range batches {
		if err := te.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []interface{ Shutdown(context.Context) error }{te, me, le} {
		if err := c.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	waitFor(t, "the replicas to consume every span", 60*time.Second, func() (bool, string) {
		total := 0
		for _, r := range replicas {
			_, n := r.seen.snapshot()
			total += n
		}
		return total >= sent, fmt.Sprintf("%d of %d spans", total, sent)
	})

	owner := map[pcommon.TraceID]string{}
	total := 0
	for _, r := range replicas {
		got, n := r.seen.snapshot()
		total += n
		if len(got) == 0 {
			t.Errorf("replica %s consumed no trace: the group did not split the partitions", r.name)
		}
		t.Logf("replica %s: %d traces, %d spans", r.name, len(got), n)
		for id, spans := range got {
			if o, ok := owner[id]; ok {
				t.Errorf("trace %s split across replicas %s and %s", id, o, r.name)
			}
			owner[id] = r.name
			if spans != want[id] {
				t.Errorf("trace %s: replica %s consumed %d spans, %d were sent", id, r.name, spans, want[id])
			}
		}
	}
	if total != sent {
		t.Errorf("replicas consumed %d spans, %d were sent", total, sent)
	}
	if len(owner) != len(want) {
		t.Errorf("replicas consumed %d traces, %d were sent", len(owner), len(want))
	}

	ref := settle(t, "the single node", single)
	merged := graphView{entities: map[string]bool{}, virtual: map[string]string{}, edges: map[string]bool{}}
	for _, r := range replicas {
		merged.merge(settle(t, "replica "+r.name, r.derived))
	}
	if len(ref.edges) == 0 {
		t.Fatal("the single node built no edges")
	}
	if a, b := sortedKeys(ref.edges), sortedKeys(merged.edges); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("edges differ:\nsingle node: %v\nreplicas:    %v", a, b)
	}
	if a, b := sortedKeys(ref.virtual), sortedKeys(merged.virtual); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("virtual peers differ:\nsingle node: %v\nreplicas:    %v", a, b)
	}
	inst := instrumentedServices(batches)
	for id, name := range merged.virtual {
		if inst[name] {
			t.Errorf("virtual peer %s (%s) is an instrumented service: a CLIENT span missed its SERVER span", id, name)
		}
	}
	t.Logf("%d edges, %d virtual peers (%v)", len(merged.edges), len(merged.virtual), sortedKeys(merged.virtual))
}

// TestReplicaLeavesPartitionsMove stops one of two replicas halfway through
// the stream: the group gives its partitions to the survivor, which reads
// on from the offsets the stopped replica committed. No span is lost, and
// since the replica left cleanly (it committed what its pipeline had taken)
// none is read twice either.
func TestReplicaLeavesPartitionsMove(t *testing.T) {
	batches, sent := recordTraces(t, shortPlan(t))
	want := spansByTrace(batches)
	half := len(batches) / 2
	firstHalf := 0
	for _, td := range batches[:half] {
		firstHalf += td.SpanCount()
	}

	broker := startBroker(t)
	brokers := broker.ListenAddrs()
	r0, r1 := startReplica(t, "r0", brokers), startReplica(t, "r1", brokers)
	waitGroupStable(t, broker, 2*membersPerReplica)

	te, me, le := agentExporter(t, brokers)
	t.Cleanup(func() {
		for _, c := range []interface{ Shutdown(context.Context) error }{te, me, le} {
			_ = c.Shutdown(context.Background())
		}
	})
	send := func(bs []ptrace.Traces) {
		for _, td := range bs {
			if err := te.ConsumeTraces(context.Background(), td); err != nil {
				t.Fatal(err)
			}
		}
	}
	consumed := func() int {
		_, a := r0.seen.snapshot()
		_, b := r1.seen.snapshot()
		return a + b
	}

	send(batches[:half])
	waitFor(t, "the first half to be consumed", 60*time.Second, func() (bool, string) {
		return consumed() >= firstHalf, fmt.Sprintf("%d of %d spans", consumed(), firstHalf)
	})
	_, r1Before := r1.seen.snapshot()
	if r1Before == 0 {
		t.Fatal("replica r1 consumed nothing before it stopped: the group did not split the partitions")
	}
	r1.stop(t)
	waitGroupStable(t, broker, membersPerReplica)

	send(batches[half:])
	waitFor(t, "the survivor to consume the rest", 60*time.Second, func() (bool, string) {
		return consumed() >= sent, fmt.Sprintf("%d of %d spans", consumed(), sent)
	})
	got0, n0 := r0.seen.snapshot()
	got1, n1 := r1.seen.snapshot()
	if n1 != r1Before {
		t.Errorf("replica r1 consumed %d spans after it stopped", n1-r1Before)
	}
	for id, n := range want {
		if got := got0[id] + got1[id]; got != n {
			t.Errorf("trace %s: %d spans consumed, %d sent", id, got, n)
		}
	}
	if n0+n1 != sent {
		t.Errorf("consumed %d spans, sent %d", n0+n1, sent)
	}
	t.Logf("r1 consumed %d spans before it stopped; r0 %d in all; %d sent", r1Before, n0, sent)
}

// TestReplicaDiesWithWorkInFlight: one replica's pipeline starts refusing
// batches (stuck, then dying), so the records it holds stay unmarked and
// uncommitted; then it stops. Its partitions move to the survivor, which
// reads on from the committed offsets: the records the dead replica never
// took arrive there. Nothing is lost, and nothing is taken twice.
func TestReplicaDiesWithWorkInFlight(t *testing.T) {
	batches, sent := recordTraces(t, shortPlan(t))
	want := spansByTrace(batches)
	half := len(batches) / 2
	firstHalf := 0
	for _, td := range batches[:half] {
		firstHalf += td.SpanCount()
	}

	broker := startBroker(t)
	brokers := broker.ListenAddrs()
	r0, r1 := startReplica(t, "r0", brokers), startReplica(t, "r1", brokers)
	waitGroupStable(t, broker, 2*membersPerReplica)
	te, me, le := agentExporter(t, brokers)
	t.Cleanup(func() {
		for _, c := range []interface{ Shutdown(context.Context) error }{te, me, le} {
			_ = c.Shutdown(context.Background())
		}
	})
	send := func(bs []ptrace.Traces) {
		for _, td := range bs {
			if err := te.ConsumeTraces(context.Background(), td); err != nil {
				t.Fatal(err)
			}
		}
	}
	taken := func() int {
		_, a := r0.seen.snapshot()
		_, b := r1.seen.snapshot()
		return a + b
	}

	send(batches[:half])
	waitFor(t, "the first half to be taken", 60*time.Second, func() (bool, string) {
		return taken() >= firstHalf, fmt.Sprintf("%d of %d spans", taken(), firstHalf)
	})
	r1.seen.setFailing(true)
	send(batches[half:])
	waitFor(t, "replica r1 to refuse records of the second half", 60*time.Second, func() (bool, string) {
		n := r1.seen.refusals()
		return n >= 3, describe(n, "refusals")
	})
	_, r1Taken := r1.seen.snapshot()
	r1.stop(t)

	waitFor(t, "the survivor to take what r1 left", 60*time.Second, func() (bool, string) {
		return taken() >= sent, fmt.Sprintf("%d of %d spans", taken(), sent)
	})
	got0, n0 := r0.seen.snapshot()
	got1, n1 := r1.seen.snapshot()
	if n1 != r1Taken {
		t.Errorf("replica r1 took %d spans after it stopped", n1-r1Taken)
	}
	for id, n := range want {
		if got := got0[id] + got1[id]; got != n {
			t.Errorf("trace %s: %d spans taken, %d sent", id, got, n)
		}
	}
	if n0+n1 != sent {
		t.Errorf("taken %d spans, sent %d", n0+n1, sent)
	}
	t.Logf("r1 took %d spans and refused %d batches before it stopped; r0 took %d; %d sent", r1Taken, r1.seen.refusals(), n0, sent)
}

// TestMetricsAndLogsSplitByResource sends the simulator's metrics and logs
// through the agent's kafka exporter (partitioned by resource, as
// deployed): every resource's data lands on one replica, and none is lost
// or read twice.
func TestMetricsAndLogsSplitByResource(t *testing.T) {
	var mds []pmetric.Metrics
	var lds []plog.Logs
	sink := scenarios.Consumers{
		Metrics: metricsFunc(func(_ context.Context, md pmetric.Metrics) error {
			c := pmetric.NewMetrics()
			md.CopyTo(c)
			mds = append(mds, c)
			return nil
		}),
		Logs: logsFunc(func(_ context.Context, ld plog.Logs) error {
			c := plog.NewLogs()
			ld.CopyTo(c)
			lds = append(lds, c)
			return nil
		}),
	}
	st, err := scenarios.Run(context.Background(), shortPlan(t), sink, scenarios.Unpaced)
	if err != nil {
		t.Fatal(err)
	}
	wantPoints, wantRecords := map[string]int{}, map[string]int{}
	for _, md := range mds {
		rec := newResourceRecorder()
		_ = rec.ConsumeMetrics(context.Background(), md)
		for k, v := range rec.points {
			wantPoints[k] += v
		}
	}
	for _, ld := range lds {
		rec := newResourceRecorder()
		_ = rec.ConsumeLogs(context.Background(), ld)
		for k, v := range rec.records {
			wantRecords[k] += v
		}
	}

	broker := startBroker(t)
	brokers := broker.ListenAddrs()
	replicas := []*replica{startReplica(t, "r0", brokers), startReplica(t, "r1", brokers)}
	waitGroupStable(t, broker, len(replicas)*membersPerReplica)
	te, me, le := agentExporter(t, brokers)
	for _, md := range mds {
		if err := me.ConsumeMetrics(context.Background(), md); err != nil {
			t.Fatal(err)
		}
	}
	for _, ld := range lds {
		if err := le.ConsumeLogs(context.Background(), ld); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []interface{ Shutdown(context.Context) error }{te, me, le} {
		if err := c.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	totals := func() (points, records int) {
		for _, r := range replicas {
			p, l := r.resources.snapshot()
			for _, v := range p {
				points += v
			}
			for _, v := range l {
				records += v
			}
		}
		return points, records
	}
	waitFor(t, "the replicas to consume every data point and log record", 60*time.Second, func() (bool, string) {
		p, l := totals()
		return p >= st.Points && l >= st.Records, fmt.Sprintf("%d of %d points, %d of %d records", p, st.Points, l, st.Records)
	})

	for _, kind := range []struct {
		name string
		want map[string]int
		get  func(*replica) map[string]int
	}{
		{"data points", wantPoints, func(r *replica) map[string]int { p, _ := r.resources.snapshot(); return p }},
		{"log records", wantRecords, func(r *replica) map[string]int { _, l := r.resources.snapshot(); return l }},
	} {
		owner := map[string]string{}
		got := map[string]int{}
		for _, r := range replicas {
			m := kind.get(r)
			// The scenario's logs come from three resources only: they
			// may well all hash to one replica's partitions.
			if len(m) == 0 && len(kind.want) > 10 {
				t.Errorf("replica %s consumed no %s of %d resources", r.name, kind.name, len(kind.want))
			}
			for res, n := range m {
				if o, ok := owner[res]; ok {
					t.Errorf("%s of resource {%s} on replicas %s and %s", kind.name, res, o, r.name)
				}
				owner[res] = r.name
				got[res] += n
			}
		}
		for res, n := range kind.want {
			if got[res] != n {
				t.Errorf("resource {%s}: %d %s consumed, %d sent", res, got[res], kind.name, n)
			}
		}
		t.Logf("%s: %d resources over %d replicas", kind.name, len(kind.want), len(replicas))
	}
}

type metricsFunc func(context.Context, pmetric.Metrics) error

func (f metricsFunc) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (f metricsFunc) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	return f(ctx, md)
}

type logsFunc func(context.Context, plog.Logs) error

func (f logsFunc) Capabilities() consumer.Capabilities                 { return consumer.Capabilities{} }
func (f logsFunc) ConsumeLogs(ctx context.Context, ld plog.Logs) error { return f(ctx, ld) }
