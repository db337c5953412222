package graph

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
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
	// sideDelegate: a CLIENT or PRODUCER span emitted on behalf of its
	// dependency (onBehalf), waiting for the span of its caller, keyed by
	// its parent span id (Graph.delegates).
	sideDelegate
	// sideOwner: the service of a span, keyed by the span's id, kept while
	// delegate spans are about (Graph.owners).
	sideOwner
)

type pendingSpan struct {
	seq uint64
	at  int64 // arrival, unix nanos
	// ent is the client's source entity, or the server's target entity.
	ent    *entityState
	ms     float64
	spanID pcommon.SpanID
	// Virtual target of an unpaired client span: vName, and for a relayer
	// its source and destination chains. vAlt is the name the span's
	// server address gives when vName is its peer.service: the pair
	// teaches the graph that alias (Graph.aliases).
	vName  string
	vAlt   string
	chains *[2]string
	// dlg is set on a delegate span only.
	dlg     *delegation
	side    pendSide
	typ     uint8 // index into entity.EdgeTypes
	vType   uint8 // vNone, vService, vStream, vRelayer
	failed  bool
	produce bool // a PRODUCER span: the target stream counts a message
	// byResource: vName is the resource's name (a delegate span), not a
	// peer.service.
	byResource bool
	sampled    bool // its trace is sampled for the critical path
}

// delegation is what a delegate span keeps beside a pending span's fields.
type delegation struct {
	// owner is the id of the service the span's resource would be.
	owner string
	// more chains delegate spans waiting for the same parent.
	more *pendingSpan
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

// putPending stores s; when full it first drops the oldest entry
// (counted).
func (g *Graph) putPending(k pendKey, s pendingSpan) {
	g.put(&g.pending, k, s, WhatPendingSpan)
}

// put stores s in p; when full it first drops the oldest entry, counted
// as what.
func (g *Graph) put(p *pendingStore, k pendKey, s pendingSpan, what string) {
	if len(p.m) >= p.max {
		if _, ok := p.m[k]; !ok {
			if _, _, ok := p.pop(); ok {
				g.counters.Dropped(what, "", 1)
			}
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
// edges to virtual entities, and forgets unpaired server spans; delegate
// spans whose caller never came count on their dependency alone.
func (g *Graph) expirePending(now time.Time) {
	ttl := int64(g.s.Limits.PendingSpanTTL)
	for {
		s, ok := g.pending.peek()
		if !ok || now.UnixNano()-s.at <= ttl {
			break
		}
		k, _, _ := g.pending.pop()
		if s.side != sideClient || !s.ent.live() {
			continue
		}
		// Counted at the client span's arrival, so rates are not skewed by
		// the pairing delay.
		at := time.Unix(0, s.at)
		dst := g.virtualTarget(at, &s)
		if dst == nil {
			continue
		}
		if dst != s.ent {
			g.observeEdge(at, s.ent, dst, entity.EdgeTypes[s.typ], s.ms, s.failed, k.trace, s.spanID)
		}
		if s.sampled {
			g.lateTarget(k.trace, s.spanID, "", dst.ref.ID)
		}
	}
	g.expireDelegates(now)
}

// virtualTarget returns the virtual entity an unpaired client span calls
// (nil when it names none or its table is full) and counts the call on a
// virtual service, and a produced message on a stream.
func (g *Graph) virtualTarget(at time.Time, s *pendingSpan) *entityState {
	var dst *entityState
	switch s.vType {
	case vService:
		name := g.aliasOf(s)
		if name != "" {
			dst = g.serviceEntity(at, "", name, true)
		}
	case vStream:
		dst = g.streamEntity(at, true, s.vName, "")
	case vRelayer:
		dst = g.relayerEntity(at, true, s.vName, s.chains[0], s.chains[1])
	}
	if dst == nil {
		return nil
	}
	if s.vType == vService {
		dst.win.Observe(at, s.ms, s.failed)
	}
	if s.produce {
		dst.win.Add(at, window.Produced, 1)
	}
	return dst
}

// aliasOf returns the name of the virtual service an unpaired client span
// calls: its peer.service, else the peer.service another client span gave
// the same server (learned here, when a span naming both expires), else the
// server's address.
func (g *Graph) aliasOf(s *pendingSpan) string {
	if s.vAlt != "" {
		if old, ok := g.aliases[s.vAlt]; !ok || old != s.vName {
			if !ok && len(g.aliases) >= g.s.Limits.MaxEntitiesPerType {
				g.counters.Evicted(WhatPeerAlias, "", int64(len(g.aliases)))
				clear(g.aliases)
			}
			g.aliases[s.vAlt] = s.vName
		}
		return s.vName
	}
	if a, ok := g.aliases[s.vName]; ok {
		return a
	}
	return s.vName
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

// resourceCtx is the resource of the spans being consumed. Its service
// entity is made on first use, so a resource all of whose spans are emitted
// on behalf of a dependency (onBehalf) makes no service of its own.
type resourceCtx struct {
	rs       ptrace.ResourceSpans
	res      pcommon.Map
	name, ns string // alias pdata
	svc      *entityState
	made     bool
	serves   uint8 // serveUnknown, serveYes, serveNo
	// delegated: a span of the resource was on behalf of its dependency.
	delegated bool
}

const (
	serveUnknown uint8 = iota
	serveYes           // the resource is an instrumented service
	serveNo
)

// service returns the resource's service, making it (and linking its pod)
// on first use.
func (g *Graph) service(now time.Time, rc *resourceCtx) *entityState {
	if !rc.made {
		rc.made = true
		if rc.name != "" {
			rc.svc = g.serviceEntity(now, rc.ns, rc.name, false)
		}
		g.link(rc.svc, g.podEntity(now, rc.res))
	}
	return rc.svc
}

// ConsumeTraces joins spans onto services, pods, databases, proxies and
// streams, and pairs client and server spans into edges.
func (g *Graph) ConsumeTraces(td ptrace.Traces, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	owning := now.UnixNano() <= g.delegateUntil
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		rc := resourceCtx{rs: rs, res: res, name: lookup(g.s.Identity.ServiceName, res)}
		if rc.name != "" {
			rc.ns = lookup(g.s.Identity.ServiceNamespace, res)
		} else {
			g.service(now, &rc) // its pod, if it names one
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				g.span(now, &rc, spans.At(k))
			}
		}
	}
	if !owning && now.UnixNano() <= g.delegateUntil {
		// The first delegate spans for a while: the batch's spans before
		// them were not kept as owners.
		g.ownBatch(now, td)
	}
	g.expirePending(now)
}

// ownBatch records the owner of every span of the batch's services, once,
// in the batch whose delegate spans start the keeping of owners.
func (g *Graph) ownBatch(now time.Time, td ptrace.Traces) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		res := rss.At(i).Resource().Attributes()
		name := lookup(g.s.Identity.ServiceName, res)
		if name == "" {
			continue
		}
		svc := g.entities[entity.ID(entity.Service, lookup(g.s.Identity.ServiceNamespace, res), name)]
		if svc == nil || svc.virtual {
			continue
		}
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				g.ownSpan(now, spans.At(k).TraceID(), spans.At(k).SpanID(), svc)
			}
		}
	}
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
// keyed by the identity attributes so the hot path builds no id. caller may
// be nil (a span on behalf of the database).
func (g *Graph) spanDatabase(now time.Time, caller *entityState, a *attrSet, srv server) *entityState {
	if srv.portStr != "" {
		return g.databaseFromSpan(now, a, srv)
	}
	k := dbKey{a.str(rDBSystem), srv.host, srv.port, a.str(rDBNamespace)}
	// The caller's last database answers most calls without hashing.
	if caller != nil {
		if e := caller.lastDB; e.live() && caller.lastDBKey == k {
			if now.After(e.lastSeen) {
				e.lastSeen = now
			}
			return e
		}
	}
	if c, ok := g.dbs[k]; ok {
		e := c.e
		if caller != nil {
			caller.lastDB, caller.lastDBKey = e, c.key
		}
		if now.After(e.lastSeen) {
			e.lastSeen = now
		}
		return e
	}
	e := g.databaseFromSpan(now, a, srv)
	if e != nil {
		k.system, k.addr, k.ns = clone(k.system), clone(k.addr), clone(k.ns)
		g.dbs[k] = dbCached{e, k}
		if caller != nil {
			caller.lastDB, caller.lastDBKey = e, k
		}
	}
	return e
}

func (g *Graph) databaseFromSpan(now time.Time, a *attrSet, srv server) *entityState {
	system := a.str(rDBSystem)
	if system == "" && srv.host == "" {
		return nil
	}
	return g.databaseByParts(now, true, system, string(srv.appendHostPort(nil)), a.str(rDBNamespace))
}

// dbCall counts a db client span on its database: the request, a slow
// query (with its text as evidence), the exemplar.
func (g *Graph) dbCall(now time.Time, db *entityState, a *attrSet, ms float64, failed bool, tid pcommon.TraceID, sid pcommon.SpanID) {
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
}

func isShed(code string) bool { return code == "429" || code == "503" }

func (g *Graph) span(now time.Time, rc *resourceCtx, sp ptrace.Span) {
	start, end := sp.StartTimestamp(), sp.EndTimestamp()
	ms := 0.0
	if end > start {
		ms = float64(end-start) / 1e6
	}
	failed := sp.Status().Code() == ptrace.StatusCodeError
	tid, sid := sp.TraceID(), sp.SpanID()
	sampled := g.sampleN != 0 && sampleHash(tid) < g.sampleN
	kind := sp.Kind()
	a := &g.attrs
	if kind != ptrace.SpanKindInternal && kind != ptrace.SpanKindUnspecified {
		g.extract(sp.Attributes(), a)
	}
	var target string // the entity a client span calls, when known now
	var svc *entityState

	switch kind {
	case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
		svc = g.service(now, rc)
		var dst *entityState = svc
		if svc != nil {
			svc.instrumented = true
			svc.win.Observe(now, ms, failed)
			g.exemplar(&svc.exemplars, now, ms, failed, tid, sid)
		}
		if kind == ptrace.SpanKindServer {
			if route := a.str(rProxyRoute); route != "" && rc.name != "" {
				if px := g.proxyEntity(now, rc.name, route); px != nil {
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
				g.lateTarget(tid, c.spanID, "", dst.ref.ID)
			}
		} else {
			g.putPending(k, pendingSpan{at: now.UnixNano(), side: sideServer, ent: dst})
		}

	case ptrace.SpanKindClient, ptrace.SpanKindProducer:
		typ := edgeType(a, kind)
		srv := a.server(typ == entity.EdgeHTTP && (a.has(rHTTPMethod) || a.has(rURL)))
		if rc.name != "" && typ != entity.EdgeXChain && g.onBehalf(rc, a, typ, srv) {
			rc.delegated = true
			caller, t := g.delegateSpan(now, rc, a, typ, srv, sp, ms, failed)
			if sampled {
				g.sampleSpan(now, tid, sp, caller, kind, ms, t)
			}
			return
		}
		svc = g.service(now, rc)
		if svc == nil {
			break
		}
		if typ == entity.EdgeDB {
			db := g.spanDatabase(now, svc, a, srv)
			if db == nil {
				break
			}
			target = db.ref.ID
			g.dbCall(now, db, a, ms, failed, tid, sid)
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
		g.virtualName(&c, svc, a, typ, srv, "")
		c.sampled = sampled
		g.putPending(k, c)

	default:
		if !rc.delegated {
			if svc = g.service(now, rc); svc != nil {
				svc.instrumented = true
			}
		}
	}
	if svc != nil && now.UnixNano() <= g.delegateUntil {
		g.ownSpan(now, tid, sid, svc)
	}
	if sampled {
		g.sampleSpan(now, tid, sp, svc, kind, ms, target)
	}
}

// virtualName names the virtual entity an unpaired client span c calls:
// for a cross-chain call its relayer, for a messaging call its topic's
// stream, else a service named by its peer.service (or, for a span on
// behalf of a dependency, the resource's name) and otherwise by the server
// (serverName); vAlt keeps the server's name beside a peer.service.
func (g *Graph) virtualName(c *pendingSpan, caller *entityState, a *attrSet, typ entity.EdgeType, srv server, onBehalfOf string) {
	switch typ {
	case entity.EdgeXChain:
		c.vType = vRelayer
		peer := a.str(rPeerService)
		if peer == "" {
			peer = "relayer"
		}
		c.vName = clone(peer)
		c.chains = &[2]string{clone(a.str(rSourceChain)), clone(a.str(rDestinationChain))}
	case entity.EdgeMessaging:
		c.vType = vStream
		c.vName = g.intern(append(g.buf[:0], a.str(rStreamTopic)...))
	default:
		c.vType = vService
		peer := a.str(rPeerService)
		if peer == "" && onBehalfOf != "" {
			peer, c.byResource = onBehalfOf, true
		}
		g.buf = appendServerName(g.buf[:0], a, typ, srv)
		if peer == "" {
			if len(g.buf) > 0 {
				c.vName = g.peerName(caller, g.buf)
			}
			return
		}
		if len(g.buf) > 0 {
			c.vAlt = g.peerName(caller, g.buf)
		}
		g.buf = append(g.buf[:0], peer...)
		c.vName = g.peerName(caller, g.buf)
	}
}

// appendServerName appends the name of the server an unpaired client span
// calls, without its peer.service: for gRPC its rpc service (rpc.service,
// or the service part of a fully qualified rpc.method), which names the
// API alike from every caller and convention where otelgrpc names the
// server by the IP address it connected to; generic gRPC services
// (grpc.health.v1.Health, grpc.reflection...) and calls without an rpc
// service are named by their server's host[:port], like every other call.
func appendServerName(dst []byte, a *attrSet, typ entity.EdgeType, srv server) []byte {
	if typ == entity.EdgeGRPC {
		if s := rpcService(a); s != "" && !strings.HasPrefix(s, "grpc.") {
			return append(dst, s...)
		}
	}
	if srv.host == "" {
		return dst
	}
	return srv.appendHostPort(dst)
}

// rpcService is the span's rpc.service, else the service part of a fully
// qualified rpc.method ("pkg.Service/Method", semantic conventions v1.39
// on, as otelgrpc writes it).
func rpcService(a *attrSet) string {
	if s := a.str(rRPCService); s != "" {
		return s
	}
	m := a.str(rRPCMethod)
	if i := strings.LastIndexByte(m, '/'); i > 0 {
		return strings.TrimPrefix(m[:i], "/")
	}
	return ""
}

// peerName is caller.peerName, or an interned name without a caller.
func (g *Graph) peerName(caller *entityState, b []byte) string {
	if caller == nil {
		return g.intern(b)
	}
	return caller.peerName(g, b)
}

// onBehalf reports whether a CLIENT or PRODUCER span is emitted on behalf
// of its dependency: its resource's service.name names the dependency the
// span calls (its peer.service, its server's host, the host's first label
// or its second-level domain label, its database system or a usual short
// name of it, its messaging system, its rpc service; letter case aside)
// and the resource is no instrumented service of its own (it has no
// SERVER, CONSUMER or INTERNAL span in the batch, and had none before).
// The comparisons run only on client spans of a named resource and
// allocate nothing; whether the resource serves is worked out once per
// resource and batch, and only for a resource whose name matched.
func (g *Graph) onBehalf(rc *resourceCtx, a *attrSet, typ entity.EdgeType, srv server) bool {
	if rc.serves == serveYes || rc.svc != nil && rc.svc.instrumented {
		// Most client spans: their service is an application.
		return false
	}
	n := rc.name
	if !equalFold(a.str(rPeerService), n) && !namesHost(srv.host, n) && !namesDependency(a, typ, n) {
		return false
	}
	if rc.serves == serveUnknown {
		rc.serves = g.serves(rc)
	}
	return rc.serves == serveNo
}

// serves works out whether the resource is an instrumented service: one
// with a SERVER, CONSUMER or INTERNAL span (application code), in this
// batch or before.
func (g *Graph) serves(rc *resourceCtx) uint8 {
	if e := g.entities[entity.ID(entity.Service, rc.ns, rc.name)]; e != nil && e.instrumented {
		return serveYes
	}
	sss := rc.rs.ScopeSpans()
	for j := 0; j < sss.Len(); j++ {
		spans := sss.At(j).Spans()
		for k := 0; k < spans.Len(); k++ {
			if kd := spans.At(k).Kind(); kd == ptrace.SpanKindServer || kd == ptrace.SpanKindConsumer || kd == ptrace.SpanKindInternal {
				return serveYes
			}
		}
	}
	return serveNo
}

func equalFold(a, b string) bool {
	return a != "" && len(a) == len(b) && strings.EqualFold(a, b)
}

// namesHost reports whether n is host, its first label (redis in
// redis.cache.svc) or its second-level domain label (stripe in
// api.stripe.com).
func namesHost(host, n string) bool {
	if len(host) < len(n) || n == "" {
		return false
	}
	if equalFold(host, n) {
		return true
	}
	if len(host) > len(n) && host[len(n)] == '.' && strings.EqualFold(host[:len(n)], n) {
		return true
	}
	last := strings.LastIndexByte(host, '.')
	if last <= 0 {
		return false
	}
	sld := host[:last]
	return equalFold(sld[strings.LastIndexByte(sld, '.')+1:], n)
}

// namesDependency reports whether n names the span's database system (or
// a usual short name of it), messaging system or rpc service.
func namesDependency(a *attrSet, typ entity.EdgeType, n string) bool {
	switch typ {
	case entity.EdgeDB:
		sys := dbSystemName(a.str(rDBSystem))
		if equalFold(sys, n) {
			return true
		}
		switch sys {
		case "postgresql":
			return equalFold(n, "postgres") || equalFold(n, "pg")
		case "mongodb":
			return equalFold(n, "mongo")
		case "microsoft.sql_server":
			return equalFold(n, "mssql") || equalFold(n, "sqlserver")
		case "oracle.db":
			return equalFold(n, "oracle")
		case "elasticsearch":
			return equalFold(n, "elastic")
		}
	case entity.EdgeMessaging:
		return equalFold(a.str(rMessagingSystem), n)
	case entity.EdgeGRPC:
		return equalFold(rpcService(a), n)
	}
	return false
}

// maxDelegatesPerParent bounds the delegate spans waiting for one parent.
const maxDelegatesPerParent = 64

// delegateSpan takes a span emitted on behalf of its dependency: the
// dependency counts the call at once (a database) or when the caller is
// known (a virtual service or stream); the caller is the service of the
// span's parent, found in the span owners kept while delegate spans are
// about, else waited for (Graph.delegates) for the pending TTL. It returns
// the caller when known now and the dependency's id when known now.
func (g *Graph) delegateSpan(now time.Time, rc *resourceCtx, a *attrSet, typ entity.EdgeType, srv server, sp ptrace.Span, ms float64, failed bool) (*entityState, string) {
	tid, sid := sp.TraceID(), sp.SpanID()
	d := pendingSpan{at: now.UnixNano(), side: sideDelegate, typ: edgeTypeIndex(typ), ms: ms, failed: failed, spanID: sid, produce: sp.Kind() == ptrace.SpanKindProducer,
		dlg: &delegation{owner: entity.ID(entity.Service, rc.ns, rc.name)}}
	target := ""
	if typ == entity.EdgeDB {
		db := g.spanDatabase(now, nil, a, srv)
		if db == nil {
			return nil, ""
		}
		g.dbCall(now, db, a, ms, failed, tid, sid)
		d.ent = db
		target = db.ref.ID
	} else {
		g.virtualName(&d, nil, a, typ, srv, rc.name)
	}
	d.sampled = g.sampleN != 0 && sampleHash(tid) < g.sampleN
	g.delegateUntil = now.UnixNano() + 2*int64(g.s.Limits.PendingSpanTTL)
	parent := sp.ParentSpanID()
	if parent.IsEmpty() {
		if dst := g.resolveDelegate(&d, nil, tid, false); dst != nil {
			target = dst.ref.ID
		}
		return nil, target
	}
	k := pendKey{tid, parent}
	if o, ok := g.owners.m[k]; ok && o.side == sideOwner && o.ent.live() {
		if dst := g.resolveDelegate(&d, o.ent, tid, false); dst != nil {
			target = dst.ref.ID
		}
		return o.ent, target
	}
	if old, ok := g.delegates.m[k]; ok && old.side == sideDelegate {
		n := 1
		for p := old.dlg.more; p != nil; p = p.dlg.more {
			n++
		}
		if n >= maxDelegatesPerParent {
			// No room to wait: the call counts on its dependency only.
			g.counters.Dropped(WhatPendingSpan, "", 1)
			if dst := g.resolveDelegate(&d, nil, tid, false); dst != nil {
				target = dst.ref.ID
			}
			return nil, target
		}
		d.dlg.more = &old
	}
	g.put(&g.delegates, k, d, WhatPendingSpan)
	return nil, target
}

// resolveDelegate counts a delegate span d whose caller is now known (nil:
// never; expired: its TTL is over) and returns its dependency (nil when
// unknown yet). When the caller turns out to be the span's own resource,
// or that resource has shown itself instrumented since, the span was the service's
// own call after all.
func (g *Graph) resolveDelegate(d *pendingSpan, caller *entityState, tid pcommon.TraceID, expired bool) *entityState {
	at := time.Unix(0, d.at)
	if caller == nil {
		if e := g.entities[d.dlg.owner]; e.live() && e.instrumented {
			caller = e
		}
	}
	if caller != nil && caller.ref.ID == d.dlg.owner && d.ent == nil {
		// The service's own call: it pairs with its server's span like
		// any client span, or waits for it, else calls a virtual entity
		// named as for any client span.
		if d.byResource {
			d.vName, d.vAlt, d.byResource = d.vAlt, "", false
		}
		k := pendKey{tid, d.spanID}
		if s, ok := g.pending.take(k, sideServer); ok {
			if s.ent.live() {
				c := *d
				c.ent, c.dlg = caller, nil
				g.paired(at, c, s.ent, tid)
				return s.ent
			}
			return nil
		}
		if !expired {
			c := *d
			c.side, c.ent, c.dlg = sideClient, caller, nil
			g.putPending(k, c)
			return nil
		}
	}
	dst := d.ent
	if dst == nil {
		dst = g.virtualTarget(at, d)
	} else if !dst.live() {
		dst = nil
	}
	if dst == nil {
		return nil
	}
	if caller.live() && caller != dst {
		g.observeEdge(at, caller, dst, entity.EdgeTypes[d.typ], d.ms, d.failed, tid, d.spanID)
	}
	return dst
}

// ownSpan records that span sid is svc's, for delegate spans that name it
// as their parent, and counts the delegate spans waiting for it.
func (g *Graph) ownSpan(now time.Time, tid pcommon.TraceID, sid pcommon.SpanID, svc *entityState) {
	k := pendKey{tid, sid}
	if d, ok := g.delegates.take(k, sideDelegate); ok {
		for p := &d; p != nil; p = p.dlg.more {
			dst := g.resolveDelegate(p, svc, tid, false)
			if p.sampled {
				t := ""
				if dst != nil {
					t = dst.ref.ID
				}
				g.lateTarget(tid, p.spanID, svc.ref.ID, t)
			}
		}
	}
	g.put(&g.owners, k, pendingSpan{at: now.UnixNano(), side: sideOwner, ent: svc}, WhatSpanOwner)
}

// expireDelegates counts delegate spans whose caller did not come within
// the pending TTL on their dependency alone, and forgets old span owners.
func (g *Graph) expireDelegates(now time.Time) {
	ttl := int64(g.s.Limits.PendingSpanTTL)
	for {
		s, ok := g.delegates.peek()
		if !ok || now.UnixNano()-s.at <= ttl {
			break
		}
		k, _, _ := g.delegates.pop()
		for p := &s; p != nil; p = p.dlg.more {
			if dst := g.resolveDelegate(p, nil, k.trace, true); dst != nil && p.sampled {
				g.lateTarget(k.trace, p.spanID, "", dst.ref.ID)
			}
		}
	}
	for {
		s, ok := g.owners.peek()
		if !ok || now.UnixNano()-s.at <= ttl {
			break
		}
		g.owners.pop()
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
	return binary.BigEndian.Uint64(t[8:])
}
