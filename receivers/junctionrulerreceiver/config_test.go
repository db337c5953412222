package junctionrulerreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestCreateDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, componenttest.CheckConfigStruct(cfg))
	require.Equal(t, defaultLookback, cfg.Store.Lookback)
	require.Equal(t, defaultTimeout, cfg.Store.Timeout)
	require.Equal(t, []string{"builtin:packs"}, cfg.Rules.Files)
	require.Equal(t, defaultReloadInterval, cfg.Rules.ReloadInterval)
	require.Equal(t, uint64(defaultCostLimit), cfg.Rules.CostLimit)
	// Everything has a default but the store.
	err := confmap.Validate(cfg)
	require.ErrorContains(t, err, "store::endpoint: required")
	cfg.Store.Endpoint = "http://vm:8428"
	require.NoError(t, confmap.Validate(cfg))
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	defaults := createDefaultConfig().(*Config)
	defaults.Store.Endpoint = "http://victoria-metrics:8428"

	custom := createDefaultConfig().(*Config)
	custom.Store.Endpoint = "http://vmselect:8481/select/0/prometheus"
	custom.Store.Lookback = 45 * time.Second
	custom.Store.Timeout = 5 * time.Second
	custom.Store.Headers = configopaque.MapList{{Name: "X-Scope-OrgID", Value: "shop"}}
	custom.Rules = RulesConfig{
		Files:          []string{"builtin:packs", "/etc/junction/rules"},
		ReloadInterval: time.Minute,
		CostLimit:      50000,
		StateFile:      "/var/lib/junction/rules-state.json",
	}

	for id, want := range map[component.ID]*Config{
		component.MustNewID(typeStr):                   defaults,
		component.MustNewIDWithName(typeStr, "custom"): custom,
	} {
		t.Run(id.String(), func(t *testing.T) {
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			cfg := createDefaultConfig()
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			require.Equal(t, want, cfg)
		})
	}
}

func TestUnknownKeyNamesIt(t *testing.T) {
	cfg := createDefaultConfig()
	err := confmap.NewFromStringMap(map[string]any{
		"store": map[string]any{"endpoint": "http://vm:8428", "lookbak": "30s"},
	}).Unmarshal(cfg)
	require.ErrorContains(t, err, "lookbak")
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // every substring must be in the error
	}{
		{"valid", func(*Config) {}, nil},
		{"no endpoint", func(c *Config) { c.Store.Endpoint = "" }, []string{"store::endpoint: required"}},
		{"not a URL", func(c *Config) { c.Store.Endpoint = "vm:8428" }, []string{`store::endpoint "vm:8428": must be an http or https URL`}},
		{"no host", func(c *Config) { c.Store.Endpoint = "http://" }, []string{"store::endpoint"}},
		{"short lookback", func(c *Config) { c.Store.Lookback = 500 * time.Millisecond }, []string{"store::lookback: must be at least 1s, got 500ms"}},
		{"no timeout", func(c *Config) { c.Store.Timeout = 0 }, []string{"store::timeout: must be positive"}},
		{"no rule files", func(c *Config) { c.Rules.Files = nil }, []string{"rules::files: at least one"}},
		{"bad pattern", func(c *Config) { c.Rules.Files = []string{"[a"} }, []string{"rules::files[0]: pattern"}},
		{"negative reload", func(c *Config) { c.Rules.ReloadInterval = -time.Second }, []string{"rules::reload_interval"}},
		{"every error at once", func(c *Config) {
			c.Store.Endpoint, c.Store.Lookback, c.Rules.Files = "", 0, nil
		}, []string{"store::endpoint", "store::lookback", "rules::files"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Store.Endpoint = "http://vm:8428"
			tt.mutate(cfg)
			err := cfg.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}
