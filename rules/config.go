package rules

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// DefaultCostLimit is the CEL cost limit per evaluation of one expression
// for one entity that the correlation processor uses by default. A rule
// over an entity with a few dozen edges costs well under 1,000; nested
// comprehensions over large lists reach the limit quickly.
const DefaultCostLimit = 100_000

// Config configures the rule manager.
type Config struct {
	// Files are rule files, directories (their *.yaml and *.yml files) or
	// glob patterns.
	Files []string `mapstructure:"files"`
	// ReloadInterval is how often rule files are checked for changes
	// (besides file-system notifications); 0 disables periodic checks.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
	// CostLimit is the CEL cost limit per evaluation of one expression for
	// one entity; 0 means no limit.
	CostLimit uint64 `mapstructure:"cost_limit"`
	// StateFile, when set, is where alert state is kept across restarts.
	StateFile string `mapstructure:"state_file"`
}

// Validate checks the config without touching the file system.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Files) == 0 {
		errs = append(errs, errors.New("files: at least one rule file, directory or pattern is required"))
	}
	for i, f := range c.Files {
		if f == "" {
			errs = append(errs, fmt.Errorf("files[%d]: must not be empty", i))
			continue
		}
		if _, err := filepath.Match(f, ""); err != nil {
			errs = append(errs, fmt.Errorf("files[%d]: pattern %q: %w", i, f, err))
		}
	}
	if c.ReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("reload_interval: must not be negative, is %v", c.ReloadInterval))
	}
	return errors.Join(errs...)
}

// Settings are the manager's dependencies.
type Settings struct {
	Logger        *zap.Logger
	MeterProvider metric.MeterProvider
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// NoWatch turns Run's file-system notifications off: rule files are
	// then re-read every ReloadInterval only. For tests that drive Run
	// under testing/synctest, where the watcher's blocking read keeps the
	// fake clock from advancing.
	NoWatch bool
}
