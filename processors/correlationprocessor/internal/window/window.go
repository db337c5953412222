// Package window keeps additive counts and latency sketches of one entity or
// edge in time buckets, and answers sums, rates and quantiles over trailing
// windows ending at an instant.
//
// Three rings, all indexed by bucket number modulo their length, so no
// rotation work is ever needed:
//   - detail: Width buckets (10 s) for the short windows (5 min by default),
//     with every accumulator and a mergeable DDSketch of latencies;
//   - fine: Width buckets for the long window (30 min by default), requests
//     and errors only;
//   - coarse: CoarseWidth buckets (5 min) for burn rates up to 6 h, requests
//     and errors only.
package window

import (
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// Acc indexes the additive accumulators of a detail bucket.
type Acc int

// Accumulators.
const (
	Requests Acc = iota
	Errors
	Shed       // proxy responses 429/503
	Slow       // database calls slower than the slow-query threshold
	ShareSum   // sum of critical-path shares of sampled traces
	ShareN     // number of sampled traces behind ShareSum
	LogRecords // log records
	LogErrors  // log records with severity ERROR or worse
	Produced   // messages produced
	Consumed   // messages consumed
	NumAcc
)

// Config sizes the rings.
type Config struct {
	Width         time.Duration // detail and fine bucket width
	DetailBuckets int           // detail ring length (short windows)
	FineBuckets   int           // fine ring length (long window)
	CoarseWidth   time.Duration
	CoarseBuckets int
	// SketchAccuracy is the sketches' relative accuracy, SketchBins their
	// maximum number of bins (lowest bins collapse beyond it).
	SketchAccuracy float64
	SketchBins     int
}

type detail struct {
	id     int64
	acc    [NumAcc]float64
	sketch *ddsketch.DDSketch
	// The sketch's index mapping and positive-value store, typed: Observe
	// adds a positive latency to them directly, with static calls where
	// the sketch's Add makes four through interfaces; the sketch reads the
	// same store.
	mapping *mapping.CubicallyInterpolatedMapping
	pos     *store.CollapsingLowestDenseStore
}

type pair struct {
	id       int64
	req, err float64
}

// Window is not safe for concurrent use; its owner holds the lock.
type Window struct {
	cfg       *Config
	firstSeen int64 // unix nanos
	lastSeen  int64
	observed  bool
	detail    []detail
	fine      []pair
	coarse    []pair
	// cur caches the buckets of the last time written (Add, Observe): a
	// batch stamps all its telemetry with one time, so a window finds its
	// buckets (two 64-bit divisions and a modulo per ring) once per batch
	// instead of once per span.
	cur cursor
}

// cursor is the buckets of time n; d is nil when n is older than the
// detail ring reaches back, fine and coarse when older than theirs (valid
// once pairs is set).
type cursor struct {
	n            int64
	set, pairs   bool
	d            *detail
	fine, coarse *pair
}

// New returns an empty window sized by cfg, which must outlive it.
func New(cfg *Config, now time.Time) *Window {
	return &Window{cfg: cfg, firstSeen: now.UnixNano(), lastSeen: now.UnixNano()}
}

// Observed reports whether a request was ever observed.
func (w *Window) Observed() bool { return w.observed }

// LastSeen is the time of the last Add or Observe.
func (w *Window) LastSeen() time.Time { return time.Unix(0, w.lastSeen) }

// detailAt returns the detail bucket of now, cleared when it held an older
// bucket, or nil when now is older than the ring reaches back. Only the
// window's own writes move buckets, so the bucket found for the last time
// written stays right until a different time is written.
func (w *Window) detailAt(now int64) *detail {
	if w.cur.set && w.cur.n == now {
		return w.cur.d
	}
	if w.detail == nil {
		w.detail = make([]detail, w.cfg.DetailBuckets)
	}
	id := now / int64(w.cfg.Width)
	d := &w.detail[id%int64(len(w.detail))]
	switch {
	case d.id > id:
		d = nil // older than the ring reaches back
	case d.id != id:
		d.id = id
		d.acc = [NumAcc]float64{}
		if d.sketch != nil {
			d.sketch.Clear()
		}
	}
	w.cur = cursor{n: now, set: true, d: d}
	return d
}

func (w *Window) pairs(now int64, a Acc, v float64) {
	if a != Requests && a != Errors {
		return
	}
	c := &w.cur
	if !c.set || c.n != now || !c.pairs {
		if w.fine == nil {
			w.fine = make([]pair, w.cfg.FineBuckets)
			w.coarse = make([]pair, w.cfg.CoarseBuckets)
		}
		if !c.set || c.n != now {
			w.detailAt(now) // sets the cursor to now
		}
		c.fine = pairAt(w.fine, now/int64(w.cfg.Width))
		c.coarse = pairAt(w.coarse, now/int64(w.cfg.CoarseWidth))
		c.pairs = true
	}
	addPair(c.fine, a, v)
	addPair(c.coarse, a, v)
}

// pairAt returns the bucket id of ring, cleared when it held an older
// bucket, or nil when id is older than the ring reaches back.
func pairAt(ring []pair, id int64) *pair {
	p := &ring[id%int64(len(ring))]
	if p.id > id {
		return nil
	}
	if p.id != id {
		*p = pair{id: id}
	}
	return p
}

func addPair(p *pair, a Acc, v float64) {
	if p == nil {
		return
	}
	if a == Requests {
		p.req += v
	} else {
		p.err += v
	}
}

func (w *Window) touch(now int64) {
	if now > w.lastSeen {
		w.lastSeen = now
	}
}

// Add adds v to accumulator a at now. Times older than a ring reaches
// back are ignored by that ring.
func (w *Window) Add(now time.Time, a Acc, v float64) {
	n := now.UnixNano()
	w.touch(n)
	if d := w.detailAt(n); d != nil {
		d.acc[a] += v
	}
	w.pairs(n, a, v)
}

// Observe records one request of latency ms at now, failed or not.
func (w *Window) Observe(now time.Time, ms float64, failed bool) {
	n := now.UnixNano()
	w.touch(n)
	w.observed = true
	d := w.detailAt(n)
	if d == nil {
		return
	}
	d.acc[Requests]++
	w.pairs(n, Requests, 1)
	if failed {
		d.acc[Errors]++
		w.pairs(n, Errors, 1)
	}
	if d.sketch == nil {
		d.sketch, d.mapping, d.pos = w.newSketch()
	}
	if ms > d.mapping.MinIndexableValue() && ms <= d.mapping.MaxIndexableValue() {
		// What DDSketch.Add does with a positive value it can index.
		d.pos.Add(d.mapping.Index(ms))
		return
	}
	if ms < 0 {
		ms = 0
	}
	_ = d.sketch.Add(ms) // only fails on values the mapping cannot index (NaN, Inf)
}

// newSketch returns a DDSketch with the cubically interpolated index
// mapping: the same relative-accuracy guarantee as the logarithmic one,
// without a math.Log per value (the logarithm was a tenth of the span
// path's CPU), for a few percent more bins.
func (w *Window) newSketch() (*ddsketch.DDSketch, *mapping.CubicallyInterpolatedMapping, *store.CollapsingLowestDenseStore) {
	m, err := mapping.NewCubicallyInterpolatedMapping(w.cfg.SketchAccuracy)
	if err != nil {
		// Config.Validate bounds accuracy; this cannot fail then.
		m, _ = mapping.NewCubicallyInterpolatedMapping(0.01)
	}
	pos := store.NewCollapsingLowestDenseStore(w.cfg.SketchBins)
	return ddsketch.NewDDSketch(m, pos, store.NewCollapsingLowestDenseStore(w.cfg.SketchBins)), m, pos
}

// span returns the effective duration in seconds of a window of length d
// ending at at: d, or the time since the window was created if shorter,
// never below one second.
func (w *Window) span(at int64, d time.Duration) float64 {
	// The buckets Sum reads are whole ones before at's own bucket, which is
	// filled only up to at: dividing by d would read a rate low by up to one
	// bucket's share of the window.
	width := int64(w.cfg.Width)
	if w.fine != nil && int64(d) > width*int64(len(w.fine)) && w.cfg.CoarseWidth > 0 {
		width = int64(w.cfg.CoarseWidth)
	}
	eff := d
	if width > 0 {
		last := at / width
		first := last - (int64(d)+width-1)/width + 1
		eff = time.Duration(at - first*width)
	}
	if age := time.Duration(at - w.firstSeen); age < eff {
		eff = age
	}
	if eff < time.Second {
		eff = time.Second
	}
	return eff.Seconds()
}

// Sum returns the sum of accumulator a over the window of length d ending
// at at (the bucket holding at and the buckets before it that end after
// at-d). d is rounded up to whole buckets.
func (w *Window) Sum(at time.Time, d time.Duration, a Acc) float64 {
	n := at.UnixNano()
	width := int64(w.cfg.Width)
	last := n / width
	first := last - (int64(d)+width-1)/width + 1
	var s float64
	switch {
	case w.detail != nil && last-first < int64(len(w.detail)):
		n := int64(len(w.detail))
		for id, p := first, ringPos(first, n); id <= last; id++ {
			if b := &w.detail[p]; b.id == id {
				s += b.acc[a]
			}
			if p++; p == n {
				p = 0
			}
		}
	case a == Requests || a == Errors:
		s = w.pairSum(at, d, a)
	}
	return s
}

func (w *Window) pairSum(at time.Time, d time.Duration, a Acc) float64 {
	if w.fine == nil {
		return 0
	}
	n := at.UnixNano()
	ring, width := w.fine, int64(w.cfg.Width)
	if int64(d) > width*int64(len(ring)) {
		ring, width = w.coarse, int64(w.cfg.CoarseWidth)
	}
	last := n / width
	first := last - (int64(d)+width-1)/width + 1
	if last-first >= int64(len(ring)) {
		first = last - int64(len(ring)) + 1
	}
	var s float64
	size := int64(len(ring))
	for id, i := first, ringPos(first, size); id <= last; id++ {
		if p := &ring[i]; p.id == id {
			if a == Requests {
				s += p.req
			} else {
				s += p.err
			}
		}
		if i++; i == size {
			i = 0
		}
	}
	return s
}

// ringPos is the position of bucket id in a ring of n buckets: the
// readers step from it without a modulo per bucket.
func ringPos(id, n int64) int64 {
	p := id % n
	if p < 0 {
		p += n
	}
	return p
}

// Rate returns Sum per second over the window.
func (w *Window) Rate(at time.Time, d time.Duration, a Acc) float64 {
	return w.Sum(at, d, a) / w.span(at.UnixNano(), d)
}

// Quantiles merges the sketches of the window into scratch (cleared first)
// and returns the values at qs. ok is false when the window holds no
// latency.
func (w *Window) Quantiles(scratch *ddsketch.DDSketch, at time.Time, d time.Duration, qs []float64, out []float64) (ok bool) {
	if w.detail == nil {
		return false
	}
	scratch.Clear()
	width := int64(w.cfg.Width)
	last := at.UnixNano() / width
	first := last - (int64(d)+width-1)/width + 1
	if last-first >= int64(len(w.detail)) {
		first = last - int64(len(w.detail)) + 1
	}
	n := int64(len(w.detail))
	for id, p := first, ringPos(first, n); id <= last; id++ {
		if b := &w.detail[p]; b.id == id && b.sketch != nil && !b.sketch.IsEmpty() {
			if err := scratch.MergeWith(b.sketch); err != nil {
				return false
			}
		}
		if p++; p == n {
			p = 0
		}
	}
	if scratch.IsEmpty() {
		return false
	}
	for i, q := range qs {
		v, err := scratch.GetValueAtQuantile(q)
		if err != nil {
			return false
		}
		out[i] = v
	}
	return true
}

// NewScratch returns a sketch compatible with the windows of cfg for
// Quantiles.
func (cfg *Config) NewScratch() *ddsketch.DDSketch {
	w := Window{cfg: cfg}
	s, _, _ := w.newSketch()
	return s
}
