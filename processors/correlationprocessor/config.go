package correlationprocessor

import (
	"errors"
	"fmt"
	"time"

	"github.com/junction-sre/junction/processors/correlationprocessor/internal/graph"
)

// Config is the correlation processor's configuration (docs/entities.md
// lists every key and default).
type Config struct {
	// EmitInterval is how often derived entity and edge metrics are emitted
	// into the metrics pipeline, baselines updated and aged state evicted.
	EmitInterval time.Duration `mapstructure:"emit_interval"`

	graph.Settings `mapstructure:",squash"`
}

// Validate checks the configuration without changing it.
func (c *Config) Validate() error {
	var errs []error
	if c.EmitInterval <= 0 {
		errs = append(errs, fmt.Errorf("emit_interval must be positive, got %s", c.EmitInterval))
	}
	if err := c.Settings.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
