package graph

import (
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/window"
)

// sampledSpan is what the critical path needs of a span.
type sampledSpan struct {
	id, parent pcommon.SpanID
	start, end int64
	svc        string // the span's service entity id ("" if none)
	kind       ptrace.SpanKind
	target     string // CLIENT spans: the called entity, when known at once
}

type sampledTrace struct {
	spans    []sampledSpan
	lastSeen time.Time
	full     bool
}

// traceSampler buffers the spans of sampled traces until they are idle.
type traceSampler struct {
	m map[pcommon.TraceID]*sampledTrace
}

func (t *traceSampler) init() { t.m = map[pcommon.TraceID]*sampledTrace{} }

func (g *Graph) sampleSpan(now time.Time, tid pcommon.TraceID, sp ptrace.Span, svc *entityState, kind ptrace.SpanKind, ms float64, target string) {
	tr := g.traces.m[tid]
	if tr == nil {
		if len(g.traces.m) >= g.s.Limits.MaxSampledTraces {
			g.counters.Dropped(WhatTrace, "", 1)
			return
		}
		tr = &sampledTrace{}
		g.traces.m[tid] = tr
	}
	tr.lastSeen = now
	if len(tr.spans) >= g.s.Limits.MaxSpansPerTrace {
		if !tr.full {
			tr.full = true
		}
		g.counters.Dropped(WhatTraceSpan, "", 1)
		return
	}
	s := sampledSpan{id: sp.SpanID(), parent: sp.ParentSpanID(), start: int64(sp.StartTimestamp()), end: int64(sp.EndTimestamp()), kind: kind, target: target}
	if s.end < s.start {
		s.end = s.start
	}
	if svc != nil {
		s.svc = svc.ref.ID
	}
	tr.spans = append(tr.spans, s)
}

// lateTarget sets the target of a sampled client span once it is known
// (paired or expired into a virtual entity), and its service when svc is
// not "" (a span on behalf of a dependency, whose caller came later); ""
// leaves either as it is.
func (g *Graph) lateTarget(tid pcommon.TraceID, sid pcommon.SpanID, svc, target string) {
	tr := g.traces.m[tid]
	if tr == nil {
		return
	}
	for i := range tr.spans {
		if tr.spans[i].id == sid {
			if target != "" {
				tr.spans[i].target = target
			}
			if svc != "" {
				tr.spans[i].svc = svc
			}
			return
		}
	}
}

// completeTraces analyses the sampled traces idle for TraceIdle, and at
// least as long as unpaired client spans wait for their server (so that
// virtual targets are known), and forgets them.
func (g *Graph) completeTraces(now time.Time) {
	idle := g.s.Limits.TraceIdle
	if ttl := g.s.Limits.PendingSpanTTL; ttl > idle {
		idle = ttl
	}
	for tid, tr := range g.traces.m {
		if now.Sub(tr.lastSeen) <= idle {
			continue
		}
		delete(g.traces.m, tid)
		if !tr.full {
			g.criticalPath(now, tr.spans)
		}
	}
}

// criticalPath attributes the critical path of one trace: each service's
// self time on it (critical_path.self_share), and for every call the share
// of its caller's latency (edge latency.share): the call's duration over
// the duration of the nearest enclosing SERVER or CONSUMER span (or root)
// of the caller's service.
func (g *Graph) criticalPath(now time.Time, spans []sampledSpan) {
	if len(spans) == 0 {
		return
	}
	byID := make(map[pcommon.SpanID]int, len(spans))
	for i := range spans {
		byID[spans[i].id] = i
	}
	children := make([][]int, len(spans))
	root := -1
	for i := range spans {
		p, ok := byID[spans[i].parent]
		if ok && p != i {
			children[p] = append(children[p], i)
			continue
		}
		if root < 0 || spans[i].start < spans[root].start || (spans[i].start == spans[root].start && spans[i].end > spans[root].end) {
			root = i
		}
	}
	if root < 0 {
		return // every span's parent is in the trace: a cycle, no root
	}
	total := spans[root].end - spans[root].start
	if total <= 0 {
		return
	}
	self := map[string]int64{}
	var walk func(i int, until int64, depth int)
	walk = func(i int, until int64, depth int) {
		s := &spans[i]
		owner := s.svc
		if len(children[i]) == 0 && strings.HasPrefix(s.target, string(entity.Service)+":") {
			// A call to an uninstrumented service: its time is the
			// (virtual) service's own.
			owner = s.target
		}
		t := until
		if t > s.end {
			t = s.end
		}
		kids := children[i]
		sort.Slice(kids, func(a, b int) bool { return spans[kids[a]].end > spans[kids[b]].end })
		for _, c := range kids {
			cs := &spans[c]
			if cs.start >= t || depth > 256 {
				continue
			}
			cEnd := cs.end
			if cEnd > t {
				cEnd = t
			}
			self[owner] += t - cEnd
			walk(c, cEnd, depth+1)
			t = cs.start
			if t < s.start {
				t = s.start
			}
		}
		if t > s.start {
			self[owner] += t - s.start
		}
	}
	walk(root, spans[root].end, 0)
	for svc, d := range self {
		if e := g.entities[svc]; e != nil && svc != "" {
			e.win.Add(now, window.ShareSum, float64(d)/float64(total))
			e.win.Add(now, window.ShareN, 1)
		}
	}

	// Edge shares: sum per edge over the trace, capped at 1.
	shares := map[edgeKey]float64{}
	for i := range spans {
		s := &spans[i]
		if (s.kind != ptrace.SpanKindClient && s.kind != ptrace.SpanKindProducer) || s.svc == "" {
			continue
		}
		dst := s.target
		for _, c := range children[i] {
			if dst != "" {
				break
			}
			if spans[c].svc != "" && spans[c].svc != s.svc {
				dst = spans[c].svc
			}
		}
		if dst == "" {
			continue
		}
		// The enclosing entry span of the caller's service.
		enc := -1
		steps := 0
		for p, ok := byID[s.parent]; ok && steps < len(spans); p, ok = byID[spans[p].parent] {
			steps++
			if spans[p].svc != s.svc {
				break
			}
			enc = p
			if spans[p].kind == ptrace.SpanKindServer || spans[p].kind == ptrace.SpanKindConsumer {
				break
			}
		}
		if enc < 0 {
			continue
		}
		d := spans[enc].end - spans[enc].start
		if d <= 0 {
			continue
		}
		for _, typ := range entity.EdgeTypes {
			k := edgeKey{s.svc, dst, typ}
			if _, ok := g.edges[k]; ok {
				shares[k] += float64(s.end-s.start) / float64(d)
				break
			}
		}
	}
	for k, v := range shares {
		if v > 1 {
			v = 1
		}
		e := g.edges[k]
		e.win.Add(now, window.ShareSum, v)
		e.win.Add(now, window.ShareN, 1)
	}
}
