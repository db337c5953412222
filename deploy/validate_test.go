package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/junction-sre/junction/internal/testbin"
)

// roleEnv is what the manifests set in each role's environment.
var roleEnv = []string{
	"K8S_NODE_NAME=node-1",
	"K8S_NAMESPACE=shop",
	"K8S_POD_NAME=checkout-0",
	"K8S_POD_UID=6f1c2a9e-0000-4000-8000-000000000001",
	"POD_NAME=junction-gateway-0",
	"KAFKA_BROKERS=kafka.kafka:9092",
	"REMOTE_WRITE_URL=http://vminsert.monitoring:8480/insert/0/prometheus/api/v1/write",
	"OTLP_BACKEND=tempo-distributor.monitoring:4317",
	"QUERY_URL=http://vmselect.monitoring:8481/select/0/prometheus",
	"ALERTS_OTLP=junction-store.junction:4317",
}

// validate runs `junction validate` on one config. Outside a pod there is
// no service-account CA file, which kubelet_stats reads when its pipeline is
// built; the check switches its auth_type to none and leaves the rest as
// shipped.
func validate(t *testing.T, config string) (string, error) {
	t.Helper()
	args := []string{"validate", "--config=file:" + config}
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "\n  kubelet_stats:") {
		args = append(args, "--set=receivers::kubelet_stats::auth_type=none")
	}
	cmd := exec.Command(testbin.Junction(t), args...)
	cmd.Env = append(os.Environ(), roleEnv...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestConfigsValidate runs every role's config through `junction validate`:
// component names, every key of every component, and pipeline wiring.
func TestConfigsValidate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("configs", "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("configs: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if out, err := validate(t, f); err != nil {
				t.Fatalf("junction validate --config %s: %v\n%s", f, err, out)
			}
		})
	}
}

// TestConfigValidateRejectsMistakes proves the check above can fail.
func TestConfigValidateRejectsMistakes(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("configs", "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, old, new, wantErr string }{
		{"misspelt kafka key", "    group_id: junction-gateway\n", "    groupid: junction-gateway\n", "groupid"},
		{"unknown component", "      exporters: [durable_remote_write]\n", "      exporters: [durable_remote_writer]\n", "durable_remote_writer"},
		{"remote-write WAL", "    sending_queue:\n      storage: file_storage/queue\n      sizer: bytes\n",
			"    wal:\n      directory: /tmp\n    sending_queue:\n      storage: file_storage/queue\n      sizer: bytes\n", "wal is replaced by sending_queue"},
		// The processor's query_source, which the ruler used to run on, is
		// the junction_ruler receiver now.
		{"processor query_source", "    mergeable_series: true\n",
			"    mergeable_series: true\n    query_source:\n      endpoint: http://vm:8428\n", "receivers::junction_ruler::store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(base), tt.old) {
				t.Fatalf("gateway.yaml lacks %q", tt.old)
			}
			p := filepath.Join(t.TempDir(), "gateway.yaml")
			if err := os.WriteFile(p, []byte(strings.Replace(string(base), tt.old, tt.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := validate(t, p)
			if err == nil {
				t.Fatalf("junction validate accepted %s", tt.name)
			}
			if !strings.Contains(out, tt.wantErr) {
				t.Fatalf("output does not mention %q:\n%s", tt.wantErr, out)
			}
		})
	}
}
