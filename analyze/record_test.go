package analyze

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/junction-sre/junction/internal/testbin"
	"github.com/junction-sre/junction/scenarios"
)

// TestAnalyzeRecordingOfJunctionsFileExporter records with the built
// junction binary itself, as docs/analyze.md tells users to: its OTLP
// receiver takes the bottleneck scenario over gRPC and its contrib `file`
// exporters write traces as JSON lines and metrics and logs, shared in one
// file, as zstd-compressed framed protobuf. `junction analyze` must then
// read back every span, data point and log record the simulator sent and
// find the scenario's edges and its blamed entity.
func TestAnalyzeRecordingOfJunctionsFileExporter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the junction binary")
	}
	bin := testbin.Junction(t)
	dir := t.TempDir()
	traces, rest := filepath.Join(dir, "traces.jsonl"), filepath.Join(dir, "rest.pb")
	endpoint := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	config := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
exporters:
  file/traces:
    path: %s
    format: json
  file/rest:
    path: %s
    format: proto
    compression: zstd
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file/traces]
    metrics:
      receivers: [otlp]
      exporters: [file/rest]
    logs:
      receivers: [otlp]
      exporters: [file/rest]
  telemetry:
    metrics:
      level: none
`, endpoint, traces, rest)
	cfg := filepath.Join(dir, "record.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	var logs lockedBuffer
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("junction did not exit cleanly on SIGTERM: %v\n%s", err, logs.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("junction did not stop within 30s of SIGTERM\n%s", logs.String())
		}
	}
	defer stop()

	plan, err := scenarios.NewPlan(scenarios.Bottleneck)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := scenarios.DialOTLP(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := scenarios.Run(context.Background(), plan, sink, scenarios.Unpaced)
	_ = sink.Close()
	if err != nil {
		t.Fatalf("sending the scenario: %v\n%s", err, logs.String())
	}
	// Shutdown flushes the file exporters; the files are complete after it.
	stop()
	if t.Failed() {
		return
	}
	checkBottleneckAnalysis(t, plan, stats, []string{traces, rest}, []string{CompressionNone, CompressionZstd})
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
