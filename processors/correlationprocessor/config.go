package correlationprocessor

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/junction-sre/junction/processors/correlationprocessor/internal/graph"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/xchain"
	"github.com/junction-sre/junction/rules"
)

// Config is the correlation processor's configuration (docs/entities.md
// lists every key and default).
type Config struct {
	// EmitInterval is how often derived entity and edge metrics are emitted
	// into the metrics pipeline, baselines updated and aged state evicted,
	// and rule groups that are due evaluated.
	EmitInterval time.Duration `mapstructure:"emit_interval"`
	// Clock says whose time the processor keeps: the machine's (wall) or
	// the telemetry's own timestamps (clock.go).
	Clock ClockConfig `mapstructure:"clock"`

	GraphSettings `mapstructure:",squash"`

	// XChain configures the cross-chain message tracker
	// (docs/crosschain.md).
	XChain XChainConfig `mapstructure:"xchain"`
	// Rules configures the rule engine (docs/rules.md "Running rules in the
	// collector"). Without files no rules run.
	Rules RulesConfig `mapstructure:"rules"`
	// MergeableSeries also emits every tick's snapshot as mergeable series
	// (internal/mergedgraph.AppendSeries) into the metrics pipeline: what a
	// gateway replica remote-writes so that the junction_ruler receiver can
	// merge the replicas' graphs (docs/deploy.md "Merged series").
	MergeableSeries bool `mapstructure:"mergeable_series"`
}

// removedQuerySource is the section that made the processor evaluate rules
// on the merged graph of a gateway tier; the junction_ruler receiver does
// that now.
const removedQuerySource = "query_source"

// Unmarshal refuses the removed query_source section, saying what to
// configure instead, and decodes the rest as usual (unknown keys are
// errors).
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	if conf.IsSet(removedQuerySource) {
		return errors.New("query_source: removed from the correlation processor: rules on the merged graph of a gateway tier run in the junction_ruler receiver, " +
			"in logs and metrics pipelines of their own (docs/rules.md \"Running rules in the collector\"): " +
			"move query_source::endpoint, lookback and timeout to receivers::junction_ruler::store, and this processor's rules section to receivers::junction_ruler::rules")
	}
	return conf.Unmarshal(c)
}

// GraphSettings are the entity graph's settings (graph.Settings) at the
// top of this config. A distinct type, like XChainTrackerConfig, so that
// the collector's config validation reports each error once.
type GraphSettings graph.Settings

// Graph returns the entity graph's settings.
func (c *Config) Graph() *graph.Settings { return (*graph.Settings)(&c.GraphSettings) }

// XChainConfig is the xchain section: the tracker's bounds and the storage
// extension that keeps pending messages across restarts.
type XChainConfig struct {
	XChainTrackerConfig `mapstructure:",squash"`
	// Storage is the component id of a storage extension (file_storage);
	// without it messages are kept in memory only.
	Storage *component.ID `mapstructure:"storage"`
}

// XChainTrackerConfig is xchain.Config as a section of this config. It is
// a distinct type so that the collector's config validation does not run
// xchain.Config.Validate a second time without the xchain:: prefix;
// Config.Validate runs it.
type XChainTrackerConfig xchain.Config

// Tracker returns the cross-chain tracker's configuration.
func (c *XChainConfig) Tracker() xchain.Config { return xchain.Config(c.XChainTrackerConfig) }

// RulesConfig is the rules section: rules.Config as a section of this
// config (a distinct type for the same reason as XChainTrackerConfig).
// Without files no rules run.
type RulesConfig rules.Config

// Enabled reports whether rules are configured.
func (c *RulesConfig) Enabled() bool { return len(c.Files) > 0 }

// Manager returns the rule manager's configuration.
func (c *RulesConfig) Manager() rules.Config { return rules.Config(*c) }

// Validate checks the configuration without changing it.
func (c *Config) Validate() error {
	var errs []error
	if c.EmitInterval <= 0 {
		errs = append(errs, fmt.Errorf("emit_interval must be positive, got %s", c.EmitInterval))
	}
	if err := c.Clock.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Graph().Validate(); err != nil {
		errs = append(errs, err)
	}
	tracker := c.XChain.Tracker()
	if err := tracker.Validate(); err != nil {
		errs = append(errs, prefixErrors("xchain::", err))
	}
	if c.Rules.Enabled() {
		rc := c.Rules.Manager()
		if err := rc.Validate(); err != nil {
			errs = append(errs, prefixErrors("rules::", err))
		}
	} else if c.Rules.ReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("rules::reload_interval: must not be negative, is %v", c.Rules.ReloadInterval))
	}
	return errors.Join(errs...)
}

// prefixErrors puts prefix before each error joined in err.
func prefixErrors(prefix string, err error) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		out = append(out, fmt.Errorf("%s%w", prefix, e))
	}
	return errors.Join(out...)
}
