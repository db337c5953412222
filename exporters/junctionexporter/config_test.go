package junctionexporter

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id      component.ID
		check   func(t *testing.T, c *Config)
		wantErr []string
	}{
		{
			id: component.NewID(Type),
			check: func(t *testing.T, c *Config) {
				if c.API.NetAddr.Endpoint != "127.0.0.1:8480" || c.Storage.Directory != "./data" || c.Alertmanager.Endpoint != "" {
					t.Errorf("defaults: %+v", c)
				}
			},
		},
		{
			id: component.NewIDWithName(Type, "custom"),
			check: func(t *testing.T, c *Config) {
				if c.Storage.Directory != "/var/lib/junction" || c.Storage.FlushInterval != 2*time.Second ||
					c.API.NetAddr.Endpoint != "0.0.0.0:9480" || c.API.MaxStreams != 8 ||
					!c.API.Auth.HasValue() || c.API.Auth.Get().Config.AuthenticatorID.String() != "bearertokenauth" ||
					c.Alertmanager.Endpoint != "http://127.0.0.1:9093" || c.Alertmanager.ResendInterval != 30*time.Second ||
					c.EntityTTL != 30*time.Minute || c.MaxEdges != 5000 ||
					c.GraphCache.Window != 2*time.Hour || c.GraphCache.MaxSeries != 20000 {
					t.Errorf("custom: %+v", c)
				}
			},
		},
		{
			id: component.NewIDWithName(Type, "several"),
			check: func(t *testing.T, c *Config) {
				want := []string{"http://alertmanager-0.alertmanager:9093", "https://alertmanager-1.alertmanager:9093/prefix"}
				if got := c.Alertmanager.EndpointList(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] ||
					c.Alertmanager.ResendInterval != defaultResendInterval || c.Alertmanager.QueueSize != defaultAMQueueSize {
					t.Errorf("several: %+v, endpoints %v", c.Alertmanager, got)
				}
			},
		},
		{
			id: component.NewIDWithName(Type, "bad"),
			wantErr: []string{"storage.directory", "storage.retention", "api.endpoint", "alertmanager.endpoint",
				"max_entities", "graph_cache.window", "alertmanager.initial_backoff is no longer supported"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			if err != nil {
				t.Fatal(err)
			}
			if err := sub.Unmarshal(cfg); err != nil {
				t.Fatal(err)
			}
			err = confmap.Validate(cfg)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("Validate accepted a bad config")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %s", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg.(*Config))
		})
	}
}

func TestAlertmanagerConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		am   AlertmanagerConfig
		want []string // substrings of the error; none: valid
	}{
		{name: "off", am: AlertmanagerConfig{}},
		{name: "one", am: AlertmanagerConfig{Endpoint: "http://127.0.0.1:9093"}},
		{name: "several", am: AlertmanagerConfig{Endpoints: []string{"http://a:9093", "https://b:9093/am"}}},
		{name: "both", am: AlertmanagerConfig{Endpoint: "http://a:9093", Endpoints: []string{"http://b:9093"}},
			want: []string{"alertmanager.endpoint (one Alertmanager) or alertmanager.endpoints (a list), not both"}},
		{name: "bad list entry", am: AlertmanagerConfig{Endpoints: []string{"http://a:9093", "a:9093"}},
			want: []string{`alertmanager.endpoints[1] "a:9093" must be an http:// or https:// URL`}},
		{name: "credentials", am: AlertmanagerConfig{Endpoints: []string{"http://user:pw@a:9093"}},
			want: []string{"alertmanager.endpoints[0]", "credentials, query and fragment are not sent"}},
		{name: "duplicate", am: AlertmanagerConfig{Endpoints: []string{"http://a:9093", "http://a:9093/"}},
			want: []string{`alertmanager.endpoints[1] "http://a:9093/" is the same Alertmanager as alertmanager.endpoints[0]`}},
		{name: "removed keys", am: AlertmanagerConfig{InitialBackoff: "1s", MaxBackoff: "1m"},
			want: []string{"alertmanager.initial_backoff is no longer supported", "alertmanager.max_backoff is no longer supported",
				"set alertmanager.resend_interval"}},
		{name: "zero limits", am: AlertmanagerConfig{Endpoint: "http://a:9093", ResendInterval: -1, Timeout: -1, QueueSize: -1},
			want: []string{"alertmanager.resend_interval must be positive", "alertmanager.timeout must be positive", "alertmanager.queue_size must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			am := tt.am
			if am.ResendInterval == 0 {
				am.ResendInterval, am.Timeout, am.QueueSize = cfg.Alertmanager.ResendInterval, cfg.Alertmanager.Timeout, cfg.Alertmanager.QueueSize
			}
			cfg.Alertmanager = am
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
