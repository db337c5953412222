package graph

import (
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/junction-sre/junction/entity"
)

// latencySketches collects, during one TickMergeable, the latency sketch
// of every entity and edge whose window had latencies, for the snapshot's
// Latency fields. Its maps hold at most one sketch per entity and edge of
// the graph, which are bounded, and are emptied after every tick.
type latencySketches struct {
	short, long map[string]*entity.LatencySketch
	edges       map[edgeKey]*entity.LatencySketch
}

// keep reports whether sketches are being collected.
func (l *latencySketches) keep() bool { return l.short != nil }

func (l *latencySketches) start() {
	l.short = map[string]*entity.LatencySketch{}
	l.long = map[string]*entity.LatencySketch{}
	l.edges = map[edgeKey]*entity.LatencySketch{}
}

func (l *latencySketches) stop() { *l = latencySketches{} }

// window returns the entity map of window d, nil for a window that has no
// features of its own.
func (l *latencySketches) window(d time.Duration) map[string]*entity.LatencySketch {
	switch d {
	case ShortWindow:
		return l.short
	case LongWindow:
		return l.long
	}
	return nil
}

// attach sets the Latency of the snapshot's entities and edges.
func (l *latencySketches) attach(snap *entity.Snapshot) {
	for i := range snap.Entities {
		e := &snap.Entities[i]
		s, lg := l.short[e.ID], l.long[e.ID]
		if s != nil || lg != nil {
			e.Latency = &entity.LatencySketches{Short: s, Long: lg}
		}
	}
	for i := range snap.Edges {
		ed := &snap.Edges[i]
		if s := l.edges[edgeKey{ed.Source, ed.Target, ed.Type}]; s != nil {
			ed.Latency = &entity.LatencySketches{Short: s}
		}
	}
}

// latencySketch copies the bins of s, a sketch of the windows' mapping of
// relative accuracy acc. Latencies are never negative (window.Observe
// clamps them), so the negative store is empty.
func latencySketch(s *ddsketch.DDSketch, acc float64) *entity.LatencySketch {
	out := &entity.LatencySketch{RelativeAccuracy: acc, Zero: s.GetZeroCount()}
	st := s.GetPositiveValueStore()
	n := 0
	st.ForEach(func(int, float64) bool { n++; return false })
	if n == 0 {
		return out
	}
	out.Bins = make([]entity.LatencyBin, 0, n)
	st.ForEach(func(index int, count float64) bool {
		out.Bins = append(out.Bins, entity.LatencyBin{Index: int32(index), Count: count})
		return false
	})
	return out
}
