package store

import (
	"errors"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/derived"
)

// ErrNotFound is returned for an unknown alert or entity id.
var ErrNotFound = errors.New("not found")

// AlertFilter selects alert instances. Empty sets match everything.
type AlertFilter struct {
	States     []alert.State
	Severities []string
	Kinds      []string
	// Entity matches the alerting or the blamed entity's id.
	Entity string
	Rule   string
	From   time.Time
	To     time.Time
	Limit  int
}

// MatchRecord reports whether a record passes the filter's field tests
// (not the time range).
func (f *AlertFilter) MatchRecord(a *alert.Alert) bool {
	if len(f.States) > 0 && !slices.Contains(f.States, a.State) {
		return false
	}
	return f.matchFields(a)
}

func (f *AlertFilter) matchFields(a *alert.Alert) bool {
	if len(f.Severities) > 0 && !slices.Contains(f.Severities, a.Severity) {
		return false
	}
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, a.Kind) {
		return false
	}
	if f.Entity != "" && a.Entity.ID != f.Entity && a.Blame.ID != f.Entity {
		return false
	}
	if f.Rule != "" && a.Rule != f.Rule {
		return false
	}
	return true
}

// activeIn reports whether the instance was pending or firing at some time
// in [from, to].
func (in *instance) activeIn(from, to time.Time) bool {
	start := in.latest.ActiveAt
	if len(in.history) > 0 && (start.IsZero() || in.history[0].Time.Before(start)) {
		start = in.history[0].Time
	}
	if start.IsZero() {
		start = in.latest.EvaluatedAt
	}
	if start.After(to) {
		return false
	}
	if in.latest.State == alert.StateResolved {
		end := in.latest.ResolvedAt
		if end.IsZero() {
			end = in.lastChange()
		}
		return !end.Before(from)
	}
	return true
}

func withoutEvidence(a alert.Alert) alert.Alert {
	a.Evidence = alert.Evidence{}
	return a
}

// Alerts returns the latest record of every instance active in the range
// that passes the filter, newest state change first, without evidence.
func (s *Store) Alerts(f AlertFilter) []alert.Alert {
	s.alertMu.Lock()
	type hit struct {
		a alert.Alert
		t time.Time
	}
	var hits []hit
	for _, in := range s.alerts.instances {
		if in.activeIn(f.From, f.To) && f.MatchRecord(&in.latest) {
			hits = append(hits, hit{withoutEvidence(in.latest), in.lastChange()})
		}
	}
	s.alertMu.Unlock()
	sort.Slice(hits, func(i, j int) bool {
		if !hits[i].t.Equal(hits[j].t) {
			return hits[i].t.After(hits[j].t)
		}
		return hits[i].a.ID < hits[j].a.ID
	})
	if f.Limit > 0 && len(hits) > f.Limit {
		hits = hits[:f.Limit]
	}
	out := make([]alert.Alert, len(hits))
	for i := range hits {
		out[i] = hits[i].a
	}
	return out
}

// Alert returns one instance's latest record with its evidence and its
// state history.
func (s *Store) Alert(id string) (alert.Alert, []Transition, error) {
	s.alertMu.Lock()
	defer s.alertMu.Unlock()
	in := s.alerts.instances[id]
	if in == nil {
		return alert.Alert{}, nil, ErrNotFound
	}
	return in.latest, slices.Clone(in.history), nil
}

// Interval is one state period of an alert instance.
type Interval struct {
	ID       string      `json:"id"`
	Rule     string      `json:"rule"`
	Entity   entity.Ref  `json:"entity"`
	Blame    entity.Ref  `json:"blame"`
	Severity string      `json:"severity"`
	State    alert.State `json:"state"`
	From     time.Time   `json:"from"`
	To       time.Time   `json:"to"`
}

// intervals returns the instance's pending and firing periods clipped to
// [from, to].
func (in *instance) intervals(from, to time.Time, fn func(state alert.State, a, b time.Time)) {
	for i, tr := range in.history {
		if tr.State != alert.StatePending && tr.State != alert.StateFiring {
			continue
		}
		end := to
		if i+1 < len(in.history) {
			end = in.history[i+1].Time
		}
		a, b := tr.Time, end
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) || (b.Equal(a) && i+1 == len(in.history)) {
			fn(tr.State, a, b)
		}
	}
}

// Timeline returns the state periods of the instances passing the filter,
// ordered by start.
func (s *Store) Timeline(f AlertFilter) []Interval {
	var out []Interval
	s.alertMu.Lock()
	for _, in := range s.alerts.instances {
		if !f.matchFields(&in.latest) {
			continue
		}
		l := &in.latest
		in.intervals(f.From, f.To, func(st alert.State, a, b time.Time) {
			if len(f.States) > 0 && !slices.Contains(f.States, st) {
				return
			}
			out = append(out, Interval{ID: l.ID, Rule: l.Rule, Entity: l.Entity, Blame: l.Blame, Severity: l.Severity, State: st, From: a, To: b})
		})
	}
	s.alertMu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].From.Equal(out[j].From) {
			return out[i].From.Before(out[j].From)
		}
		return out[i].ID < out[j].ID
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

// Entity is an entity with its latest features, as the API shows it.
type Entity struct {
	entity.Ref
	Virtual    bool               `json:"virtual"`
	Attributes map[string]string  `json:"attributes"`
	Features   map[string]float64 `json:"features"`
	UpdatedAt  time.Time          `json:"updated_at"`
}

func (e *entityState) view() Entity {
	out := Entity{Ref: e.ref, Virtual: e.virtual, Attributes: e.attributes,
		Features: make(map[string]float64, len(e.features)), UpdatedAt: time.UnixMilli(e.updated).UTC()}
	for k, v := range e.features {
		out.Features[k] = v.v
	}
	if out.Attributes == nil {
		out.Attributes = map[string]string{}
	}
	return out
}

// Entities lists entities of a type (all when empty) whose id or name
// contains q, sorted by id.
func (s *Store) Entities(typ entity.Type, q string, limit int) []Entity {
	s.stateMu.RLock()
	var out []Entity
	for _, e := range s.entities {
		if typ != "" && e.ref.Type != typ {
			continue
		}
		if q != "" && !strings.Contains(e.ref.ID, q) && !strings.Contains(e.ref.Name, q) {
			continue
		}
		out = append(out, e.view())
	}
	s.stateMu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Entity returns one entity.
func (s *Store) Entity(id string) (Entity, error) {
	s.stateMu.RLock()
	defer s.stateMu.RUnlock()
	e := s.entities[id]
	if e == nil {
		return Entity{}, ErrNotFound
	}
	return e.view(), nil
}

// Rules returns the latest status of every rule, sorted by group and rule.
func (s *Store) Rules() []alert.RuleStatus {
	s.stateMu.RLock()
	out := make([]alert.RuleStatus, 0, len(s.rules))
	for _, r := range s.rules {
		out = append(out, r)
	}
	s.stateMu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

// Point is one sample of a series: Unix ms and value. It encodes as
// [t, v].
type Point [2]float64

// SeriesResult is an entity feature over a range.
type SeriesResult struct {
	Entity  entity.Ref `json:"entity"`
	Feature string     `json:"feature"`
	Step    string     `json:"step"`
	Points  []Point    `json:"points"`
}

// Series returns the entity's feature over [from, to], one point per step
// ending at t (aligned to multiples of step): the last sample in
// (t-step, t]. An entity neither in the latest state nor in storage is
// ErrNotFound.
func (s *Store) Series(entityID, feature string, from, to time.Time, step time.Duration) (SeriesResult, error) {
	res := SeriesResult{Feature: feature, Step: FormatStep(step), Points: []Point{}}
	s.stateMu.RLock()
	e := s.entities[entityID]
	if e != nil {
		res.Entity = e.ref
	}
	s.stateMu.RUnlock()

	stepMs := step.Milliseconds()
	type tv struct {
		t int64
		v float64
	}
	var samples []tv
	found := false
	err := s.series.Search([]Filter{
		{Value: entity.MetricPrefix + feature},
		{Label: entity.AttrEntityID, Value: entityID},
	}, from.UnixMilli(), to.UnixMilli(), func(b SeriesBlock) {
		if !found {
			found = true
			if res.Entity.ID == "" {
				res.Entity = entity.Ref{ID: entityID, Type: entity.Type(b.Name.GetTagValue(entity.AttrEntityType)), Name: string(b.Name.GetTagValue(entity.AttrEntityName))}
			}
		}
		for i, t := range b.Timestamps {
			samples = append(samples, tv{t, b.Values[i]})
		}
	})
	if err != nil {
		return res, err
	}
	if res.Entity.ID == "" && !found {
		return res, ErrNotFound
	}
	if res.Entity.ID == "" {
		res.Entity.ID = entityID
	}
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].t < samples[j].t })
	for _, smp := range samples {
		end := ceilDiv(smp.t, stepMs) * stepMs
		p := Point{float64(end), smp.v}
		if n := len(res.Points); n > 0 && res.Points[n-1][0] == p[0] {
			res.Points[n-1] = p
		} else {
			res.Points = append(res.Points, p)
		}
	}
	return res, nil
}

// FormatStep prints a step as Prometheus does: 15s, 1m, 1h30m (Go's
// Duration.String would say 1m0s, 1h30m0s).
func FormatStep(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b > 0 {
		q++
	}
	return q
}

// Node is a graph node.
type Node struct {
	ID      string             `json:"id"`
	Type    entity.Type        `json:"type"`
	Name    string             `json:"name"`
	Virtual bool               `json:"virtual"`
	Stats   map[string]float64 `json:"stats"`
	Health  NodeHealth         `json:"health"`
	Blamed  bool               `json:"blamed"`
	Alerts  []string           `json:"alerts"`
}

// NodeHealth is the share of the range an entity spent with no alert, a
// warning alert or a critical alert firing. The shares sum to 1.
type NodeHealth struct {
	OK       float64 `json:"ok"`
	Warning  float64 `json:"warning"`
	Critical float64 `json:"critical"`
}

// GraphEdge is a graph edge.
type GraphEdge struct {
	ID     string             `json:"id"`
	Source string             `json:"source"`
	Target string             `json:"target"`
	Type   entity.EdgeType    `json:"type"`
	Stats  map[string]float64 `json:"stats"`
}

// Graph is the entity graph over a range.
type Graph struct {
	Nodes []Node      `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

// nodeStatsArr backs nodeStats with a fixed length for per-entity arrays.
var nodeStatsArr = [...]string{"request.rate", "error.ratio", "latency.p99_ms"}

// Node and edge stats the graph shows: the mean of each feature over the
// range.
var (
	nodeStats = nodeStatsArr[:]
	edgeStats = []string{"request.rate", "error.ratio", "latency.p99_ms", "latency.share"}
)

type meanAcc struct{ sum, n float64 }

// Graph builds the graph over [from, to]: nodes are the entities with
// series or latest state in the range and the ends of edges; stats are means
// over the range; health and blame come from the alert history. With typ
// set, only nodes of that type and the edges between them are returned.
func (s *Store) Graph(from, to time.Time, typ entity.Type) (Graph, error) {
	fromMs, toMs := from.UnixMilli(), to.UnixMilli()
	nodes := make(map[string]*Node)
	addNode := func(id string, t entity.Type, name string, virtual bool) *Node {
		n := nodes[id]
		if n == nil {
			if t == "" {
				t = derived.TypeFromID(id)
			}
			n = &Node{ID: id, Type: t, Name: name, Virtual: virtual, Stats: map[string]float64{}, Alerts: []string{}}
			nodes[id] = n
		}
		if n.Name == "" {
			n.Name = name
		}
		return n
	}

	var (
		nodeAccs []*nodeSeries
		edges    map[string]*edgeAcc
		err      error
	)
	if s.rollup.covers(fromMs, toMs, s.opts.Now().UnixMilli()) {
		nodeAccs, edges = s.graphStatsFromRollup(fromMs, toMs)
	} else if nodeAccs, edges, err = s.graphStatsFromStorage(fromMs, toMs); err != nil {
		return Graph{}, err
	}
	// Series of one feature may be split (e.g. an entity renamed): merge
	// their sums before taking the mean.
	merged := make(map[[2]string]*meanAcc, len(nodeAccs))
	for _, ns := range nodeAccs {
		addNode(ns.id, ns.typ, ns.name, ns.virtual)
		k := [2]string{ns.id, ns.feature}
		if m := merged[k]; m != nil {
			m.sum += ns.acc.sum
			m.n += ns.acc.n
		} else {
			merged[k] = ns.acc
		}
	}
	for k, a := range merged {
		nodes[k[0]].Stats[k[1]] = a.sum / a.n
	}

	// Entities known from the latest state in the range (they may have no
	// graph stats), and names and types for nodes seen only as edge ends.
	s.stateMu.RLock()
	for id, e := range s.entities {
		if e.updated >= fromMs && e.updated <= toMs {
			addNode(id, e.ref.Type, e.ref.Name, e.virtual)
		}
	}
	for _, ea := range edges {
		for _, id := range []string{ea.e.Source, ea.e.Target} {
			if nodes[id] == nil {
				if e := s.entities[id]; e != nil {
					addNode(id, e.ref.Type, e.ref.Name, e.virtual)
				} else {
					addNode(id, "", "", true)
				}
			}
		}
	}
	s.stateMu.RUnlock()

	s.applyAlerts(nodes, from, to)

	g := Graph{Nodes: make([]Node, 0, len(nodes)), Edges: make([]GraphEdge, 0, len(edges))}
	for _, n := range nodes {
		if typ != "" && n.Type != typ {
			continue
		}
		g.Nodes = append(g.Nodes, *n)
	}
	for _, ea := range edges {
		if typ != "" && (nodes[ea.e.Source].Type != typ || nodes[ea.e.Target].Type != typ) {
			continue
		}
		ea.e.Stats = make(map[string]float64, numEdgeStats)
		for i, a := range ea.acc {
			if a.n > 0 {
				ea.e.Stats[edgeStats[i]] = a.sum / a.n
			}
		}
		g.Edges = append(g.Edges, ea.e)
	}
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].ID < g.Nodes[j].ID })
	sort.Slice(g.Edges, func(i, j int) bool { return g.Edges[i].ID < g.Edges[j].ID })
	return g, nil
}

// nodeSeries is the running mean of one node feature.
type nodeSeries struct {
	id, name, feature string
	typ               entity.Type
	virtual           bool
	acc               *meanAcc
}

// edgeAcc is an edge with the running means of its features, indexed as
// edgeStats.
type edgeAcc struct {
	e   GraphEdge
	acc [numEdgeStats]meanAcc
}

const numEdgeStats = 4

var edgeStatIndex = func() map[string]int {
	if len(edgeStats) != numEdgeStats {
		panic("numEdgeStats does not match edgeStats")
	}
	m := make(map[string]int, len(edgeStats))
	for i, f := range edgeStats {
		m[f] = i
	}
	return m
}()

// graphStatsFromRollup reads node and edge means from the per-minute
// rollup: whole minutes overlapping [fromMs, toMs].
func (s *Store) graphStatsFromRollup(fromMs, toMs int64) ([]*nodeSeries, map[string]*edgeAcc) {
	r := s.rollup
	fromB, toB := fromMs/rollupBucketMs, toMs/rollupBucketMs
	var nodes []*nodeSeries
	edges := make(map[string]*edgeAcc)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range r.series {
		sum, n := rs.sum(r.slots, fromB, toB)
		if n == 0 {
			continue
		}
		if !rs.edge {
			nodes = append(nodes, &nodeSeries{id: rs.id, name: rs.name, feature: rs.feature, typ: rs.typ, virtual: rs.virtual, acc: &meanAcc{sum, n}})
			continue
		}
		ea := edges[rs.id]
		if ea == nil {
			ea = &edgeAcc{e: GraphEdge{ID: rs.id, Source: rs.source, Target: rs.target, Type: rs.edgeType}}
			edges[rs.id] = ea
		}
		a := &ea.acc[edgeStatIndex[rs.feature]]
		a.sum += sum
		a.n += n
	}
	return nodes, edges
}

// graphStatsFromStorage reads node and edge means from the stored series:
// one exact-name search per feature (the index answers those directly),
// the features spread over the cores.
func (s *Store) graphStatsFromStorage(fromMs, toMs int64) ([]*nodeSeries, map[string]*edgeAcc, error) {
	var (
		edgesMu sync.Mutex
		edges   = make(map[string]*edgeAcc)
	)
	nodeAccs := make([][]*nodeSeries, len(nodeStats))
	searchNode := func(i int) error {
		f := nodeStats[i]
		var cur *nodeSeries
		return s.series.Search([]Filter{{Value: entity.MetricPrefix + f}}, fromMs, toMs, func(b SeriesBlock) {
			if b.NewSeries {
				cur = nil
				id := string(b.Name.GetTagValue(entity.AttrEntityID))
				if id == "" {
					return
				}
				cur = &nodeSeries{id: id, name: string(b.Name.GetTagValue(entity.AttrEntityName)),
					typ:     entity.Type(b.Name.GetTagValue(entity.AttrEntityType)),
					virtual: string(b.Name.GetTagValue(entity.AttrVirtual)) == "true",
					feature: f, acc: &meanAcc{}}
				nodeAccs[i] = append(nodeAccs[i], cur)
			}
			if cur != nil {
				cur.acc.sum += sum(b.Values)
				cur.acc.n += float64(len(b.Values))
			}
		})
	}
	// Each edge feature's task owns its slot of every edge's acc; the map
	// of edges is shared.
	searchEdge := func(idx int) error {
		var (
			key []byte
			cur *meanAcc
		)
		return s.series.Search([]Filter{{Value: entity.EdgeMetricPrefix + edgeStats[idx]}}, fromMs, toMs, func(b SeriesBlock) {
			if b.NewSeries {
				cur = nil
				src, dst := b.Name.GetTagValue(entity.AttrEdgeSource), b.Name.GetTagValue(entity.AttrEdgeTarget)
				if len(src) == 0 || len(dst) == 0 {
					return
				}
				et := b.Name.GetTagValue(entity.AttrEdgeType)
				key = append(append(append(append(append(key[:0], src...), "->"...), dst...), '#'), et...)
				edgesMu.Lock()
				ea := edges[string(key)]
				if ea == nil {
					ea = &edgeAcc{e: GraphEdge{ID: string(key), Source: string(src), Target: string(dst), Type: entity.EdgeType(et)}}
					edges[ea.e.ID] = ea
				}
				edgesMu.Unlock()
				cur = &ea.acc[idx]
			}
			if cur != nil {
				cur.sum += sum(b.Values)
				cur.n += float64(len(b.Values))
			}
		})
	}
	tasks := make([]func() error, 0, len(edgeStats)+len(nodeStats))
	// Edge features first: there are more edge series than node series.
	for i := range edgeStats {
		tasks = append(tasks, func() error { return searchEdge(i) })
	}
	for i := range nodeStats {
		tasks = append(tasks, func() error { return searchNode(i) })
	}
	errs := make([]error, len(tasks))
	var (
		next atomic.Int32
		wg   sync.WaitGroup
	)
	for range min(runtime.GOMAXPROCS(0), len(tasks)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(tasks); i = int(next.Add(1)) - 1 {
				errs[i] = tasks[i]()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return slices.Concat(nodeAccs...), edges, nil
}

// sum adds vs in four independent running sums, which the CPU can add in
// parallel (a single running sum waits for each addition).
func sum(vs []float64) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(vs); i += 4 {
		s0 += vs[i]
		s1 += vs[i+1]
		s2 += vs[i+2]
		s3 += vs[i+3]
	}
	for ; i < len(vs); i++ {
		s0 += vs[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// isCritical maps alert severities onto the critical health share.
func isCritical(severity string) bool { return severity == "critical" || severity == "page" }

type span struct{ a, b int64 }

// applyAlerts sets health, blame and alert ids of the nodes from the alert
// instances active in the range. Nodes that only alerts mention are added.
func (s *Store) applyAlerts(nodes map[string]*Node, from, to time.Time) {
	crit := make(map[string][]span)
	warn := make(map[string][]span)
	s.alertMu.Lock()
	for _, in := range s.alerts.instances {
		if !in.activeIn(from, to) {
			continue
		}
		l := &in.latest
		if n := nodes[l.Entity.ID]; n != nil {
			n.Alerts = append(n.Alerts, l.ID)
		}
		if l.Blame.ID != "" && l.Blame.ID != l.Entity.ID {
			if n := nodes[l.Blame.ID]; n != nil {
				n.Alerts = append(n.Alerts, l.ID)
			}
		}
		in.intervals(from, to, func(st alert.State, a, b time.Time) {
			if st != alert.StateFiring {
				return
			}
			if n := nodes[l.Blame.ID]; n != nil {
				n.Blamed = true
			}
			sp := span{a.UnixMilli(), b.UnixMilli()}
			if isCritical(l.Severity) {
				crit[l.Entity.ID] = append(crit[l.Entity.ID], sp)
			} else {
				warn[l.Entity.ID] = append(warn[l.Entity.ID], sp)
			}
		})
	}
	s.alertMu.Unlock()
	total := float64(to.UnixMilli() - from.UnixMilli())
	for id, n := range nodes {
		slices.Sort(n.Alerts)
		c := union(crit[id])
		w := union(append(warn[id], crit[id]...)) - c
		n.Health = NodeHealth{Critical: c / total, Warning: w / total}
		n.Health.OK = math.Max(0, 1-n.Health.Critical-n.Health.Warning)
	}
}

// union returns the total length covered by spans.
func union(spans []span) float64 {
	if len(spans) == 0 {
		return 0
	}
	slices.SortFunc(spans, func(x, y span) int {
		switch {
		case x.a < y.a:
			return -1
		case x.a > y.a:
			return 1
		}
		return 0
	})
	var total int64
	cur := spans[0]
	for _, sp := range spans[1:] {
		if sp.a > cur.b {
			total += cur.b - cur.a
			cur = sp
		} else if sp.b > cur.b {
			cur.b = sp.b
		}
	}
	total += cur.b - cur.a
	return float64(total)
}
