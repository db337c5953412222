package correlationprocessor

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/graph"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/xchain"
	"github.com/junction-sre/junction/rules"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id      component.ID
		check   func(t *testing.T, c *Config)
		wantErr []string
	}{
		{
			id: component.MustNewID(typeStr),
			check: func(t *testing.T, c *Config) {
				assert.Equal(t, createDefaultConfig(), c)
			},
		},
		{
			id: component.MustNewIDWithName(typeStr, "custom"),
			check: func(t *testing.T, c *Config) {
				assert.Equal(t, 30*time.Second, c.EmitInterval)
				assert.Equal(t, 5*time.Second, c.Window.Bucket)
				assert.Equal(t, time.Hour, c.Window.Long)
				assert.Equal(t, 100, c.Limits.MaxEntitiesPerType)
				assert.Equal(t, defaultMaxPendingSpans, c.Limits.MaxPendingSpans, "unset keys keep their default")
				assert.Equal(t, 0.995, c.SLO.AvailabilityTarget)
				assert.Equal(t, graph.MetricMapping{Entity: entity.Service, Input: "queue.depth"}, c.Metrics["app_queue_depth"])
				assert.Equal(t, graph.MetricMapping{Entity: entity.Pod, Input: graph.InCPUUsage}, c.Metrics["k8s.pod.cpu.usage"], "user mappings add to the defaults")
			},
		},
		{
			id: component.MustNewIDWithName(typeStr, "bad"),
			wantErr: []string{
				"emit_interval must be positive",
				"slo::availability_target must be in (0, 1), got 1.5",
				`metrics::my_metric::entity: unknown entity type "cluster"`,
				"metrics::my_metric::input must not be empty",
				"metrics::app_pool_waiters::server_from: only database metrics name a server, this one is a service metric",
				"xchain::stuck_after (2h0m0s) must be shorter than max_age (1h0m0s)",
				"rules::files[0]: must not be empty",
				"rules::reload_interval: must not be negative",
			},
		},
		{
			id: component.MustNewIDWithName(typeStr, "full"),
			check: func(t *testing.T, c *Config) {
				storageID := component.MustNewIDWithName("file_storage", "xchain")
				assert.Equal(t, &storageID, c.XChain.Storage)
				assert.Equal(t, 50000, c.XChain.MaxMessages)
				assert.Equal(t, 15*time.Minute, c.XChain.StuckAfter)
				assert.Equal(t, xchain.DefaultMaxAge, c.XChain.MaxAge, "unset keys keep their default")
				assert.Equal(t, map[string]float64{"uatom": 0.000007}, c.XChain.Fee.Prices)
				assert.Equal(t, rules.Config{
					Files:          []string{"../../rules/packs"},
					ReloadInterval: time.Minute,
					CostLimit:      50000,
					StateFile:      "/var/lib/junction/alerts.json",
				}, c.Rules.Manager())
				assert.True(t, c.Rules.Enabled())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if len(tt.wantErr) > 0 {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Equal(t, 1, strings.Count(err.Error(), w), "%q reported once in:\n%s", w, err)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg.(*Config))
		})
	}
}

func TestLoadConfigRejectsUnknownKeys(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub("correlation/custom")
	require.NoError(t, err)
	require.NoError(t, sub.Merge(confmapOf(map[string]any{"limits": map[string]any{"max_entites": 3}})))
	err = sub.Unmarshal(createDefaultConfig())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "max_entites")
}

func TestValidateBounds(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"bucket", func(c *Config) { c.Window.Bucket = 0 }, "window::bucket must be positive"},
		{"long window too short", func(c *Config) { c.Window.Long = time.Minute }, "window::long must be at least 5m"},
		{"max edges", func(c *Config) { c.Limits.MaxEdges = 0 }, "limits::max_edges must be positive"},
		{"pending ttl", func(c *Config) { c.Limits.PendingSpanTTL = -time.Second }, "limits::pending_span_ttl must be positive"},
		{"sample ratio", func(c *Config) { c.CriticalPath.SampleRatio = 2 }, "critical_path::sample_ratio must be in [0, 1]"},
		{"price", func(c *Config) { c.Prices.CPUCoreHour = -1 }, "prices::cpu_core_hour must not be negative"},
		{"sketch", func(c *Config) { c.Window.SketchAccuracy = 0 }, "window::sketch_accuracy"},
		{"identity", func(c *Config) { c.Identity.ServiceName = nil }, "identity::service_name must list at least one attribute"},
		{"xchain bound", func(c *Config) { c.XChain.MaxMessages = 0 }, "xchain::max_messages must be greater than 0"},
		{"xchain fee", func(c *Config) { c.XChain.Fee.Unit = "usd" }, `xchain::fee::unit is "usd" but fee::prices is empty`},
		{"rules pattern", func(c *Config) { c.Rules.Files = []string{"rules/[x"} }, "rules::files[0]: pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := createDefaultConfig().(*Config)
			require.NoError(t, c.Validate())
			tt.mutate(c)
			err := c.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func confmapOf(m map[string]any) *confmap.Conf { return confmap.NewFromStringMap(m) }
