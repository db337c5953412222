package xchain

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// scenario is a timeline of cross-chain events and relayer metrics written
// as readable text (testdata/*.yaml).
type scenario struct {
	EvaluateAt string `yaml:"evaluate_at"`
	Events     []struct {
		At         string         `yaml:"at"`
		Resource   string         `yaml:"resource"`
		Attributes map[string]any `yaml:"attributes"`
	} `yaml:"events"`
	Metrics []struct {
		Name     string         `yaml:"name"`
		Resource string         `yaml:"resource"`
		Labels   map[string]any `yaml:"labels"`
		From     string         `yaml:"from"`
		Every    string         `yaml:"every"`
		Values   []float64      `yaml:"values"`
	} `yaml:"metrics"`
}

type step struct {
	at  time.Duration
	run func(t *testing.T)
}

func resourceOf(name string) pcommon.Map {
	if name == "" {
		name = "hermes"
	}
	m := pcommon.NewMap()
	m.PutStr("service.name", name)
	return m
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	require.NoError(t, err, "duration %q", s)
	return d
}

// runScenario plays a scenario through the pdata edges (EventFromAttributes,
// ScopeFromMetric) into a Tracker with a fake clock and returns the views at
// evaluate_at.
func runScenario(t *testing.T, path string) (map[string]RelayerView, map[string]RouteView, *Tracker) {
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var sc scenario
	require.NoError(t, yaml.Unmarshal(raw, &sc), path)
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now})

	var steps []step
	for _, e := range sc.Events {
		when := mustDuration(t, e.At)
		res := resourceOf(e.Resource)
		attrs := pcommon.NewMap()
		require.NoError(t, attrs.FromRaw(e.Attributes))
		steps = append(steps, step{when, func(t *testing.T) {
			ev, ok, err := EventFromAttributes(res, attrs, at(when))
			require.NoError(t, err)
			require.True(t, ok)
			require.NoError(t, tr.Observe(ctxb(), ev))
		}})
	}
	for _, m := range sc.Metrics {
		from, every := mustDuration(t, m.From), mustDuration(t, m.Every)
		res := resourceOf(m.Resource)
		labels := pcommon.NewMap()
		require.NoError(t, labels.FromRaw(m.Labels))
		for i, v := range m.Values {
			when := from + time.Duration(i)*every
			steps = append(steps, step{when, func(t *testing.T) {
				require.True(t, tr.ObserveMetric(ScopeFromMetric(res, labels).ID(), m.Name, v, at(when)), m.Name)
			}})
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	for _, s := range steps {
		clock.Set(at(s.at))
		s.run(t)
	}
	clock.Set(at(mustDuration(t, sc.EvaluateAt)))
	return tr.Features(clock.Now()), tr.Routes(clock.Now()), tr
}

// checkGolden compares got with the golden JSON file, or rewrites it with
// -update.
func checkGolden(t *testing.T, path string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	require.NoError(t, err)
	b = append(b, '\n')
	if *update {
		require.NoError(t, os.WriteFile(path, b, 0o600))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run the test with -update to create it")
	assert.JSONEq(t, string(want), string(b), "features differ from %s (rerun with -update after checking)", path)
}

func TestRelayerStallScenario(t *testing.T) {
	path := filepath.Join("testdata", "relayer_stall.yaml")
	views, routes, tr := runScenario(t, path)
	checkGolden(t, filepath.Join("testdata", "relayer_stall.golden.json"), map[string]any{"relayers": views, "routes": routes})

	// What an operator must see, whatever the golden file says.
	v, ok := views[routeID]
	require.True(t, ok, "the stalled relayer is an entity")
	f := v.Features
	assert.Equal(t, 10.0, f["messages.pending"], "every message since the stall is pending on hermes")
	assert.Equal(t, secondsOf(40*time.Minute), f["messages.oldest_pending_age_s"])
	assert.Equal(t, 0.0, f["wallet.balance"])
	assert.Equal(t, 0.0, f["wallet.hours_left"], "the wallet is empty")
	assert.Greater(t, f["broadcast.errors_rate"], 0.0)
	assert.Greater(t, f["backlog.growth_rate"], 0.0)
	assert.Equal(t, secondsOf(40*time.Minute), f["backlog.oldest_age_s"])
	assert.Equal(t, 2.0, f["finality.lag_blocks"])
	assert.Equal(t, 12.0, f["finality.lag_s"], "2 blocks of 6 s")
	assert.Equal(t, 0.0, f["messages.throughput"], "nothing completes")
	assert.Greater(t, v.Baseline["messages.throughput"], 0.0, "its baseline remembers the healthy 20 minutes")
	require.Len(t, v.Stuck, 7, "the messages sent 15 minutes ago or more (at 20, 24, ..., 44m)")
	s := v.Stuck[0]
	assert.Equal(t, "channel-0/6", s.MessageID)
	assert.Equal(t, StageSourceFinalized, s.LastStage)
	assert.Equal(t, "S006", s.Stages[0].SourceTxHash)
	assert.Equal(t, 0.0, s.Metrics["wallet.balance"])
	assert.Equal(t, uint64(1), tr.Counts().Duplicates)
	assert.Equal(t, 10.0, routes["osmosis-1->cosmoshub-4"].Features["messages.pending"])
}
