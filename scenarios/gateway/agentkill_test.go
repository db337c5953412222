package gateway

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestAgentProcessKilled runs bin/junction on the deployed Kafka agent
// config (deploy/configs/agent-kafka.yaml) while Kafka is down, sends it a
// short scenario's spans over OTLP, SIGKILLs it as soon as the last send
// is acknowledged, restarts it on the same directories and starts Kafka:
// every span the agent acknowledged reaches the topic. An agent that
// acknowledges spans before they are in its queue on disk (a batch
// processor in the pipeline, as the agent ran before) loses them: the test
// fails if a pipeline gets one back.
//
// Only what needs a Kubernetes node is left out of the pipelines (the
// kubelet_stats and file_log receivers, the k8s_attributes processor).
func TestAgentProcessKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the junction binary")
	}
	port := freePort(t)
	brokers := []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	audit := auditTopic(t, brokers, "junction-traces")
	dir := t.TempDir()
	otlp := freeAddr(t)
	env := []string{"K8S_NODE_NAME=node-0", "KAFKA_BROKERS=" + brokers[0]}
	flags := []string{
		"--set=receivers::otlp::protocols::grpc::endpoint=" + otlp,
		"--set=receivers::otlp::protocols::http::endpoint=" + freeAddr(t),
		"--set=extensions::file_storage/queue::directory=" + filepath.Join(dir, "queue"),
		"--set=extensions::file_storage/checkpoints::directory=" + filepath.Join(dir, "checkpoints"),
		"--set=service::pipelines::metrics::receivers=[otlp]",
		"--set=service::pipelines::logs::receivers=[otlp]",
		// Retries at test speed.
		"--set=exporters::kafka::retry_on_failure::initial_interval=100ms",
		"--set=exporters::kafka::retry_on_failure::max_interval=500ms",
		"--set=exporters::kafka::timeout=2s",
	}
	for _, signal := range []string{"traces", "metrics", "logs"} {
		procs := pipelineProcessors(t, agentConfig, signal)
		var kept []string
		for _, p := range procs {
			switch p {
			case "batch":
				t.Fatalf("%s: the %s pipeline runs the batch processor, which acknowledges telemetry before it reaches the kafka exporter's queue on disk: a crash loses it", agentConfig, signal)
			case "k8s_attributes":
			default:
				kept = append(kept, p)
			}
		}
		flags = append(flags, fmt.Sprintf("--set=service::pipelines::%s::processors=[%s]", signal, strings.Join(kept, ", ")))
	}
	agent := runJunction(t, "agent", agentConfig, env, flags...)

	recorded, sent := recordTraces(t, shortPlan(t))
	te, _, _ := startOTLP(t, otlp)
	for _, td := range recorded {
		if err := te.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	if err := agent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = agent.Wait()

	runJunction(t, "agent", agentConfig, env, flags...)
	startBrokerAt(t, port, t.TempDir())
	waitFor(t, "every acknowledged span in the topic", 60*time.Second, func() (bool, string) {
		at, _, err := audit.snapshot()
		if err != nil {
			return false, err.Error()
		}
		missing := 0
		for _, td := range recorded {
			forEachSpan(td, func(_ pcommon.Resource, s ptrace.Span) {
				if _, ok := at[spanKey{s.TraceID(), s.SpanID()}]; !ok {
					missing++
				}
			})
		}
		return missing == 0, fmt.Sprintf("%d of %d spans missing", missing, sent)
	})
	_, n, _ := audit.snapshot()
	t.Logf("%d spans acknowledged before the kill; %d read from the topic (%d twice)", sent, n, n-sent)
}

// pipelineProcessors lists the processors of a pipeline of a config file.
func pipelineProcessors(t *testing.T, file, signal string) []string {
	t.Helper()
	cm, err := confmaptest.LoadConf(file)
	if err != nil {
		t.Fatal(err)
	}
	var procs []string
	list, _ := cm.Get("service::pipelines::" + signal + "::processors").([]any)
	for _, p := range list {
		if s, ok := p.(string); ok {
			procs = append(procs, s)
		}
	}
	return procs
}
