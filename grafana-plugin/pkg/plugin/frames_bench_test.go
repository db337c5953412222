package plugin

import (
	"fmt"
	"testing"
	"time"
)

// benchGraph is a graph of n services, each calling four others.
func benchGraph(n int) Graph {
	g := Graph{Nodes: make([]Node, n)}
	for i := range g.Nodes {
		g.Nodes[i] = Node{
			ID: fmt.Sprintf("service:shop/s%d", i), Type: "service", Name: fmt.Sprintf("s%d", i),
			Stats:  map[string]float64{"request.rate": 10, "error.ratio": 0.01, "latency.p99_ms": 120},
			Health: Health{OK: 0.9, Warning: 0.1}, Blamed: i%50 == 0, Alerts: []string{"a"},
		}
		for k := 1; k <= 4; k++ {
			j := (i + k) % n
			g.Edges = append(g.Edges, GraphEdge{
				ID: fmt.Sprintf("%d->%d#http", i, j), Source: g.Nodes[i].ID, Target: fmt.Sprintf("service:shop/s%d", j), Type: "http",
				Stats: map[string]float64{"request.rate": 2, "error.ratio": 0, "latency.p99_ms": 80, "latency.share": 0.3},
			})
		}
	}
	return g
}

func BenchmarkGraphFrames(b *testing.B) {
	for _, n := range []int{100, 2000} {
		g := benchGraph(n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				GraphFrames(g)
			}
		})
	}
}

func BenchmarkTimelineFrame(b *testing.B) {
	base := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ivs := make([]Interval, 0, 2000)
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("g/r@service:s%d", i)
		ivs = append(ivs,
			Interval{ID: id, Rule: "r", Severity: "warning", State: "pending", From: base.Add(time.Duration(i) * time.Second), To: base.Add(time.Duration(i)*time.Second + time.Minute)},
			Interval{ID: id, Rule: "r", Severity: "warning", State: "firing", From: base.Add(time.Duration(i)*time.Second + time.Minute), To: base.Add(time.Hour)})
	}
	b.ReportAllocs()
	for b.Loop() {
		TimelineFrame(ivs)
	}
}
