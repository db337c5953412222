package gateway

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kafkareceiver"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor"
	"github.com/junction-sre/junction/scenarios"
)

var (
	agentConfig   = filepath.Join("..", "..", "deploy", "configs", "agent-kafka.yaml")
	gatewayConfig = filepath.Join("..", "..", "deploy", "configs", "gateway.yaml")
	rulerConfig   = filepath.Join("..", "..", "deploy", "configs", "ruler.yaml")
	kafkaType     = component.MustNewType("kafka")
	corrType      = component.MustNewType("correlation")
)

// topics are the deployed topics; partitions is more than replicas so that
// a rebalance has something to move.
var topics = []string{"junction-traces", "junction-metrics", "junction-logs"}

const partitions = 8

func startBroker(t testing.TB) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...),
		// A broker default of 6s; the test replicas use 3s sessions.
		kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// loadSub unmarshals one component's section of a deploy config into cfg.
func loadSub(t testing.TB, file, key string, cfg component.Config) {
	t.Helper()
	cm, err := confmaptest.LoadConf(file)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := cm.Sub(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatalf("%s: %s: %v", file, key, err)
	}
}

// agentExporter is the agent's kafka exporter exactly as deployed, pointed
// at the test broker. Its on-disk queue becomes an in-memory one (no
// file_storage extension in this process); Shutdown drains it.
func agentExporter(t testing.TB, brokers []string) (exporter.Traces, exporter.Metrics, exporter.Logs) {
	t.Helper()
	f := kafkaexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*kafkaexporter.Config)
	loadSub(t, agentConfig, "exporters::kafka", cfg)
	if !cfg.PartitionTracesByID || !cfg.PartitionMetricsByResourceAttributes || !cfg.PartitionLogsByResourceAttributes {
		t.Fatalf("%s: the agent must partition traces by id and metrics and logs by resource", agentConfig)
	}
	cfg.ClientConfig.Brokers = brokers
	if q := cfg.QueueBatchConfig.Get(); q != nil {
		q.StorageID = nil
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return startExporters(t, f, exportertest.NewNopSettings(kafkaType), cfg)
}

// startExporters creates and starts the traces, metrics and logs exporters
// of f with cfg; the caller shuts them down.
func startExporters(t testing.TB, f exporter.Factory, set exporter.Settings, cfg component.Config) (exporter.Traces, exporter.Metrics, exporter.Logs) {
	t.Helper()
	ctx := context.Background()
	te, err := f.CreateTraces(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	me, err := f.CreateMetrics(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	le, err := f.CreateLogs(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []component.Component{te, me, le} {
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
	}
	return te, me, le
}

// replica is one gateway replica: kafka receivers in the shared consumer
// group feeding a correlation processor of its own.
type replica struct {
	name      string
	receivers []component.Component
	// resources records the resources of the metrics and logs the
	// replica consumed.
	resources *resourceRecorder
	procs     []component.Component
	seen      *traceRecorder
	derived   *derivedSink
	stopped   bool
}

// newCorrelationConfig is the processor's default config with a short emit
// interval and pending-span TTL, so the test sees ticks (and any unpaired
// client span turned into a virtual peer) within a second or two.
func newCorrelationConfig() *correlationprocessor.Config {
	cfg := correlationprocessor.NewFactory().CreateDefaultConfig().(*correlationprocessor.Config)
	cfg.EmitInterval = 200 * time.Millisecond
	cfg.Limits.PendingSpanTTL = time.Second
	return cfg
}

// newCorrelation creates one correlation processor instance named name with
// its traces and metrics parts; derived metrics go to sink.
func newCorrelation(t testing.TB, name string, cfg *correlationprocessor.Config, sink consumer.Metrics) (processor.Traces, []component.Component) {
	t.Helper()
	f := correlationprocessor.NewFactory()
	set := processortest.NewNopSettings(corrType)
	set.ID = component.MustNewIDWithName("correlation", name)
	ctx := context.Background()
	tp, err := f.CreateTraces(ctx, set, cfg, consumerNop{})
	if err != nil {
		t.Fatal(err)
	}
	mp, err := f.CreateMetrics(ctx, set, cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	comps := []component.Component{tp, mp}
	for _, c := range comps {
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, c := range comps {
			_ = c.Shutdown(context.Background())
		}
	})
	return tp, comps
}

// startReplica starts a gateway replica with the deployed kafka receiver
// config (one consumer group) against brokers.
func startReplica(t testing.TB, name string, brokers []string) *replica {
	t.Helper()
	r := &replica{name: name, seen: newTraceRecorder(), derived: &derivedSink{}, resources: newResourceRecorder()}
	tp, comps := newCorrelation(t, name, newCorrelationConfig(), r.derived)
	r.procs = comps
	r.seen.next = tp

	f := kafkareceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*kafkareceiver.Config)
	loadSub(t, gatewayConfig, "receivers::kafka", cfg)
	if cfg.ConsumerConfig.GroupID == "" {
		t.Fatalf("%s: the gateway's kafka receiver needs a group_id", gatewayConfig)
	}
	cfg.ClientConfig.Brokers = brokers
	// A test-sized session: a replica that stops is noticed in seconds.
	cfg.ConsumerConfig.SessionTimeout = 3 * time.Second
	cfg.ConsumerConfig.HeartbeatInterval = 300 * time.Millisecond
	if !cfg.ErrorBackOff.Enabled {
		t.Fatalf("%s: the gateway's kafka receiver must retry refused batches (error_backoff)", gatewayConfig)
	}
	cfg.ErrorBackOff.InitialInterval = 20 * time.Millisecond
	cfg.ErrorBackOff.MaxInterval = 100 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	set := receivertest.NewNopSettings(kafkaType)
	set.ID = component.MustNewIDWithName("kafka", name)
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	// One receiver per signal, as the collector builds them: each is a
	// member of the group.
	ctx := context.Background()
	tr, err := f.CreateTraces(ctx, set, cfg, r.seen)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := f.CreateMetrics(ctx, set, cfg, r.resources)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := f.CreateLogs(ctx, set, cfg, r.resources)
	if err != nil {
		t.Fatal(err)
	}
	for _, rcv := range []component.Component{tr, mr, lr} {
		if err := rcv.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		r.receivers = append(r.receivers, rcv)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// membersPerReplica is how many group members one replica runs: a kafka
// receiver per signal.
const membersPerReplica = 3

// stop shuts the replica's receivers down: they leave the consumer group.
func (r *replica) stop(t testing.TB) {
	t.Helper()
	if r.stopped {
		return
	}
	r.stopped = true
	for _, rc := range r.receivers {
		if err := rc.Shutdown(context.Background()); err != nil {
			t.Errorf("%s: shutdown: %v", r.name, err)
		}
	}
}

type consumerNop struct{}

func (consumerNop) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (consumerNop) ConsumeTraces(context.Context, ptrace.Traces) error {
	return nil
}

// traceRecorder counts the spans of every trace a replica consumed and
// passes the batch on.
type traceRecorder struct {
	mu    sync.Mutex
	spans map[pcommon.TraceID]int
	total int
	next  consumer.Traces
	// failing makes the pipeline refuse every batch, as a replica whose
	// pipeline is stuck or dying does; refused counts the refusals.
	failing bool
	refused int
}

func newTraceRecorder() *traceRecorder { return &traceRecorder{spans: map[pcommon.TraceID]int{}} }

func (r *traceRecorder) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *traceRecorder) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	r.mu.Lock()
	if r.failing {
		r.refused++
		r.mu.Unlock()
		return errors.New("pipeline refused the batch")
	}
	forEachSpan(td, func(_ pcommon.Resource, s ptrace.Span) {
		r.spans[s.TraceID()]++
		r.total++
	})
	r.mu.Unlock()
	return r.next.ConsumeTraces(ctx, td)
}

func (r *traceRecorder) setFailing(v bool) {
	r.mu.Lock()
	r.failing = v
	r.mu.Unlock()
}

func (r *traceRecorder) refusals() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

func (r *traceRecorder) snapshot() (map[pcommon.TraceID]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[pcommon.TraceID]int, len(r.spans))
	for k, v := range r.spans {
		out[k] = v
	}
	return out, r.total
}

func forEachSpan(td ptrace.Traces, fn func(pcommon.Resource, ptrace.Span)) {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				fn(rs.Resource(), ss.At(k))
			}
		}
	}
}

// derivedSink keeps the derived metrics of the processor's latest tick.
type derivedSink struct {
	mu    sync.Mutex
	ticks int
	last  pmetric.Metrics
}

func (d *derivedSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (d *derivedSink) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ticks++
	d.last = md
	return nil
}

func (d *derivedSink) latest() (int, pmetric.Metrics) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ticks, d.last
}

// graphView is what the derived metrics of one tick say about the graph.
type graphView struct {
	entities map[string]bool // entity id
	virtual  map[string]string
	edges    map[string]bool // source->target#type
}

func viewOf(md pmetric.Metrics) graphView {
	v := graphView{entities: map[string]bool{}, virtual: map[string]string{}, edges: map[string]bool{}}
	if md == (pmetric.Metrics{}) {
		return v
	}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		attrs := rm.Resource().Attributes()
		if id, ok := attrs.Get(entity.AttrEntityID); ok {
			v.entities[id.Str()] = true
			if virt, ok := attrs.Get(entity.AttrVirtual); ok && virt.Bool() {
				name, _ := attrs.Get(entity.AttrEntityName)
				v.virtual[id.Str()] = name.Str()
			}
		}
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if m.Type() != pmetric.MetricTypeGauge {
					continue
				}
				dps := m.Gauge().DataPoints()
				for p := 0; p < dps.Len(); p++ {
					a := dps.At(p).Attributes()
					src, ok1 := a.Get(entity.AttrEdgeSource)
					dst, ok2 := a.Get(entity.AttrEdgeTarget)
					typ, _ := a.Get(entity.AttrEdgeType)
					if ok1 && ok2 {
						v.edges[src.Str()+"->"+dst.Str()+"#"+typ.Str()] = true
					}
				}
			}
		}
	}
	return v
}

func (v graphView) merge(o graphView) {
	for k := range o.entities {
		v.entities[k] = true
	}
	for k, n := range o.virtual {
		v.virtual[k] = n
	}
	for k := range o.edges {
		v.edges[k] = true
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// recordTraces runs the plan and keeps its trace batches.
func recordTraces(t testing.TB, plan *scenarios.Plan) ([]ptrace.Traces, int) {
	t.Helper()
	var batches []ptrace.Traces
	sink := scenarios.Consumers{Traces: tracesFunc(func(_ context.Context, td ptrace.Traces) error {
		c := ptrace.NewTraces()
		td.CopyTo(c)
		batches = append(batches, c)
		return nil
	})}
	st, err := scenarios.Run(context.Background(), plan, sink, scenarios.Unpaced)
	if err != nil {
		t.Fatal(err)
	}
	return batches, st.Spans
}

type tracesFunc func(context.Context, ptrace.Traces) error

func (f tracesFunc) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (f tracesFunc) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	return f(ctx, td)
}

// waitFor polls cond until it holds or the deadline passes: the receivers
// consume on their own goroutines, so the test can only watch for the
// outcome.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	var state string
	if !pollUntil(timeout, 50*time.Millisecond, func() bool {
		var ok bool
		ok, state = cond()
		return ok
	}) {
		t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, state)
	}
}

// pollUntil polls cond every interval until it holds (true) or timeout
// passes (false).
func pollUntil(timeout, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

func describe(n int, what string) string { return fmt.Sprintf("%d %s", n, what) }

// resourceRecorder counts, per resource (its attributes as a key), the
// metric data points and log records a replica consumed.
type resourceRecorder struct {
	mu      sync.Mutex
	points  map[string]int
	records map[string]int
}

func newResourceRecorder() *resourceRecorder {
	return &resourceRecorder{points: map[string]int{}, records: map[string]int{}}
}

func (r *resourceRecorder) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *resourceRecorder) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		one := pmetric.NewMetrics()
		rm.CopyTo(one.ResourceMetrics().AppendEmpty())
		r.points[resourceID(rm.Resource())] += one.DataPointCount()
	}
	return nil
}

func (r *resourceRecorder) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		n := 0
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			n += rl.ScopeLogs().At(j).LogRecords().Len()
		}
		r.records[resourceID(rl.Resource())] += n
	}
	return nil
}

func (r *resourceRecorder) snapshot() (points, records map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	points, records = map[string]int{}, map[string]int{}
	for k, v := range r.points {
		points[k] = v
	}
	for k, v := range r.records {
		records[k] = v
	}
	return points, records
}

// resourceID is a resource's attributes in a stable order.
func resourceID(res pcommon.Resource) string {
	var kv []string
	res.Attributes().Range(func(k string, v pcommon.Value) bool {
		kv = append(kv, k+"="+v.AsString())
		return true
	})
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
