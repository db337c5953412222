package graph

import (
	"maps"
	"sort"

	"github.com/junction-sre/junction/entity"
)

// Merge adds e to the sorted snapshot snap, or merges it into the entity
// with the same id: e's features, 5-minute features, baselines, metrics and
// attributes are added (e's value wins on a clash), its evidence appended,
// and the entity stays virtual only if both are. Other parts of the
// processor (the cross-chain tracker) use it to add their features to a
// snapshot before it is handed out.
func Merge(snap *entity.Snapshot, e entity.Entity) {
	i := sort.Search(len(snap.Entities), func(i int) bool { return snap.Entities[i].ID >= e.ID })
	if i == len(snap.Entities) || snap.Entities[i].ID != e.ID {
		snap.Entities = append(snap.Entities, entity.Entity{})
		copy(snap.Entities[i+1:], snap.Entities[i:])
		snap.Entities[i] = e
		return
	}
	cur := &snap.Entities[i]
	cur.Virtual = cur.Virtual && e.Virtual
	cur.Attributes = mergeMap(cur.Attributes, e.Attributes)
	cur.Features = mergeMap(cur.Features, e.Features)
	cur.Features5m = mergeMap(cur.Features5m, e.Features5m)
	cur.Baseline = mergeMap(cur.Baseline, e.Baseline)
	cur.Metrics = mergeMap(cur.Metrics, e.Metrics)
	cur.Evidence.Exemplars = append(cur.Evidence.Exemplars, e.Evidence.Exemplars...)
	cur.Evidence.LogSamples = append(cur.Evidence.LogSamples, e.Evidence.LogSamples...)
	cur.Evidence.Stuck = append(cur.Evidence.Stuck, e.Evidence.Stuck...)
}

func mergeMap[V any](dst, src map[string]V) map[string]V {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		return maps.Clone(src)
	}
	maps.Copy(dst, src)
	return dst
}
