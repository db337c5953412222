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
	seq    uint64
	at     time.Time
	side   pendSide
	typ    entity.EdgeType
	src    string // client: source entity id
	dst    string // server: target entity id
	ms     float64
	failed bool
	// Virtual target of an unpaired client span.
	vType   entity.Type
	vParts  [3]string
	traceID pcommon.TraceID
	spanID  pcommon.SpanID
	produce bool // a PRODUCER span: the target stream counts a message
	sampled bool // its trace is sampled for the critical path
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
		if _, ok := p.pop(); ok {
			g.counters.Dropped(WhatPendingSpan, "", 1)
		}
	}
	p.seq++
	s.seq = p.seq
	p.m[k] = s
	p.queue = append(p.queue, pendQueued{k, s.seq})
}

// pop removes and returns the oldest live entry.
func (p *pendingStore) pop() (pendingSpan, bool) {
	for p.head < len(p.queue) {
		q := p.queue[p.head]
		p.head++
		if s, ok := p.m[q.key]; ok && s.seq == q.seq {
			delete(p.m, q.key)
			p.compact()
			return s, true
		}
	}
	p.compact()
	return pendingSpan{}, false
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
	ttl := g.s.Limits.PendingSpanTTL
	for {
		s, ok := g.pending.peek()
		if !ok || now.Sub(s.at) <= ttl {
			return
		}
		g.pending.pop()
		if s.side != sideClient {
			continue
		}
		// Counted at the client span's arrival, so rates are not skewed by
		// the pairing delay.
		at := s.at
		var dst *entityState
		switch s.vType {
		case entity.Service:
			if s.vParts[0] != "" {
				dst = g.serviceEntity(at, "", s.vParts[0], true)
			}
		case entity.Stream:
			dst = g.streamEntity(at, true, s.vParts[0], "")
		case entity.Relayer:
			dst = g.relayerEntity(at, true, s.vParts[0], s.vParts[1], s.vParts[2])
		}
		if dst == nil {
			continue
		}
		if s.vType == entity.Service {
			dst.win.Observe(at, s.ms, s.failed)
		}
		if s.produce {
			dst.win.Add(at, window.Produced, 1)
		}
		g.observeEdge(at, s.src, dst.ref.ID, s.typ, s.ms, s.failed, s.traceID, s.spanID)
		if s.sampled {
			g.lateTarget(s.traceID, s.spanID, dst.ref.ID)
		}
	}
}

func (g *Graph) observeEdge(now time.Time, src, dst string, typ entity.EdgeType, ms float64, failed bool, tid pcommon.TraceID, sid pcommon.SpanID) {
	e := g.edge(now, src, dst, typ)
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

func (g *Graph) edgeType(attrs pcommon.Map, kind ptrace.SpanKind) entity.EdgeType {
	id := &g.s.Identity
	switch {
	case lookup(id.XChainMessage, attrs) != "":
		return entity.EdgeXChain
	case lookup(id.DBSystem, attrs) != "":
		return entity.EdgeDB
	case kind == ptrace.SpanKindProducer || kind == ptrace.SpanKindConsumer || lookup(id.MessagingSystem, attrs) != "":
		return entity.EdgeMessaging
	case lookup(id.RPCSystem, attrs) == "grpc":
		return entity.EdgeGRPC
	}
	return entity.EdgeHTTP
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
	attrs := sp.Attributes()
	kind := sp.Kind()
	id := &g.s.Identity
	var target string // the entity a client span calls, when known now

	switch kind {
	case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
		var dst *entityState = svc
		if svc != nil {
			svc.win.Observe(now, ms, failed)
			g.exemplar(&svc.exemplars, now, ms, failed, tid, sid)
		}
		if kind == ptrace.SpanKindServer {
			if route := lookup(id.ProxyRoute, attrs); route != "" && svcName != "" {
				if px := g.proxyEntity(now, svcName, route); px != nil {
					px.win.Observe(now, ms, failed)
					if isShed(lookup(id.HTTPStatus, attrs)) {
						px.win.Add(now, window.Shed, 1)
					}
					g.exemplar(&px.exemplars, now, ms, failed, tid, sid)
				}
			}
		} else if st := g.streamEntity(now, false, lookup(id.StreamTopic, attrs), lookup(id.StreamGroup, attrs)); st != nil {
			// The broker sits between producer and consumer.
			st.win.Add(now, window.Consumed, 1)
			if svc != nil {
				g.observeEdge(now, st.ref.ID, svc.ref.ID, entity.EdgeMessaging, ms, failed, tid, sid)
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
			g.putPending(k, pendingSpan{at: now, side: sideServer, dst: dst.ref.ID})
		}

	case ptrace.SpanKindClient, ptrace.SpanKindProducer:
		if svc == nil {
			break
		}
		typ := g.edgeType(attrs, kind)
		if typ == entity.EdgeDB {
			db := g.databaseEntity(now, true, nil, attrs)
			if db == nil {
				break
			}
			target = db.ref.ID
			db.win.Observe(now, ms, failed)
			if ms >= float64(g.s.SlowQuery)/float64(time.Millisecond) {
				db.win.Add(now, window.Slow, 1)
				// Evidence: the slow query's template and latest text.
				if q := lookup(id.DBQuery, attrs); q != "" {
					var ts string
					if !tid.IsEmpty() {
						ts = hex.EncodeToString(tid[:])
					}
					g.addLog(db, now, "SLOW", q, ts)
				}
			}
			g.exemplar(&db.exemplars, now, ms, failed, tid, sid)
			g.observeEdge(now, svc.ref.ID, db.ref.ID, typ, ms, failed, tid, sid)
			break
		}
		k := pendKey{tid, sid}
		c := pendingSpan{at: now, side: sideClient, typ: typ, src: svc.ref.ID, ms: ms, failed: failed, traceID: tid, spanID: sid, produce: kind == ptrace.SpanKindProducer}
		if s, ok := g.pending.take(k, sideServer); ok {
			if dst, ok := g.entities[s.dst]; ok {
				target = dst.ref.ID
				g.paired(now, c, dst, tid)
			}
			break
		}
		switch {
		case typ == entity.EdgeXChain:
			c.vType = entity.Relayer
			peer := lookup(id.PeerService, attrs)
			if peer == "" {
				peer = "relayer"
			}
			c.vParts = [3]string{clone(peer), clone(lookup(id.SourceChain, attrs)), clone(lookup(id.DestinationChain, attrs))}
		case typ == entity.EdgeMessaging:
			c.vType = entity.Stream
			c.vParts[0] = clone(lookup(id.StreamTopic, attrs))
		default:
			c.vType = entity.Service
			peer := lookup(id.PeerService, attrs)
			if peer == "" {
				peer = hostPort(lookup(id.ServerAddress, attrs), lookup(id.ServerPort, attrs))
			}
			c.vParts[0] = clone(peer)
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
	if c.src == dst.ref.ID {
		return
	}
	g.observeEdge(now, c.src, dst.ref.ID, c.typ, c.ms, c.failed, tid, c.spanID)
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
