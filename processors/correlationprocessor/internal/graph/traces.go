package graph

import (
	"encoding/hex"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/window"
)

type pendKey struct {
	trace pcommon.TraceID
	span  pcommon.SpanID
}

type pendSide uint8

const (
	// sideClient: a CLIENT or PRODUCER span waiting for its server, keyed
	// by its own span id.
	sideClient pendSide = iota
	// sideServer: a SERVER or CONSUMER span waiting for its client, keyed
	// by its parent (or linked) span id.
	sideServer
)

type pendingSpan struct {
	seq uint64
	at  int64 // arrival, unix nanos
	// ent is the client's source entity, or the server's target entity.
	ent    *entityState
	ms     float64
	spanID pcommon.SpanID
	// Virtual target of an unpaired client span: vName, and for a relayer
	// its source and destination chains.
	vName   string
	chains  *[2]string
	side    pendSide
	typ     uint8 // index into entity.EdgeTypes
	vType   uint8 // vNone, vService, vStream, vRelayer
	failed  bool
	produce bool // a PRODUCER span: the target stream counts a message
	sampled bool // its trace is sampled for the critical path
}

const (
	vNone uint8 = iota
	vService
	vStream
	vRelayer
)

func edgeTypeIndex(t entity.EdgeType) uint8 {
	for i, e := range entity.EdgeTypes {
		if e == t {
			return uint8(i)
		}
	}
	return 0
}

type pendQueued struct {
	key pendKey
	seq uint64
}

// pendingStore is a bounded map of unpaired spans with a FIFO for expiry.
type pendingStore struct {
	max   int
	seq   uint64
	m     map[pendKey]pendingSpan
	queue []pendQueued
	head  int
}

func (p *pendingStore) init(max int) {
	p.max = max
	p.m = make(map[pendKey]pendingSpan)
}

func (p *pendingStore) take(k pendKey, side pendSide) (pendingSpan, bool) {
	s, ok := p.m[k]
	if !ok || s.side != side {
		return pendingSpan{}, false
	}
	delete(p.m, k)
	return s, true
}

// put stores s; when full it first drops the oldest entry, returned with
// dropped=true.
func (g *Graph) putPending(k pendKey, s pendingSpan) {
	p := &g.pending
	if _, ok := p.m[k]; !ok && len(p.m) >= p.max {
		if _, _, ok := p.pop(); ok {
			g.counters.Dropped(WhatPendingSpan, "", 1)
		}
	}
	p.seq++
	s.seq = p.seq
	p.m[k] = s
	if len(p.queue)-p.head >= 2*p.max+1024 {
		p.rebuild()
	}
	p.queue = append(p.queue, pendQueued{k, s.seq})
}

// rebuild drops the queue entries of spans already paired, so the queue
// stays within about twice max_pending_spans however fast spans pair.
func (p *pendingStore) rebuild() {
	live := p.queue[:0]
	for _, q := range p.queue[p.head:] {
		if s, ok := p.m[q.key]; ok && s.seq == q.seq {
			live = append(live, q)
		}
	}
	clear(p.queue[len(live):])
	p.queue = live
	p.head = 0
}

// pop removes and returns the oldest live entry.
func (p *pendingStore) pop() (pendKey, pendingSpan, bool) {
	for p.head < len(p.queue) {
		q := p.queue[p.head]
		p.head++
		if s, ok := p.m[q.key]; ok && s.seq == q.seq {
			delete(p.m, q.key)
			p.compact()
			return q.key, s, true
		}
	}
	p.compact()
	return pendKey{}, pendingSpan{}, false
}

// peek returns the oldest live entry without removing it.
func (p *pendingStore) peek() (pendingSpan, bool) {
	for p.head < len(p.queue) {
		q := p.queue[p.head]
		if s, ok := p.m[q.key]; ok && s.seq == q.seq {
			return s, true
		}
		p.head++
	}
	p.compact()
	return pendingSpan{}, false
}

func (p *pendingStore) compact() {
	if p.head > 1024 && p.head*2 > len(p.queue) {
		n := copy(p.queue, p.queue[p.head:])
		p.queue = p.queue[:n]
		p.head = 0
	}
}

// expirePending turns client spans unpaired for longer than the TTL into
// edges to virtual entities, and forgets unpaired server spans.
func (g *Graph) expirePending(now time.Time) {
	ttl := int64(g.s.Limits.PendingSpanTTL)
	for {
		s, ok := g.pending.peek()
		if !ok || now.UnixNano()-s.at <= ttl {
			return
		}
		k, _, _ := g.pending.pop()
		if s.side != sideClient || !s.ent.live() {
			continue
		}
		// Counted at the client span's arrival, so rates are not skewed by
		// the pairing delay.
		at := time.Unix(0, s.at)
		var dst *entityState
		switch s.vType {
		case vService:
			if s.vName != "" {
				dst = g.serviceEntity(at, "", s.vName, true)
			}
		case vStream:
			dst = g.streamEntity(at, true, s.vName, "")
		case vRelayer:
			dst = g.relayerEntity(at, true, s.vName, s.chains[0], s.chains[1])
		}
		if dst == nil {
			continue
		}
		if s.vType == vService {
			dst.win.Observe(at, s.ms, s.failed)
		}
		if s.produce {
			dst.win.Add(at, window.Produced, 1)
		}
		g.observeEdge(at, s.ent, dst, entity.EdgeTypes[s.typ], s.ms, s.failed, k.trace, s.spanID)
		if s.sampled {
			g.lateTarget(k.trace, s.spanID, dst.ref.ID)
		}
	}
}

func (g *Graph) observeEdge(now time.Time, src, dst *entityState, typ entity.EdgeType, ms float64, failed bool, tid pcommon.TraceID, sid pcommon.SpanID) {
	e := g.edgeOf(now, src, dst, typ)
	if e == nil {
		return
	}
	e.win.Observe(now, ms, failed)
	g.exemplar(&e.exemplars, now, ms, failed, tid, sid)
}

func (g *Graph) exemplar(x *exemplars, now time.Time, ms float64, failed bool, tid pcommon.TraceID, sid pcommon.SpanID) {
	max := g.s.Limits.MaxExemplars
	if !failed && !x.wouldKeepSlow(max, now, ms) {
		return
	}
	ex := entity.Exemplar{Time: now, Value: ms}
	if !tid.IsEmpty() {
		ex.TraceID = hex.EncodeToString(tid[:])
	}
	if !sid.IsEmpty() {
		ex.SpanID = hex.EncodeToString(sid[:])
	}
	x.add(max, ex, failed)
}

// ConsumeTraces joins spans onto services, pods, databases, proxies and
// streams, and pairs client and server spans into edges.
func (g *Graph) ConsumeTraces(td ptrace.Traces, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		svc := g.serviceFromResource(now, res, true)
		pod := g.podEntity(now, res)
		g.link(svc, pod)
		svcName := ""
		if svc != nil {
			svcName = svc.ref.Name
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				g.span(now, svc, svcName, res, spans.At(k))
			}
		}
	}
	g.expirePending(now)
}

func edgeType(a *attrSet, kind ptrace.SpanKind) entity.EdgeType {
	switch {
	case a.has(rXChainMessage):
		return entity.EdgeXChain
	case a.has(rDBSystem):
		return entity.EdgeDB
	case kind == ptrace.SpanKindProducer || kind == ptrace.SpanKindConsumer || a.has(rMessagingSystem):
		return entity.EdgeMessaging
	case a.str(rRPCSystem) == "grpc":
		return entity.EdgeGRPC
	}
	return entity.EdgeHTTP
}

// spanDatabase returns the database a db client span calls, through a cache
// keyed by the identity attributes so the hot path builds no id.
func (g *Graph) spanDatabase(now time.Time, caller *entityState, a *attrSet) *entityState {
	port, pok := a.int(rServerPort)
	if a.has(rServerPort) && !pok {
		return g.databaseFromSpan(now, a)
	}
	k := dbKey{a.str(rDBSystem), a.str(rServerAddress), port, a.str(rDBNamespace)}
	// The caller's last database answers most calls without hashing.
	if e := caller.lastDB; e.live() && caller.lastDBKey == k {
		if now.After(e.lastSeen) {
			e.lastSeen = now
		}
		return e
	}
	if c, ok := g.dbs[k]; ok {
		e := c.e
		caller.lastDB, caller.lastDBKey = e, c.key
		if now.After(e.lastSeen) {
			e.lastSeen = now
		}
		return e
	}
	e := g.databaseFromSpan(now, a)
	if e != nil {
		k.system, k.addr, k.ns = clone(k.system), clone(k.addr), clone(k.ns)
		g.dbs[k] = dbCached{e, k}
		caller.lastDB, caller.lastDBKey = e, k
	}
	return e
}

func (g *Graph) databaseFromSpan(now time.Time, a *attrSet) *entityState {
	system, addr := a.str(rDBSystem), a.str(rServerAddress)
	if system == "" && addr == "" {
		return nil
	}
	return g.databaseByParts(now, true, system, string(a.appendHostPort(nil)), a.str(rDBNamespace))
}

func isShed(code string) bool { return code == "429" || code == "503" }

func (g *Graph) span(now time.Time, svc *entityState, svcName string, res pcommon.Map, sp ptrace.Span) {
	start, end := sp.StartTimestamp(), sp.EndTimestamp()
	ms := 0.0
	if end > start {
		ms = float64(end-start) / 1e6
	}
	failed := sp.Status().Code() == ptrace.StatusCodeError
	tid, sid := sp.TraceID(), sp.SpanID()
	kind := sp.Kind()
	a := &g.attrs
	if kind != ptrace.SpanKindInternal && kind != ptrace.SpanKindUnspecified {
		g.extract(sp.Attributes(), a)
	}
	var target string // the entity a client span calls, when known now

	switch kind {
	case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
		var dst *entityState = svc
		if svc != nil {
			svc.win.Observe(now, ms, failed)
			g.exemplar(&svc.exemplars, now, ms, failed, tid, sid)
		}
		if kind == ptrace.SpanKindServer {
			if route := a.str(rProxyRoute); route != "" && svcName != "" {
				if px := g.proxyEntity(now, svcName, route); px != nil {
					px.win.Observe(now, ms, failed)
					if isShed(a.str(rHTTPStatus)) {
						px.win.Add(now, window.Shed, 1)
					}
					g.exemplar(&px.exemplars, now, ms, failed, tid, sid)
				}
			}
		} else if st := g.streamEntity(now, false, a.str(rStreamTopic), a.str(rStreamGroup)); st != nil {
			// The broker sits between producer and consumer.
			st.win.Add(now, window.Consumed, 1)
			if svc != nil {
				g.observeEdge(now, st, svc, entity.EdgeMessaging, ms, failed, tid, sid)
			}
			dst = st
		}
		if dst == nil {
			break
		}
		parent := sp.ParentSpanID()
		if parent.IsEmpty() && sp.Links().Len() > 0 {
			l := sp.Links().At(0)
			if l.TraceID() == tid {
				parent = l.SpanID()
			}
		}
		if parent.IsEmpty() {
			break
		}
		k := pendKey{tid, parent}
		if c, ok := g.pending.take(k, sideClient); ok {
			g.paired(now, c, dst, tid)
			if c.sampled {
				g.lateTarget(tid, c.spanID, dst.ref.ID)
			}
		} else {
			g.putPending(k, pendingSpan{at: now.UnixNano(), side: sideServer, ent: dst})
		}

	case ptrace.SpanKindClient, ptrace.SpanKindProducer:
		if svc == nil {
			break
		}
		typ := edgeType(a, kind)
		if typ == entity.EdgeDB {
			db := g.spanDatabase(now, svc, a)
			if db == nil {
				break
			}
			target = db.ref.ID
			db.win.Observe(now, ms, failed)
			if ms >= float64(g.s.SlowQuery)/float64(time.Millisecond) {
				db.win.Add(now, window.Slow, 1)
				// Evidence: the slow query's template and latest text.
				if q := a.str(rDBQuery); q != "" {
					var ts string
					if !tid.IsEmpty() {
						ts = hex.EncodeToString(tid[:])
					}
					g.addLog(db, now, "SLOW", q, ts)
				}
			}
			g.exemplar(&db.exemplars, now, ms, failed, tid, sid)
			g.observeEdge(now, svc, db, typ, ms, failed, tid, sid)
			break
		}
		k := pendKey{tid, sid}
		c := pendingSpan{at: now.UnixNano(), side: sideClient, typ: edgeTypeIndex(typ), ent: svc, ms: ms, failed: failed, spanID: sid, produce: kind == ptrace.SpanKindProducer}
		if s, ok := g.pending.take(k, sideServer); ok {
			if s.ent.live() {
				target = s.ent.ref.ID
				g.paired(now, c, s.ent, tid)
			}
			break
		}
		switch {
		case typ == entity.EdgeXChain:
			c.vType = vRelayer
			peer := a.str(rPeerService)
			if peer == "" {
				peer = "relayer"
			}
			c.vName = clone(peer)
			c.chains = &[2]string{clone(a.str(rSourceChain)), clone(a.str(rDestinationChain))}
		case typ == entity.EdgeMessaging:
			c.vType = vStream
			c.vName = g.intern(append(g.buf[:0], a.str(rStreamTopic)...))
		default:
			c.vType = vService
			if a.has(rPeerService) {
				g.buf = append(g.buf[:0], a.str(rPeerService)...)
			} else {
				g.buf = a.appendHostPort(g.buf[:0])
			}
			c.vName = svc.peerName(g, g.buf)
		}
		c.sampled = g.sampleN != 0 && sampleHash(tid) < g.sampleN
		g.putPending(k, c)
	}
	if g.sampleN != 0 && sampleHash(tid) < g.sampleN {
		g.sampleSpan(now, tid, sp, svc, kind, ms, target)
	}
}

// paired records the edge of a client span c whose server span (or
// consumer's stream) is dst.
func (g *Graph) paired(now time.Time, c pendingSpan, dst *entityState, tid pcommon.TraceID) {
	if c.produce && dst.ref.Type == entity.Stream {
		dst.win.Add(now, window.Produced, 1)
	}
	if !c.ent.live() || c.ent == dst {
		return
	}
	g.observeEdge(now, c.ent, dst, entity.EdgeTypes[c.typ], c.ms, c.failed, tid, c.spanID)
}

func clone(s string) string {
	if s == "" {
		return ""
	}
	return string([]byte(s))
}

// sampleHash maps a trace id to a uniform 64-bit number (its last 8 bytes,
// random in W3C trace ids).
func sampleHash(t pcommon.TraceID) uint64 {
	var h uint64
	for _, b := range t[8:] {
		h = h<<8 | uint64(b)
	}
	return h
}
