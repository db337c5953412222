package gateway

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/kubetest"
	"github.com/junction-sre/junction/internal/mergedgraph"
	"github.com/junction-sre/junction/internal/testbin"
	"github.com/junction-sre/junction/internal/vmtest"
)

// freePort is a loopback TCP port free when asked, for a server the test
// starts later (and again on the same port).
func freePort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runGateway runs the junction binary on deploy/configs/gateway.yaml as
// replica name. Only what a pod provides differently is set: the
// environment, writable directories, loopback ports, and a 1s emit interval
// so the test need not wait 15s.
func runGateway(t *testing.T, name, brokers, remoteWrite string) {
	t.Helper()
	// No trace backend: the traces exporter queues and retries.
	runGatewayTo(t, name, brokers, remoteWrite, freeAddr(t), t.TempDir())
}

// runGatewayTo is runGateway with the traces and logs sent on to the OTLP
// gRPC backend at backend, the replica's queue and WAL in dir (the pod's
// volume: a restarted replica given the same dir finds them again), and
// flags added; it returns the running process.
func runGatewayTo(t *testing.T, name, brokers, remoteWrite, backend, dir string, flags ...string) *exec.Cmd {
	t.Helper()
	return runJunction(t, name, gatewayConfig, []string{
		"POD_NAME=" + name,
		"KAFKA_BROKERS=" + brokers,
		"REMOTE_WRITE_URL=" + remoteWrite,
		"OTLP_BACKEND=" + backend,
	}, append([]string{
		"--set=processors::correlation::emit_interval=1s",
		"--set=extensions::file_storage/queue::directory=" + filepath.Join(dir, "queue"),
		"--set=receivers::kafka::session_timeout=3s",
		"--set=receivers::kafka::heartbeat_interval=300ms",
	}, flags...)...)
}

// runRuler runs the junction binary on deploy/configs/ruler.yaml: its
// junction_ruler receiver evaluates every group of the rule packs at start,
// then on each group's interval.
func runRuler(t *testing.T, vm *vmtest.VictoriaMetrics) {
	t.Helper()
	// Its k8s_cluster receiver reads a fake Kubernetes API without pods:
	// outside a cluster there is no service account.
	api := kubetest.Start(t)
	runJunction(t, "ruler", rulerConfig, []string{
		"QUERY_URL=" + vm.URL,
		"REMOTE_WRITE_URL=" + vm.RemoteWriteURL(),
		"ALERTS_OTLP=" + freeAddr(t),
		"KUBECONFIG=" + api.Kubeconfig,
	},
		"--set=receivers::junction_ruler::rules::state_file="+filepath.Join(t.TempDir(), "rules-state.json"),
		"--set=receivers::k8s_cluster::auth_type=kubeConfig",
	)
}

// runJunction runs the binary on config with env and extra flags, its
// health check on a free loopback port and no telemetry endpoint, until the
// test ends (or the test kills it), and returns the process once healthy.
func runJunction(t *testing.T, name, config string, env []string, flags ...string) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	health := freeAddr(t)
	args := append([]string{"--config=file:" + config,
		"--set=extensions::health_check::endpoint=" + health,
		"--set=service::telemetry::metrics::level=none",
	}, flags...)
	cmd := exec.Command(testbin.Junction(t), args...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(dir, "junction.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log:\n%s", name, b)
		}
	})
	waitFor(t, name+" to be healthy", 60*time.Second, func() (bool, string) {
		if cmd.ProcessState != nil {
			return false, "exited"
		}
		resp, err := http.Get("http://" + health + "/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return cmd
}

// seriesLabels returns the distinct values of label on the series matching
// match in VictoriaMetrics.
func seriesLabels(vm *vmtest.VictoriaMetrics, match, label string) ([]string, error) {
	resp, err := http.Get(vm.URL + "/api/v1/label/" + label + "/values?match[]=" + url.QueryEscape(match) +
		"&start=0&end=" + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Data []string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	sort.Strings(r.Data)
	return r.Data, nil
}

// TestGatewayBinary runs two junction processes on the deployed gateway
// config against the in-process broker and VictoriaMetrics: the agents'
// traces go in through Kafka, and both replicas' mergeable series come out
// in VictoriaMetrics, each with its replica label. Then a junction process
// on the deployed ruler config evaluates the rule packs on the merged
// snapshot.
func TestGatewayBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the junction binary")
	}
	vm := vmtest.Start(t)
	broker := startBroker(t)
	brokers := broker.ListenAddrs()
	runGateway(t, "gateway-0", brokers[0], vm.RemoteWriteURL())
	runGateway(t, "gateway-1", brokers[0], vm.RemoteWriteURL())
	// Each replica's kafka receiver runs one group member per signal.
	waitGroupStable(t, broker, 2*3)

	batches, _ := recordTraces(t, shortPlan(t))
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

	want := []string{"gateway-0", "gateway-1"}
	// The entity and edge series arrive in separate remote-write requests:
	// wait for both, not for the first and then look once for the other.
	var edges []string
	waitFor(t, "both replicas' mergeable entity and edge series in VictoriaMetrics", 90*time.Second, func() (bool, string) {
		vm.Flush(t)
		got, err := seriesLabels(vm, `junction_merge_entity{junction_entity_id="service:shop/checkout"}`, "junction_replica")
		if err != nil {
			return false, err.Error()
		}
		edges, err = seriesLabels(vm, `junction_merge_sum{junction_feature="request.rate",junction_edge_source!=""}`, "junction_edge_target")
		if err != nil {
			return false, err.Error()
		}
		return fmt.Sprint(got) == fmt.Sprint(want) && len(edges) > 0, fmt.Sprintf("replicas %v, edge targets %v", got, edges)
	})
	t.Logf("edge targets: %v", edges)

	// The merged snapshot as of now (VictoriaMetrics with its default
	// -search.latencyOffset of 30s) holds the replicas' latest ticks.
	src, err := mergedgraph.New(mergedgraph.Config{URL: vm.URL, Lookback: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var snap *entity.Snapshot
	waitFor(t, "the merged snapshot as of now", 20*time.Second, func() (bool, string) {
		var err error
		snap, err = src.Snapshot(context.Background(), time.Now())
		if err != nil {
			return false, err.Error()
		}
		_, ok := snap.Entity("service:shop/checkout")
		return ok, describe(len(snap.Entities), "entities")
	})
	t.Logf("merged snapshot as of now after %v: %d entities, %d edges", time.Since(start).Round(time.Millisecond), len(snap.Entities), len(snap.Edges))
	checkout, ok := snap.Entity("service:shop/checkout")
	if !ok || checkout.Features["request.rate"] <= 0 || len(snap.Edges) == 0 {
		t.Fatalf("merged snapshot now: checkout %+v, %d entities, %d edges", checkout, len(snap.Entities), len(snap.Edges))
	}
	// The replicas' evidence is in it: checkout's slowest requests, each
	// a trace the agents sent.
	sent := map[string]bool{}
	for _, td := range batches {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			sss := td.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				for k := 0; k < sss.At(j).Spans().Len(); k++ {
					id := sss.At(j).Spans().At(k).TraceID()
					sent[hex.EncodeToString(id[:])] = true
				}
			}
		}
	}
	if len(checkout.Evidence.Exemplars) == 0 {
		t.Fatalf("merged snapshot now: checkout has no exemplars")
	}
	for _, x := range checkout.Evidence.Exemplars {
		if !sent[x.TraceID] || x.Value <= 0 {
			t.Errorf("checkout's exemplar %+v: no trace the agents sent", x)
		}
	}
	t.Logf("checkout's merged evidence: %d exemplars", len(checkout.Evidence.Exemplars))

	// The ruler evaluates the rule packs on the merged snapshot: each
	// evaluation remote-writes the rules' status.
	runRuler(t, vm)
	waitFor(t, "the ruler's rule status in VictoriaMetrics", 60*time.Second, func() (bool, string) {
		vm.Flush(t)
		got, err := seriesLabels(vm, `junction_rule_status{junction_rule_health="ok"}`, "junction_rule_name")
		if err != nil {
			return false, err.Error()
		}
		return len(got) >= 10, fmt.Sprintf("%d rules evaluated: %v", len(got), got)
	})
}
