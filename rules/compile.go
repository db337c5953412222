package rules

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"

	"github.com/junction-sre/junction/entity"
)

// baseEnvs holds one CEL environment per entity type: the entity variable,
// the schema's types, standard CEL, the strings, math and lists extensions
// and Junction's graph functions. Environments are immutable and shared.
var (
	baseEnvOnce sync.Once
	baseEnvs    map[entity.Type]*cel.Env
	baseEnvErr  error
)

func schemaTypesOption() cel.EnvOption {
	return func(env *cel.Env) (*cel.Env, error) {
		p := &typeProvider{base: env.CELTypeProvider(), adapter: env.CELTypeAdapter()}
		env, err := cel.CustomTypeAdapter(p)(env)
		if err != nil {
			return nil, err
		}
		return cel.CustomTypeProvider(p)(env)
	}
}

func baseEnv(t entity.Type) (*cel.Env, error) {
	baseEnvOnce.Do(func() {
		baseEnvs = map[entity.Type]*cel.Env{}
		for _, et := range entity.Types {
			env, err := cel.NewEnv(
				schemaTypesOption(),
				cel.Variable(string(et), schema.entity[et].typ),
				ext.Strings(),
				ext.Math(),
				ext.Lists(),
				cel.Lib(graphLib{}),
				cel.CrossTypeNumericComparisons(true),
			)
			if err != nil {
				baseEnvErr = fmt.Errorf("rules: CEL environment for %s: %w", et, err)
				return
			}
			baseEnvs[et] = env
		}
	})
	if baseEnvErr != nil {
		return nil, baseEnvErr
	}
	return baseEnvs[t], nil
}

// compiledVar is one rule variable.
type compiledVar struct {
	name string
	prog cel.Program
}

// templatePart is a literal or a {{ CEL }} expression of a template.
type templatePart struct {
	lit  string
	prog cel.Program
}

type compiledTemplate struct {
	key   string
	parts []templatePart
}

// read is a feature or metric a rule reads, recorded as evidence.
type read struct {
	src     featureSource
	feature string // full feature name, or "" for a metric
	metric  string
}

// rule is one compiled rule.
type rule struct {
	group, name, kind, severity, file string
	forEach                           entity.Type
	forDur, keepFiringFor             time.Duration
	vars                              []compiledVar
	varIndex                          map[string]int
	expr                              cel.Program
	blame                             cel.Program // nil: the entity itself
	labels, annotations               []compiledTemplate
	reads                             []read
}

// group is one compiled group.
type group struct {
	name     string
	file     string
	interval time.Duration
	rules    []*rule
}

// compiler compiles the rules of one file, recording every error in it.
type compiler struct {
	f         *ruleFile
	costLimit uint64
}

// alwaysTrackCost disables the static-estimate shortcut (the benchmark
// measures what tracking every expression costs).
var alwaysTrackCost = false

// defaultSizes is the cost estimator of the cost limit check: CEL's
// standard costs, and lists and maps of unknown (unbounded) size.
type defaultSizes struct{}

func (defaultSizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}
func (defaultSizes) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }

// progOpts returns the program options of a. With a cost limit, an
// expression whose worst-case cost (CEL's static estimate, with every
// list and map of unbounded size) is within the limit can never exceed it,
// so it runs without runtime cost tracking; every other expression (in
// practice: those with comprehensions over edges, metrics or attributes)
// is tracked and stopped at the limit.
func (c *compiler) progOpts(env *cel.Env, a *cel.Ast) []cel.ProgramOption {
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if c.costLimit == 0 {
		return opts
	}
	if est, err := env.EstimateCost(a, defaultSizes{}); err == nil && est.Max <= c.costLimit && !alwaysTrackCost {
		return opts
	}
	return append(opts, cel.CostLimit(c.costLimit))
}

// compileExpr compiles one expression; CEL errors are reported at their
// position in the file, shifted by base bytes into the scalar.
func (c *compiler) compileExpr(env *cel.Env, src sourceText, text string, base int, what string) *cel.Ast {
	a, iss := env.Compile(text)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			off := base + celOffset(text, e.Location.Line(), e.Location.Column())
			line, col := src.pos(off)
			c.f.errorAtPos(line, col, "%s: %s", what, e.Message)
		}
		return nil
	}
	return a
}

func (c *compiler) program(env *cel.Env, a *cel.Ast, src sourceText, what string) cel.Program {
	p, err := env.Program(a, c.progOpts(env, a)...)
	if err != nil {
		c.f.errorAt(src.node, "%s: %v", what, err)
		return nil
	}
	return p
}

func (c *compiler) compileGroup(gd *groupDef) *group {
	g := &group{name: gd.name.val, file: gd.file, interval: gd.interval}
	for _, rd := range gd.rules {
		if r := c.compileRule(g, rd); r != nil {
			g.rules = append(g.rules, r)
		}
	}
	return g
}

func (c *compiler) compileRule(g *group, rd *ruleDef) *rule {
	nerr := len(c.f.errs)
	r := &rule{
		group: g.name, name: rd.alert.val, kind: rd.kind, severity: rd.severity, file: g.file,
		forEach: entity.Type(rd.forEach.val), forDur: rd.forDur, keepFiringFor: rd.keepFiringFor,
		varIndex: map[string]int{},
	}
	if rd.forEach.val == "" {
		return nil // reported by the loader
	}
	env, err := baseEnv(r.forEach)
	if err != nil {
		c.f.errorAt(rd.node, "%v", err)
		return nil
	}
	reads := map[read]bool{}
	var asts []*cel.Ast
	for _, v := range rd.variables {
		what := "variable " + v.name.val
		if _, dup := r.varIndex[v.name.val]; dup {
			c.f.errorAt(v.name.node, "variables: %q is defined twice", v.name.val)
			continue
		}
		a := c.compileExpr(env, v.expr, v.expr.val, 0, what)
		outType := cel.DynType
		var prog cel.Program
		if a != nil {
			outType = a.OutputType()
			prog = c.program(env, a, v.expr, what)
			asts = append(asts, a)
		}
		// Declared even when broken, as dyn, so that later expressions
		// are still checked.
		env, err = env.Extend(cel.Variable(v.name.val, outType))
		if err != nil {
			c.f.errorAt(v.name.node, "variables: %v", err)
			return nil
		}
		r.varIndex[v.name.val] = len(r.vars)
		r.vars = append(r.vars, compiledVar{name: v.name.val, prog: prog})
	}
	if rd.expr.node != nil {
		if a := c.compileExpr(env, rd.expr, rd.expr.val, 0, "expr"); a != nil {
			if !a.OutputType().IsExactType(types.BoolType) && !a.OutputType().IsExactType(types.DynType) {
				line, col := rd.expr.pos(0)
				c.f.errorAtPos(line, col, "expr: must be a bool, is %s", a.OutputType())
			} else {
				r.expr = c.program(env, a, rd.expr, "expr")
				asts = append(asts, a)
			}
		}
	}
	if rd.blame.node != nil {
		if a := c.compileExpr(env, rd.blame, rd.blame.val, 0, "blame"); a != nil {
			d, ok := schema.structs[a.OutputType().TypeName()]
			if !ok || !d.isEntity {
				line, col := rd.blame.pos(0)
				c.f.errorAtPos(line, col, "blame: must yield an entity, yields %s", a.OutputType())
			} else {
				r.blame = c.program(env, a, rd.blame, "blame")
				asts = append(asts, a)
			}
		}
	}
	r.labels = c.compileTemplates(env, "labels", rd.labels, &asts)
	r.annotations = c.compileTemplates(env, "annotations", rd.annotations, &asts)
	for _, a := range asts {
		collectReads(a, reads)
	}
	for rd := range reads {
		r.reads = append(r.reads, rd)
	}
	sort.Slice(r.reads, func(i, j int) bool {
		a, b := r.reads[i], r.reads[j]
		if a.src != b.src {
			return a.src < b.src
		}
		if a.feature != b.feature {
			return a.feature < b.feature
		}
		return a.metric < b.metric
	})
	if len(c.f.errs) > nerr {
		return nil
	}
	return r
}

// compileTemplates compiles every {{ CEL }} part of the labels or
// annotations.
func (c *compiler) compileTemplates(env *cel.Env, key string, kvs []kv, asts *[]*cel.Ast) []compiledTemplate {
	var out []compiledTemplate
	for _, item := range kvs {
		t := compiledTemplate{key: item.key}
		s := item.val.val
		what := key + "." + item.key
		for len(s) > 0 {
			start := strings.Index(s, "{{")
			if start < 0 {
				t.parts = append(t.parts, templatePart{lit: s})
				break
			}
			if start > 0 {
				t.parts = append(t.parts, templatePart{lit: s[:start]})
			}
			base := len(item.val.val) - len(s) + start + 2
			end := strings.Index(s[start+2:], "}}")
			if end < 0 {
				line, col := item.val.pos(base - 2)
				c.f.errorAtPos(line, col, "%s: {{ is not closed by }}", what)
				break
			}
			text := s[start+2 : start+2+end]
			if strings.TrimSpace(text) == "" {
				line, col := item.val.pos(base - 2)
				c.f.errorAtPos(line, col, "%s: empty {{ }}", what)
			} else if a := c.compileExpr(env, item.val, text, base, what); a != nil {
				if p := c.program(env, a, item.val, what); p != nil {
					t.parts = append(t.parts, templatePart{prog: p})
					*asts = append(*asts, a)
				}
			}
			s = s[start+2+end+2:]
		}
		out = append(out, t)
	}
	return out
}

// collectReads records the features and constant-keyed metrics that a
// checked expression selects, for the alert's evidence.
func collectReads(a *cel.Ast, out map[read]bool) {
	native := a.NativeRep()
	root := ast.NavigateAST(native)
	for _, e := range ast.MatchDescendants(root, ast.KindMatcher(ast.SelectKind)) {
		sel := e.AsSelect()
		d, ok := schema.structs[native.GetType(sel.Operand().ID()).TypeName()]
		if !ok {
			continue
		}
		if f, ok := d.fields[sel.FieldName()]; ok && f.feature != "" {
			out[read{src: f.src, feature: f.feature}] = true
		}
	}
	for _, e := range ast.MatchDescendants(root, ast.KindMatcher(ast.CallKind)) {
		call := e.AsCall()
		if call.FunctionName() != operators.Index || len(call.Args()) != 2 {
			continue
		}
		m, key := call.Args()[0], call.Args()[1]
		if m.Kind() != ast.SelectKind || m.AsSelect().FieldName() != "metrics" || key.Kind() != ast.LiteralKind {
			continue
		}
		if s, ok := key.AsLiteral().(types.String); ok {
			out[read{metric: string(s)}] = true
		}
	}
}

// compileFiles loads and compiles rule files. It returns the groups of
// all files and every error of every file; callers must not use the groups
// when errors are returned.
func compileFiles(paths []string, costLimit uint64) ([]*group, ErrorList) {
	files, err := ExpandPaths(paths)
	if err != nil {
		return nil, ErrorList{{File: strings.Join(paths, ","), Msg: err.Error()}}
	}
	if len(files) == 0 {
		return nil, ErrorList{{File: strings.Join(paths, ","), Msg: "no rule files (*.yaml, *.yml) found"}}
	}
	var groups []*group
	var errs ErrorList
	seen := map[string]string{}
	for _, path := range files {
		data, err := readRuleFile(path)
		if err != nil {
			errs = append(errs, &Error{File: path, Msg: err.Error()})
			continue
		}
		gs, ferrs := compileSource(path, data, costLimit)
		errs = append(errs, ferrs...)
		for _, g := range gs {
			if other, dup := seen[g.name]; dup {
				errs = append(errs, &Error{File: path, Msg: fmt.Sprintf("group %q is also defined in %s", g.name, other)})
				continue
			}
			seen[g.name] = path
			groups = append(groups, g)
		}
	}
	return groups, errs
}

// compileSource compiles the rule file path with contents data.
func compileSource(path string, data []byte, costLimit uint64) ([]*group, ErrorList) {
	f, defs := parseFile(path, data)
	c := &compiler{f: f, costLimit: costLimit}
	var groups []*group
	for _, gd := range defs {
		groups = append(groups, c.compileGroup(gd))
	}
	sort.SliceStable(f.errs, func(i, j int) bool {
		a, b := f.errs[i], f.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return groups, f.errs
}

// Check loads and compiles rule files (files, directories or globs) as the
// manager would and returns how many groups and rules they hold and every
// error in them.
func Check(paths []string, costLimit uint64) (groups, rules int, errs ErrorList) {
	gs, errs := compileFiles(paths, costLimit)
	for _, g := range gs {
		rules += len(g.rules)
	}
	return len(gs), rules, errs
}
