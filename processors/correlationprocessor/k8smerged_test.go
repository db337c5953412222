// The fuzz targets of this package are built without the tests that run
// the kubeletstats and prometheus receivers (make fuzz sets junction_fuzz):
// an instrumented build of those receivers' dependencies takes minutes.

//go:build !junction_fuzz

package correlationprocessor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"gopkg.in/yaml.v3"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/exporters/durableremotewriteexporter"
	"github.com/junction-sre/junction/internal/mergedgraph"
	"github.com/junction-sre/junction/internal/vmtest"
)

var (
	agentDeployConfig = filepath.Join("..", "..", "deploy", "configs", "agent.yaml")
	rulerDeployConfig = filepath.Join("..", "..", "deploy", "configs", "ruler.yaml")
)

// deployedCorrelation is the correlation section of a deploy config over
// the defaults.
func deployedCorrelation(t *testing.T, file string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(file)
	require.NoError(t, err)
	sub, err := cm.Sub("processors::correlation")
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
	return cfg
}

// rulerGraphWriter is the ruler's prometheus_remote_write/graph exporter
// as deploy/configs/ruler.yaml configures it, writing synchronously to vm
// (vmtest.ContribWriter reads the section under the durable exporter's
// name, so a copy of it is filed there).
func rulerGraphWriter(t *testing.T, vm *vmtest.VictoriaMetrics) *derivedOnly {
	t.Helper()
	cm, err := confmaptest.LoadConf(rulerDeployConfig)
	require.NoError(t, err)
	sub, err := cm.Sub("exporters::prometheus_remote_write/graph")
	require.NoError(t, err)
	data, err := yaml.Marshal(map[string]any{"exporters": map[string]any{"durable_remote_write": sub.ToStringMap()}})
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "ruler-graph.yaml")
	require.NoError(t, os.WriteFile(file, data, 0o644))
	return &derivedOnly{vm.ContribWriter(t, prometheusremotewriteexporter.NewFactory(), file, "ruler")}
}

// TestK8sClusterOnTheRulerMergesWithTheAgent is deploy/'s layout: an agent
// with kubeletstats, the cAdvisor scrape and the applications' spans, and
// the ruler's k8s_cluster receiver in a graph of its own, each with the
// correlation section and remote write of its deploy config, through a
// real VictoriaMetrics into the merged graph the ruler's rules read. The
// pod gets k8s_cluster's requests, limits and restarts once, utilization
// over k8s_cluster's limit, the agent's throttling, and its cost once (the
// ruler's prices are 0); the services' features are the agent's; and
// CPUThrottlingBehindLatency and OverProvisioned fire on checkout and
// reports as on one collector, never on catalog.
func TestK8sClusterOnTheRulerMergesWithTheAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 16 minutes of the shop scenario against VictoriaMetrics")
	}
	vm := vmtest.Start(t)
	pods := shopPods()
	cadvisor := shopCadvisor(t)

	rulerCfg := deployedCorrelation(t, rulerDeployConfig)
	require.Zero(t, rulerCfg.Prices.CPUCoreHour, "the ruler's graph prices nothing")
	agent := newNode(t, "agent", deployedCorrelation(t, agentDeployConfig), derivedOnly{vm.Writer(t, durableremotewriteexporter.NewFactory(), agentDeployConfig, "node-1")})
	ruler := newNode(t, "ruler", rulerCfg, rulerGraphWriter(t, vm))
	src, err := mergedgraph.New(mergedgraph.Config{URL: vm.URL, Lookback: scrapeEvery / 2})
	require.NoError(t, err)
	rules := newRuleManager(t)
	fired := firing{}
	ctx := context.Background()
	var at time.Time
	var merged, agentSnap *entity.Snapshot
	for k := 0; k < scenarioTicks; k++ {
		at = t0.Add(time.Duration(k) * scrapeEvery)
		agent.now, ruler.now = at, at
		require.NoError(t, agent.traces.ConsumeTraces(ctx, podSpans(pods, k, at)))
		require.NoError(t, agent.metrics.ConsumeMetrics(ctx, kubeletstatsPods(pods, k, at)))
		require.NoError(t, agent.metrics.ConsumeMetrics(ctx, cadvisor[k]))
		require.NoError(t, ruler.metrics.ConsumeMetrics(ctx, k8sclusterContainers(pods, k, at)))
		require.NoError(t, agent.p.tick(ctx, at))
		require.NoError(t, ruler.p.tick(ctx, at))
		vm.Flush(t)
		merged, err = src.Snapshot(ctx, at)
		require.NoError(t, err)
		alerts, _ := rules.EvalDue(ctx, merged, at)
		fired.add(alerts)
	}
	agentSnap, err = agent.p.Snapshot(ctx, at)
	require.NoError(t, err)

	pod := features(t, merged, podID("checkout-6d8f7-x2k4p"))
	assertFeatures(t, pod, map[string]float64{
		"cpu.request_cores":        0.3,
		"cpu.limit_cores":          0.6,
		"memory.limit_bytes":       640 * mib,
		"restarts":                 1,
		"cpu.usage_cores":          0.42,
		"cpu.limit_utilization":    0.42 / 0.6,
		"cpu.request_utilization":  0.42 / 0.3,
		"memory.limit_utilization": 250.0 / 640,
		"cpu.throttling_ratio":     0.3,
		"cost.per_hour":            features(t, agentSnap, podID("checkout-6d8f7-x2k4p"))["cost.per_hour"],
	})
	assertFeatures(t, features(t, merged, entity.ID(entity.Service, "", "checkout")), map[string]float64{"cpu.throttling_ratio": 0.3, "cpu.limit_utilization": 0.7, "replicas": 1})
	assertFeatures(t, features(t, merged, entity.ID(entity.Service, "", "reports")), map[string]float64{"cpu.request_utilization": 0.05, "replicas": 2})

	keys := strings.Join(fired.keys(), "\n")
	t.Logf("fired on the merged graph:\n%s", keys)
	assert.Contains(t, fired.keys(), "CPUThrottlingBehindLatency on service:/checkout blames service:/checkout")
	assert.Contains(t, keys, "OverProvisioned on service:/reports ")
	assert.NotContains(t, keys, "CPUThrottlingBehindLatency on service:/catalog")
	assert.NotContains(t, keys, "CPUThrottlingBehindLatency on service:/reports")
	assert.NotContains(t, keys, "OverProvisioned on service:/catalog")
	assert.NotContains(t, keys, "OverProvisioned on service:/checkout")
}
