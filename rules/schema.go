package rules

import (
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/junction-sre/junction/entity"
)

// CEL type names. Every entity type has its own object type
// (junction.Service, junction.Pod, ...) with the features of its schema;
// the client and server of an edge are junction.Entity, which has the
// features of every entity type (a feature the entity's type does not have
// reads as absent). Dotted feature names become nested object types, e.g.
// junction.Service.latency with the field p99_ms.
const (
	typePrefix      = "junction."
	genericTypeName = typePrefix + "Entity"
	edgeTypeName    = typePrefix + "Edge"
)

// featureSource says which of an entity's feature maps a field reads.
type featureSource uint8

const (
	srcNow featureSource = iota
	src5m
	srcBaseline
	numSources
)

// sourcePrefix is how evidence keys name the feature maps.
var sourcePrefix = [numSources]string{"", "w5m.", "baseline."}

// structDef is one CEL object type: an entity type, the generic entity,
// the edge, or a level of nested feature names.
type structDef struct {
	name   string
	typ    *types.Type
	fields map[string]*fieldDef
	names  []string
	// isEntity marks entity object types (blame must yield one).
	isEntity bool
}

// fieldDef is one field of a structDef.
type fieldDef struct {
	ft *types.FieldType
	// feature is the full feature name of a leaf feature field ("" for
	// other fields), src the map it reads.
	feature string
	src     featureSource
}

// schemaTypes holds every CEL object type that rules can see. It is built
// once from entity.Schema and entity.EdgeSchema and shared by all
// environments.
type schemaTypes struct {
	structs map[string]*structDef
	// entity maps an entity type to its CEL object type.
	entity  map[entity.Type]*structDef
	generic *structDef
	edge    *structDef
}

var schema = mustBuildSchema()

func mustBuildSchema() *schemaTypes {
	s, err := buildSchema(entity.Schema, entity.EdgeSchema)
	if err != nil {
		// entity.Schema is a compile-time table; TestSchemaBuilds guards it.
		panic(fmt.Sprintf("rules: entity schema cannot be typed: %v", err))
	}
	return s
}

// celTypeName returns "junction.Service" for entity.Service.
func celTypeName(t entity.Type) string {
	s := string(t)
	return typePrefix + strings.ToUpper(s[:1]) + s[1:]
}

// reservedFields are the fields of every entity besides its features.
var reservedFields = map[string]bool{
	"id": true, "name": true, "type": true, "virtual": true, "attributes": true,
	"metrics": true, "w5m": true, "baseline": true, "downstream": true, "upstream": true,
}

func buildSchema(es map[entity.Type][]entity.Feature, edgeFeatures []entity.Feature) (*schemaTypes, error) {
	s := &schemaTypes{structs: map[string]*structDef{}, entity: map[entity.Type]*structDef{}}
	s.edge = s.newStruct(edgeTypeName, false)
	s.generic = s.newStruct(genericTypeName, true)
	var union []entity.Feature
	seen := map[string]bool{}
	for _, t := range entity.Types {
		for _, f := range es[t] {
			if !seen[f.Name] {
				seen[f.Name] = true
				union = append(union, f)
			}
		}
	}
	if err := s.fillEntity(s.generic, union); err != nil {
		return nil, fmt.Errorf("%s: %w", genericTypeName, err)
	}
	for _, t := range entity.Types {
		d := s.newStruct(celTypeName(t), true)
		if err := s.fillEntity(d, es[t]); err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		s.entity[t] = d
	}
	// Edge fields.
	entityField := func(get func(*edgeVal) *entityVal) *fieldDef {
		return &fieldDef{ft: &types.FieldType{
			Type:  s.generic.typ,
			IsSet: func(any) bool { return true },
			GetFrom: func(o any) (any, error) {
				e, err := asEdge(o)
				if err != nil {
					return nil, err
				}
				return get(e), nil
			},
		}}
	}
	s.edge.add("type", &fieldDef{ft: &types.FieldType{
		Type:  types.StringType,
		IsSet: func(any) bool { return true },
		GetFrom: func(o any) (any, error) {
			e, err := asEdge(o)
			if err != nil {
				return nil, err
			}
			return types.String(e.e.Type), nil
		},
	}})
	s.edge.add("client", entityField(func(e *edgeVal) *entityVal { return e.client }))
	s.edge.add("server", entityField(func(e *edgeVal) *entityVal { return e.server }))
	if err := s.addFeatures(s.edge, edgeFeatures, srcNow, func(n string) bool { return reservedFields[n] || n == "client" || n == "server" }); err != nil {
		return nil, fmt.Errorf("%s: %w", edgeTypeName, err)
	}
	for _, d := range s.structs {
		sort.Strings(d.names)
	}
	return s, nil
}

func (s *schemaTypes) newStruct(name string, isEntity bool) *structDef {
	d := &structDef{name: name, typ: types.NewObjectType(name), fields: map[string]*fieldDef{}, isEntity: isEntity}
	s.structs[name] = d
	return d
}

func (d *structDef) add(name string, f *fieldDef) {
	d.fields[name] = f
	d.names = append(d.names, name)
}

func constField(t *types.Type, get func(*entityVal) ref.Val) *fieldDef {
	return &fieldDef{ft: &types.FieldType{
		Type:  t,
		IsSet: func(any) bool { return true },
		GetFrom: func(o any) (any, error) {
			e, err := asEntity(o)
			if err != nil {
				return nil, err
			}
			return get(e), nil
		},
	}}
}

func (s *schemaTypes) fillEntity(d *structDef, features []entity.Feature) error {
	d.add("id", constField(types.StringType, func(e *entityVal) ref.Val { return types.String(e.e.ID) }))
	d.add("name", constField(types.StringType, func(e *entityVal) ref.Val { return types.String(e.e.Name) }))
	d.add("type", constField(types.StringType, func(e *entityVal) ref.Val { return types.String(e.e.Type) }))
	d.add("virtual", constField(types.BoolType, func(e *entityVal) ref.Val { return types.Bool(e.e.Virtual) }))
	d.add("attributes", constField(types.NewMapType(types.StringType, types.StringType), func(e *entityVal) ref.Val {
		return types.NewStringStringMap(types.DefaultTypeAdapter, e.e.Attributes)
	}))
	d.add("metrics", constField(types.NewMapType(types.StringType, types.DoubleType), func(e *entityVal) ref.Val {
		return e.metrics()
	}))
	edges := types.NewListType(s.edge.typ)
	d.add("downstream", constField(edges, func(e *entityVal) ref.Val { return e.edges(true) }))
	d.add("upstream", constField(edges, func(e *entityVal) ref.Val { return e.edges(false) }))
	reserved := func(n string) bool { return reservedFields[n] }
	if err := s.addFeatures(d, features, srcNow, reserved); err != nil {
		return err
	}
	w5m := s.newStruct(d.name+".w5m", false)
	if err := s.addFeatures(w5m, features, src5m, nil); err != nil {
		return err
	}
	var withBaseline []entity.Feature
	for _, f := range features {
		if f.Baseline {
			withBaseline = append(withBaseline, f)
		}
	}
	base := s.newStruct(d.name+".baseline", false)
	if err := s.addFeatures(base, withBaseline, srcBaseline, nil); err != nil {
		return err
	}
	d.add("w5m", viewField(w5m.typ, src5m))
	d.add("baseline", viewField(base.typ, srcBaseline))
	return nil
}

// viewField selects a feature view (the entity's or edge's feature map of
// one source) as a nested object.
func viewField(t *types.Type, src featureSource) *fieldDef {
	return &fieldDef{ft: &types.FieldType{
		Type:  t,
		IsSet: func(any) bool { return true },
		GetFrom: func(o any) (any, error) {
			return asView(o, src)
		},
	}}
}

// addFeatures adds the features to d as nested fields: "latency.p99_ms"
// adds the field latency of type <d>.latency with the double field p99_ms.
func (s *schemaTypes) addFeatures(d *structDef, features []entity.Feature, src featureSource, reserved func(string) bool) error {
	for _, f := range features {
		parts := strings.Split(f.Name, ".")
		cur := d
		for i, p := range parts {
			if p == "" {
				return fmt.Errorf("feature %q has an empty name part", f.Name)
			}
			if i == 0 && reserved != nil && reserved(p) {
				return fmt.Errorf("feature %q clashes with the field %q", f.Name, p)
			}
			existing := cur.fields[p]
			if i == len(parts)-1 {
				if existing != nil {
					return fmt.Errorf("feature %q clashes with another feature or group", f.Name)
				}
				cur.add(p, leafField(f.Name, src))
				continue
			}
			if existing != nil {
				if existing.feature != "" {
					return fmt.Errorf("feature %q clashes with the feature %q", f.Name, existing.feature)
				}
				cur = s.structs[existing.ft.Type.TypeName()]
				continue
			}
			next := s.newStruct(cur.name+"."+p, false)
			cur.add(p, viewField(next.typ, src))
			cur = next
		}
	}
	return nil
}

// leafField reads one feature. A feature without a value reads as an
// errNoData error (has() reports it as not set).
func leafField(name string, src featureSource) *fieldDef {
	return &fieldDef{feature: name, src: src, ft: &types.FieldType{
		Type: types.DoubleType,
		IsSet: func(o any) bool {
			v, err := asView(o, src)
			if err != nil {
				return false
			}
			_, ok := v.m[name]
			return ok
		},
		GetFrom: func(o any) (any, error) {
			v, err := asView(o, src)
			if err != nil {
				return nil, err
			}
			x, ok := v.m[name]
			if !ok {
				return nil, &NoDataError{Entity: v.owner, Feature: sourcePrefix[src] + name}
			}
			return types.Double(x), nil
		},
	}}
}

// NoDataError is the error of reading a feature or metric that has no
// value. A rule whose expression ends in NoDataError for an entity does not
// fire for it; the rule stays healthy.
type NoDataError struct {
	Entity  string
	Feature string
}

func (e *NoDataError) Error() string {
	return fmt.Sprintf("no value for feature %s of %s", e.Feature, e.Entity)
}

// typeProvider exposes the schema's object types to the CEL checker and
// interpreter, delegating every other type to the environment's provider.
type typeProvider struct {
	base    types.Provider
	adapter types.Adapter
}

func (p *typeProvider) EnumValue(name string) ref.Val { return p.base.EnumValue(name) }

func (p *typeProvider) FindIdent(name string) (ref.Val, bool) {
	if d, ok := schema.structs[name]; ok {
		return d.typ, true
	}
	return p.base.FindIdent(name)
}

func (p *typeProvider) FindStructType(name string) (*types.Type, bool) {
	if d, ok := schema.structs[name]; ok {
		return types.NewTypeTypeWithParam(d.typ), true
	}
	return p.base.FindStructType(name)
}

func (p *typeProvider) FindStructFieldNames(name string) ([]string, bool) {
	if d, ok := schema.structs[name]; ok {
		return d.names, true
	}
	return p.base.FindStructFieldNames(name)
}

func (p *typeProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if d, ok := schema.structs[name]; ok {
		f, ok := d.fields[field]
		if !ok {
			return nil, false
		}
		return f.ft, true
	}
	return p.base.FindStructFieldType(name, field)
}

func (p *typeProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := schema.structs[name]; ok {
		return types.NewErr("%s values cannot be constructed in rules", name)
	}
	return p.base.NewValue(name, fields)
}

// NativeToValue adapts the runtime values of entities, edges and feature
// views (which are ref.Vals already) and delegates the rest.
func (p *typeProvider) NativeToValue(v any) ref.Val {
	switch x := v.(type) {
	case ref.Val:
		return x
	case float64:
		return types.Double(x)
	}
	return p.adapter.NativeToValue(v)
}
