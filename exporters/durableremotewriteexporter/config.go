package durableremotewriteexporter

import (
	"errors"
	"fmt"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config is the prometheus_remote_write exporter's configuration, every key
// of it at the same place, plus the collector's standard sending_queue.
// The remote-write exporter's own queue (remote_write_queue) and WAL (wal)
// are refused: sending_queue replaces both.
type Config struct {
	// RemoteWrite is what the prometheus_remote_write exporter is given:
	// endpoint, translation, labels, timeout. Its retry_on_failure drives
	// the sending_queue's retries instead of the exporter's own.
	RemoteWrite prometheusremotewriteexporter.Config `mapstructure:",squash"`
	// QueueConfig is the collector's exporter queue; with storage set (a
	// file_storage extension) it is on disk and survives a restart.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
}

// Keys this exporter reads itself; everything else is the remote-write
// exporter's, decoded (and checked for unknown keys) by its own Unmarshal.
const (
	queueKey = "sending_queue"
	walKey   = "wal"
	rwqKey   = "remote_write_queue"
	// remoteWriteKey names the part the remote-write config decodes; it
	// shows in decoding errors ("'durable_remote_write' decoding failed:
	// 'http' has invalid keys: endpont"), so it is the exporter's name.
	remoteWriteKey = "durable_remote_write"
)

var errReplaced = errors.New("is replaced by sending_queue in durable_remote_write: set sending_queue::queue_size and sending_queue::storage (a file_storage extension) instead")

// Unmarshal splits sending_queue from the rest, which the remote-write
// exporter's own Unmarshal decodes (and checks for unknown keys).
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	for _, key := range []string{walKey, rwqKey} {
		if conf.IsSet(key) {
			return fmt.Errorf("%s %w", key, errReplaced)
		}
	}
	rest := conf.ToStringMap()
	in := map[string]any{remoteWriteKey: rest}
	if q, ok := rest[queueKey]; ok {
		delete(rest, queueKey)
		in[queueKey] = q
	}
	// Through a struct, so that the decoder calls the remote-write
	// config's Unmarshal as it does for a component config.
	parts := struct {
		RemoteWrite *prometheusremotewriteexporter.Config                     `mapstructure:"durable_remote_write"`
		Queue       *configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	}{&c.RemoteWrite, &c.QueueConfig}
	return confmap.NewFromStringMap(in).Unmarshal(&parts)
}

// Validate checks what the remote-write exporter's own Validate does not:
// that its queue and WAL, which this exporter replaces, stay off. The
// collector validates RemoteWrite and QueueConfig themselves.
func (c *Config) Validate() error {
	if c.RemoteWrite.RemoteWriteQueue.Enabled {
		return fmt.Errorf("%s %w", rwqKey, errReplaced)
	}
	if c.RemoteWrite.WAL.HasValue() {
		return fmt.Errorf("%s %w", walKey, errReplaced)
	}
	return nil
}
