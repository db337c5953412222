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
			id: component.NewIDWithName(Type, "bad"),
			wantErr: []string{"storage.directory", "storage.retention", "api.endpoint", "alertmanager.endpoint",
				"max_entities", "graph_cache.window"},
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
