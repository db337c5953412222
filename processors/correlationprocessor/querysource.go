package correlationprocessor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/entity/querysource"
)

// Defaults of the query_source section.
const (
	// defaultQueryLookback covers two emit intervals: one replica tick plus
	// the remote-write delay (docs/deploy.md "Merged series").
	defaultQueryLookback = 30 * time.Second
	defaultQueryTimeout  = 10 * time.Second
)

// QuerySourceConfig makes rules run on the merged graph of a gateway tier:
// the snapshot is read from the replicas' mergeable series in
// VictoriaMetrics (entity/querysource) instead of this instance's own
// graph. Without an endpoint rules run on the in-process graph.
type QuerySourceConfig struct {
	// Endpoint is the base URL of the Prometheus query API: a
	// VictoriaMetrics single node (http://vm:8428) or vmselect
	// (http://vmselect:8481/select/0/prometheus).
	Endpoint string `mapstructure:"endpoint"`
	// Lookback is how old a replica's latest tick may be to count: at least
	// the replicas' emit_interval plus their remote-write delay.
	Lookback time.Duration `mapstructure:"lookback"`
	// Timeout bounds the queries of one snapshot.
	Timeout time.Duration `mapstructure:"timeout"`
}

// Enabled reports whether rules read the query-backed snapshot.
func (c *QuerySourceConfig) Enabled() bool { return c.Endpoint != "" }

// Validate checks the section without touching the network.
func (c *QuerySourceConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("query_source::endpoint %q must be an http or https URL", c.Endpoint))
	}
	if c.Lookback < time.Second {
		errs = append(errs, fmt.Errorf("query_source::lookback must be at least 1s, got %s", c.Lookback))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("query_source::timeout must be positive, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// source returns the query-backed snapshot source of the section.
func (c *QuerySourceConfig) source() (*querysource.Source, error) {
	return querysource.New(querysource.Config{
		URL:      c.Endpoint,
		Lookback: c.Lookback,
		Client:   &http.Client{Timeout: c.Timeout},
	})
}

// evaluateOnQuerySource returns the evaluate hook that runs the rules on
// the merged snapshot as of the tick. When the query fails the tick's
// evaluation is skipped (alert state is kept) and the failure logged.
func (p *correlationProcessor) evaluateOnQuerySource(src entity.Source) func(ctx context.Context, _ *entity.Snapshot, now time.Time) {
	return func(ctx context.Context, _ *entity.Snapshot, now time.Time) {
		ctx, cancel := context.WithTimeout(ctx, p.cfg.QuerySource.Timeout)
		defer cancel()
		snap, err := src.Snapshot(ctx, now)
		if err != nil {
			p.logger.Warn("Rules not evaluated: the merged snapshot could not be read",
				zap.String("query_source::endpoint", p.cfg.QuerySource.Endpoint), zap.Error(err))
			return
		}
		p.evaluateRules(ctx, snap, now)
	}
}
