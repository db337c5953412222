package querysource

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/DataDog/sketches-go/ddsketch/mapping"

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

// EmitAccuracy bounds the relative accuracy at which latency sketches are
// emitted: each emitted bin joins as many consecutive bins of the sketch
// as fit in it (at the default 1 %, five of them). Quantiles read from the
// merged bins are within EmitAccuracy of the true quantiles of all the
// replicas' latencies, and equal to those of one sketch fed them all at
// that resolution. The sketch's own 1 % would take five times as many
// series per entity and window; about 43 bins per sketch at 5 % already
// triple a replica's mergeable series (docs/benchmarks.md "Scale-out").
const EmitAccuracy = 0.05

// binWidth is how many consecutive mapping indexes one emitted bin joins
// for a sketch of relative accuracy acc.
func binWidth(acc float64) int {
	if acc <= 0 || acc >= EmitAccuracy {
		return 1
	}
	return int(math.Floor(EmitAccuracy/acc + 1e-9))
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
	for _, b := range s.Bins {
		j := floorDiv(int64(b.Index), int64(w))
		if n := len(idx); n > 0 && idx[n-1] == j {
			counts[n-1] += b.Count
			continue
		}
		idx = append(idx, j)
		counts = append(counts, b.Count)
	}
	return sketchSpec(s.RelativeAccuracy, w), idx, counts
}

// binnedSketch is a latency sketch at an emitted resolution: the replicas'
// bins summed.
type binnedSketch struct {
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
	if err != nil || w < 1 {
		return nil, fmt.Errorf("%q: bin width must be a positive integer", spec)
	}
	return &binnedSketch{m: m, width: w, bins: map[int64]float64{}}, nil
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
func quantilesFromBins(bins []sample, set func(valueKey, float64)) error {
	// A replica's series of one window differ only in AttrBin: the bins of
	// its latest tick are those at the group's latest time.
	groups := make([]string, len(bins))
	latest := map[string]int64{}
	for i, b := range bins {
		g := groupKey(b.labels)
		groups[i] = g
		if t, ok := latest[g]; !ok || b.ms > t {
			latest[g] = b.ms
		}
	}
	type sketchKey struct {
		window valueKey
		spec   string
	}
	merged := map[sketchKey]*binnedSketch{}
	for i, b := range bins {
		if b.ms != latest[groups[i]] {
			continue
		}
		k := sketchKey{keyOf(b.labels), b.labels[AttrSketch]}
		m := merged[k]
		if m == nil {
			var err error
			if m, err = parseSpec(k.spec); err != nil {
				return fmt.Errorf("%s: label %s: %w", label(MetricLatencyBin), AttrSketch, err)
			}
			merged[k] = m
		}
		if err := m.add(b.labels[AttrBin], b.value); err != nil {
			return fmt.Errorf("%s: label %s: %w", label(MetricLatencyBin), AttrBin, err)
		}
	}
	// Replicas configured with different accuracies (during a change of
	// window::sketch_accuracy) cannot add up: the spec holding the most
	// latencies answers for the window.
	type best struct {
		spec string
		s    *binnedSketch
		n    float64
	}
	windows := map[valueKey]best{}
	for k, m := range merged {
		n := m.count()
		if b, ok := windows[k.window]; !ok || n > b.n || (n == b.n && k.spec < b.spec) {
			windows[k.window] = best{k.spec, m, n}
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

// groupKey identifies a series but for its AttrBin: one replica's bins of
// one entity's or edge's window.
func groupKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		if k != AttrBin && k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	return b.String()
}
