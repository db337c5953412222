package disttest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/junction-sre/junction/internal/kubetest"
	"github.com/junction-sre/junction/internal/testbin"
	"github.com/junction-sre/junction/internal/vmtest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func shopPod(name, uid string, restarts int32, containers ...corev1.Container) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID(uid)},
		Spec:       corev1.PodSpec{NodeName: "node-1", Containers: containers},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for i, c := range containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, RestartCount: restarts,
			ContainerID: fmt.Sprintf("containerd://%s%02d", uid[:8], i),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		})
	}
	return p
}

func container(name string, cpuReq, cpuLim, memReq, memLim string) corev1.Container {
	return corev1.Container{Name: name, Image: "registry.example/shop/" + name + ":1.0", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuReq), corev1.ResourceMemory: resource.MustParse(memReq)},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuLim), corev1.ResourceMemory: resource.MustParse(memLim)},
	}}
}

// vmVector runs an instant query at VictoriaMetrics and returns each
// series' labels (as name=value, sorted) with its value.
func vmVector(t *testing.T, vm *vmtest.VictoriaMetrics, q string) map[string]string {
	t.Helper()
	resp, err := http.Get(vm.URL + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Data struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	out := map[string]string{}
	for _, r := range ans.Data.Result {
		var kv []string
		for k, v := range r.Metric {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		out[strings.Join(kv, ",")] = fmt.Sprint(r.Value[1])
	}
	return out
}

// TestRulerWritesTheClusterPods runs the binary on the ruler's deploy
// config (deploy/configs/ruler.yaml) as shipped but for addresses,
// intervals and the Kubernetes credentials: its k8s_cluster receiver reads
// a fake Kubernetes API serving two pods, its graph's mergeable series go
// to a real VictoriaMetrics. The pods' summed requests and limits arrive
// there as the ruler's (junction_replica="ruler"), and none of the
// receiver's own metrics do.
func TestRulerWritesTheClusterPods(t *testing.T) {
	vm := vmtest.Start(t)
	api := kubetest.Start(t,
		shopPod("checkout-6d8f7-x2k4p", "0b7c6e1e-3f0a-4c1e-9d55-2f1e0c9a1b01", 2,
			container("app", "250m", "500m", "256Mi", "512Mi"), container("envoy", "50m", "100m", "64Mi", "128Mi")),
		shopPod("catalog-5c9b8-a1b2c", "1c8d7f2f-4a1b-4d2f-8e66-3a2f1d0b2c00", 0,
			container("app", "500m", "1", "512Mi", "1Gi")),
	)
	health := freeAddr(t)
	cmd := exec.Command(testbin.Junction(t),
		"--config=file:"+repoFile(t, "deploy/configs/ruler.yaml"),
		"--set=extensions::health_check::endpoint="+health,
		"--set=service::telemetry::metrics::level=none",
		"--set=receivers::junction_ruler::rules::state_file="+filepath.Join(t.TempDir(), "rules-state.json"),
		// Outside a cluster: the fake API through a kubeconfig instead of
		// the pod's service account; ticks every 2s instead of 15s.
		"--set=receivers::k8s_cluster::auth_type=kubeConfig",
		"--set=receivers::k8s_cluster::collection_interval=2s",
		"--set=processors::correlation::emit_interval=2s",
	)
	cmd.Env = append(cmd.Environ(),
		"KUBECONFIG="+api.Kubeconfig,
		"QUERY_URL="+vm.URL,
		"REMOTE_WRITE_URL="+vm.RemoteWriteURL(),
		"ALERTS_OTLP="+freeAddr(t),
	)
	jn := testbin.Run(t, cmd)
	logs := jn.Logs
	waitHTTP(t, "http://"+health+"/", logs)

	want := map[string]string{
		"pod:shop/checkout-6d8f7-x2k4p cpu.request_cores":    "0.3",
		"pod:shop/checkout-6d8f7-x2k4p cpu.limit_cores":      "0.6",
		"pod:shop/checkout-6d8f7-x2k4p memory.request_bytes": fmt.Sprint(320 << 20),
		"pod:shop/catalog-5c9b8-a1b2c cpu.request_cores":     "0.5",
		"pod:shop/catalog-5c9b8-a1b2c memory.limit_bytes":    fmt.Sprint(1 << 30),
	}
	const q = `junction_merge_sum{junction_window="1m",junction_feature=~"cpu.request_cores|cpu.limit_cores|memory.request_bytes|memory.limit_bytes"}`
	got := map[string]string{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		vm.Flush(t)
		clear(got)
		for labels, v := range vmVector(t, vm, q) {
			if !strings.Contains(labels, "junction_replica=ruler") {
				t.Errorf("a series not labelled as the ruler's: %s", labels)
			}
			var id, feature string
			for _, kv := range strings.Split(labels, ",") {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "junction_entity_id":
					id = v
				case "junction_feature":
					feature = v
				}
			}
			got[id+" "+feature] = v
		}
		complete := true
		for k := range want {
			if _, ok := got[k]; !ok {
				complete = false
			}
		}
		if complete {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pods' requests and limits not in VictoriaMetrics after 60s: got %v\n%s", got, logs.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
	// The receiver's own metrics (k8s.container.*, k8s.pod.phase, ...)
	// are filtered out before remote write.
	if raw := vmVector(t, vm, `{__name__=~"k8s.*"}`); len(raw) > 0 {
		t.Errorf("k8s_cluster's own metrics reached VictoriaMetrics: %v", raw)
	}
}
