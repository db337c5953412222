package correlationprocessor

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"

	"github.com/junction-sre/junction/entity"
)

// EmbeddedSettings configure an Embedded processor.
type EmbeddedSettings struct {
	// Config is the processor's configuration; the factory's default when
	// nil. It is validated.
	Config *Config
	// Now is the clock the processor reads as the arrival time of
	// telemetry and for the rule engine; required under the wall clock.
	// Under clock::source telemetry the processor keeps its own clock from
	// the timestamps it consumes and ticks by itself as that clock passes
	// emit boundaries; Now, when set, is only read before the first
	// timestamp.
	Now func() time.Time
	// Metrics and Logs receive what the processor emits (derived metrics,
	// the ALERTS gauge, alert log records); either may be nil.
	Metrics consumer.Metrics
	Logs    consumer.Logs
	// Telemetry is the processor's own telemetry; a no-op set when its
	// Logger is nil.
	Telemetry component.TelemetrySettings
}

// Embedded is one correlation processor run in process on an injected
// clock, outside a collector pipeline: the scenario simulator's detection
// runs and tests feed it telemetry and call Tick where the collector's
// emit loop would tick. It never ticks by itself. Telemetry passed in is
// not forwarded anywhere. Under clock::source telemetry it ticks by
// itself, as the collector's processor does, whenever the telemetry it
// consumes moves the clock past an emit boundary: the Consume call that
// moved it emits those ticks, in order after the ticks of earlier calls,
// before it returns (docs/architecture.md "Locks and order"); Tick is then
// not to be called.
type Embedded struct {
	p       *correlationProcessor
	traces  tracesProcessor
	metrics metricsProcessor
	logs    logsProcessor
}

var (
	_ entity.Source    = (*Embedded)(nil)
	_ consumer.Traces  = (*Embedded)(nil)
	_ consumer.Metrics = (*Embedded)(nil)
	_ consumer.Logs    = (*Embedded)(nil)
)

// NewEmbedded creates and starts an Embedded processor: its cross-chain
// tracker and, when the config names rule files, its rule engine. Call
// Shutdown when done.
func NewEmbedded(ctx context.Context, set EmbeddedSettings) (*Embedded, error) {
	cfg := set.Config
	if cfg == nil {
		cfg = createDefaultConfig().(*Config)
	}
	if set.Now == nil {
		if cfg.Clock.Source != ClockTelemetry {
			return nil, errors.New("correlation processor: EmbeddedSettings.Now is required under the wall clock")
		}
		set.Now = time.Now
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tel := set.Telemetry
	if tel.Logger == nil {
		tel = component.TelemetrySettings{
			Logger:         zap.NewNop(),
			MeterProvider:  metricnoop.NewMeterProvider(),
			TracerProvider: tracenoop.NewTracerProvider(),
			Resource:       pcommon.NewResource(),
		}
	}
	pset := processor.Settings{
		ID:                component.MustNewIDWithName(typeStr, "embedded"),
		TelemetrySettings: tel,
		BuildInfo:         component.NewDefaultBuildInfo(),
	}
	p, err := newProcessor(pset, cfg, set.Now)
	if err != nil {
		return nil, err
	}
	p.ticker = noTicker
	if set.Metrics != nil {
		p.setMetrics(set.Metrics)
	}
	if set.Logs != nil {
		p.setLogs(set.Logs)
	}
	if err := p.start(ctx, embeddedHost{}); err != nil {
		return nil, err
	}
	ref := pipelineRef{p}
	return &Embedded{
		p:       p,
		traces:  tracesProcessor{ref, discard{}},
		metrics: metricsProcessor{ref, discard{}},
		logs:    logsProcessor{ref, discard{}},
	}, nil
}

// ConsumeTraces adds spans to the graph at the clock's time.
func (e *Embedded) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	return e.traces.ConsumeTraces(ctx, td)
}

// ConsumeMetrics adds metrics to the graph at the clock's time.
func (e *Embedded) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	return e.metrics.ConsumeMetrics(ctx, md)
}

// ConsumeLogs adds log records to the graph at the clock's time.
func (e *Embedded) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	return e.logs.ConsumeLogs(ctx, ld)
}

// Capabilities reports that the processor does not modify its input.
func (e *Embedded) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// Tick is one step of the emit loop at now: it advances the graph, emits
// the derived metrics and evaluates the rule groups that are due, sending
// their alerts to the Logs consumer.
func (e *Embedded) Tick(ctx context.Context, now time.Time) error {
	return e.p.tick(ctx, now)
}

// Snapshot returns the entity graph as of at.
func (e *Embedded) Snapshot(ctx context.Context, at time.Time) (*entity.Snapshot, error) {
	return e.p.Snapshot(ctx, at)
}

// EmitInterval is the configured emit_interval: how often the collector
// would call Tick.
func (e *Embedded) EmitInterval() time.Duration { return e.p.cfg.EmitInterval }

// Shutdown saves the alert state (when configured) and stops the tracker
// and the rule engine.
func (e *Embedded) Shutdown(ctx context.Context) error { return e.p.shutdown(ctx) }

// DefaultConfig returns the processor's default configuration, to adjust
// before NewEmbedded.
func DefaultConfig() *Config { return createDefaultConfig().(*Config) }

type embeddedHost struct{}

func (embeddedHost) GetExtensions() map[component.ID]component.Component { return nil }

type discard struct{}

func (discard) Capabilities() consumer.Capabilities                   { return consumer.Capabilities{} }
func (discard) ConsumeTraces(context.Context, ptrace.Traces) error    { return nil }
func (discard) ConsumeMetrics(context.Context, pmetric.Metrics) error { return nil }
func (discard) ConsumeLogs(context.Context, plog.Logs) error          { return nil }
