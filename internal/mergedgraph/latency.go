package mergedgraph

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/prometheus/common/model"

	"github.com/junction-sre/junction/entity"
)

// MetricLatencyBin is the count of one bin of a replica's latency sketch
// (entity.LatencySketch) for one entity or edge and window. Replicas merge
// by adding the counts of equal bins, which is exactly the sketch of all
// their latencies; the quantiles are read from the merged bins.
const MetricLatencyBin = "junction.merge.latency_bin"

// Labels of MetricLatencyBin beyond the entity or edge identity and
// AttrWindow.
const (
	// AttrBin is the bin's index at the emitted resolution, or BinZero.
	AttrBin = "junction_bin"
	// AttrSketch names the bins' index mapping and resolution, so that
	// replicas configured with different accuracies never add up: for
	// example "cubic:0.01:5" is the cubically interpolated mapping of
	// relative accuracy 0.01, five of its indexes per emitted bin.
	AttrSketch = "junction_sketch"
)

// BinZero is the AttrBin of the latencies of 0 ms.
const BinZero = "zero"

// Resolution of the emitted bins. Each emitted bin joins a run of the
// sketch's consecutive mapping indexes whose length, the bin width, is a
// power of two: the finest width within EmitAccuracy, doubled while the
// sketch has more than MaxEmittedBins bins. Widths nest (a bin of width 2w
// is two bins of width w), so the source adds replicas' bins of different
// widths at the widest of them: exactly the bins one sketch fed all their
// latencies would have at that width.
const (
	// EmitAccuracy bounds the finest relative accuracy of the emitted bins:
	// at the windows' default 1 %, bins of four indexes, about 4 %.
	EmitAccuracy = 0.04
	// MaxEmittedBins bounds the bins of one sketch: a replica's series
	// per entity and window. Service windows of 600 to 3000 log-normal
	// requests spanning a factor of 50 to 100 fit at width 4 or 8 (4 to
	// 8 %); a multimodal 5-minute window may take width 16. Halving it
	// halves the bins of wide windows at twice their error
	// (docs/benchmarks.md "Scale-out").
	MaxEmittedBins = 48
)

// binWidth is the finest width of emitted bins for a sketch of relative
// accuracy acc: the largest power of two whose bins stay within
// EmitAccuracy, at least 1.
func binWidth(acc float64) int {
	w := 1
	for acc > 0 && float64(2*w)*acc <= EmitAccuracy+1e-12 {
		w *= 2
	}
	return w
}

// sketchSpec is the AttrSketch value of a mapping and bin width.
func sketchSpec(acc float64, width int) string {
	return "cubic:" + strconv.FormatFloat(acc, 'g', -1, 64) + ":" + strconv.Itoa(width)
}

// floorDiv is i / n rounded down.
func floorDiv(i, n int64) int64 {
	q := i / n
	if i%n != 0 && (i < 0) != (n < 0) {
		q--
	}
	return q
}

// emittedBins folds the bins of s to the emitted resolution: the sketch's
// spec and the counts by emitted index, ascending.
func emittedBins(s *entity.LatencySketch) (spec string, idx []int64, counts []float64) {
	w := binWidth(s.RelativeAccuracy)
	for foldedLen(s, w) > MaxEmittedBins {
		w *= 2
	}
	idx, counts = foldBins(s, w)
	return sketchSpec(s.RelativeAccuracy, w), idx, counts
}

// foldedLen is the number of bins of s at width w.
func foldedLen(s *entity.LatencySketch, w int) int {
	n := 0
	for i, b := range s.Bins {
		if i == 0 || floorDiv(int64(b.Index), int64(w)) != floorDiv(int64(s.Bins[i-1].Index), int64(w)) {
			n++
		}
	}
	return n
}

// foldBins returns the bins of s at width w, ascending.
func foldBins(s *entity.LatencySketch, w int) (idx []int64, counts []float64) {
	n := foldedLen(s, w)
	idx, counts = make([]int64, 0, n), make([]float64, 0, n)
	for _, b := range s.Bins {
		j := floorDiv(int64(b.Index), int64(w))
		if n := len(idx); n > 0 && idx[n-1] == j {
			counts[n-1] += b.Count
			continue
		}
		idx = append(idx, j)
		counts = append(counts, b.Count)
	}
	return idx, counts
}

// binnedSketch is a latency sketch at an emitted resolution: the replicas'
// bins summed.
type binnedSketch struct {
	acc   string // the mapping's relative accuracy as in AttrSketch
	m     mapping.IndexMapping
	width int
	zero  float64
	bins  map[int64]float64
}

// parseSpec returns the empty sketch of an AttrSketch value.
func parseSpec(spec string) (*binnedSketch, error) {
	parts := strings.Split(spec, ":")
	if len(parts) != 3 || parts[0] != "cubic" {
		return nil, fmt.Errorf("%q is not cubic:<relative accuracy>:<bin width>", spec)
	}
	acc, err := strconv.ParseFloat(parts[1], 64)
	if err != nil {
		return nil, fmt.Errorf("%q: relative accuracy: %w", spec, err)
	}
	m, err := mapping.NewCubicallyInterpolatedMapping(acc)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", spec, err)
	}
	w, err := strconv.Atoi(parts[2])
	if err != nil || w < 1 || w&(w-1) != 0 {
		return nil, fmt.Errorf("%q: bin width must be a power of two", spec)
	}
	return &binnedSketch{acc: parts[1], m: m, width: w, bins: map[int64]float64{}}, nil
}

// add adds count to the bin of AttrBin value bin.
func (s *binnedSketch) add(bin string, count float64) error {
	if bin == BinZero {
		s.zero += count
		return nil
	}
	j, err := strconv.ParseInt(bin, 10, 64)
	if err != nil {
		return fmt.Errorf("bin %q: %w", bin, err)
	}
	s.bins[j] += count
	return nil
}

func (s *binnedSketch) count() float64 {
	n := s.zero
	for _, c := range s.bins {
		n += c
	}
	return n
}

// value is the latency an emitted bin stands for: the mapping's own value
// for a bin of one index, as a DDSketch answers; for a wider bin
// [lo, hi) the value 2·lo·hi/(lo+hi), off by at most (hi−lo)/(hi+lo)
// relative from any latency in the bin.
func (s *binnedSketch) value(j int64) float64 {
	if s.width == 1 {
		return s.m.Value(int(j))
	}
	lo := s.m.LowerBound(int(j * int64(s.width)))
	hi := s.m.LowerBound(int((j + 1) * int64(s.width)))
	return 2 * lo * hi / (lo + hi)
}

// quantiles sets out[i] to the value at quantile qs[i] (ascending), by
// DDSketch's rule: the bin holding rank q·(count−1). ok is false when the
// sketch is empty.
func (s *binnedSketch) quantiles(qs, out []float64) (ok bool) {
	total := s.count()
	if total <= 0 {
		return false
	}
	idx := make([]int64, 0, len(s.bins))
	for j, c := range s.bins {
		if c > 0 {
			idx = append(idx, j)
		}
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	for i, q := range qs {
		rank := float64(q * (total - 1))
		if rank < s.zero {
			out[i] = 0
			continue
		}
		n := s.zero
		out[i] = math.NaN()
		for _, j := range idx {
			n += s.bins[j]
			if n > rank {
				out[i] = s.value(j)
				break
			}
		}
		if math.IsNaN(out[i]) && len(idx) > 0 {
			out[i] = s.value(idx[len(idx)-1])
		}
	}
	return true
}

// quantileLevels are the quantiles of the latency features: p50, p90, p99.
var quantileLevels = []float64{0.5, 0.9, 0.99}

// quantilesFromBins sums, per entity or edge, window and sketch spec, the
// bins of each replica's latest tick, and sets the window's latency
// quantiles from the sum: latency.p50_ms, latency.p90_ms and
// latency.p99_ms of an entity, latency.p50_ms and latency.p99_ms of an
// edge, as the processor computes them.
func quantilesFromBins(bins []binSample, set func(valueKey, float64)) error {
	// A replica's series of one window differ only in AttrBin and, from
	// tick to tick, AttrSketch: the bins of its latest tick are those at
	// the group's latest time.
	latest := map[groupKey]int64{}
	for _, b := range bins {
		if t, ok := latest[b.group]; !ok || b.ms > t {
			latest[b.group] = b.ms
		}
	}
	type sketchKey struct {
		window valueKey
		spec   string
	}
	merged := map[sketchKey]*binnedSketch{}
	for _, b := range bins {
		if b.ms != latest[b.group] {
			continue
		}
		k := sketchKey{b.group.window, b.spec}
		m := merged[k]
		if m == nil {
			var err error
			if m, err = parseSpec(k.spec); err != nil {
				return fmt.Errorf("%s: label %s: %w", label(MetricLatencyBin), AttrSketch, err)
			}
			merged[k] = m
		}
		if err := m.add(b.bin, b.value); err != nil {
			return fmt.Errorf("%s: label %s: %w", label(MetricLatencyBin), AttrBin, err)
		}
	}
	// Bins of one mapping add up at the widest width of any replica.
	type mappingKey struct {
		window valueKey
		acc    string
	}
	widest := map[mappingKey]*binnedSketch{}
	for k, m := range merged {
		mk := mappingKey{k.window, m.acc}
		if w := widest[mk]; w == nil || m.width > w.width {
			widest[mk] = &binnedSketch{acc: m.acc, m: m.m, width: m.width, bins: map[int64]float64{}}
		}
	}
	for k, m := range merged {
		w := widest[mappingKey{k.window, m.acc}]
		w.zero += m.zero
		for j, c := range m.bins {
			w.bins[floorDiv(j, int64(w.width/m.width))] += c
		}
	}
	// Replicas configured with different accuracies (during a change of
	// window::sketch_accuracy) cannot add up: the mapping holding the most
	// latencies answers for the window.
	type best struct {
		acc string
		s   *binnedSketch
		n   float64
	}
	windows := map[valueKey]best{}
	for k, m := range widest {
		n := m.count()
		if b, ok := windows[k.window]; !ok || n > b.n || (n == b.n && k.acc < b.acc) {
			windows[k.window] = best{k.acc, m, n}
		}
	}
	var q [3]float64
	for k, b := range windows {
		if !b.s.quantiles(quantileLevels, q[:]) {
			continue
		}
		k.feature = "latency.p50_ms"
		set(k, q[0])
		if k.entity != "" {
			k.feature = "latency.p90_ms"
			set(k, q[1])
		}
		k.feature = "latency.p99_ms"
		set(k, q[2])
	}
	return nil
}

// binSample is the latest raw sample of one bin series.
type binSample struct {
	group     groupKey
	spec, bin string // AttrSketch, AttrBin
	value     float64
	ms        int64
}

// binSamples collects the latest samples of bin series, keeping their
// keys, with each distinct label value stored once.
type binSamples struct {
	s      []binSample
	intern map[string]string
}

// add adds the latest sample of the bin series of labels l.
func (b *binSamples) add(l model.Metric, v float64, ms int64) {
	if b.intern == nil {
		b.intern = map[string]string{}
	}
	in := func(s string) string {
		if v, ok := b.intern[s]; ok {
			return v
		}
		b.intern[s] = s
		return s
	}
	k := keyOf(l)
	k = valueKey{in(k.entity), in(k.source), in(k.target), in(k.edgeType), "", in(k.window)}
	b.s = append(b.s, binSample{group: groupKey{k, in(replicaOf(l))}, spec: in(get(l, AttrSketch)), bin: in(get(l, AttrBin)), value: v, ms: ms})
}

// groupKey identifies one replica's bins of one entity's or edge's window:
// a series but for its AttrBin and AttrSketch.
type groupKey struct {
	window  valueKey
	replica string
}

// binLabels are the labels of a bin series that Junction writes; the
// others (junction_replica, or whatever the remote write adds) tell the
// replicas apart.
var binLabels = map[model.LabelName]bool{
	model.MetricNameLabel: true, AttrWindow: true, AttrBin: true, AttrSketch: true,
	model.LabelName(lEntityID): true, model.LabelName(lEntityType): true, model.LabelName(lEntityName): true,
	model.LabelName(lEdgeSource): true, model.LabelName(lEdgeTarget): true, model.LabelName(lEdgeType): true,
}

// replicaOf returns the labels of a bin series that tell the replicas
// apart, in a canonical form.
func replicaOf(l model.Metric) string {
	var keys []model.LabelName
	for k := range l {
		if !binLabels[k] {
			keys = append(keys, k)
		}
	}
	if len(keys) == 1 {
		return string(keys[0]) + "\x00" + string(l[keys[0]])
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(string(k))
		b.WriteByte(0)
		b.WriteString(string(l[k]))
		b.WriteByte(0)
	}
	return b.String()
}

// Quantiles returns the latency quantiles p50, p90 and p99 that a merged
// snapshot reads from replicas' sketches of one window: their bins as
// emitted, added at the widest width any of them was emitted at. ok is
// false when they hold no latency.
func Quantiles(sketches ...*entity.LatencySketch) (q [3]float64, ok bool) {
	var bins binSamples
	for i, s := range sketches {
		if s == nil {
			continue
		}
		spec, idx, counts := emittedBins(s)
		put := func(bin string, n float64) {
			bins.add(model.Metric{model.LabelName(lEntityID): "e", AttrWindow: WindowShort,
				AttrSketch: model.LabelValue(spec), AttrBin: model.LabelValue(bin), "replica": model.LabelValue(strconv.Itoa(i))}, n, 0)
		}
		if s.Zero > 0 {
			put(BinZero, s.Zero)
		}
		for k, j := range idx {
			put(strconv.FormatInt(j, 10), counts[k])
		}
	}
	err := quantilesFromBins(bins.s, func(k valueKey, v float64) {
		ok = true
		switch k.feature {
		case "latency.p50_ms":
			q[0] = v
		case "latency.p90_ms":
			q[1] = v
		case "latency.p99_ms":
			q[2] = v
		}
	})
	return q, ok && err == nil
}
