package xchain

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// Defaults (docs/crosschain.md "Bounds and defaults").
const (
	// DefaultMaxMessages bounds the pending messages kept; beyond it the
	// oldest pending message is evicted (and counted). A pending message
	// takes about 0.4 KiB of memory and 0.3 KiB of storage.
	DefaultMaxMessages = 100_000
	// DefaultMaxAge is how long a message may stay pending before it is
	// expired: counted as timed out and reported in the evidence. IBC
	// timeouts and bridge finality fit in a day; raise it for optimistic
	// rollups (7-day challenge periods).
	DefaultMaxAge = 24 * time.Hour
	// DefaultMaxClosed bounds the recently closed messages kept so that
	// late and duplicated stages of a closed message do not reopen it.
	DefaultMaxClosed = 100_000
	// DefaultClosedRetention is how long a closed message is remembered.
	DefaultClosedRetention = 24 * time.Hour
	// DefaultStuckAfter is the pending age from which a message is listed
	// as stuck in the evidence; the crosschain pack alerts from the same age.
	DefaultStuckAfter = 15 * time.Minute
	// DefaultMaxRelayers bounds the relayer entities (relayer + route).
	DefaultMaxRelayers = 1000
	// DefaultMaxMetricScopes bounds the relayer metric scopes (route,
	// chain or relayer-wide label sets) whose values are kept.
	DefaultMaxMetricScopes = 4096
	// DefaultMaxEvidence is the number of stuck, expired and evicted
	// messages listed per relayer entity.
	DefaultMaxEvidence = 10
	// DefaultBaselineHalfLife is the half-life of the EWMA baselines of
	// gas price and throughput.
	DefaultBaselineHalfLife = time.Hour
	// DefaultBurnRateWindow is the window over which the wallet burn rate
	// is measured.
	DefaultBurnRateWindow = time.Hour
	// DefaultMetricStaleness is the age after which a relayer metric value
	// no longer counts.
	DefaultMetricStaleness = 5 * time.Minute
	// FeeUnitNative reports fees in the unit they were paid in.
	FeeUnitNative = "native"
)

// Config bounds and tunes the Tracker. Keys are relative to the correlation
// processor's xchain section.
type Config struct {
	MaxMessages      int           `mapstructure:"max_messages"`
	MaxAge           time.Duration `mapstructure:"max_age"`
	MaxClosed        int           `mapstructure:"max_closed"`
	ClosedRetention  time.Duration `mapstructure:"closed_retention"`
	StuckAfter       time.Duration `mapstructure:"stuck_after"`
	MaxRelayers      int           `mapstructure:"max_relayers"`
	MaxMetricScopes  int           `mapstructure:"max_metric_scopes"`
	MaxEvidence      int           `mapstructure:"max_evidence"`
	BaselineHalfLife time.Duration `mapstructure:"baseline_half_life"`
	BurnRateWindow   time.Duration `mapstructure:"burn_rate_window"`
	MetricStaleness  time.Duration `mapstructure:"metric_staleness"`
	Fee              FeeConfig     `mapstructure:"fee"`
	Metrics          MetricNames   `mapstructure:"metrics"`
}

// FeeConfig sets the unit of fee.per_message.
type FeeConfig struct {
	// Unit is "native" (fees summed as paid, whatever their denom) or the
	// name of a currency, in which case Prices converts every denom.
	Unit string `mapstructure:"unit"`
	// Prices is the price of one unit of each denom (as in
	// xchain.fee.denom) in Unit. Fees in a denom without a price are
	// left out and counted.
	Prices map[string]float64 `mapstructure:"prices"`
}

// MetricNames are the chain head metric names read for finality lag; the
// values are kept under MetricChainLatestHeight and
// MetricChainFinalizedHeight whatever their exported name.
type MetricNames struct {
	LatestHeight    []string `mapstructure:"latest_height"`
	FinalizedHeight []string `mapstructure:"finalized_height"`
}

// Default chain head metric names.
var (
	DefaultLatestHeightMetrics    = []string{MetricChainLatestHeight, "chain_head_height"}
	DefaultFinalizedHeightMetrics = []string{MetricChainFinalizedHeight}
)

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		MaxMessages:      DefaultMaxMessages,
		MaxAge:           DefaultMaxAge,
		MaxClosed:        DefaultMaxClosed,
		ClosedRetention:  DefaultClosedRetention,
		StuckAfter:       DefaultStuckAfter,
		MaxRelayers:      DefaultMaxRelayers,
		MaxMetricScopes:  DefaultMaxMetricScopes,
		MaxEvidence:      DefaultMaxEvidence,
		BaselineHalfLife: DefaultBaselineHalfLife,
		BurnRateWindow:   DefaultBurnRateWindow,
		MetricStaleness:  DefaultMetricStaleness,
		Fee:              FeeConfig{Unit: FeeUnitNative},
		Metrics: MetricNames{
			LatestHeight:    append([]string(nil), DefaultLatestHeightMetrics...),
			FinalizedHeight: append([]string(nil), DefaultFinalizedHeightMetrics...),
		},
	}
}

// Validate checks the configuration without changing it; every problem is
// reported with its key.
func (c *Config) Validate() error {
	var errs []error
	positive := func(key string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be greater than 0, got %d", key, v))
		}
	}
	positiveDur := func(key string, v time.Duration) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration, got %s", key, v))
		}
	}
	positive("max_messages", c.MaxMessages)
	positive("max_closed", c.MaxClosed)
	positive("max_relayers", c.MaxRelayers)
	positive("max_metric_scopes", c.MaxMetricScopes)
	if c.MaxEvidence < 0 {
		errs = append(errs, fmt.Errorf("max_evidence must not be negative, got %d", c.MaxEvidence))
	}
	positiveDur("max_age", c.MaxAge)
	positiveDur("closed_retention", c.ClosedRetention)
	positiveDur("stuck_after", c.StuckAfter)
	positiveDur("baseline_half_life", c.BaselineHalfLife)
	positiveDur("burn_rate_window", c.BurnRateWindow)
	positiveDur("metric_staleness", c.MetricStaleness)
	if c.StuckAfter > 0 && c.MaxAge > 0 && c.StuckAfter >= c.MaxAge {
		errs = append(errs, fmt.Errorf("stuck_after (%s) must be shorter than max_age (%s), or no message is ever listed as stuck before it expires", c.StuckAfter, c.MaxAge))
	}
	switch {
	case c.Fee.Unit == "":
		errs = append(errs, errors.New(`fee::unit must be "native" or a currency name`))
	case c.Fee.Unit == FeeUnitNative && len(c.Fee.Prices) > 0:
		errs = append(errs, errors.New(`fee::prices is set but fee::unit is "native": set fee::unit to the currency of the prices`))
	case c.Fee.Unit != FeeUnitNative && len(c.Fee.Prices) == 0:
		errs = append(errs, fmt.Errorf("fee::unit is %q but fee::prices is empty: give the price of each fee denom in %s", c.Fee.Unit, c.Fee.Unit))
	}
	for denom, p := range c.Fee.Prices {
		if math.IsNaN(p) || math.IsInf(p, 0) || p < 0 {
			errs = append(errs, fmt.Errorf("fee::prices::%s must be a non-negative number, got %v", denom, p))
		}
	}
	names := map[string]string{}
	for _, l := range []struct {
		key   string
		names []string
	}{{"metrics::latest_height", c.Metrics.LatestHeight}, {"metrics::finalized_height", c.Metrics.FinalizedHeight}} {
		if len(l.names) == 0 {
			errs = append(errs, fmt.Errorf("%s must name at least one metric", l.key))
		}
		for i, n := range l.names {
			switch prev, dup := names[n]; {
			case n == "":
				errs = append(errs, fmt.Errorf("%s[%d] is empty", l.key, i))
			case dup:
				errs = append(errs, fmt.Errorf("%s[%d]: %q is already in %s", l.key, i, n, prev))
			default:
				names[n] = l.key
			}
		}
	}
	return errors.Join(errs...)
}

// Settings are the Tracker's collaborators.
type Settings struct {
	// Storage keeps message state across restarts. Nil keeps it in memory
	// only. The client must implement storage.Walker (file_storage does).
	Storage storage.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means no logging.
	Logger *zap.Logger
	// MeterProvider receives the Tracker's own telemetry; nil means none.
	MeterProvider metric.MeterProvider
}
