package correlationprocessor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
)

// t0 is the start of the test clock: 2026-01-01T00:00:00Z.
var t0 = time.Unix(1767225600, 0).UTC()

// fakeClock is a clock tests move explicitly.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// harness is the shared processor in all three pipelines, with sinks as
// the next consumers and a fake clock.
type harness struct {
	p       *correlationProcessor
	traces  processor.Traces
	metrics processor.Metrics
	logs    processor.Logs
	ts      *consumertest.TracesSink
	ms      *consumertest.MetricsSink
	ls      *consumertest.LogsSink
	clock   *fakeClock
}

// newHarness creates the harness and starts it with a host without
// extensions. The emit loop never ticks by itself: tests call tick.
func newHarness(t testing.TB, name string, cfg *Config, set processor.Settings) *harness {
	t.Helper()
	h := createHarness(t, name, cfg, set)
	require.NoError(t, h.start(componenttest.NewNopHost()))
	return h
}

// createHarness creates the harness without starting it.
func createHarness(t testing.TB, name string, cfg *Config, set processor.Settings) *harness {
	t.Helper()
	f := NewFactory()
	set.ID = component.MustNewIDWithName(typeStr, name)
	h := &harness{ts: new(consumertest.TracesSink), ms: new(consumertest.MetricsSink), ls: new(consumertest.LogsSink), clock: &fakeClock{t: t0}}
	var err error
	ctx := context.Background()
	h.traces, err = f.CreateTraces(ctx, set, cfg, h.ts)
	require.NoError(t, err)
	h.metrics, err = f.CreateMetrics(ctx, set, cfg, h.ms)
	require.NoError(t, err)
	h.logs, err = f.CreateLogs(ctx, set, cfg, h.ls)
	require.NoError(t, err)
	h.p = h.traces.(*tracesProcessor).p
	require.Same(t, h.p, h.metrics.(*metricsProcessor).p, "one instance is shared by the pipelines")
	require.Same(t, h.p, h.logs.(*logsProcessor).p)
	h.p.now = h.clock.now
	h.p.ticker = func(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }
	t.Cleanup(func() {
		for _, c := range []component.Component{h.traces, h.metrics, h.logs} {
			require.NoError(t, c.Shutdown(context.Background()))
		}
	})
	return h
}

func nopSettings() processor.Settings {
	set := processortest.NewNopSettings(component.MustNewType(typeStr))
	set.TelemetrySettings = componenttest.NewNopTelemetrySettings()
	return set
}

// testConfig is the default config with a short pairing TTL and every
// trace sampled for the critical path.
func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Limits.PendingSpanTTL = 10 * time.Second
	cfg.Limits.TraceIdle = 5 * time.Second
	cfg.CriticalPath.SampleRatio = 1
	return cfg
}

type processorSettings = processor.Settings

// start starts the three pipelines' processors with host.
func (h *harness) start(host component.Host) error {
	for _, c := range []component.Component{h.traces, h.metrics, h.logs} {
		if err := c.Start(context.Background(), host); err != nil {
			return err
		}
	}
	return nil
}

// shutdown shuts the three pipelines' processors down.
func (h *harness) shutdown() error {
	var err error
	for _, c := range []component.Component{h.traces, h.metrics, h.logs} {
		err = errors.Join(err, c.Shutdown(context.Background()))
	}
	return err
}
