// Package graph is the correlation processor's state: entities and edges
// joined from traces, metrics and logs, their windows, inputs and evidence,
// and the snapshot of the graph at an instant.
//
// A Graph holds one lock. Consume* and Tick take it for the whole batch;
// Snapshot builds a deep copy under it, so callers encode and send outside.
package graph

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/series"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/window"
)

// Windows of the features.
const (
	ShortWindow = time.Minute
	LongWindow  = 5 * time.Minute
)

// Drop and eviction reasons reported to the Counters.
const (
	WhatEntity      = "entity"
	WhatEdge        = "edge"
	WhatPendingSpan = "pending_span"
	WhatSeries      = "series"
	WhatMetric      = "metric"
	WhatPod         = "pod"
	WhatTemplate    = "template"
	WhatTrace       = "trace"
	WhatTraceSpan   = "trace_span"
	// WhatSpanOwner: a span's service kept for the delegate spans that may
	// name it as their parent (traces.go, onBehalf).
	WhatSpanOwner = "span_owner"
	// WhatPeerAlias: a server address learned to be a peer.service.
	WhatPeerAlias = "peer_alias"
)

// Counters receive what the graph drops (a table was full) and evicts (an
// item aged out). typ is the entity type for WhatEntity, "" otherwise.
type Counters interface {
	Dropped(what string, typ entity.Type, n int64)
	Evicted(what string, typ entity.Type, n int64)
}

type nopCounters struct{}

func (nopCounters) Dropped(string, entity.Type, int64) {}
func (nopCounters) Evicted(string, entity.Type, int64) {}

type input struct {
	series map[string]*seriesState
}

// seriesState is a series with the time between the arrivals of its last
// two samples, which tells when its newest sample goes stale.
type seriesState struct {
	series.Series
	every time.Duration
}

// staleAfter is how long the newest sample of s counts as the series'
// value: three of its arrival intervals (a source that missed three
// reports is gone: a pod scaled away, a stopped exporter), at least
// ShortWindow so that one late batch does not blink a value out, at most
// LongWindow, and LongWindow while only one sample has arrived.
func (s *seriesState) staleAfter() time.Duration {
	if s.every <= 0 {
		return LongWindow
	}
	return min(max(3*s.every, ShortWindow), LongWindow)
}

type entityState struct {
	ref       entity.Ref
	virtual   bool
	attrs     map[string]string
	win       window.Window // by value: Observe reaches it without another pointer
	inputs    map[string]*input
	nSeries   int
	raw       map[string]float64
	exemplars exemplars
	templates *templates
	baseline  map[string]float64
	baseAt    time.Time
	lastSeen  time.Time
	// seedFrom: when each baseline feature not seeded yet was first
	// present (updateBaselines); at most the type's baseline features.
	seedFrom map[string]time.Time
	// service: its pods; pod: its service.
	pods    map[string]struct{}
	service string
	evicted bool
	// instrumented: a SERVER, CONSUMER or INTERNAL span of the service was
	// seen (it is an application, not a name for a dependency).
	instrumented bool
	// Hot-path caches of a caller: its last database, its recent virtual
	// peer names, its edges by target.
	lastDB    *entityState
	lastDBKey dbKey
	peers     []string
	out       []outEdge
}

// outEdge is an entry of a caller's cache of its edges. The cache is a
// slice scanned in order: a caller has few targets, and comparing a
// pointer and a short string is cheaper than hashing them.
type outEdge struct {
	dst  *entityState
	typ  entity.EdgeType
	edge *edgeState
}

// live reports whether e is still in the graph (pending spans may outlive
// their entity).
func (e *entityState) live() bool { return e != nil && !e.evicted }

type edgeState struct {
	evicted   bool
	src, dst  string
	typ       entity.EdgeType
	win       window.Window // by value: Observe reaches it without another pointer
	exemplars exemplars
	lastSeen  time.Time
}

type edgeKey struct {
	src, dst string
	typ      entity.EdgeType
}

// Graph is the entity graph under construction.
type Graph struct {
	mu       sync.Mutex
	s        *Settings
	wcfg     window.Config
	counters Counters

	entities map[string]*entityState
	perType  map[entity.Type]int
	edges    map[edgeKey]*edgeState
	pending  pendingStore
	// Delegate spans (emitted on behalf of a dependency) waiting for their
	// caller's span, and the owners of recent spans, kept only while
	// delegate spans were seen within twice the pending TTL
	// (delegateUntil, unix nanos).
	delegates     pendingStore
	owners        pendingStore
	delegateUntil int64
	// aliases maps a server's name (host[:port], rpc service) to the
	// peer.service another caller gives it.
	aliases  map[string]string
	traces   traceSampler
	scratch  *ddsketch.DDSketch
	sketches latencySketches // collected during TickMergeable only
	lastTick time.Time
	sampleN  uint64 // trace ids whose hash is below sampleN are sampled

	// Hot-path helpers of ConsumeTraces.
	roleKeys [128][]roleKey // by key length; longer keys are ignored
	roleLast [256]bool
	attrs    attrSet
	buf      []byte
	idBuf    []byte // entity ids being looked up (entityByID)
	interned map[string]string
	dbs      map[dbKey]dbCached // cleared on eviction
	relayers []*entityState     // the relayer entities, for chain-scoped metrics
}

// New returns an empty graph. s must be valid and must not change.
func New(s *Settings, c Counters) *Graph {
	if c == nil {
		c = nopCounters{}
	}
	g := &Graph{
		s:        s,
		counters: c,
		entities: map[string]*entityState{},
		perType:  map[entity.Type]int{},
		edges:    map[edgeKey]*edgeState{},
		interned: map[string]string{},
		dbs:      map[dbKey]dbCached{},
		aliases:  map[string]string{},
	}
	g.wcfg = window.Config{
		Width:          s.Window.Bucket,
		DetailBuckets:  int((LongWindow + s.Window.Bucket - 1) / s.Window.Bucket),
		FineBuckets:    int((s.Window.Long + s.Window.Bucket - 1) / s.Window.Bucket),
		CoarseWidth:    s.Window.CoarseBucket,
		CoarseBuckets:  int((6*time.Hour + s.Window.CoarseBucket - 1) / s.Window.CoarseBucket),
		SketchAccuracy: s.Window.SketchAccuracy,
		SketchBins:     s.Window.SketchMaxBins,
	}
	for k, refs := range spanRoles(&s.Identity) {
		if len(k) > 0 && len(k) < len(g.roleKeys) {
			g.roleKeys[len(k)] = append(g.roleKeys[len(k)], roleKey{k, refs})
			g.roleLast[k[len(k)-1]] = true
		}
	}
	g.scratch = g.wcfg.NewScratch()
	g.pending.init(s.Limits.MaxPendingSpans)
	g.delegates.init(s.Limits.MaxPendingSpans)
	g.owners.init(s.Limits.MaxPendingSpans)
	g.traces.init()
	g.sampleN = uint64(s.CriticalPath.SampleRatio * float64(^uint64(0)))
	if s.CriticalPath.SampleRatio >= 1 {
		g.sampleN = ^uint64(0)
	}
	return g
}

// entity returns the state of the entity with identity attrs, creating it
// when there is room. attrs is copied only on creation. It returns nil when
// the type's table is full (counted).
func (g *Graph) entity(now time.Time, typ entity.Type, id, name string, virtual bool, attrs func() map[string]string) *entityState {
	if e, ok := g.entities[id]; ok {
		if !virtual && e.virtual {
			e.virtual = false
		}
		if now.After(e.lastSeen) {
			e.lastSeen = now
		}
		return e
	}
	if g.perType[typ] >= g.s.Limits.MaxEntitiesPerType {
		g.counters.Dropped(WhatEntity, typ, 1)
		return nil
	}
	g.perType[typ]++
	e := &entityState{
		ref:      entity.Ref{Type: typ, ID: id, Name: strings.Clone(name)},
		virtual:  virtual,
		win:      *window.New(&g.wcfg, now),
		lastSeen: now,
	}
	if attrs != nil {
		e.attrs = attrs()
	}
	g.entities[id] = e
	if typ == entity.Relayer {
		g.relayers = append(g.relayers, e)
	}
	return e
}

// entityByID is entity with the id in a scratch buffer: an entity already
// in the graph is found without building its id string.
func (g *Graph) entityByID(now time.Time, typ entity.Type, id []byte, name string, virtual bool, attrs func() map[string]string) *entityState {
	if e, ok := g.entities[string(id)]; ok {
		if !virtual && e.virtual {
			e.virtual = false
		}
		if now.After(e.lastSeen) {
			e.lastSeen = now
		}
		return e
	}
	return g.entity(now, typ, string(id), name, virtual, attrs)
}

// edgeOf is edge through the source's cache of its edges. Seeing the edge
// is seeing its two entities: an entity lives as long as an edge it ends
// does (a call paired now refreshes an edge whose client was last seen
// when the call began), so a snapshot never holds an edge without them.
func (g *Graph) edgeOf(now time.Time, src, dst *entityState, typ entity.EdgeType) *edgeState {
	for _, ent := range [2]*entityState{src, dst} {
		if now.After(ent.lastSeen) {
			ent.lastSeen = now
		}
	}
	slot := -1
	for i := range src.out {
		if o := &src.out[i]; o.dst == dst && o.typ == typ {
			if e := o.edge; !e.evicted {
				if now.After(e.lastSeen) {
					e.lastSeen = now
				}
				return e
			}
			slot = i
			break
		}
	}
	e := g.edge(now, src.ref.ID, dst.ref.ID, typ)
	switch {
	case e == nil:
	case slot >= 0:
		src.out[slot].edge = e
	default:
		if len(src.out) >= maxOutCache {
			clear(src.out)
			src.out = src.out[:0]
		}
		src.out = append(src.out, outEdge{dst, typ, e})
	}
	return e
}

// maxOutCache bounds an entity's cache of its edges.
const maxOutCache = 64

func (g *Graph) edge(now time.Time, src, dst string, typ entity.EdgeType) *edgeState {
	k := edgeKey{src, dst, typ}
	if e, ok := g.edges[k]; ok {
		if now.After(e.lastSeen) {
			e.lastSeen = now
		}
		return e
	}
	if len(g.edges) >= g.s.Limits.MaxEdges {
		g.counters.Dropped(WhatEdge, "", 1)
		return nil
	}
	e := &edgeState{src: src, dst: dst, typ: typ, win: *window.New(&g.wcfg, now), lastSeen: now}
	g.edges[k] = e
	return e
}

// link records that pod belongs to service.
func (g *Graph) link(svc, pod *entityState) {
	if svc == nil || pod == nil {
		return
	}
	if pod.service == svc.ref.ID {
		return
	}
	if _, ok := svc.pods[pod.ref.ID]; !ok {
		if len(svc.pods) >= g.s.Limits.MaxPodsPerService {
			g.counters.Dropped(WhatPod, entity.Service, 1)
			return
		}
		if svc.pods == nil {
			svc.pods = map[string]struct{}{}
		}
		svc.pods[pod.ref.ID] = struct{}{}
	}
	if old, ok := g.entities[pod.service]; ok && pod.service != "" {
		delete(old.pods, pod.ref.ID)
	}
	pod.service = svc.ref.ID
}

// Tick expires pending spans, completes idle sampled traces, evicts aged
// entities and edges, and returns the snapshot at now, then updates the
// baselines from it. The processor calls it every emit interval; tests call
// it with their clock.
func (g *Graph) Tick(now time.Time) *entity.Snapshot {
	return g.TickMergeable(now, false)
}

// TickMergeable is Tick; when mergeable is true, the snapshot's entities
// and edges also carry the latency sketches behind their latency features
// (entity.Entity.Latency), which mergeable series need to merge replicas'
// quantiles exactly. Without it the snapshot pays nothing for them.
func (g *Graph) TickMergeable(now time.Time, mergeable bool) *entity.Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expirePending(now)
	g.completeTraces(now)
	g.evict(now)
	if mergeable {
		g.sketches.start()
	}
	snap := g.snapshot(now)
	if mergeable {
		g.sketches.attach(snap)
		g.sketches.stop()
	}
	g.updateBaselines(now, snap)
	g.lastTick = now
	return snap
}

func (g *Graph) evict(now time.Time) {
	ttl := g.s.Limits.EntityTTL
	evicted := false
	for k, e := range g.edges {
		if now.Sub(e.lastSeen) > ttl {
			delete(g.edges, k)
			e.evicted = true
			evicted = true
			g.counters.Evicted(WhatEdge, "", 1)
		}
	}
	for id, e := range g.entities {
		if now.Sub(e.lastSeen) > ttl {
			evicted = true
			if e.service != "" {
				if s, ok := g.entities[e.service]; ok {
					delete(s.pods, id)
				}
			}
			delete(g.entities, id)
			e.evicted = true
			clear(g.dbs)
			if e.ref.Type == entity.Relayer {
				g.relayers = slices.DeleteFunc(g.relayers, func(r *entityState) bool { return r == e })
			}
			g.perType[e.ref.Type]--
			g.counters.Evicted(WhatEntity, e.ref.Type, 1)
		}
	}
	if !evicted {
		return
	}
	// A live caller's hot-path caches must not keep what was evicted
	// reachable: under churn its edge cache (cleared only when full) would
	// hold expired edges and, through them, expired callees.
	for _, e := range g.entities {
		e.out = slices.DeleteFunc(e.out, func(o outEdge) bool { return o.edge.evicted || o.dst.evicted })
		if e.lastDB != nil && e.lastDB.evicted {
			e.lastDB, e.lastDBKey = nil, dbKey{}
		}
	}
}

// LastTick returns the time of the last Tick.
func (g *Graph) LastTick() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastTick
}

// Len returns the number of entities per type and of edges.
func (g *Graph) Len() (map[entity.Type]int, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[entity.Type]int, len(g.perType))
	for t, n := range g.perType {
		out[t] = n
	}
	return out, len(g.edges)
}

// addSample records a metric data point value on the input of e, by series
// key; delta values are added to the series' last value. A full series
// table drops the sample (counted).
func (g *Graph) addSample(e *entityState, in string, key []byte, t time.Time, v float64, delta bool) {
	if e.inputs == nil {
		e.inputs = map[string]*input{}
	}
	ip := e.inputs[in]
	if ip == nil {
		if e.nSeries >= g.s.Limits.MaxSeriesPerEntity {
			g.counters.Dropped(WhatSeries, e.ref.Type, 1)
			return
		}
		ip = &input{series: map[string]*seriesState{}}
		e.inputs[in] = ip
	}
	s := ip.series[string(key)]
	if s == nil {
		if e.nSeries >= g.s.Limits.MaxSeriesPerEntity {
			g.counters.Dropped(WhatSeries, e.ref.Type, 1)
			return
		}
		s = &seriesState{}
		ip.series[string(key)] = s
		e.nSeries++
	}
	last, lastAt, ok := s.Last()
	if ok && t.After(lastAt) {
		s.every = t.Sub(lastAt)
	}
	if delta && ok {
		// Delta sums accumulate into a cumulative series.
		v += last
	}
	s.Add(t, v)
}

func (g *Graph) setRaw(e *entityState, name string, v float64) {
	if e.raw == nil {
		e.raw = map[string]float64{}
	}
	if _, ok := e.raw[name]; !ok && len(e.raw) >= g.s.Limits.MaxMetricsPerEntity {
		g.counters.Dropped(WhatMetric, e.ref.Type, 1)
		return
	}
	e.raw[name] = v
}
