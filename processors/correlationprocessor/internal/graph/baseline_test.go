package graph

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/entity"
)

// serverBatch is n SERVER spans of service svc (namespace shop) through
// proxy route route ("" for none), each of ms milliseconds, the first
// failed ones of them failed, as one export batch.
func serverBatch(svc, route string, n, failed int, ms time.Duration) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	rs.Resource().Attributes().PutStr("service.namespace", "shop")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), 0xba})
		sp.SetSpanID(pcommon.SpanID{1})
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(ms)))
		if i < failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		if route != "" {
			sp.Attributes().PutStr("upstream_cluster", route)
		}
	}
	return td
}

// poolGauge is one db.client.connection.max data point of service svc.
func poolGauge(svc string, v float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", svc)
	rm.Resource().Attributes().PutStr("service.namespace", "shop")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("db.client.connection.max")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(v)
	return md
}

// TestSteadyRateBaselineIsTheSteadyRate: a service (and the proxy route in
// front of it) serving a steady 10 req/s, 10 % failed, of 20 ms each, in
// batches of 5 s that arrive 2.5 s into each 5 s (so every 1-minute window
// holds a whole number of batches), ticked every 15 s. Its baselines must
// be the steady values from the first snapshot that has them.
//
// Seeded at the first tick, as they were, the request-rate baseline was 12
// (the first batch's 5 s of requests over the 2.5 s since the entity was
// first seen, like the simulator's edge proxy at 40.8 req/s against 24.8),
// and the EWMA keeps most of that for an hour: surge.factor read 0.83.
func TestSteadyRateBaselineIsTheSteadyRate(t *testing.T) {
	cases := []struct {
		name string
		// before runs at t0, before any request.
		before func(g *Graph)
		// start is when the requests start.
		start time.Duration
	}{
		{name: "new service", start: 0},
		{name: "service known from its pool metrics 5m before its first request", start: 5 * time.Minute, before: func(g *Graph) {
			g.ConsumeMetrics(poolGauge("api", 10), t0)
		}},
	}
	ids := []string{"service:shop/api", "proxy:api/frontend"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := settings()
			s.Identity.ProxyRoute = []string{"upstream_cluster"}
			s.Metrics = map[string]MetricMapping{"db.client.connection.max": {Entity: entity.Service, Input: InPoolMax}}
			g := New(s, nil)
			if tc.before != nil {
				tc.before(g)
			}
			first := map[string]time.Duration{} // first tick whose snapshot has request.rate
			seeded := map[string]time.Duration{}
			step := 2500 * time.Millisecond
			for off := step; off <= tc.start+15*time.Minute; off += step {
				if off > tc.start && (off/step)%2 == 1 {
					g.ConsumeTraces(serverBatch("api", "frontend", 50, 5, 20*time.Millisecond), t0.Add(off))
				}
				if off%(15*time.Second) != 0 {
					continue
				}
				snap := g.Tick(t0.Add(off))
				for _, id := range ids {
					e, ok := snap.Entity(id)
					if !ok {
						continue
					}
					if _, has := e.Features["request.rate"]; has {
						if _, seen := first[id]; !seen {
							first[id] = off
						}
					}
					b, has := e.Baseline["request.rate"]
					if !has {
						assert.NotContains(t, e.Features, "surge.factor", "%s at +%v: no baseline, no surge factor", id, off)
						continue
					}
					if _, was := seeded[id]; !was {
						seeded[id] = off
					}
					at := fmt.Sprintf("%s at +%v", id, off)
					require.InDelta(t, 10, b, 1e-9, "%s: request.rate baseline", at)
					require.InDelta(t, 10, e.Features["request.rate"], 1e-9, "%s: request.rate", at)
					require.InDelta(t, 0.1, e.Baseline["error.ratio"], 1e-9, "%s: error.ratio baseline", at)
					require.InEpsilon(t, 20, e.Baseline["latency.p99_ms"], 0.01, "%s: latency.p99_ms baseline", at)
					if off > seeded[id] {
						require.InDelta(t, 1, e.Features["surge.factor"], 1e-9, "%s: surge.factor", at)
					}
				}
			}
			for _, id := range ids {
				require.Contains(t, first, id)
				// Seeded at the tick a minute after the first value; a
				// snapshot shows the baseline as it was before its tick.
				assert.Equal(t, first[id]+time.Minute+15*time.Second, seeded[id], "%s: first snapshot with a baseline", id)
			}
		})
	}
}

// TestSurgeFactorAgainstTheSteadyBaseline: after 5 minutes at 10 req/s,
// traffic jumps to 60 req/s; once the 1-minute window holds only the
// surge, surge.factor reads the 6x, less what the EWMA (1 h) has moved.
func TestSurgeFactorAgainstTheSteadyBaseline(t *testing.T) {
	s := settings()
	s.Identity.ProxyRoute = []string{"upstream_cluster"}
	g := New(s, nil)
	step := 2500 * time.Millisecond
	var snap *entity.Snapshot
	for off := step; off <= 7*time.Minute; off += step {
		if (off/step)%2 == 1 {
			n := 50
			if off > 5*time.Minute {
				n = 300
			}
			g.ConsumeTraces(serverBatch("api", "frontend", n, 0, 20*time.Millisecond), t0.Add(off))
		}
		if off%(15*time.Second) == 0 {
			snap = g.Tick(t0.Add(off))
		}
	}
	px, ok := snap.Entity("proxy:api/frontend")
	require.True(t, ok)
	assert.InDelta(t, 60, px.Features["request.rate"], 1e-9)
	// The baseline moved from 10 towards 60 for the 8 ticks of the first
	// surge minute and the ticks before it saw part of the surge.
	b := px.Baseline["request.rate"]
	assert.Greater(t, b, 10.0)
	assert.Less(t, b, 12.0)
	assert.InDelta(t, 60/b, px.Features["surge.factor"], 1e-9)
	assert.Greater(t, px.Features["surge.factor"], 5.0, "a 6x surge reads over 5x")
}

// TestBaselineSeedWaitsForAWholeWindowOfTheFeature: error.ratio exists only
// while the 1-minute window holds requests; a feature that goes absent
// before its baseline is seeded starts its minute over when it comes back.
func TestBaselineSeedWaitsForAWholeWindowOfTheFeature(t *testing.T) {
	g := New(settings(), nil)
	// One batch at t0 (error.ratio is then present for 55 s of ticks),
	// nothing for 2.5 minutes, then a batch every 5 s from +2m30s.
	back := 150 * time.Second
	for off := time.Duration(0); off <= 5*time.Minute; off += 5 * time.Second {
		if off == 0 || off >= back {
			g.ConsumeTraces(serverBatch("api", "", 20, 5, 10*time.Millisecond), t0.Add(off))
		}
		at := off + time.Second
		snap := g.Tick(t0.Add(at))
		e, ok := snap.Entity("service:shop/api")
		require.True(t, ok)
		b, has := e.Baseline["error.ratio"]
		// Back at the tick of +2m31s, seeded at the tick a minute later,
		// shown by the snapshot of the tick after.
		if at < back+time.Second+time.Minute+5*time.Second {
			assert.False(t, has, "+%v: error.ratio has not had a whole minute yet", at)
			continue
		}
		require.True(t, has, "+%v: seeded a minute after the requests came back", at)
		assert.InDelta(t, 0.25, b, 1e-9)
	}
}
