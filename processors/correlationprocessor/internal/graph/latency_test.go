package graph

import (
	"testing"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/entity"
)

// latencyGraph is a graph of 200 calls from a to b over four minutes, of
// latencies from 1 to 400 ms.
func latencyGraph() *Graph {
	g := New(settings(), nil)
	for i := 0; i < 200; i++ {
		start, dur := i*1200, 1+(i*37)%400
		g.ConsumeTraces(traces(byte(i), // distinct trace ids
			span{svc: "a", kind: ptrace.SpanKindClient, id: 2, parent: 1, startMs: start, dur: dur + 2, attrs: map[string]any{"server.address": "b"}},
			span{svc: "b", kind: ptrace.SpanKindServer, id: 3, parent: 2, startMs: start + 1, dur: dur},
		), t0.Add(time.Duration(start)*time.Millisecond))
	}
	return g
}

// quantilesOf rebuilds a DDSketch from the bins and reads the quantiles
// of the latency features.
func quantilesOf(t *testing.T, s *entity.LatencySketch) [3]float64 {
	t.Helper()
	m, err := mapping.NewCubicallyInterpolatedMapping(s.RelativeAccuracy)
	require.NoError(t, err)
	d := ddsketch.NewDDSketch(m, store.NewDenseStore(), store.NewDenseStore())
	require.NoError(t, d.AddWithCount(0, s.Zero))
	for _, b := range s.Bins {
		d.GetPositiveValueStore().AddWithCount(int(b.Index), b.Count)
	}
	var q [3]float64
	for i, l := range quantiles {
		v, err := d.GetValueAtQuantile(l)
		require.NoError(t, err)
		q[i] = v
	}
	return q
}

func TestTickMergeableCarriesLatencySketches(t *testing.T) {
	at := t0.Add(4 * time.Minute)
	plain := latencyGraph().TickMergeable(at, false)
	for _, e := range plain.Entities {
		require.Nil(t, e.Latency, "%s: sketches without mergeable series", e.ID)
	}
	for _, e := range plain.Edges {
		require.Nil(t, e.Latency, "%s: sketches without mergeable series", e.Key())
	}

	g := latencyGraph()
	snap := g.TickMergeable(at, true)
	b, ok := snap.Entity(entity.ID(entity.Service, "", "b"))
	require.True(t, ok, "entities %v", snap.Entities)
	require.NotNil(t, b.Latency)
	require.NotNil(t, b.Latency.Short)
	require.NotNil(t, b.Latency.Long)
	require.Equal(t, 0.01, b.Latency.Short.RelativeAccuracy)
	// The sketches hold the windows' requests: the last minute's calls,
	// one every 1.2 s, and all 200 within 5 m.
	require.InDelta(t, 45, b.Latency.Short.Count(), 5)
	require.Equal(t, 200.0, b.Latency.Long.Count())
	q := quantilesOf(t, b.Latency.Short)
	require.Equal(t, []float64{b.Features[fP50], b.Features[fP90], b.Features[fP99]}, q[:], "short window")
	q = quantilesOf(t, b.Latency.Long)
	require.Equal(t, []float64{b.Features5m[fP50], b.Features5m[fP90], b.Features5m[fP99]}, q[:], "long window")
	for i := 1; i < len(b.Latency.Long.Bins); i++ {
		require.Less(t, b.Latency.Long.Bins[i-1].Index, b.Latency.Long.Bins[i].Index, "bins by ascending index")
	}

	require.Len(t, snap.Edges, 1)
	ed := snap.Edges[0]
	require.NotNil(t, ed.Latency)
	require.NotNil(t, ed.Latency.Short)
	require.Nil(t, ed.Latency.Long, "edges have no long-window features")
	q = quantilesOf(t, ed.Latency.Short)
	require.Equal(t, []float64{ed.Features[fP50], ed.Features[fP99]}, []float64{q[0], q[2]}, "edge")

	// a has no latency of its own (its client spans are the edge's).
	a, ok := snap.Entity(entity.ID(entity.Service, "", "a"))
	require.True(t, ok)
	require.Nil(t, a.Latency)

	// The next plain tick carries none again.
	for _, e := range g.Tick(at.Add(time.Second)).Entities {
		require.Nil(t, e.Latency, e.ID)
	}
}
