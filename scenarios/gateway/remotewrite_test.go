package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/exporters/durableremotewriteexporter"
	"github.com/junction-sre/junction/internal/promtest"
	"github.com/junction-sre/junction/internal/vmtest"
)

// checkRemoteWriteOnDisk fails the test unless the deployed gateway's
// remote write queues on a file_storage extension the service runs, by
// bytes, and retries with no time limit: the promises of docs/deploy.md
// "Failure behaviour".
func checkRemoteWriteOnDisk(t *testing.T) {
	t.Helper()
	cfg := durableremotewriteexporter.NewFactory().CreateDefaultConfig().(*durableremotewriteexporter.Config)
	loadSub(t, gatewayConfig, "exporters::durable_remote_write", cfg)
	q := cfg.QueueConfig.Get()
	if q == nil || q.StorageID == nil {
		t.Fatalf("%s: the gateway's remote write must queue on disk (sending_queue::storage)", gatewayConfig)
	}
	cm, err := confmaptest.LoadConf(gatewayConfig)
	if err != nil {
		t.Fatal(err)
	}
	running := false
	exts, _ := cm.Get("service::extensions").([]any)
	for _, e := range exts {
		if id, ok := e.(string); ok && id == q.StorageID.String() {
			running = true
		}
	}
	if !running || q.StorageID.Type() != component.MustNewType("file_storage") {
		t.Fatalf("%s: the remote-write queue's storage %s is not a file_storage extension in service::extensions", gatewayConfig, q.StorageID)
	}
	if q.Sizer != exporterhelper.RequestSizerTypeBytes {
		t.Errorf("%s: the remote-write queue is sized in %s; want bytes, so that its bound is the volume's", gatewayConfig, q.Sizer)
	}
	if b := cfg.RemoteWrite.BackOffConfig; !b.Enabled || b.MaxElapsedTime != 0 {
		t.Errorf("%s: remote write must retry until VictoriaMetrics takes the request (retry_on_failure enabled, max_elapsed_time 0), not %+v", gatewayConfig, b)
	}
}

// testTick is one gauge sample of junction_test_tick from service name at
// at, as an agent would write it to Kafka.
func testTick(name string, at time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", name)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("junction_test_tick")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
	dp.SetDoubleValue(1)
	return md
}

// TestRemoteWriteQueueSurvivesReplicaKill runs a junction gateway process
// on the deployed config while VictoriaMetrics is down, feeds it metrics
// through Kafka, SIGKILLs it once it has committed every record's offset,
// and restarts it on the same volume with VictoriaMetrics back: every
// metric whose offset was committed arrives, exactly once, and so do the
// derived series the killed replica emitted during the outage.
//
// It runs once on VictoriaMetrics and once on Prometheus (its remote-write
// receiver, Prometheus' defaults otherwise).
func TestRemoteWriteQueueSurvivesReplicaKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the junction binary")
	}
	checkRemoteWriteOnDisk(t)
	t.Run("victoria-metrics", func(t *testing.T) { remoteWriteQueueSurvivesReplicaKill(t, vmtest.Start(t)) })
	t.Run("prometheus", func(t *testing.T) { remoteWriteQueueSurvivesReplicaKill(t, promtest.Start(t)) })
}

// remoteWriteStore is a store the gateway remote-writes to.
type remoteWriteStore interface {
	RemoteWriteURL() string
	CountSamples(selector string, from, to time.Time) (int, error)
	Flush(testing.TB)
	Stop()
	Restart(testing.TB)
	String() string
}

func remoteWriteQueueSurvivesReplicaKill(t *testing.T, vm remoteWriteStore) {
	vm.Stop()
	broker := startBroker(t)
	brokers := broker.ListenAddrs()
	dir := t.TempDir()
	// The retries at test speed; everything else as deployed.
	fast := []string{
		"--set=exporters::durable_remote_write::retry_on_failure::initial_interval=100ms",
		"--set=exporters::durable_remote_write::retry_on_failure::max_interval=500ms",
	}
	backend, spans := startBackend(t)
	gw := runGatewayTo(t, "gateway-0", brokers[0], vm.RemoteWriteURL(), backend, dir, fast...)
	waitGroupStable(t, broker, membersPerReplica)

	te, me, _ := agentExporter(t, brokers)
	t.Cleanup(func() {
		_ = te.Shutdown(context.Background())
		_ = me.Shutdown(context.Background())
	})
	// Traces, so that the replica's graph has entities and its ticks
	// derived series.
	recorded, sent := recordTraces(t, shortPlan(t))
	for _, td := range recorded {
		if err := te.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	// Timestamps a minute back, so that the ticks sort before anything
	// the replicas derive and VictoriaMetrics keeps them.
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	const n = 40
	for i := 0; i < n; i++ {
		if err := me.ConsumeMetrics(context.Background(), testTick(fmt.Sprintf("svc-%02d", i), start.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	// A record's offset is committed once the pipeline took it, which is
	// once remote write's queue has it on disk.
	waitFor(t, "the gateway to commit every metrics record", 30*time.Second, func() (bool, string) {
		committed := int64(0)
		if g := broker.GroupInfo(groupID); g != nil {
			for _, c := range g.Commits["junction-metrics"] {
				committed += c.Offset
			}
		}
		return committed == n, fmt.Sprintf("%d of %d committed", committed, n)
	})
	// Derived series of the traces' graph, a tick a second, into the
	// queue.
	waitFor(t, "the traces to reach the backend", 30*time.Second, func() (bool, string) {
		n := spans.count()
		return n >= sent, fmt.Sprintf("%d of %d spans", n, sent)
	})
	time.Sleep(2500 * time.Millisecond)
	killedAt := time.Now()
	if err := gw.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = gw.Wait()

	vm.Restart(t)
	runGatewayTo(t, "gateway-0", brokers[0], vm.RemoteWriteURL(), backend, dir, fast...)
	last := start.Add(n * time.Second)
	waitFor(t, "every committed metric in "+vm.String(), 60*time.Second, func() (bool, string) {
		vm.Flush(t)
		got, err := vm.CountSamples("junction_test_tick", start, last)
		if err != nil {
			return false, err.Error()
		}
		if got > n {
			t.Fatalf("%d samples of junction_test_tick; %d were sent: some written twice", got, n)
		}
		return got == n, fmt.Sprintf("%d of %d samples", got, n)
	})
	// The replica derived a tick every second while VictoriaMetrics was
	// down; those it emitted before the kill come from the queue too,
	// after the metrics records queued before them.
	derived := 0
	waitFor(t, "the killed replica's derived ticks in "+vm.String(), 30*time.Second, func() (bool, string) {
		vm.Flush(t)
		n, err := vm.CountSamples(`junction_merge_sum{junction_replica="gateway-0"}`, start, killedAt)
		if err != nil {
			return false, err.Error()
		}
		derived = n
		return n > 0, describe(n, "derived samples from before the kill")
	})
	t.Logf("%d derived samples from the killed replica's queue", derived)
}
