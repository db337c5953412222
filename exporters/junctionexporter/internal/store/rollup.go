package store

import (
	"sync"

	"github.com/junction-sre/junction/entity"
)

// rollupBucketMs is the rollup's resolution: one sum and count per minute.
const rollupBucketMs = 60_000

// rollup keeps per-minute sums and counts of the features the graph shows
// (nodeStats, edgeStats) for the last window, so that /graph over a recent
// range reads a few numbers per series instead of decoding every sample.
// It is bounded by maxSeries; a series it cannot take makes it incomplete
// for ranges that include that minute, and the graph then reads storage.
type rollup struct {
	mu        sync.Mutex
	slots     int // buckets kept: window / bucket
	maxSeries int
	// series are keyed by rollupKey.
	series map[string]*rollupSeries
	// incompleteUntil is the last bucket in which a series was refused.
	incompleteUntil int64
	refused         int64
}

// rollupFeatureInfo says which rollup feature a metric name is.
type rollupFeatureInfo struct {
	feature string
	idx     byte
	edge    bool
}

// appendRollupKey appends the key of feature f of the entity or edge id:
// kind, feature index, id.
func appendRollupKey(dst []byte, f rollupFeatureInfo, id string) []byte {
	kind := byte('n')
	if f.edge {
		kind = 'e'
	}
	return append(append(dst, kind, f.idx), id...)
}

type rollupSeries struct {
	id      string // entity id or edge key
	feature string
	edge    bool
	// dead is set when the series leaves the rollup; holders of a pointer
	// to it (entity and edge state) must look it up again.
	dead bool
	// node identity
	typ     entity.Type
	name    string
	virtual bool
	// edge identity
	source, target string
	edgeType       entity.EdgeType

	last   int64 // last bucket written
	sums   []float64
	counts []uint32
	epochs []int32 // bucket index each slot holds
}

// newRollup returns a rollup over windowMs; a window of 0 turns it off.
func newRollup(windowMs int64, maxSeries int) *rollup {
	if windowMs <= 0 {
		return &rollup{series: make(map[string]*rollupSeries), incompleteUntil: -1}
	}
	return &rollup{slots: int(windowMs/rollupBucketMs) + 1, maxSeries: maxSeries, series: make(map[string]*rollupSeries), incompleteUntil: -1}
}

// get returns the series of feature f of id under key (appendRollupKey),
// creating it with init when there is room.
func (r *rollup) get(key []byte, f rollupFeatureInfo, id string, bucket int64, init func(*rollupSeries)) *rollupSeries {
	rs := r.series[string(key)]
	if rs != nil || r.slots == 0 {
		return rs
	}
	if len(r.series) >= r.maxSeries {
		r.refused++
		r.incompleteUntil = max(r.incompleteUntil, bucket)
		return nil
	}
	rs = &rollupSeries{id: id, feature: f.feature, edge: f.edge,
		sums: make([]float64, r.slots), counts: make([]uint32, r.slots), epochs: make([]int32, r.slots)}
	for i := range rs.epochs {
		rs.epochs[i] = -1
	}
	init(rs)
	r.series[string(key)] = rs
	return rs
}

// add adds a sample at ts (Unix ms). Samples older than the window are
// ignored: storage has them.
func (rs *rollupSeries) add(slots int, ts int64, v float64) {
	b := ts / rollupBucketMs
	if rs.last-b >= int64(slots) {
		return
	}
	i := int(b % int64(slots))
	if int64(rs.epochs[i]) != b {
		if int64(rs.epochs[i]) > b {
			return
		}
		rs.epochs[i], rs.sums[i], rs.counts[i] = int32(b), 0, 0
	}
	rs.sums[i] += v
	rs.counts[i]++
	rs.last = max(rs.last, b)
}

// sum adds up the buckets in [fromB, toB], which span at most slots
// buckets. It walks the ring in at most two contiguous runs: this loop is
// the whole cost of a graph query from the rollup.
func (rs *rollupSeries) sum(slots int, fromB, toB int64) (float64, float64) {
	if toB-fromB >= int64(slots) {
		fromB = toB - int64(slots) + 1
	}
	var s float64
	var n uint64
	b := fromB
	i := int(b % int64(slots))
	for b <= toB {
		end := min(slots, i+int(toB-b)+1)
		epochs, sums, counts := rs.epochs[i:end], rs.sums[i:end], rs.counts[i:end]
		for j, e := range epochs {
			if int64(e) == b+int64(j) {
				s += sums[j]
				n += uint64(counts[j])
			}
		}
		b += int64(end - i)
		i = 0
	}
	return s, float64(n)
}

// covers reports whether the rollup holds every sample of [fromMs, toMs]
// given the current time.
func (r *rollup) covers(fromMs, toMs, nowMs int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	fromB, nowB := fromMs/rollupBucketMs, nowMs/rollupBucketMs
	return r.slots > 0 && fromB > nowB-int64(r.slots) && toMs <= nowMs+rollupBucketMs && fromB > r.incompleteUntil
}

// expire drops series with no bucket in the window.
func (r *rollup) expire(nowMs int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nowB := nowMs / rollupBucketMs
	for k, rs := range r.series {
		if nowB-rs.last >= int64(r.slots) {
			rs.dead = true
			delete(r.series, k)
		}
	}
}

// rollupFeature maps derived metric names onto the rollup: entity feature
// gauges of nodeStats and edge feature gauges of edgeStats.
var rollupFeature = func() map[string]rollupFeatureInfo {
	m := make(map[string]rollupFeatureInfo)
	for i, f := range nodeStats {
		m[entity.MetricPrefix+f] = rollupFeatureInfo{feature: f, idx: byte(i)}
	}
	for i, f := range edgeStats {
		m[entity.EdgeMetricPrefix+f] = rollupFeatureInfo{feature: f, idx: byte(i), edge: true}
	}
	return m
}()
