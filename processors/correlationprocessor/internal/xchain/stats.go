package xchain

import (
	"math"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
)

// Windows of the message features. Buckets of bucketWidth are kept for the
// long window; the short window is its last buckets. Cross-chain messages
// take seconds to hours, so 30 s buckets are fine-grained enough.
const (
	bucketWidth = 30 * time.Second
	numBuckets  = int64(longWindow / bucketWidth)
	shortWindow = time.Minute
	longWindow  = 5 * time.Minute

	// sketchAccuracy is the relative accuracy of the latency sketches;
	// sketchMaxBins bounds each sketch to a few KiB (it collapses the
	// lowest values first, keeping the tail the p99 is read from).
	sketchAccuracy = 0.01
	sketchMaxBins  = 1024
)

// bucket holds what happened to a relayer entity's messages in one
// bucketWidth of clock time.
type bucket struct {
	n int64 // bucket number: unix time / bucketWidth
	// closed counts messages reaching a terminal stage or expiring;
	// timedOut includes expired ones.
	closed, failed, timedOut uint64
	s2r, r2e, e2e            *ddsketch.DDSketch
	gasPriceSum              float64
	gasPriceN                uint64
	feeSum                   float64
	feeN                     uint64
}

func (b *bucket) reset(n int64) {
	s2r, r2e, e2e := b.s2r, b.r2e, b.e2e
	for _, s := range []*ddsketch.DDSketch{s2r, r2e, e2e} {
		if s != nil {
			s.Clear()
		}
	}
	*b = bucket{n: n, s2r: s2r, r2e: r2e, e2e: e2e}
}

func newSketch() *ddsketch.DDSketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(sketchAccuracy, sketchMaxBins)
	if err != nil {
		// The arguments are constants that are valid.
		panic(err)
	}
	return s
}

func addLatency(dst **ddsketch.DDSketch, seconds float64) {
	if *dst == nil {
		*dst = newSketch()
	}
	if seconds < 0 || math.IsNaN(seconds) {
		seconds = 0 // clock skew between chains' timestamps
	}
	_ = (*dst).Add(seconds)
}

// ewma is an exponentially weighted moving average; zero until first set.
type ewma struct {
	v   float64
	set bool
}

func (e *ewma) update(x, alpha float64) {
	if !e.set {
		e.v, e.set = x, true
		return
	}
	e.v += alpha * (x - e.v)
}

// relayerState is one relayer entity: relayer service + source chain +
// destination chain.
type relayerState struct {
	id, relayer, src, dst string
	created               int64
	lastActive            int64
	// scopes are where its relayer metrics are looked up (computed once).
	scopes healthScopes

	pending msgHeap
	buckets [numBuckets]bucket
	cur     int64 // current bucket number

	gasBase, tputBase ewma
	// reported is a ring of the latest expired and evicted messages.
	reported     []StuckMessage
	reportedNext int
}

func newRelayerState(id, relayer, src, dst string, now int64) *relayerState {
	r := &relayerState{id: id, relayer: relayer, src: src, dst: dst, created: now, lastActive: now}
	r.scopes = scopesOf(r)
	r.cur = now / int64(bucketWidth)
	for i := range r.buckets {
		r.buckets[i].n = -1
	}
	r.buckets[r.cur%numBuckets].reset(r.cur)
	return r
}

// advance moves the current bucket to now, folding every finished bucket
// into the baselines (alpha per bucket).
func (r *relayerState) advance(now int64, alpha float64) *bucket {
	n := now / int64(bucketWidth)
	if n <= r.cur {
		return &r.buckets[r.cur%numBuckets]
	}
	for b := r.cur; b < n; b++ {
		if b-r.cur >= numBuckets {
			// A long idle gap: the rest are empty buckets; decay the
			// throughput baseline in closed form.
			if r.tputBase.set {
				r.tputBase.v *= math.Pow(1-alpha, float64(n-b))
			}
			break
		}
		bk := &r.buckets[b%numBuckets]
		var closed uint64
		if bk.n == b {
			closed = bk.closed
			if bk.gasPriceN > 0 {
				r.gasBase.update(bk.gasPriceSum/float64(bk.gasPriceN), alpha)
			}
		}
		r.tputBase.update(float64(closed)/bucketWidth.Seconds(), alpha)
	}
	start := r.cur + 1
	if n-start >= numBuckets {
		start = n - numBuckets + 1
	}
	for b := start; b <= n; b++ {
		r.buckets[b%numBuckets].reset(b)
	}
	r.cur = n
	return &r.buckets[n%numBuckets]
}

func (r *relayerState) report(s StuckMessage, max int) {
	if max <= 0 {
		return
	}
	if len(r.reported) < max {
		r.reported = append(r.reported, s)
		return
	}
	r.reported[r.reportedNext] = s
	r.reportedNext = (r.reportedNext + 1) % max
}

// windowAgg is the sum of the buckets of a window over one or more relayer
// entities.
type windowAgg struct {
	closed, failed, timedOut uint64
	gasPriceSum              float64
	gasPriceN                uint64
	feeSum                   float64
	feeN                     uint64
	s2r, r2e, e2e            *ddsketch.DDSketch
	covered                  float64 // seconds
}

func mergeInto(dst **ddsketch.DDSketch, src *ddsketch.DDSketch) {
	if src == nil || src.IsEmpty() {
		return
	}
	if *dst == nil {
		*dst = newSketch()
	}
	_ = (*dst).MergeWith(src)
}

// aggregate adds r's buckets of the window ending at now to a.
func (r *relayerState) aggregate(a *windowAgg, now int64, window time.Duration) {
	k := int64(window / bucketWidth)
	first := r.cur - k + 1
	for b := first; b <= r.cur; b++ {
		bk := &r.buckets[((b%numBuckets)+numBuckets)%numBuckets]
		if bk.n != b {
			continue
		}
		a.closed += bk.closed
		a.failed += bk.failed
		a.timedOut += bk.timedOut
		a.gasPriceSum += bk.gasPriceSum
		a.gasPriceN += bk.gasPriceN
		a.feeSum += bk.feeSum
		a.feeN += bk.feeN
		mergeInto(&a.s2r, bk.s2r)
		mergeInto(&a.r2e, bk.r2e)
		mergeInto(&a.e2e, bk.e2e)
	}
	from := max(first*int64(bucketWidth), r.created)
	if c := float64(now-from) / 1e9; c > a.covered {
		a.covered = c
	}
}

// features writes the message features of the window to f.
func (a *windowAgg) features(f map[string]float64) {
	covered := max(a.covered, 1)
	f["messages.throughput"] = float64(a.closed) / covered
	if a.closed > 0 {
		f["messages.failure_ratio"] = float64(a.failed) / float64(a.closed)
		f["messages.timeout_ratio"] = float64(a.timedOut) / float64(a.closed)
		if a.feeN > 0 {
			f["fee.per_message"] = a.feeSum / float64(a.closed)
		}
	}
	if a.gasPriceN > 0 {
		f["gas.price"] = a.gasPriceSum / float64(a.gasPriceN)
	}
	for _, q := range []struct {
		name string
		s    *ddsketch.DDSketch
	}{
		{"latency.sent_to_relayed_p99_s", a.s2r},
		{"latency.relayed_to_executed_p99_s", a.r2e},
		{"latency.end_to_end_p99_s", a.e2e},
	} {
		if q.s == nil || q.s.IsEmpty() {
			continue
		}
		if v, err := q.s.GetValueAtQuantile(0.99); err == nil {
			f[q.name] = v
		}
	}
}
