package graph

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestCriticalPath: hand-built traces whose critical path is known. The
// path is walked from the root's end backwards through the child that
// finishes last; a span's time not covered by a child on the path is its
// service's self time. critical_path.self_share is self time over the
// trace's duration; an edge's latency.share is the call's duration over
// its caller's enclosing SERVER span.
func TestCriticalPath(t *testing.T) {
	const (
		server = ptrace.SpanKindServer
		client = ptrace.SpanKindClient
	)
	// frontend 0-100 ms calls checkout 10-90, which calls inventory 20-50
	// then pricing 55-85 (sequential); frontend also calls recs 15-40, in
	// parallel with checkout, which ends later and hides it.
	sequential := []span{
		{svc: "frontend", kind: server, id: 1, startMs: 0, dur: 100},
		{svc: "frontend", kind: client, id: 2, parent: 1, startMs: 10, dur: 80},
		{svc: "checkout", kind: server, id: 3, parent: 2, startMs: 12, dur: 76},
		{svc: "checkout", kind: client, id: 4, parent: 3, startMs: 20, dur: 30},
		{svc: "inventory", kind: server, id: 5, parent: 4, startMs: 22, dur: 26},
		{svc: "checkout", kind: client, id: 6, parent: 3, startMs: 55, dur: 30},
		{svc: "pricing", kind: server, id: 7, parent: 6, startMs: 57, dur: 26},
		{svc: "frontend", kind: client, id: 8, parent: 1, startMs: 15, dur: 25},
		{svc: "recs", kind: server, id: 9, parent: 8, startMs: 17, dur: 21},
	}
	// pricing is not instrumented: checkout's call to it (peer.service
	// pricing) is a leaf whose 30 ms are the virtual service's own.
	uninstrumented := append([]span{}, sequential[:6]...)
	uninstrumented[5].attrs = map[string]any{"peer.service": "pricing"}
	uninstrumented = append(uninstrumented, sequential[7:]...)

	for _, tc := range []struct {
		name  string
		spans []span
		// self shares by service; a service not listed has none.
		self  map[string]float64
		edges map[string]float64
	}{
		{
			name:  "a single span is all self time",
			spans: []span{{svc: "frontend", kind: server, id: 1, dur: 100}},
			self:  map[string]float64{"service:/frontend": 1},
		},
		{
			name:  "sequential calls, and a parallel call hidden by a longer one",
			spans: sequential,
			self: map[string]float64{
				// 0-10, 10-12 (before checkout's server span), 88-90, 90-100.
				"service:/frontend": 0.24,
				// 12-20, 20-22, 48-50, 50-55, 55-57, 83-85, 85-88.
				"service:/checkout":  0.24,
				"service:/inventory": 0.26,
				"service:/pricing":   0.26,
			},
			edges: map[string]float64{
				"service:/frontend->service:/checkout#http": 0.8,
				// Not on the critical path, but 25 of frontend's 100 ms.
				"service:/frontend->service:/recs#http":      0.25,
				"service:/checkout->service:/inventory#http": 30.0 / 76,
				"service:/checkout->service:/pricing#http":   30.0 / 76,
			},
		},
		{
			name: "parallel calls: the one that ends last is on the path",
			spans: []span{
				{svc: "frontend", kind: server, id: 1, dur: 100},
				{svc: "frontend", kind: client, id: 2, parent: 1, startMs: 10, dur: 50},
				{svc: "a", kind: server, id: 3, parent: 2, startMs: 12, dur: 46},
				{svc: "frontend", kind: client, id: 4, parent: 1, startMs: 10, dur: 80},
				{svc: "b", kind: server, id: 5, parent: 4, startMs: 12, dur: 76},
			},
			self: map[string]float64{"service:/frontend": 0.24, "service:/b": 0.76},
			edges: map[string]float64{
				"service:/frontend->service:/a#http": 0.5,
				"service:/frontend->service:/b#http": 0.8,
			},
		},
		{
			name:  "a leaf call to an uninstrumented service is that service's time",
			spans: uninstrumented,
			self: map[string]float64{
				"service:/frontend":  0.24,
				"service:/checkout":  0.20, // 55-57 and 83-85 are pricing's now
				"service:/inventory": 0.26,
				"service:/pricing":   0.30,
			},
			edges: map[string]float64{
				"service:/frontend->service:/checkout#http":  0.8,
				"service:/frontend->service:/recs#http":      0.25,
				"service:/checkout->service:/inventory#http": 30.0 / 76,
				"service:/checkout->service:/pricing#http":   30.0 / 76,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(settings(), nil)
			g.ConsumeTraces(traces(1, tc.spans...), t0)
			// Past the pending TTL (unpaired calls become virtual) and
			// the trace's idle time: the trace is analysed at this tick.
			snap := g.Tick(t0.Add(11 * time.Second))
			var sum float64
			for _, e := range snap.Entities {
				got, has := e.Features["critical_path.self_share"]
				want, listed := tc.self[e.ID]
				if !listed {
					assert.False(t, has, "%s is off the critical path", e.ID)
					continue
				}
				require.True(t, has, e.ID)
				assert.InDelta(t, want, got, 1e-9, "%s self share", e.ID)
				sum += got
			}
			assert.InDelta(t, 1, sum, 1e-9, "the self shares cover the trace")
			assert.Len(t, snap.Edges, len(tc.edges))
			for _, e := range snap.Edges {
				want, ok := tc.edges[e.Key()]
				require.True(t, ok, "unexpected edge %s", e.Key())
				assert.InDelta(t, want, e.Features["latency.share"], 1e-9, "%s latency share", e.Key())
			}
		})
	}
}

// TestCriticalPathSharesAreMeans: self_share is the mean over the window's
// sampled traces: a service with all of one trace and half of another
// reads 0.75.
func TestCriticalPathSharesAreMeans(t *testing.T) {
	g := New(settings(), nil)
	g.ConsumeTraces(traces(1, span{svc: "api", kind: ptrace.SpanKindServer, id: 1, dur: 100}), t0)
	g.ConsumeTraces(traces(2,
		span{svc: "api", kind: ptrace.SpanKindServer, id: 1, dur: 100},
		span{svc: "api", kind: ptrace.SpanKindClient, id: 2, parent: 1, startMs: 50, dur: 50},
		span{svc: "db", kind: ptrace.SpanKindServer, id: 3, parent: 2, startMs: 50, dur: 50},
	), t0)
	snap := g.Tick(t0.Add(11 * time.Second))
	api, ok := snap.Entity("service:/api")
	require.True(t, ok)
	assert.InDelta(t, 0.75, api.Features["critical_path.self_share"], 1e-9)
	db, ok := snap.Entity("service:/db")
	require.True(t, ok)
	assert.InDelta(t, 0.5, db.Features["critical_path.self_share"], 1e-9, "db is on one trace's path")
}
