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
//	Starting at the entity, follows the downstream edge that owns the
//	largest part of the current client's latency as long as that part is
//	at least the given minimum, for at most 16 hops and never visiting an
//	entity twice. Returns the edges followed, in order (empty when no edge
//	qualifies). An edge's part is its latency.share scaled by how much the
//	server's latency.p99_ms grew over its baseline relative to the
//	client's (see ownedShare), at most 1: a call whose server did not slow
//	down while its client did owns less of the client's latency than its
//	share of sampled traces, collected over the window, still says.
//	Example: critical_path(service, 0.5).map(e, e.server.name)
//
// dominant_hop(<entity>, <double>) -> junction.Entity
//
//	The server of the last edge of critical_path(<entity>, <double>): the
//	entity several hops down whose latency grew and owns the latency; the
//	entity itself when no edge qualifies.
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
			if visited[e.server] {
				continue
			}
			s, ok := ownedShare(e)
			if !ok || s < bestShare {
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

// ownedShare is the part of its client's current latency an edge owns:
// its latency.share times growth(server) / growth(client), at most 1.
//
// latency.share is a mean over the sampled traces of the window, per
// trace that made the call, so it is slow to follow a fault (the window
// still holds the traces from before it) and it cannot tell two routes of
// a service apart: the call of each route holds most of that route's
// latency. Scaling it by how much the server slowed down relative to the
// client names the hop whose latency grew: when the client's p99 grew 5x
// because its server's grew 10x, the call owns more of the client's
// latency than the window's traces show; a call whose server kept its
// usual latency owns a fifth of what it did. When the server or the
// client has no p99 or no baseline, the share is used as it is.
func ownedShare(e *edgeVal) (float64, bool) {
	s, ok := e.e.Features["latency.share"]
	if !ok {
		return 0, false
	}
	gs, sok := growth(e.server.e)
	gc, cok := growth(e.client.e)
	if sok && cok {
		s *= gs / gc
	}
	return min(s, 1), true
}

// growth is the entity's latency.p99_ms over its baseline, when it has
// both and they are positive.
func growth(e *entity.Entity) (float64, bool) {
	v, ok := e.Features[growthFeature]
	b, bok := e.Baseline[growthFeature]
	if !ok || !bok || v <= 0 || b <= 0 {
		return 0, false
	}
	return v / b, true
}

// growthFeature is the feature whose growth over its baseline weighs the
// latency shares of the critical path.
const growthFeature = "latency.p99_ms"

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
