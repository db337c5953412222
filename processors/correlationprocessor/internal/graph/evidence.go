package graph

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/logtemplate"
)

// exemplarAge is how long an exemplar stays eligible: the long window.
const exemplarAge = LongWindow

// exemplars keeps, bounded by max each, the slowest requests and the most
// recent failed requests of the long window.
type exemplars struct {
	slow   []entity.Exemplar
	failed []entity.Exemplar
	// Of slow: the smallest value and the oldest time (unix nanos).
	minSlow    float64
	oldestSlow int64
}

func (x *exemplars) add(max int, ex entity.Exemplar, failed bool) {
	cut := ex.Time.Add(-exemplarAge)
	if failed {
		ex.Reason = "error"
		if len(x.failed) < max {
			x.failed = append(x.failed, ex)
			return
		}
		copy(x.failed, x.failed[1:])
		x.failed[len(x.failed)-1] = ex
		return
	}
	ex.Reason = "slow"
	defer x.refresh()
	if len(x.slow) < max {
		x.slow = append(x.slow, ex)
		return
	}
	// Replace the oldest aged-out exemplar, else the fastest if ex is slower.
	min := -1
	for i := range x.slow {
		if x.slow[i].Time.Before(cut) {
			x.slow[i] = ex
			return
		}
		if min < 0 || x.slow[i].Value < x.slow[min].Value {
			min = i
		}
	}
	if ex.Value > x.slow[min].Value {
		x.slow[min] = ex
	}
}

// wouldKeepSlow reports whether add would keep a non-failed exemplar of
// value ms, so callers only format trace ids when needed. The common "no"
// is answered from the cached minimum and oldest time.
func (x *exemplars) wouldKeepSlow(max int, now time.Time, ms float64) bool {
	if len(x.slow) < max {
		return true
	}
	if ms <= x.minSlow && now.UnixNano()-x.oldestSlow < int64(exemplarAge) {
		return false
	}
	cut := now.Add(-exemplarAge)
	for i := range x.slow {
		if x.slow[i].Time.Before(cut) || ms > x.slow[i].Value {
			return true
		}
	}
	return false
}

func (x *exemplars) refresh() {
	x.minSlow, x.oldestSlow = 0, 0
	for i, e := range x.slow {
		if i == 0 || e.Value < x.minSlow {
			x.minSlow = e.Value
		}
		if t := e.Time.UnixNano(); i == 0 || t < x.oldestSlow {
			x.oldestSlow = t
		}
	}
}

// list returns the exemplars of the long window ending at at: failed first
// (newest first), then slow (slowest first).
func (x *exemplars) list(at time.Time) []entity.Exemplar {
	cut := at.Add(-exemplarAge)
	if len(x.failed)+len(x.slow) == 0 {
		return nil
	}
	out := make([]entity.Exemplar, 0, len(x.failed)+len(x.slow))
	for i := len(x.failed) - 1; i >= 0; i-- {
		if e := x.failed[i]; !e.Time.Before(cut) && !e.Time.After(at) {
			out = append(out, e)
		}
	}
	n := len(out)
	for _, e := range x.slow {
		if !e.Time.Before(cut) && !e.Time.After(at) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out[n:], func(a, b entity.Exemplar) int {
		if a.Value != b.Value {
			return cmp.Compare(b.Value, a.Value)
		}
		return strings.Compare(a.TraceID, b.TraceID)
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// templateBuckets is the number of buckets of a template's count: with the
// 10 s default they cover the 5-minute window.
const templateBuckets = 32

type template struct {
	sample   entity.LogSample
	counts   [templateBuckets]uint32
	ids      [templateBuckets]int64
	lastSeen time.Time
}

func (t *template) total() uint64 {
	var n uint64
	for _, c := range t.counts {
		n += uint64(c)
	}
	return n
}

// templates is the bounded set of log templates of one entity; when full,
// the template seen least recently is evicted.
type templates struct {
	m   map[string]*template
	buf []byte
}

func (g *Graph) addLog(e *entityState, now time.Time, severity, body, traceID string) {
	if e.templates == nil {
		e.templates = &templates{m: map[string]*template{}}
	}
	ts := e.templates
	ts.buf = logtemplate.Append(ts.buf[:0], body)
	t, ok := ts.m[string(ts.buf)]
	if !ok {
		if len(ts.m) >= g.s.Limits.MaxTemplatesPerEntity {
			// Evict the least recently seen; among equals the least
			// frequent, then the smallest, so the choice is stable.
			var oldest string
			var oldestAt time.Time
			var oldestN uint64
			for k, v := range ts.m {
				n := v.total()
				if oldest == "" || v.lastSeen.Before(oldestAt) ||
					(v.lastSeen.Equal(oldestAt) && (n < oldestN || (n == oldestN && k < oldest))) {
					oldest, oldestAt, oldestN = k, v.lastSeen, n
				}
			}
			delete(ts.m, oldest)
			g.counters.Evicted(WhatTemplate, e.ref.Type, 1)
		}
		t = &template{}
		tpl := string(ts.buf)
		t.sample.Template = tpl
		ts.m[tpl] = t
	}
	// The sample is the latest line of the template; of lines stamped at
	// the same instant, the greatest by body, then trace id, so that
	// replicas' samples merge to this one whatever the arrival order
	// (internal/mergedgraph).
	if len(body) > 1024 {
		body = body[:1024]
	}
	if s := &t.sample; now.After(s.Time) || (now.Equal(s.Time) && (body > s.Body || (body == s.Body && traceID > s.TraceID))) {
		s.Time, s.Severity, s.Body, s.TraceID = now, severity, body, traceID
	}
	t.lastSeen = now
	id := now.UnixNano() / int64(g.s.Window.Bucket)
	i := id % templateBuckets
	if t.ids[i] != id {
		t.ids[i], t.counts[i] = id, 0
	}
	t.counts[i]++
}

// samples returns the top max templates of the long window by count, each
// with its latest line.
func (g *Graph) samples(ts *templates, at time.Time, max int) []entity.LogSample {
	if ts == nil {
		return nil
	}
	last := at.UnixNano() / int64(g.s.Window.Bucket)
	first := last - int64(LongWindow/g.s.Window.Bucket) + 1
	if last-first >= templateBuckets {
		first = last - templateBuckets + 1
	}
	var out []entity.LogSample
	for _, t := range ts.m {
		var n int64
		for i := range t.ids {
			if t.ids[i] >= first && t.ids[i] <= last {
				n += int64(t.counts[i])
			}
		}
		if n == 0 {
			continue
		}
		s := t.sample
		s.Count = n
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Template < out[j].Template
	})
	if len(out) > max {
		out = out[:max]
	}
	return out
}
