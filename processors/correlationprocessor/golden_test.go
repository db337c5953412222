package correlationprocessor

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/ptracetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
)

var update = flag.Bool("update", false, "rewrite the expected snapshot.json and derived_metrics.yaml of the golden cases")

// TestGolden feeds each case's inputs (testdata/golden/<case>/<second>_<signal>.yaml,
// each resource a batch of its own, the clock at t0+second) through the
// shared processor, ticks 15 s after the last input, and compares the
// snapshot and the derived metrics with snapshot.json and
// derived_metrics.yaml. Regenerate with: go test -run TestGolden -update
func TestGolden(t *testing.T) {
	dirs, err := os.ReadDir(filepath.Join("testdata", "golden"))
	require.NoError(t, err)
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		t.Run(d.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata", "golden", d.Name())
			h := newHarness(t, "golden_"+d.Name(), testConfig(), nopSettings())
			ctx := context.Background()
			last := feedDir(t, h, dir)

			at := last.Add(15 * time.Second)
			h.clock.t = at
			require.NoError(t, h.p.tick(ctx, at))
			derived := pmetric.NewMetrics()
			if all := h.ms.AllMetrics(); len(all) > 0 {
				derived = all[len(all)-1]
			}
			snap, err := h.p.Snapshot(ctx, at)
			require.NoError(t, err)

			snapPath := filepath.Join(dir, "snapshot.json")
			metricsPath := filepath.Join(dir, "derived_metrics.yaml")
			got, err := json.MarshalIndent(snap, "", "  ")
			require.NoError(t, err)
			if *update {
				require.NoError(t, os.WriteFile(snapPath, append(got, '\n'), 0o600))
				require.NoError(t, golden.WriteMetricsToFile(metricsPath, derived, golden.SkipMetricTimestampNormalization()))
			}
			want, err := os.ReadFile(snapPath)
			require.NoError(t, err)
			assert.JSONEq(t, string(want), string(got))
			wantMetrics, err := golden.ReadMetrics(metricsPath)
			require.NoError(t, err)
			require.NoError(t, pmetrictest.CompareMetrics(wantMetrics, derived,
				pmetrictest.IgnoreResourceMetricsOrder(), pmetrictest.IgnoreMetricsOrder(), pmetrictest.IgnoreMetricDataPointsOrder()))

			checkSnapshotShape(t, snap)
		})
	}
}

// feedDir consumes the case's input files in time order, each resource as
// its own batch, and checks that every batch passed through unchanged. It
// returns the time of the last input.
func feedDir(t *testing.T, h *harness, dir string) time.Time {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "[0-9]*_*.yaml"))
	require.NoError(t, err)
	sort.Strings(files)
	ctx := context.Background()
	var last time.Time
	for _, f := range files {
		base := filepath.Base(f)
		sec, err := strconv.Atoi(base[:strings.IndexByte(base, '_')])
		require.NoError(t, err, f)
		h.clock.t = t0.Add(time.Duration(sec) * time.Second)
		last = h.clock.t
		switch {
		case strings.HasSuffix(base, "_traces.yaml"):
			td, err := golden.ReadTraces(f)
			require.NoError(t, err, f)
			for i := 0; i < td.ResourceSpans().Len(); i++ {
				b := cloneTracesResource(td, i)
				n := len(h.ts.AllTraces())
				require.NoError(t, h.traces.ConsumeTraces(ctx, b))
				require.NoError(t, ptracetest.CompareTraces(cloneTracesResource(td, i), h.ts.AllTraces()[n]), "traces pass through unchanged")
			}
		case strings.HasSuffix(base, "_metrics.yaml"):
			md, err := golden.ReadMetrics(f)
			require.NoError(t, err, f)
			for i := 0; i < md.ResourceMetrics().Len(); i++ {
				n := len(h.ms.AllMetrics())
				require.NoError(t, h.metrics.ConsumeMetrics(ctx, cloneMetricsResource(md, i)))
				require.NoError(t, pmetrictest.CompareMetrics(cloneMetricsResource(md, i), h.ms.AllMetrics()[n]), "metrics pass through unchanged")
			}
		case strings.HasSuffix(base, "_logs.yaml"):
			ld, err := golden.ReadLogs(f)
			require.NoError(t, err, f)
			for i := 0; i < ld.ResourceLogs().Len(); i++ {
				n := len(h.ls.AllLogs())
				require.NoError(t, h.logs.ConsumeLogs(ctx, cloneLogsResource(ld, i)))
				require.NoError(t, plogtest.CompareLogs(cloneLogsResource(ld, i), h.ls.AllLogs()[n]), "logs pass through unchanged")
			}
		default:
			t.Fatalf("%s: input files are named <second>_<traces|metrics|logs>.yaml", f)
		}
	}
	return last
}

// checkSnapshotShape checks what every snapshot promises: sorted entities
// and edges, feature names from the schema, edges between known entities.
func checkSnapshotShape(t *testing.T, snap *entity.Snapshot) {
	t.Helper()
	known := map[entity.Type]map[string]bool{}
	for typ, fs := range entity.Schema {
		known[typ] = map[string]bool{}
		for _, f := range fs {
			known[typ][f.Name] = true
		}
	}
	edgeKnown := map[string]bool{}
	for _, f := range entity.EdgeSchema {
		edgeKnown[f.Name] = true
	}
	assert.True(t, sort.SliceIsSorted(snap.Entities, func(i, j int) bool { return snap.Entities[i].ID < snap.Entities[j].ID }))
	assert.True(t, sort.SliceIsSorted(snap.Edges, func(i, j int) bool { return snap.Edges[i].Key() < snap.Edges[j].Key() }))
	for _, e := range snap.Entities {
		for f := range e.Features {
			assert.True(t, known[e.Type][f], "%s: feature %q is not in entity.Schema[%s]", e.ID, f, e.Type)
		}
		for f := range e.Baseline {
			assert.True(t, known[e.Type][f], "%s: baseline %q is not in entity.Schema[%s]", e.ID, f, e.Type)
		}
	}
	for _, e := range snap.Edges {
		_, ok := snap.Entity(e.Source)
		assert.True(t, ok, "edge source %s is an entity", e.Source)
		_, ok = snap.Entity(e.Target)
		assert.True(t, ok, "edge target %s is an entity", e.Target)
		for f := range e.Features {
			assert.True(t, edgeKnown[f], "edge feature %q is not in entity.EdgeSchema", f)
		}
	}
}
