package junctionrulerreceiver

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"

	"github.com/junction-sre/junction/rules"
)

// Config is the junction_ruler receiver's configuration (docs/rules.md
// "Running rules in the collector" lists every key and default).
type Config struct {
	// Store is the Prometheus query API holding the replicas' mergeable
	// series, and how to read it.
	Store StoreConfig `mapstructure:"store"`
	// Rules are the rule files and how they are reloaded; the same keys
	// as the correlation processor's rules section.
	Rules RulesConfig `mapstructure:"rules"`
}

// StoreConfig is the store section: the collector's HTTP client settings
// (endpoint, timeout, tls, headers, auth, ...) and the lookback of the
// merged series.
type StoreConfig struct {
	// ClientConfig's Endpoint is the base URL of the Prometheus query API:
	// a VictoriaMetrics single node (http://vm:8428), a vmselect
	// (http://vmselect:8481/select/0/prometheus) or Prometheus. Its
	// Timeout bounds each request and the queries of one snapshot
	// together.
	confighttp.ClientConfig `mapstructure:",squash"`
	// Lookback is how old a replica's latest tick may be to count: at
	// least the replicas' emit_interval plus their remote-write delay.
	Lookback time.Duration `mapstructure:"lookback"`
}

// RulesConfig is the rules section: rules.Config as a section of this
// config. A distinct type, so that the collector's config validation does
// not run rules.Config.Validate without the rules:: prefix; Config.Validate
// runs it.
type RulesConfig rules.Config

// Manager returns the rule manager's configuration.
func (c *RulesConfig) Manager() rules.Config { return rules.Config(*c) }

// Validate checks the configuration without touching the network or the
// rule files (they are loaded, and every error in them reported, at start).
func (c *Config) Validate() error {
	var errs []error
	if c.Store.Endpoint == "" {
		errs = append(errs, errors.New("store::endpoint: required: the Prometheus query API of the store the gateway replicas write to (http://vm:8428, or http://vmselect:8481/select/0/prometheus)"))
	} else if u, err := url.Parse(c.Store.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("store::endpoint %q: must be an http or https URL", c.Store.Endpoint))
	}
	if c.Store.Lookback < time.Second {
		errs = append(errs, fmt.Errorf("store::lookback: must be at least 1s, got %s", c.Store.Lookback))
	}
	if c.Store.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("store::timeout: must be positive, got %s", c.Store.Timeout))
	}
	rc := c.Rules.Manager()
	if err := rc.Validate(); err != nil {
		errs = append(errs, prefixErrors("rules::", err))
	}
	return errors.Join(errs...)
}

// prefixErrors puts prefix before each error joined in err.
func prefixErrors(prefix string, err error) error {
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		out = append(out, fmt.Errorf("%s%w", prefix, e))
	}
	return errors.Join(out...)
}
