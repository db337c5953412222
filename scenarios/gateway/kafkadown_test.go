package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// extensionHost hands components the extensions of a collector.
type extensionHost map[component.ID]component.Component

func (h extensionHost) GetExtensions() map[component.ID]component.Component { return h }

// agentOnDisk is the agent's traces path to Kafka exactly as deployed in
// agent-kafka.yaml: the kafka exporter with its sending queue on the
// file_storage/queue extension, whose directory is dir. Only the retry
// backoff and the produce timeout are cut to test speed. logs receives the
// exporter's log.
type agentOnDisk struct {
	storage  extension.Extension
	exporter exporter.Traces
}

func startAgentOnDisk(t *testing.T, brokers []string, dir string, logs zapcore.Core) *agentOnDisk {
	t.Helper()
	ctx := context.Background()
	ff := filestorage.NewFactory()
	scfg := ff.CreateDefaultConfig().(*filestorage.Config)
	loadSub(t, agentConfig, "extensions::file_storage/queue", scfg)
	scfg.Directory = dir
	if err := scfg.Validate(); err != nil {
		t.Fatal(err)
	}
	storageID := component.MustNewIDWithName("file_storage", "queue")
	sset := extensiontest.NewNopSettings(ff.Type())
	sset.ID = storageID
	storage, err := ff.Create(ctx, sset, scfg)
	if err != nil {
		t.Fatal(err)
	}
	host := extensionHost{storageID: storage}
	if err := storage.Start(ctx, host); err != nil {
		t.Fatal(err)
	}

	f := kafkaexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*kafkaexporter.Config)
	loadSub(t, agentConfig, "exporters::kafka", cfg)
	q := cfg.QueueBatchConfig.Get()
	if q == nil || q.StorageID == nil || *q.StorageID != storageID {
		t.Fatalf("%s: the agent's kafka exporter must queue on %s", agentConfig, storageID)
	}
	if !cfg.BackOffConfig.Enabled || cfg.BackOffConfig.MaxElapsedTime < time.Minute {
		t.Fatalf("%s: the agent's kafka exporter must retry for minutes, not %v", agentConfig, cfg.BackOffConfig.MaxElapsedTime)
	}
	cfg.ClientConfig.Brokers = brokers
	cfg.BackOffConfig.InitialInterval = 100 * time.Millisecond
	cfg.BackOffConfig.MaxInterval = 500 * time.Millisecond
	cfg.TimeoutSettings.Timeout = 2 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	set := exportertest.NewNopSettings(kafkaType)
	// The queue's key in the storage is the exporter's id: the same after
	// a restart.
	set.ID = component.NewID(kafkaType)
	set.Logger = zap.New(logs)
	te, err := f.CreateTraces(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := te.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	a := &agentOnDisk{storage: storage, exporter: te}
	t.Cleanup(func() { a.stop(t) })
	return a
}

// stop shuts the agent down as a restart would: what the queue holds stays
// on disk.
func (a *agentOnDisk) stop(t *testing.T) {
	t.Helper()
	if a.exporter == nil {
		return
	}
	if err := a.exporter.Shutdown(context.Background()); err != nil {
		t.Errorf("kafka exporter shutdown: %v", err)
	}
	if err := a.storage.Shutdown(context.Background()); err != nil {
		t.Errorf("file storage shutdown: %v", err)
	}
	a.exporter = nil
}

// startBrokerAt starts the test broker on port, its log in dataDir: a
// broker started again on the same directory has the records the last one
// had.
func startBrokerAt(t *testing.T, port int, dataDir string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dataDir),
		kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestAgentRidesOutKafkaOutage runs the agent's traces path to Kafka
// (agent-kafka.yaml) through two outages.
//
// Kafka is not up when the agent starts: the spans sent go into the queue
// on disk, and the exporter retries them; the agent restarts on the same
// queue directory, Kafka comes up, and the spans arrive.
//
// Kafka then goes down under the running agent, and comes back on the same
// address with its log: the spans sent meanwhile arrive too. Every span
// sent is in the topic at the end.
func TestAgentRidesOutKafkaOutage(t *testing.T) {
	batches, sent := recordTraces(t, shortPlan(t))
	want := map[spanKey]bool{}
	for _, td := range batches {
		forEachSpan(td, func(_ pcommon.Resource, s ptrace.Span) { want[spanKey{s.TraceID(), s.SpanID()}] = true })
	}
	third := len(batches) / 3
	first, second, last := batches[:third], batches[third:2*third], batches[2*third:]

	port := freePort(t)
	brokers := []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	kafkaDir, queueDir := t.TempDir(), t.TempDir()
	// The audit reads the topic throughout, reconnecting whenever Kafka is
	// back.
	audit := auditTopic(t, brokers, "junction-traces")
	inTopic := func(bs []ptrace.Traces) func() (bool, string) {
		return func() (bool, string) {
			at, _, err := audit.snapshot()
			if err != nil {
				return false, err.Error()
			}
			missing, n := 0, 0
			for _, td := range bs {
				forEachSpan(td, func(_ pcommon.Resource, s ptrace.Span) {
					n++
					if _, ok := at[spanKey{s.TraceID(), s.SpanID()}]; !ok {
						missing++
					}
				})
			}
			return missing == 0, fmt.Sprintf("%d of %d spans missing", missing, n)
		}
	}

	logs := &clientLog{}
	agent := startAgentOnDisk(t, brokers, queueDir, logs.core())
	send := func(bs []ptrace.Traces) {
		for _, td := range bs {
			if err := agent.exporter.ConsumeTraces(context.Background(), td); err != nil {
				t.Fatal(err)
			}
		}
	}

	// 1. Kafka is not up yet.
	send(first)
	waitFor(t, "the exporter to retry with Kafka not up", 20*time.Second, func() (bool, string) {
		n := logs.retries()
		return n >= 1, describe(n, "retries")
	})
	agent.stop(t)
	retried := logs.retries()
	agent = startAgentOnDisk(t, brokers, queueDir, logs.core())
	waitFor(t, "the restarted agent to retry what its queue held", 20*time.Second, func() (bool, string) {
		n := logs.retries() - retried
		return n >= 1, describe(n, "retries since the restart")
	})
	up := time.Now()
	broker := startBrokerAt(t, port, kafkaDir)
	waitFor(t, "the spans queued before Kafka was up in the topic", 30*time.Second, inTopic(first))
	firstTook := time.Since(up)

	// 2. Kafka goes down under the running agent.
	send(second)
	waitFor(t, "the second third in the topic", 30*time.Second, inTopic(second))
	broker.Close()
	dropped := logs.connectionErrors()
	send(last)
	waitFor(t, "the agent's client to find Kafka gone", 20*time.Second, func() (bool, string) {
		n := logs.connectionErrors() - dropped
		return n >= 1, describe(n, "connection errors")
	})
	up = time.Now()
	startBrokerAt(t, port, kafkaDir)
	waitFor(t, "the spans sent while Kafka was down in the topic", 30*time.Second, inTopic(last))
	lastTook := time.Since(up)

	at, n, _ := audit.snapshot()
	for k := range want {
		if _, ok := at[k]; !ok {
			t.Errorf("span %v not in the topic", k)
		}
	}
	t.Logf("%d spans sent; %d retries; queued spans in the topic %v after Kafka came up, %v after it came back; %d spans read from the topic (%d twice)",
		sent, logs.retries(), firstTook.Round(100*time.Millisecond), lastTook.Round(100*time.Millisecond), n, n-sent)
}

// clientLog counts the exporter's "will retry" log entries and its Kafka
// client's failed connections.
type clientLog struct {
	mu          sync.Mutex
	retry, conn int
}

func (r *clientLog) core() zapcore.Core {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.DebugLevel)
	return zapcore.RegisterHooks(core, func(e zapcore.Entry) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case e.Message == "Exporting failed. Will retry the request after interval.":
			r.retry++
		case strings.Contains(e.Message, "unable to open connection"), strings.Contains(e.Message, "read from broker errored"),
			strings.Contains(e.Message, "write to broker errored"):
			r.conn++
		}
		return nil
	})
}

func (r *clientLog) retries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retry
}

func (r *clientLog) connectionErrors() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn
}
