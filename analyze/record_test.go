package analyze

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

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

	jn := testbin.Start(t, dir, "--config", cfg)

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
		t.Fatalf("sending the scenario: %v\n%s", err, jn.Logs.String())
	}
	// Shutdown flushes the file exporters; the files are complete after it.
	jn.Stop()
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
