package graph

import (
	"maps"
	"math"
	"time"

	"github.com/junction-sre/junction/entity"
)

// baselineFeatures lists, per entity type, the features with a baseline.
var baselineFeatures = func() map[entity.Type][]string {
	m := map[entity.Type][]string{}
	for t, fs := range entity.Schema {
		for _, f := range fs {
			if f.Baseline {
				m[t] = append(m[t], f.Name)
			}
		}
	}
	return m
}()

// Snapshot returns a sorted deep copy of the graph as of at. It is safe to
// keep and read after the call; the graph never touches it again.
func (g *Graph) Snapshot(at time.Time) *entity.Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.snapshot(at)
}

func (g *Graph) snapshot(at time.Time) *entity.Snapshot {
	short, shortEdges := g.features(at, ShortWindow)
	long, _ := g.features(at, LongWindow)
	snap := &entity.Snapshot{Time: at, Entities: make([]entity.Entity, 0, len(g.entities)), Edges: make([]entity.Edge, 0, len(g.edges))}
	maxSamples := g.s.Limits.MaxLogSamples
	for id, e := range g.entities {
		ent := entity.Entity{
			Ref:        e.ref,
			Virtual:    e.virtual,
			Attributes: maps.Clone(e.attrs),
			Features:   nonEmpty(short[id]),
			Features5m: nonEmpty(long[id]),
			Baseline:   maps.Clone(e.baseline),
			Metrics:    maps.Clone(e.raw),
		}
		ent.Evidence.Exemplars = e.exemplars.list(at)
		ent.Evidence.LogSamples = g.samples(e.templates, at, maxSamples)
		snap.Entities = append(snap.Entities, ent)
	}
	for k, e := range g.edges {
		snap.Edges = append(snap.Edges, entity.Edge{
			Source:   k.src,
			Target:   k.dst,
			Type:     k.typ,
			Features: nonEmpty(shortEdges[k]),
			Evidence: entity.Evidence{Exemplars: e.exemplars.list(at)},
		})
	}
	snap.Sort()
	return snap
}

func nonEmpty(m map[string]float64) map[string]float64 {
	if len(m) == 0 {
		return nil
	}
	return m
}

// updateBaselines moves every baseline towards its short-window value by
// the EWMA weight of the time since the last update.
//
// A feature's baseline is seeded only once the feature has had a value
// for a whole ShortWindow, from the value it has then. Before, the
// 1-minute value covers part of its window, and telemetry is bucketed when
// it arrives, so the first batch (which holds requests from before the
// entity was first seen) counts as if it all arrived at once: a rate read
// then is too high, and an EWMA with a 1-hour time constant keeps most of
// such a seed for an hour. seedFrom holds when each unseeded feature was
// first present; a feature that goes absent before it is seeded starts
// over.
func (g *Graph) updateBaselines(now time.Time, snap *entity.Snapshot) {
	tau := g.s.Baseline.TimeConstant.Seconds()
	for i := range snap.Entities {
		se := &snap.Entities[i]
		e := g.entities[se.ID]
		if e == nil {
			continue
		}
		alpha := 1.0
		if !e.baseAt.IsZero() {
			dt := now.Sub(e.baseAt).Seconds()
			if dt <= 0 {
				continue
			}
			alpha = 1 - math.Exp(-dt/tau)
		}
		e.baseAt = now
		for _, f := range baselineFeatures[e.ref.Type] {
			v, ok := se.Features[f]
			if b, seeded := e.baseline[f]; seeded {
				if ok {
					e.baseline[f] = b + alpha*(v-b)
				}
				continue
			}
			if !ok {
				delete(e.seedFrom, f)
				continue
			}
			from, pending := e.seedFrom[f]
			if !pending {
				if e.seedFrom == nil {
					e.seedFrom = map[string]time.Time{}
				}
				e.seedFrom[f] = now
				from = now
			}
			if now.Sub(from) < ShortWindow {
				continue
			}
			if e.baseline == nil {
				e.baseline = map[string]float64{}
			}
			e.baseline[f] = v
			delete(e.seedFrom, f)
		}
	}
}
