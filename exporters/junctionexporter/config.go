package junctionexporter

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
)

// Config is the junction exporter's configuration.
type Config struct {
	// Storage is where series and alert history are kept.
	Storage StorageConfig `mapstructure:"storage"`
	// API is the query API's HTTP server: address, TLS, auth.
	API APIConfig `mapstructure:"api"`
	// Alertmanager sends firing and resolved alerts to Alertmanager.
	Alertmanager AlertmanagerConfig `mapstructure:"alertmanager"`
	// MaxEntities, MaxEdges and MaxRules bound the latest state kept in
	// memory for /entities, /graph and /rules; what does not fit is
	// dropped and counted.
	MaxEntities int `mapstructure:"max_entities"`
	MaxEdges    int `mapstructure:"max_edges"`
	MaxRules    int `mapstructure:"max_rules"`
	// EntityTTL forgets entities and edges not updated for this long; it
	// is also how far back the latest state is rebuilt at start.
	EntityTTL time.Duration `mapstructure:"entity_ttl"`
	// GraphCache keeps per-minute means of the graph's stats in memory.
	GraphCache GraphCacheConfig `mapstructure:"graph_cache"`
}

// GraphCacheConfig configures the per-minute rollup /api/v1/graph reads for
// recent ranges; older ranges are read from storage.
type GraphCacheConfig struct {
	// Window is how far back the rollup reaches; 0 turns it off.
	Window time.Duration `mapstructure:"window"`
	// MaxSeries bounds the node and edge feature series it keeps (each
	// costs about 16 bytes per minute of window).
	MaxSeries int `mapstructure:"max_series"`
}

// StorageConfig configures the embedded storage.
type StorageConfig struct {
	Directory string        `mapstructure:"directory"`
	Retention time.Duration `mapstructure:"retention"`
	// FlushInterval is how often what was received is made durable: the
	// alert log is fsync'd every interval, and VictoriaMetrics writes series
	// parts older than the interval to disk, so a kill -9 loses at most the
	// alerts of one interval and the series of two plus 2 s.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// MinFreeBytes: below this much free space Start fails and the store
	// turns read-only.
	MinFreeBytes uint64 `mapstructure:"min_free_bytes"`
	// MaxAlertInstances bounds the alert instances kept (the oldest
	// resolved go first); MaxAlertHistory the state changes kept per
	// instance; AlertLogMaxBytes the alert log's size before compaction.
	MaxAlertInstances int   `mapstructure:"max_alert_instances"`
	MaxAlertHistory   int   `mapstructure:"max_alert_history"`
	AlertLogMaxBytes  int64 `mapstructure:"alert_log_max_bytes"`
}

// APIConfig is the collector's HTTP server config plus API limits.
type APIConfig struct {
	confighttp.ServerConfig `mapstructure:",squash"`
	// MaxStreams bounds the open /api/v1/stream connections.
	MaxStreams int `mapstructure:"max_streams"`
}

// AlertmanagerConfig configures notification, sent with Prometheus'
// notifier. No endpoint turns it off.
type AlertmanagerConfig struct {
	// Endpoint is one Alertmanager's base URL; Endpoints lists several,
	// and every alert is sent to each (as Prometheus does). Set one of
	// the two.
	Endpoint  string   `mapstructure:"endpoint"`
	Endpoints []string `mapstructure:"endpoints"`
	// ResendInterval is how often firing alerts (and alerts resolved in
	// the last 15 minutes) are sent again; it is also what makes a failed
	// send good.
	ResendInterval time.Duration `mapstructure:"resend_interval"`
	// Timeout bounds one POST, and the sending of what is still queued
	// at shutdown.
	Timeout time.Duration `mapstructure:"timeout"`
	// QueueSize bounds the alerts waiting for each Alertmanager and the
	// alerts remembered for resending.
	QueueSize int `mapstructure:"queue_size"`

	// InitialBackoff and MaxBackoff were the retry delays of Junction's
	// own client. Prometheus' notifier does not retry a failed batch: the
	// next resend sends it again. They are decoded only so that Validate
	// can say so.
	InitialBackoff any `mapstructure:"initial_backoff"`
	MaxBackoff     any `mapstructure:"max_backoff"`
}

// EndpointList is the Alertmanagers alerts are sent to: endpoints, or
// endpoint alone.
func (c AlertmanagerConfig) EndpointList() []string {
	if c.Endpoint != "" {
		return []string{c.Endpoint}
	}
	return c.Endpoints
}

func (c AlertmanagerConfig) validate() []error {
	var errs []error
	removed := []struct {
		key string
		v   any
	}{{"alertmanager.initial_backoff", c.InitialBackoff}, {"alertmanager.max_backoff", c.MaxBackoff}}
	for _, r := range removed {
		if key := r.key; r.v != nil {
			errs = append(errs, fmt.Errorf("%s is no longer supported: a failed send is not retried with backoff but sent again every alertmanager.resend_interval; remove %s and set alertmanager.resend_interval for how soon it is retried", key, key))
		}
	}
	if c.Endpoint != "" && len(c.Endpoints) > 0 {
		errs = append(errs, errors.New("set alertmanager.endpoint (one Alertmanager) or alertmanager.endpoints (a list), not both"))
	}
	seen := map[string]string{}
	for i, ep := range c.EndpointList() {
		key := "alertmanager.endpoint"
		if c.Endpoint == "" {
			key = fmt.Sprintf("alertmanager.endpoints[%d]", i)
		}
		u, err := url.Parse(ep)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("%s %q must be an http:// or https:// URL such as http://127.0.0.1:9093", key, ep))
			continue
		case u.User != nil || u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, fmt.Errorf("%s %q must be scheme://host:port with an optional path prefix: credentials, query and fragment are not sent", key, ep))
			continue
		}
		norm := u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/")
		if prev, ok := seen[norm]; ok {
			errs = append(errs, fmt.Errorf("%s %q is the same Alertmanager as %s: every alert would be sent to it twice", key, ep, prev))
		}
		seen[norm] = key
	}
	if len(c.EndpointList()) > 0 {
		if c.ResendInterval <= 0 {
			errs = append(errs, errors.New("alertmanager.resend_interval must be positive"))
		}
		if c.Timeout <= 0 {
			errs = append(errs, errors.New("alertmanager.timeout must be positive"))
		}
		if c.QueueSize <= 0 {
			errs = append(errs, errors.New("alertmanager.queue_size must be positive"))
		}
	}
	return errs
}

// Validate checks the configuration; messages name the YAML key.
func (c *Config) Validate() error {
	var errs []error
	positive := func(key string, ok bool) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s must be positive", key))
		}
	}
	if c.Storage.Directory == "" {
		errs = append(errs, errors.New("storage.directory must not be empty"))
	}
	if c.Storage.Retention < 24*time.Hour {
		errs = append(errs, fmt.Errorf("storage.retention must be at least 24h (VictoriaMetrics' minimum), got %s", c.Storage.Retention))
	}
	if c.Storage.FlushInterval < time.Second {
		errs = append(errs, fmt.Errorf("storage.flush_interval must be at least 1s, got %s", c.Storage.FlushInterval))
	}
	positive("storage.max_alert_instances", c.Storage.MaxAlertInstances > 0)
	positive("storage.max_alert_history", c.Storage.MaxAlertHistory > 0)
	if c.Storage.AlertLogMaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("storage.alert_log_max_bytes must be at least 1048576, got %d", c.Storage.AlertLogMaxBytes))
	}
	if c.API.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("api.endpoint must not be empty (default 127.0.0.1:8480)"))
	}
	positive("api.max_streams", c.API.MaxStreams > 0)
	positive("max_entities", c.MaxEntities > 0)
	positive("max_edges", c.MaxEdges > 0)
	positive("max_rules", c.MaxRules > 0)
	positive("entity_ttl", c.EntityTTL > 0)
	if c.GraphCache.Window < 0 {
		errs = append(errs, fmt.Errorf("graph_cache.window must not be negative, got %s", c.GraphCache.Window))
	}
	if c.GraphCache.Window > 0 && c.GraphCache.MaxSeries <= 0 {
		errs = append(errs, errors.New("graph_cache.max_series must be positive when graph_cache.window is set"))
	}
	errs = append(errs, c.Alertmanager.validate()...)
	return errors.Join(errs...)
}
