package rules

import (
	"fmt"
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/junction-sre/junction/entity"
)

// graph is the runtime view of one snapshot that rules read: one entityVal
// per entity and one edgeVal per edge, built once per evaluation and shared
// by every rule. Values are read-only after construction except for the
// lazily built edge lists and metric maps, which are only touched by the
// single goroutine evaluating.
type graph struct {
	snap     *entity.Snapshot
	entities []entityVal
	byID     map[string]*entityVal
	byType   map[entity.Type][]*entityVal
	edges    []edgeVal
}

func newGraph(snap *entity.Snapshot) *graph {
	g := &graph{
		snap:     snap,
		entities: make([]entityVal, len(snap.Entities)),
		byID:     make(map[string]*entityVal, len(snap.Entities)),
		byType:   map[entity.Type][]*entityVal{},
	}
	for i := range snap.Entities {
		e := &snap.Entities[i]
		ev := &g.entities[i]
		ev.e = e
		ev.typ = schema.generic.typ
		if d, ok := schema.entity[e.Type]; ok {
			ev.typ = d.typ
		}
		ev.views[srcNow] = featView{m: e.Features, owner: e.ID}
		ev.views[src5m] = featView{m: e.Features5m, owner: e.ID}
		ev.views[srcBaseline] = featView{m: e.Baseline, owner: e.ID}
		g.byID[e.ID] = ev
		g.byType[e.Type] = append(g.byType[e.Type], ev)
	}
	g.edges = make([]edgeVal, len(snap.Edges))
	for i := range snap.Edges {
		ed := &snap.Edges[i]
		v := &g.edges[i]
		v.e = ed
		v.client = g.entityOrVirtual(ed.Source)
		v.server = g.entityOrVirtual(ed.Target)
		v.view = featView{m: ed.Features, owner: ed.Key()}
		v.client.down = append(v.client.down, v)
		v.server.up = append(v.server.up, v)
	}
	return g
}

// entityOrVirtual returns the entity with id, or a bare entity for an edge
// end the snapshot does not list (so edges never point at nothing).
func (g *graph) entityOrVirtual(id string) *entityVal {
	if ev, ok := g.byID[id]; ok {
		return ev
	}
	e := &entity.Entity{Ref: entity.Ref{ID: id, Name: id}, Virtual: true}
	ev := &entityVal{e: e, typ: schema.generic.typ}
	ev.views[srcNow] = featView{owner: id}
	ev.views[src5m] = featView{owner: id}
	ev.views[srcBaseline] = featView{owner: id}
	g.byID[id] = ev
	return ev
}

// entityVal is an entity as rules see it. It is its own CEL value.
type entityVal struct {
	e        *entity.Entity
	typ      *types.Type
	views    [numSources]featView
	down, up []*edgeVal
	downList ref.Val
	upList   ref.Val
	metricsV ref.Val
}

func (ev *entityVal) edges(down bool) ref.Val {
	if down {
		if ev.downList == nil {
			ev.downList = edgeList(ev.down)
		}
		return ev.downList
	}
	if ev.upList == nil {
		ev.upList = edgeList(ev.up)
	}
	return ev.upList
}

func edgeList(es []*edgeVal) ref.Val {
	vals := make([]ref.Val, len(es))
	for i, e := range es {
		vals[i] = e
	}
	return types.NewRefValList(types.DefaultTypeAdapter, vals)
}

func (ev *entityVal) metrics() ref.Val {
	if ev.metricsV == nil {
		m := make(map[ref.Val]ref.Val, len(ev.e.Metrics))
		for k, v := range ev.e.Metrics {
			m[types.String(k)] = types.Double(v)
		}
		ev.metricsV = types.NewRefValMap(types.DefaultTypeAdapter, m)
	}
	return ev.metricsV
}

// ref returns the entity's reference.
func (ev *entityVal) ref() entity.Ref { return ev.e.Ref }

func (ev *entityVal) ConvertToNative(t reflect.Type) (any, error) {
	if reflect.TypeOf(ev.e.Ref).AssignableTo(t) {
		return ev.e.Ref, nil
	}
	return nil, fmt.Errorf("entity cannot be converted to %v", t)
}

func (ev *entityVal) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.StringType:
		return types.String(ev.e.ID)
	case types.TypeType:
		return ev.typ
	}
	return types.NewErr("type conversion error from entity to '%s'", t)
}

// Equal reports whether other is the same entity (same id).
func (ev *entityVal) Equal(other ref.Val) ref.Val {
	o, ok := other.(*entityVal)
	return types.Bool(ok && o.e.ID == ev.e.ID)
}

func (ev *entityVal) Type() ref.Type { return ev.typ }
func (ev *entityVal) Value() any     { return ev }

// edgeVal is an edge as rules see it. It is its own CEL value.
type edgeVal struct {
	e              *entity.Edge
	client, server *entityVal
	view           featView
}

func (v *edgeVal) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("edge cannot be converted to %v", t)
}

func (v *edgeVal) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.StringType:
		return types.String(v.e.Key())
	case types.TypeType:
		return schema.edge.typ
	}
	return types.NewErr("type conversion error from edge to '%s'", t)
}

func (v *edgeVal) Equal(other ref.Val) ref.Val {
	o, ok := other.(*edgeVal)
	return types.Bool(ok && o.e.Key() == v.e.Key())
}

func (v *edgeVal) Type() ref.Type { return schema.edge.typ }
func (v *edgeVal) Value() any     { return v }

// featView is one feature map of an entity or edge (short window, 5m
// window or baseline) seen as a nested object (service.latency,
// service.w5m.latency).
type featView struct {
	m     map[string]float64
	owner string
}

var featViewType = types.NewObjectType(typePrefix + "Features")

func (v *featView) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("feature group cannot be converted to %v", t)
}

func (v *featView) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return featViewType
	}
	return types.NewErr("type conversion error from feature group to '%s'", t)
}

func (v *featView) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(v)) }
func (v *featView) Type() ref.Type              { return featViewType }
func (v *featView) Value() any                  { return v }

func asEntity(o any) (*entityVal, error) {
	switch x := o.(type) {
	case *entityVal:
		return x, nil
	case error:
		return nil, x
	}
	return nil, fmt.Errorf("value of type %T is not an entity", o)
}

func asEdge(o any) (*edgeVal, error) {
	switch x := o.(type) {
	case *edgeVal:
		return x, nil
	case error:
		return nil, x
	}
	return nil, fmt.Errorf("value of type %T is not an edge", o)
}

// asView returns the feature map of source src of an entity or edge, or
// the view itself when o is a view already (nested feature names).
func asView(o any, src featureSource) (*featView, error) {
	switch x := o.(type) {
	case *featView:
		return x, nil
	case *entityVal:
		return &x.views[src], nil
	case *edgeVal:
		return &x.view, nil
	case error:
		return nil, x
	}
	return nil, fmt.Errorf("value of type %T has no features", o)
}
