package rules

import (
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"

	"github.com/junction-sre/junction/entity"
)

// svc is a service entity with a p99 and, when base > 0, its baseline.
func shopSvc(name string, p99, base float64) entity.Entity {
	e := entity.Entity{
		Ref:      entity.Ref{ID: entity.ID(entity.Service, "shop", name), Type: entity.Service, Name: name},
		Features: map[string]float64{"latency.p99_ms": p99},
	}
	if base > 0 {
		e.Baseline = map[string]float64{"latency.p99_ms": base}
	}
	return e
}

func call(from, to string, share float64) entity.Edge {
	return entity.Edge{
		Source:   entity.ID(entity.Service, "shop", from),
		Target:   entity.ID(entity.Service, "shop", to),
		Type:     entity.EdgeGRPC,
		Features: map[string]float64{"latency.share": share},
	}
}

// TestCriticalPathFollowsLatencyGrowth: the path follows the calls whose
// servers' latency grew, not the largest share of sampled traces.
func TestCriticalPathFollowsLatencyGrowth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ents  []entity.Entity
		edges []entity.Edge
		want  string // servers of the path from frontend, " -> "-joined
	}{
		{
			name: "healthy: the largest share",
			ents: []entity.Entity{shopSvc("frontend", 60, 60), shopSvc("checkout", 55, 55), shopSvc("recommendations", 55, 55)},
			edges: []entity.Edge{
				call("frontend", "checkout", 0.86), call("frontend", "recommendations", 0.89),
			},
			want: "recommendations",
		},
		{
			// Each route's call holds most of its route: the larger share
			// belongs to the route that did not get slower.
			name: "two routes: the one whose hop grew",
			ents: []entity.Entity{
				shopSvc("frontend", 300, 60), shopSvc("checkout", 390, 55), shopSvc("recommendations", 55, 55),
				shopSvc("inventory", 370, 27), shopSvc("orders", 20, 20),
			},
			edges: []entity.Edge{
				call("frontend", "checkout", 0.86), call("frontend", "recommendations", 0.89),
				call("checkout", "inventory", 0.40), call("checkout", "orders", 0.33),
			},
			want: "checkout -> inventory",
		},
		{
			name:  "the client's own time grew: no hop owns it",
			ents:  []entity.Entity{shopSvc("frontend", 400, 55), shopSvc("checkout", 55, 55)},
			edges: []entity.Edge{call("frontend", "checkout", 0.6)},
			want:  "",
		},
		{
			name:  "no baseline on the server: the share as it is",
			ents:  []entity.Entity{shopSvc("frontend", 400, 55), shopSvc("checkout", 380, 0)},
			edges: []entity.Edge{call("frontend", "checkout", 0.6)},
			want:  "checkout",
		},
		{
			name:  "an uninstrumented server: the share as it is",
			ents:  []entity.Entity{shopSvc("frontend", 400, 55)},
			edges: []entity.Edge{call("frontend", "payments", 0.7)},
			want:  "service:shop/payments",
		},
		{
			name:  "below the minimum even when grown",
			ents:  []entity.Entity{shopSvc("frontend", 100, 50), shopSvc("checkout", 150, 50)},
			edges: []entity.Edge{call("frontend", "checkout", 0.3)},
			want:  "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := &entity.Snapshot{Entities: tc.ents, Edges: tc.edges}
			snap.Sort()
			g := newGraph(snap)
			start := g.byID[entity.ID(entity.Service, "shop", "frontend")]
			var names []string
			for _, e := range criticalPath(start, 0.5) {
				names = append(names, e.server.e.Name)
			}
			if got := strings.Join(names, " -> "); got != tc.want {
				t.Errorf("critical path %q, want %q", got, tc.want)
			}
			hop := dominantHopBinding(start, types.Double(0.5)).(*entityVal)
			wantHop := start.e.Name
			if len(names) > 0 {
				wantHop = names[len(names)-1]
			}
			if hop.e.Name != wantHop {
				t.Errorf("dominant hop %s, want %s", hop.e.Name, wantHop)
			}
		})
	}
}
