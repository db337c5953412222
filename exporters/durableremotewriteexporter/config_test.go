package durableremotewriteexporter

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// load decodes testdata/config.yaml's section id into a default config and
// validates it as the collector does.
func load(t *testing.T, id string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := cm.Sub(id)
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestDefaultConfig(t *testing.T) {
	cfg, err := load(t, "durable_remote_write")
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.QueueConfig.Get()
	if q == nil {
		t.Fatal("sending_queue is off by default; want on")
	}
	if q.StorageID != nil || q.NumConsumers != 1 || q.QueueSize != 10000 || q.Sizer != exporterhelper.RequestSizerTypeRequests {
		t.Errorf("default sending_queue = %+v; want in memory, 1 consumer, 10000 requests", q)
	}
	if cfg.RemoteWrite.RemoteWriteQueue.Enabled || cfg.RemoteWrite.WAL.HasValue() {
		t.Error("the remote-write exporter's own queue or WAL is on by default")
	}
	if !cfg.RemoteWrite.BackOffConfig.Enabled || cfg.RemoteWrite.BackOffConfig.MaxElapsedTime != 30*time.Minute {
		t.Errorf("default retry_on_failure = %+v; want on for 30m", cfg.RemoteWrite.BackOffConfig)
	}
}

func TestConfigOnDisk(t *testing.T) {
	cfg, err := load(t, "durable_remote_write/disk")
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.QueueConfig.Get()
	if q == nil || q.StorageID == nil || *q.StorageID != component.MustNewIDWithName("file_storage", "queue") {
		t.Fatalf("sending_queue = %+v; want storage file_storage/queue", q)
	}
	if q.Sizer != exporterhelper.RequestSizerTypeBytes || q.QueueSize != 512<<20 || q.NumConsumers != 1 {
		t.Errorf("sending_queue = %+v; want 512 MiB by bytes, the default 1 consumer kept", q)
	}
	rw := cfg.RemoteWrite
	if rw.HTTP.Endpoint != "http://vminsert:8480/insert/0/prometheus/api/v1/write" {
		t.Errorf("http::endpoint = %q", rw.HTTP.Endpoint)
	}
	if rw.ExternalLabels["junction_replica"] != "gateway-0" {
		t.Errorf("external_labels = %v", rw.ExternalLabels)
	}
	if b := rw.BackOffConfig; b.InitialInterval != 5*time.Second || b.MaxInterval != 30*time.Second || b.MaxElapsedTime != time.Hour {
		t.Errorf("retry_on_failure = %+v", b)
	}
}

func TestConfigQueueOff(t *testing.T) {
	cfg, err := load(t, "durable_remote_write/no_queue")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QueueConfig.HasValue() {
		t.Error("sending_queue::enabled: false left the queue on")
	}
}

// Each error names the key the user wrote and, for the replaced keys, what
// to write instead.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"durable_remote_write/wal", "wal is replaced by sending_queue"},
		{"durable_remote_write/remote_write_queue", "remote_write_queue is replaced by sending_queue"},
		{"durable_remote_write/misspelt", "external_lables"},
		{"durable_remote_write/misspelt_queue", "storge"},
		{"durable_remote_write/misspelt_http", "'http' has invalid keys: endpont"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			_, err := load(t, tc.id)
			if err == nil {
				t.Fatalf("no error; want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "prometheus_remote_write") {
				t.Errorf("error %q names prometheus_remote_write, which the user did not write", err)
			}
		})
	}
}
