package rules

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/junction-sre/junction/entity"
)

// maxHops bounds the downstream walks of the graph functions, so that a
// cycle or a very deep graph costs at most this many steps.
const maxHops = 16

// graphLib is Junction's CEL extension library: functions that walk the
// entity graph, which plain CEL cannot do (it has no recursion).
//
// critical_path(<entity>, <double>) -> list(junction.Edge)
//
//	Starting at the entity, follows the downstream edge with the largest
//	latency.share as long as that share is at least the given minimum,
//	for at most 16 hops and never visiting an entity twice. Returns the
//	edges followed, in order (empty when no edge qualifies).
//	Example: critical_path(service, 0.5).map(e, e.server.name)
//
// dominant_hop(<entity>, <double>) -> junction.Entity
//
//	The server of the last edge of critical_path(<entity>, <double>): the
//	entity several hops down that owns the latency; the entity itself when
//	no edge qualifies.
//	Example: dominant_hop(service, 0.5).name
//
// as_entity(<entity>) -> junction.Entity
//
//	The same entity seen as the generic entity type, so that a typed
//	entity and an edge's client or server can meet in one expression.
//	Example: size(bad) > 0 ? bad[0].server : as_entity(proxy)
type graphLib struct{}

func (graphLib) LibraryName() string { return "junction.graph" }

func (graphLib) CompileOptions() []cel.EnvOption {
	var pathOverloads, hopOverloads, asOverloads []cel.FunctionOpt
	edges := cel.ListType(schema.edge.typ)
	add := func(idSuffix string, t *types.Type) {
		pathOverloads = append(pathOverloads, cel.Overload("critical_path_"+idSuffix+"_double",
			[]*cel.Type{t, cel.DoubleType}, edges, cel.BinaryBinding(criticalPathBinding)))
		hopOverloads = append(hopOverloads, cel.Overload("dominant_hop_"+idSuffix+"_double",
			[]*cel.Type{t, cel.DoubleType}, schema.generic.typ, cel.BinaryBinding(dominantHopBinding)))
		asOverloads = append(asOverloads, cel.Overload("as_entity_"+idSuffix,
			[]*cel.Type{t}, schema.generic.typ, cel.UnaryBinding(func(v ref.Val) ref.Val { return v })))
	}
	for _, t := range entity.Types {
		add(string(t), schema.entity[t].typ)
	}
	add("entity", schema.generic.typ)
	return []cel.EnvOption{
		cel.Function("critical_path", pathOverloads...),
		cel.Function("dominant_hop", hopOverloads...),
		cel.Function("as_entity", asOverloads...),
	}
}

func (graphLib) ProgramOptions() []cel.ProgramOption { return nil }

// criticalPath follows the dominant downstream edges from ev.
func criticalPath(ev *entityVal, minShare float64) []*edgeVal {
	var path []*edgeVal
	visited := map[*entityVal]bool{ev: true}
	cur := ev
	for len(path) < maxHops {
		var best *edgeVal
		bestShare := minShare
		for _, e := range cur.down {
			s, ok := e.e.Features["latency.share"]
			if !ok || s < bestShare || visited[e.server] {
				continue
			}
			if best == nil || s > bestShare || (s == bestShare && e.server.e.ID < best.server.e.ID) {
				best, bestShare = e, s
			}
		}
		if best == nil {
			break
		}
		path = append(path, best)
		visited[best.server] = true
		cur = best.server
	}
	return path
}

func graphArgs(a, b ref.Val) (*entityVal, float64, ref.Val) {
	ev, ok := a.(*entityVal)
	if !ok {
		return nil, 0, types.MaybeNoSuchOverloadErr(a)
	}
	d, ok := b.(types.Double)
	if !ok {
		return nil, 0, types.MaybeNoSuchOverloadErr(b)
	}
	return ev, float64(d), nil
}

func criticalPathBinding(a, b ref.Val) ref.Val {
	ev, min, errv := graphArgs(a, b)
	if errv != nil {
		return errv
	}
	path := criticalPath(ev, min)
	vals := make([]ref.Val, len(path))
	for i, e := range path {
		vals[i] = e
	}
	return types.NewRefValList(types.DefaultTypeAdapter, vals)
}

func dominantHopBinding(a, b ref.Val) ref.Val {
	ev, min, errv := graphArgs(a, b)
	if errv != nil {
		return errv
	}
	path := criticalPath(ev, min)
	if len(path) == 0 {
		return ev
	}
	return path[len(path)-1].server
}
