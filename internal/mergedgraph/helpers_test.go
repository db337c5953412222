package mergedgraph_test

import (
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/exporter"

	"github.com/junction-sre/junction/internal/promtest"
	"github.com/junction-sre/junction/internal/vmtest"
)

func strconvF(v float64) string { return strconv.FormatFloat(v, 'f', 9, 64) }

// metricStore is a store the replicas write to and the source reads from:
// VictoriaMetrics (internal/vmtest) or Prometheus (internal/promtest).
type metricStore interface {
	ContribWriter(t testing.TB, f exporter.Factory, file, replica string) exporter.Metrics
	Flush(testing.TB)
	QueryURL() string
}

// stores runs test once on VictoriaMetrics and once on Prometheus, each
// a subtest of its own, so that the two stores must give the same merged
// snapshot.
func stores(t *testing.T, test func(t *testing.T, st metricStore)) {
	t.Run("victoria-metrics", func(t *testing.T) { test(t, vmtest.Start(t)) })
	t.Run("prometheus", func(t *testing.T) { test(t, promtest.Start(t)) })
}
