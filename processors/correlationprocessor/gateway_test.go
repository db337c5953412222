package correlationprocessor

// The gateway tier's contract (docs/deploy.md "Merged series"): replicas
// that each see a share of the telemetry, partitioned as the agents' kafka
// exporter partitions it, emit mergeable series; VictoriaMetrics merges
// them; rules evaluated on the query-backed snapshot raise the same alerts,
// blaming the same entities, as rules on one node that saw everything.
// The test lives here because only this package can drive the processor on
// the simulator's virtual clock; the Kafka path itself is tested over the
// wire in scenarios/gateway.

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/exporters/durableremotewriteexporter"
	"github.com/junction-sre/junction/internal/mergedgraph"
	"github.com/junction-sre/junction/internal/promtest"
	"github.com/junction-sre/junction/internal/vmtest"
	"github.com/junction-sre/junction/rules"
	"github.com/junction-sre/junction/scenarios"
)

var (
	gatewayDeployConfig = filepath.Join("..", "..", "deploy", "configs", "gateway.yaml")
	rulePacks           = filepath.Join("..", "..", "rules", "packs")
)

// node is one processor instance on the virtual clock, in all three
// pipelines.
type node struct {
	p       *correlationProcessor
	traces  consumer.Traces
	metrics consumer.Metrics
	logs    consumer.Logs
	alerts  *consumertest.LogsSink
	now     time.Time
}

func newNode(t *testing.T, name string, cfg *Config, metricsNext consumer.Metrics) *node {
	t.Helper()
	f := NewFactory()
	set := nopSettings()
	set.ID = component.MustNewIDWithName(typeStr, name)
	ctx := context.Background()
	tp, err := f.CreateTraces(ctx, set, cfg, new(consumertest.TracesSink))
	require.NoError(t, err)
	mp, err := f.CreateMetrics(ctx, set, cfg, metricsNext)
	require.NoError(t, err)
	ls := new(consumertest.LogsSink)
	lp, err := f.CreateLogs(ctx, set, cfg, ls)
	require.NoError(t, err)
	n := &node{p: tp.(*tracesProcessor).p, traces: tp, metrics: mp, logs: lp, alerts: ls}
	n.p.now = func() time.Time { return n.now }
	n.p.ticker = func(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }
	for _, c := range []component.Component{tp, mp, lp} {
		require.NoError(t, c.Start(ctx, componenttest.NewNopHost()))
	}
	t.Cleanup(func() {
		for _, c := range []component.Component{tp, mp, lp} {
			require.NoError(t, c.Shutdown(context.Background()))
		}
	})
	return n
}

// derivedOnly passes on only what the processor derives (metrics named
// junction.*), keeping the store to derived and mergeable series.
type derivedOnly struct{ next consumer.Metrics }

func (derivedOnly) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (d derivedOnly) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	out := pmetric.NewMetrics()
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		sms := rm.ScopeMetrics()
		if sms.Len() > 0 && sms.At(0).Metrics().Len() > 0 && strings.HasPrefix(sms.At(0).Metrics().At(0).Name(), "junction.") {
			rm.CopyTo(out.ResourceMetrics().AppendEmpty())
		}
	}
	if out.ResourceMetrics().Len() == 0 {
		return nil
	}
	return d.next.ConsumeMetrics(ctx, out)
}

// partition returns the replica of a key, as a Kafka partitioner hashes a
// record key onto partitions owned by the replicas.
func partition(key []byte, n int) int {
	h := fnv.New32a()
	_, _ = h.Write(key)
	return int(h.Sum32() % uint32(n))
}

func resourceKey(res pcommon.Resource) []byte {
	var kv []string
	res.Attributes().Range(func(k string, v pcommon.Value) bool {
		kv = append(kv, k+"="+v.AsString())
		return true
	})
	sort.Strings(kv)
	return []byte(strings.Join(kv, ","))
}

// splitter routes the simulator's batches to replicas: spans by trace id,
// metrics and logs by resource, as the agents' kafka exporter keys them
// (partition_traces_by_id, partition_*_by_resource_attributes).
type splitter struct{ nodes []*node }

func (s splitter) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	outs := make([]ptrace.Traces, len(s.nodes))
	for i := range outs {
		outs[i] = ptrace.NewTraces()
	}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				sp := ss.Spans().At(k)
				id := sp.TraceID()
				o := outs[partition(id[:], len(s.nodes))]
				ors := o.ResourceSpans().AppendEmpty()
				rs.Resource().CopyTo(ors.Resource())
				oss := ors.ScopeSpans().AppendEmpty()
				ss.Scope().CopyTo(oss.Scope())
				sp.CopyTo(oss.Spans().AppendEmpty())
			}
		}
	}
	for i, o := range outs {
		if o.SpanCount() > 0 {
			if err := s.nodes[i].traces.ConsumeTraces(ctx, o); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s splitter) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	outs := make([]pmetric.Metrics, len(s.nodes))
	for i := range outs {
		outs[i] = pmetric.NewMetrics()
	}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		rm.CopyTo(outs[partition(resourceKey(rm.Resource()), len(s.nodes))].ResourceMetrics().AppendEmpty())
	}
	for i, o := range outs {
		if o.ResourceMetrics().Len() > 0 {
			if err := s.nodes[i].metrics.ConsumeMetrics(ctx, o); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s splitter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	outs := make([]plog.Logs, len(s.nodes))
	for i := range outs {
		outs[i] = plog.NewLogs()
	}
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		rl.CopyTo(outs[partition(resourceKey(rl.Resource()), len(s.nodes))].ResourceLogs().AppendEmpty())
	}
	for i, o := range outs {
		if o.ResourceLogs().Len() > 0 {
			if err := s.nodes[i].logs.ConsumeLogs(ctx, o); err != nil {
				return err
			}
		}
	}
	return nil
}

func newRuleManager(t *testing.T) *rules.Manager {
	t.Helper()
	m, err := rules.NewManager(rules.Config{Files: []string{rulePacks}, CostLimit: rules.DefaultCostLimit}, rules.Settings{Logger: zap.NewNop()})
	require.NoError(t, err)
	return m
}

// firing collects the alert instances that fired: rule, entity, blame.
type firing map[string]time.Time

func (f firing) add(alerts []alert.Alert) {
	for _, a := range alerts {
		if a.State != alert.StateFiring {
			continue
		}
		k := a.Rule + " on " + a.Entity.ID + " blames " + a.Blame.ID
		if _, ok := f[k]; !ok {
			f[k] = a.EvaluatedAt
		}
	}
}

func (f firing) keys() []string {
	out := make([]string, 0, len(f))
	for k := range f {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestReplicasAgreeWithSingleNode runs the bottleneck scenario once
// through one node (rules on its in-process snapshot) and once split
// across two replicas whose mergeable series go through the deployed
// remote-write config into VictoriaMetrics (rules on the query-backed
// snapshot), and compares the alerts that fired.
//
// The alerts' evidence is compared too, item by item at every evaluation
// where both fire an instance: the bottleneck scenario has exemplars and
// log samples, the cross-chain one stuck messages.
func TestReplicasAgreeWithSingleNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 15-minute scenario against VictoriaMetrics")
	}
	t.Run(scenarios.Bottleneck, func(t *testing.T) {
		n := replicasAgree(t, vmtest.Start(t), scenarios.Bottleneck, nil)
		require.Positive(t, n.exemplars, "no exemplar to compare")
		require.Positive(t, n.logs, "no log sample to compare")
	})
	// The same through Prometheus: its remote-write receiver and query API
	// must give the ruler the same graph.
	t.Run(scenarios.Bottleneck+"-prometheus", func(t *testing.T) {
		n := replicasAgree(t, promtest.Start(t), scenarios.Bottleneck, nil)
		require.Positive(t, n.exemplars, "no exemplar to compare")
		require.Positive(t, n.logs, "no log sample to compare")
	})
	t.Run(scenarios.CrossChain, func(t *testing.T) {
		// Its fault lasts 40 minutes (messages must be stuck for 15); a
		// short recovery keeps the run shorter.
		n := replicasAgree(t, vmtest.Start(t), scenarios.CrossChain, func(p *scenarios.Plan) { p.Recover = time.Minute })
		require.Positive(t, n.stuck, "no stuck message to compare")
	})
}

// metricStore is the store the replicas write to and the ruler reads:
// VictoriaMetrics (internal/vmtest) or Prometheus (internal/promtest).
type metricStore interface {
	Writer(t testing.TB, f exporter.Factory, file, replica string) exporter.Metrics
	Flush(testing.TB)
	QueryURL() string
}

// replicasAgree runs one scenario through one node and two replicas and
// returns how much evidence it compared; edit, when set, changes the plan.
func replicasAgree(t *testing.T, vm metricStore, scenario string, edit func(*scenarios.Plan)) evidenceCount {
	plan, err := scenarios.NewPlan(scenario)
	require.NoError(t, err)
	if edit != nil {
		edit(plan)
	}

	cfg := createDefaultConfig().(*Config)
	cfg.EmitInterval = plan.Step
	single := newNode(t, "single", cfg, new(consumertest.MetricsSink))

	rcfg := createDefaultConfig().(*Config)
	rcfg.EmitInterval = plan.Step
	rcfg.MergeableSeries = true
	replicas := []*node{
		newNode(t, "replica0", rcfg, derivedOnly{vm.Writer(t, durableremotewriteexporter.NewFactory(), gatewayDeployConfig, "replica0")}),
		newNode(t, "replica1", rcfg, derivedOnly{vm.Writer(t, durableremotewriteexporter.NewFactory(), gatewayDeployConfig, "replica1")}),
	}
	// The query window is below the emit interval: every replica ticks at
	// the same virtual instants here, so each query sees exactly that tick.
	src, err := mergedgraph.New(mergedgraph.Config{URL: vm.QueryURL(), Lookback: plan.Step / 2})
	require.NoError(t, err)

	singleRules, mergedRules := newRuleManager(t), newRuleManager(t)
	var latencies latencyAgreement
	singleFired, mergedFired := firing{}, firing{}
	singleEvidence, mergedEvidence := evidenceOf{}, evidenceOf{}
	ctx := context.Background()
	var last time.Time
	evaluate := func(at time.Time) {
		require.NoError(t, single.p.tick(ctx, at))
		snap, err := single.p.Snapshot(ctx, at)
		require.NoError(t, err)
		alerts, _ := singleRules.EvalDue(ctx, snap, at)
		singleFired.add(alerts)
		singleEvidence.add(alerts)

		for _, r := range replicas {
			require.NoError(t, r.p.tick(ctx, at))
		}
		vm.Flush(t)
		merged, err := src.Snapshot(ctx, at)
		require.NoError(t, err)
		latencies.compare(snap, merged)
		alerts, _ = mergedRules.EvalDue(ctx, merged, at)
		mergedFired.add(alerts)
		mergedEvidence.add(alerts)
	}
	setNow := func(at time.Time) {
		single.now = at
		for _, r := range replicas {
			r.now = at
		}
	}
	clock := scenarios.ClockFunc(func(ctx context.Context, at time.Time) error {
		// Called before the batches of the step ending at `at`: the step
		// before it is complete, so tick and evaluate at its end.
		if !last.IsZero() {
			evaluate(last)
		}
		setNow(at)
		last = at
		return ctx.Err()
	})
	both := fanout{single: single, split: splitter{nodes: replicas}}
	_, err = scenarios.Run(ctx, plan, both, clock)
	require.NoError(t, err)
	evaluate(last)

	t.Logf("latency quantiles: %d compared, %d over 4 %%, %d over 8 %%, largest difference %.2f%% (%s); %d windows skipped whose merged request rate differed",
		latencies.n, latencies.over4, latencies.over8, latencies.worst*100, latencies.where, latencies.incomplete)
	require.Positive(t, latencies.n, "no latency quantile to compare")
	require.LessOrEqual(t, latencies.worst, latencyTolerance,
		"the replicas' merged latency quantiles differ from the single node's beyond the accuracy of the emitted bins")
	t.Logf("single node fired: %v", singleFired.keys())
	t.Logf("replicas fired:    %v", mergedFired.keys())
	require.NotEmpty(t, singleFired, "the single node raised no alert on the %s scenario", scenario)
	require.Equal(t, singleFired.keys(), mergedFired.keys(), "replicas through VictoriaMetrics and one node fired different alerts or blamed different entities")
	for k, at := range singleFired {
		if d := mergedFired[k].Sub(at); d > 2*plan.Step || d < -2*plan.Step {
			t.Errorf("%s: fired at %s on one node, %s from the replicas", k, at.Format(time.TimeOnly), mergedFired[k].Format(time.TimeOnly))
		}
	}
	n := singleEvidence.compare(t, mergedEvidence)

	blamed := false
	for _, gt := range plan.Truth() {
		for _, e := range gt.Expect {
			for k := range mergedFired {
				if strings.HasSuffix(k, " blames "+e.Blame) {
					blamed = true
				}
			}
		}
	}
	require.True(t, blamed, "no alert from the replicas blamed the scenario's culprit")
	return n
}

// evidenceOf holds the evidence of every firing alert instance at each
// evaluation: exemplars, log samples, stuck messages (the values are
// merged features, compared by the latency and alert checks).
type evidenceOf map[string]entity.Evidence

func (e evidenceOf) add(alerts []alert.Alert) {
	for _, a := range alerts {
		if a.State == alert.StateFiring {
			e[a.ID+" at "+a.EvaluatedAt.Format(time.TimeOnly)] = a.Evidence.Evidence
		}
	}
}

// compare requires the replicas' alerts to carry the single node's
// evidence, item by item, at every evaluation where both fire the
// instance.
func (e evidenceOf) compare(t *testing.T, merged evidenceOf) evidenceCount {
	t.Helper()
	var n, exemplars, logs, stuck, differ int
	for k, want := range e {
		got, ok := merged[k]
		if !ok {
			continue
		}
		n++
		exemplars += len(want.Exemplars)
		logs += len(want.LogSamples)
		stuck += len(want.Stuck)
		if !evidenceEqual(want, got) {
			differ++
			if differ <= 3 {
				t.Errorf("%s: evidence differs:\n single node: %+v\n replicas:    %+v", k, want, got)
			}
		}
	}
	t.Logf("evidence: %d firing evaluations compared (%d exemplars, %d log samples, %d stuck messages), %d differ", n, exemplars, logs, stuck, differ)
	return evidenceCount{exemplars: exemplars, logs: logs, stuck: stuck}
}

// evidenceCount is how many items of each kind were compared.
type evidenceCount struct{ exemplars, logs, stuck int }

// evidenceEqual compares evidence with times as instants.
func evidenceEqual(a, b entity.Evidence) bool {
	norm := func(e entity.Evidence) entity.Evidence {
		var out entity.Evidence
		for _, x := range e.Exemplars {
			x.Time = x.Time.UTC()
			out.Exemplars = append(out.Exemplars, x)
		}
		for _, x := range e.LogSamples {
			x.Time = x.Time.UTC()
			out.LogSamples = append(out.LogSamples, x)
		}
		for _, x := range e.Stuck {
			x.Since = x.Since.UTC()
			st := make([]entity.MessageStage, len(x.Stages))
			for i, s := range x.Stages {
				s.Time = s.Time.UTC()
				st[i] = s
			}
			if len(st) == 0 {
				st = nil
			}
			x.Stages = st
			out.Stuck = append(out.Stuck, x)
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// latencyTolerance is how far a merged quantile may be from the single
// node's: both stand for the same request's latency, the single node's
// within the sketch's 1 %, the merged one within the accuracy of the
// emitted bins, here at most 8 % (width 8 of mergedgraph.MaxEmittedBins).
const latencyTolerance = 0.08 + 0.01 + 0.001

// latencyAgreement compares the latency quantiles of the single node's
// snapshots with those of the merged snapshots at the same ticks, in the
// windows whose merged request rate is the single node's: a rate differs
// for reasons of its own (an entity younger than the window is younger on
// some replica; a tick the store does not show yet), not the merge's.
type latencyAgreement struct {
	n            int
	incomplete   int // windows whose merged request rate differs
	over4, over8 int // differences over 4 % and 8 %
	worst        float64
	where        string
}

func (l *latencyAgreement) compare(single, merged *entity.Snapshot) {
	check := func(what string, s, m map[string]float64) {
		if r := s["request.rate"]; math.Abs(m["request.rate"]-r) > 1e-9*r {
			l.incomplete++
			return
		}
		for _, f := range []string{"latency.p50_ms", "latency.p90_ms", "latency.p99_ms"} {
			sv, ok := s[f]
			if !ok || sv <= 0 {
				continue
			}
			l.n++
			d := math.Inf(1)
			if mv, ok := m[f]; ok {
				d = math.Abs(mv-sv) / sv
			}
			if d > 0.04 {
				l.over4++
			}
			if d > 0.08 {
				l.over8++
			}
			if d > l.worst {
				l.worst, l.where = d, fmt.Sprintf("%s %s at %s: single %.3f, merged %.3f", what, f, single.Time.Format(time.TimeOnly), sv, m[f])
			}
		}
	}
	for _, e := range single.Entities {
		me, ok := merged.Entity(e.ID)
		if !ok {
			me = &entity.Entity{}
		}
		check(e.ID+" 1m", e.Features, me.Features)
		check(e.ID+" 5m", e.Features5m, me.Features5m)
	}
	edges := map[string]map[string]float64{}
	for _, e := range merged.Edges {
		edges[e.Key()] = e.Features
	}
	for _, e := range single.Edges {
		check("edge "+e.Key(), e.Features, edges[e.Key()])
	}
}

// fanout hands every batch to the single node whole and to the replicas
// split.
type fanout struct {
	single *node
	split  splitter
}

func (f fanout) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	c := ptrace.NewTraces()
	td.CopyTo(c)
	if err := f.single.traces.ConsumeTraces(ctx, c); err != nil {
		return err
	}
	return f.split.ConsumeTraces(ctx, td)
}

func (f fanout) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	c := pmetric.NewMetrics()
	md.CopyTo(c)
	if err := f.single.metrics.ConsumeMetrics(ctx, c); err != nil {
		return err
	}
	return f.split.ConsumeMetrics(ctx, md)
}

func (f fanout) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	c := plog.NewLogs()
	ld.CopyTo(c)
	if err := f.single.logs.ConsumeLogs(ctx, c); err != nil {
		return err
	}
	return f.split.ConsumeLogs(ctx, ld)
}

// TestQuerySourceRemoved: a config that still has the processor's old
// query_source section fails to load with what to configure instead.
func TestQuerySourceRemoved(t *testing.T) {
	cfg := createDefaultConfig()
	err := confmap.NewFromStringMap(map[string]any{
		"rules":        map[string]any{"files": []any{"builtin:packs"}},
		"query_source": map[string]any{"endpoint": "http://vm:8428", "lookback": "30s"},
	}).Unmarshal(cfg)
	require.ErrorContains(t, err, "query_source: removed from the correlation processor")
	require.ErrorContains(t, err, "receivers::junction_ruler::store")

	// Without it the section decodes as before, unknown keys included.
	err = confmap.NewFromStringMap(map[string]any{"emit_interval": "5s", "emit_intervall": "5s"}).Unmarshal(cfg)
	require.ErrorContains(t, err, "emit_intervall")
	require.NoError(t, confmap.NewFromStringMap(map[string]any{"emit_interval": "5s"}).Unmarshal(cfg))
	require.Equal(t, 5*time.Second, cfg.(*Config).EmitInterval)
}
