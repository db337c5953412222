package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/junction-sre/junction/entity"
)

// DefaultGroupInterval is the evaluation interval of a group that names
// none.
const DefaultGroupInterval = 15 * time.Second

// sourceText is a scalar of a rule file with where it stands, so that CEL
// positions inside it map back to file:line:col.
type sourceText struct {
	val  string
	node *yaml.Node
	file *ruleFile
}

// ruleFile is one parsed rule file.
type ruleFile struct {
	path  string
	lines []string
	errs  ErrorList
}

func (f *ruleFile) errorAt(n *yaml.Node, format string, args ...any) {
	if n == nil {
		f.errs = append(f.errs, &Error{File: f.path, Msg: fmt.Sprintf(format, args...)})
		return
	}
	f.errorAtPos(n.Line, n.Column, format, args...)
}

func (f *ruleFile) errorAtPos(line, col int, format string, args ...any) {
	e := &Error{File: f.path, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
	if line > 0 && line <= len(f.lines) {
		e.Snippet = f.lines[line-1]
	}
	f.errs = append(f.errs, e)
}

// groupDef and ruleDef are the decoded YAML, before compilation.
type groupDef struct {
	name     sourceText
	interval time.Duration
	rules    []*ruleDef
	file     string
}

type varDef struct {
	name sourceText
	expr sourceText
}

type ruleDef struct {
	node          *yaml.Node
	alert         sourceText
	kind          string
	forEach       sourceText
	variables     []varDef
	expr          sourceText
	forDur        time.Duration
	keepFiringFor time.Duration
	severity      string
	blame         sourceText
	labels        []kv
	annotations   []kv
}

type kv struct {
	key string
	val sourceText
}

// Rule kinds Junction's packs use; other kinds are accepted as written.
const (
	KindBottleneck      = "bottleneck"
	KindCostReliability = "cost-reliability"
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ExpandPaths turns files, directories and glob patterns into the sorted
// list of rule files they name. A directory contributes its *.yaml and
// *.yml files (not those of its subdirectories).
func ExpandPaths(paths []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		if isBuiltin(p) {
			files, err := expandBuiltin(p)
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				add(f)
			}
			continue
		}
		matches := []string{p}
		if strings.ContainsAny(p, "*?[") {
			m, err := filepath.Glob(p)
			if err != nil {
				return nil, fmt.Errorf("rule files: pattern %q: %w", p, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("rule files: pattern %q matches no file", p)
			}
			matches = m
		}
		for _, m := range matches {
			st, err := os.Stat(m)
			if err != nil {
				return nil, fmt.Errorf("rule files: %w", err)
			}
			if !st.IsDir() {
				add(m)
				continue
			}
			ents, err := os.ReadDir(m)
			if err != nil {
				return nil, fmt.Errorf("rule files: %w", err)
			}
			for _, e := range ents {
				n := e.Name()
				if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
					add(filepath.Join(m, n))
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseFile decodes one rule file leniently: every structural problem is
// recorded in f.errs and decoding goes on with the next key, rule or group.
// A YAML syntax error stops the file (the parser cannot resume), and is
// reported with its line.
func parseFile(path string, data []byte) (*ruleFile, []*groupDef) {
	f := &ruleFile{path: path, lines: strings.Split(string(data), "\n")}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			f.errorAtPos(line, 1, "YAML syntax: %s", m[2])
		} else {
			f.errorAt(nil, "YAML: %s", strings.TrimPrefix(msg, "yaml: "))
		}
		return f, nil
	}
	if len(doc.Content) == 0 {
		return f, nil // an empty file holds no groups
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		f.errorAt(root, "a rule file is a mapping with the key groups")
		return f, nil
	}
	var groups []*groupDef
	f.mapping(root, map[string]func(k, v *yaml.Node){
		"groups": func(_, v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				f.errorAt(v, "groups: expected a list of groups")
				return
			}
			for _, g := range v.Content {
				if gd := f.group(g); gd != nil {
					groups = append(groups, gd)
				}
			}
		},
	})
	// Duplicate group names in one file.
	seen := map[string]bool{}
	for _, g := range groups {
		if g.name.val != "" && seen[g.name.val] {
			f.errorAt(g.name.node, "group %q is defined twice", g.name.val)
		}
		seen[g.name.val] = true
	}
	return f, groups
}

// mapping calls the handler of every key of n and reports unknown keys.
func (f *ruleFile) mapping(n *yaml.Node, handlers map[string]func(k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := handlers[k.Value]
		if !ok {
			keys := make([]string, 0, len(handlers))
			for key := range handlers {
				keys = append(keys, key)
			}
			sort.Strings(keys)
			f.errorAt(k, "unknown key %q (expected one of %s)", k.Value, strings.Join(keys, ", "))
			continue
		}
		if seen[k.Value] {
			f.errorAt(k, "key %q is given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		h(k, v)
	}
}

func (f *ruleFile) scalar(key string, v *yaml.Node) (sourceText, bool) {
	if v.Kind != yaml.ScalarNode {
		f.errorAt(v, "%s: expected a string", key)
		return sourceText{}, false
	}
	return sourceText{val: v.Value, node: v, file: f}, true
}

func (f *ruleFile) duration(key string, v *yaml.Node) (time.Duration, bool) {
	s, ok := f.scalar(key, v)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s.val)
	if err != nil {
		f.errorAt(v, "%s: %q is not a duration (e.g. 30s, 5m, 1h)", key, s.val)
		return 0, false
	}
	if d < 0 {
		f.errorAt(v, "%s: must not be negative", key)
		return 0, false
	}
	return d, true
}

func (f *ruleFile) group(n *yaml.Node) *groupDef {
	if n.Kind != yaml.MappingNode {
		f.errorAt(n, "a group is a mapping with name, interval and rules")
		return nil
	}
	g := &groupDef{interval: DefaultGroupInterval, file: f.path}
	var rulesNode *yaml.Node
	f.mapping(n, map[string]func(k, v *yaml.Node){
		"name": func(_, v *yaml.Node) { g.name, _ = f.scalar("name", v) },
		"interval": func(_, v *yaml.Node) {
			if d, ok := f.duration("interval", v); ok {
				if d == 0 {
					f.errorAt(v, "interval: must be positive")
					return
				}
				g.interval = d
			}
		},
		"rules": func(_, v *yaml.Node) { rulesNode = v },
	})
	if g.name.val == "" {
		f.errorAt(n, "group: name is required")
	}
	if rulesNode == nil {
		return g
	}
	if rulesNode.Kind != yaml.SequenceNode {
		f.errorAt(rulesNode, "rules: expected a list of rules")
		return g
	}
	seen := map[string]bool{}
	for _, rn := range rulesNode.Content {
		r := f.rule(rn)
		if r == nil {
			continue
		}
		if r.alert.val != "" {
			if seen[r.alert.val] {
				f.errorAt(r.alert.node, "rule %q is defined twice in group %q", r.alert.val, g.name.val)
				continue
			}
			seen[r.alert.val] = true
		}
		g.rules = append(g.rules, r)
	}
	return g
}

func (f *ruleFile) stringMap(key string, v *yaml.Node) []kv {
	if v.Kind != yaml.MappingNode {
		f.errorAt(v, "%s: expected a mapping of names to strings", key)
		return nil
	}
	var out []kv
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		s, ok := f.scalar(key+"."+k.Value, val)
		if !ok {
			continue
		}
		out = append(out, kv{key: k.Value, val: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

func (f *ruleFile) rule(n *yaml.Node) *ruleDef {
	if n.Kind != yaml.MappingNode {
		f.errorAt(n, "a rule is a mapping with alert, for_each, expr, ...")
		return nil
	}
	r := &ruleDef{node: n}
	str := func(key string, dst *sourceText) func(_, v *yaml.Node) {
		return func(_, v *yaml.Node) { *dst, _ = f.scalar(key, v) }
	}
	var kind, severity sourceText
	f.mapping(n, map[string]func(k, v *yaml.Node){
		"alert":    str("alert", &r.alert),
		"kind":     str("kind", &kind),
		"for_each": str("for_each", &r.forEach),
		"expr":     str("expr", &r.expr),
		"severity": str("severity", &severity),
		"blame":    str("blame", &r.blame),
		"for": func(_, v *yaml.Node) {
			r.forDur, _ = f.duration("for", v)
		},
		"keep_firing_for": func(_, v *yaml.Node) {
			r.keepFiringFor, _ = f.duration("keep_firing_for", v)
		},
		"labels":      func(_, v *yaml.Node) { r.labels = f.stringMap("labels", v) },
		"annotations": func(_, v *yaml.Node) { r.annotations = f.stringMap("annotations", v) },
		"variables": func(_, v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				f.errorAt(v, "variables: expected a list of {name, expr}")
				return
			}
			for _, vn := range v.Content {
				if vn.Kind != yaml.MappingNode {
					f.errorAt(vn, "variables: expected a mapping with name and expr")
					continue
				}
				var vd varDef
				f.mapping(vn, map[string]func(k, v *yaml.Node){
					"name": str("variables.name", &vd.name),
					"expr": str("variables.expr", &vd.expr),
				})
				switch {
				case vd.name.node == nil:
					f.errorAt(vn, "variables: name is required")
				case !identRE.MatchString(vd.name.val):
					f.errorAt(vd.name.node, "variables: name %q is not an identifier", vd.name.val)
				case vd.expr.node == nil:
					f.errorAt(vn, "variables: expr is required")
				default:
					r.variables = append(r.variables, vd)
				}
			}
		},
	})
	r.kind, r.severity = kind.val, severity.val
	if r.alert.node == nil || r.alert.val == "" {
		f.errorAt(n, "rule: alert (the rule's name) is required")
	} else if !identRE.MatchString(r.alert.val) {
		f.errorAt(r.alert.node, "alert: %q is not a valid name (letters, digits and _)", r.alert.val)
	}
	if r.forEach.node == nil {
		f.errorAt(n, "rule %q: for_each (the entity type) is required", r.alert.val)
	} else if _, ok := schema.entity[entity.Type(r.forEach.val)]; !ok {
		names := make([]string, len(entity.Types))
		for i, t := range entity.Types {
			names[i] = string(t)
		}
		f.errorAt(r.forEach.node, "for_each: unknown entity type %q (expected one of %s)", r.forEach.val, strings.Join(names, ", "))
		r.forEach = sourceText{}
	}
	if r.expr.node == nil {
		f.errorAt(n, "rule %q: expr is required", r.alert.val)
	}
	if kind.node == nil {
		f.errorAt(n, "rule %q: kind is required (e.g. %s, %s)", r.alert.val, KindBottleneck, KindCostReliability)
	}
	for _, v := range r.variables {
		if v.name.val == r.forEach.val {
			f.errorAt(v.name.node, "variables: %q is the name of the entity being evaluated", v.name.val)
		}
	}
	return r
}

// pos maps a byte offset inside the scalar's value to a 1-based file line
// and column. Literal blocks map exactly; folded and multi-line plain
// scalars map line by line; escapes in quoted scalars are not accounted.
func (s sourceText) pos(off int) (line, col int) {
	n := s.node
	if n == nil {
		return 0, 0
	}
	type seg struct{ off, line, col int }
	var segs []seg
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		indent := -1
		for l := n.Line; l < len(s.file.lines); l++ { // lines[l] is file line l+1
			t := s.file.lines[l]
			if strings.TrimSpace(t) == "" {
				continue
			}
			indent = len(t) - len(strings.TrimLeft(t, " "))
			break
		}
		if indent < 0 {
			return n.Line, n.Column
		}
		valueOff := 0
		sep := 1
		for i := 0; n.Line+i < len(s.file.lines) && valueOff <= len(s.val); i++ {
			raw := s.file.lines[n.Line+i]
			content := ""
			if len(raw) > indent {
				content = raw[indent:]
			}
			segs = append(segs, seg{valueOff, n.Line + 1 + i, indent + 1})
			valueOff += len(content) + sep
		}
	default:
		q := 0
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			q = 1
		}
		segs = append(segs, seg{0, n.Line, n.Column + q})
		if n.Line-1 < len(s.file.lines) {
			// A plain or quoted scalar folded over several lines: each
			// further line continues after one space.
			first := s.file.lines[n.Line-1]
			valueOff := len(first) - (n.Column - 1 + q) + 1
			for l := n.Line; valueOff > 0 && valueOff < len(s.val) && l < len(s.file.lines); l++ {
				raw := s.file.lines[l]
				trimmed := strings.TrimLeft(raw, " ")
				if trimmed == "" {
					break
				}
				segs = append(segs, seg{valueOff, l + 1, len(raw) - len(trimmed) + 1})
				valueOff += len(trimmed) + 1
			}
		}
	}
	best := segs[0]
	for _, sg := range segs {
		if sg.off <= off {
			best = sg
		}
	}
	return best.line, best.col + (off - best.off)
}

// celOffset converts a CEL location (1-based line, 0-based column within
// the expression) into a byte offset within the expression.
func celOffset(src string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(src[off:], '\n')
		if i < 0 {
			break
		}
		off += i + 1
	}
	// CEL columns count runes.
	rest := src[off:]
	for i := range rest {
		if col == 0 {
			return off + i
		}
		col--
	}
	return len(src)
}
