package mergedgraph

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/prometheus/common/model"

	"github.com/junction-sre/junction/entity"
)

const testAccuracy = 0.01

// newSketch is a sketch as the processor's windows keep them.
func newSketch(t testing.TB) *ddsketch.DDSketch {
	t.Helper()
	m, err := mapping.NewCubicallyInterpolatedMapping(testAccuracy)
	if err != nil {
		t.Fatal(err)
	}
	return ddsketch.NewDDSketch(m, store.NewCollapsingLowestDenseStore(1024), store.NewCollapsingLowestDenseStore(1024))
}

// latencySketch copies a sketch's bins as the processor's graph does.
func latencySketch(s *ddsketch.DDSketch) *entity.LatencySketch {
	out := &entity.LatencySketch{RelativeAccuracy: testAccuracy, Zero: s.GetZeroCount()}
	s.GetPositiveValueStore().ForEach(func(i int, c float64) bool {
		out.Bins = append(out.Bins, entity.LatencyBin{Index: int32(i), Count: c})
		return false
	})
	return out
}

// widthOf is the width s is emitted at.
func widthOf(t *testing.T, s *entity.LatencySketch) int {
	t.Helper()
	spec, _, _ := emittedBins(s)
	b, err := parseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	return b.width
}

// atWidth returns the quantiles of s's bins at width w.
func atWidth(t *testing.T, s *entity.LatencySketch, w int) [3]float64 {
	t.Helper()
	b, err := parseSpec(sketchSpec(s.RelativeAccuracy, w))
	if err != nil {
		t.Fatal(err)
	}
	b.zero = s.Zero
	idx, counts := foldBins(s, w)
	for i, j := range idx {
		b.bins[j] = counts[i]
	}
	var q [3]float64
	if !b.quantiles(quantileLevels, q[:]) {
		t.Fatal("no quantiles from nonempty bins")
	}
	return q
}

// TestMergedBinsAreOneSketch splits requests between two replicas and
// checks that the quantiles of their summed bins are those of one sketch
// fed every request, at the width the bins were added at, and within that
// width's accuracy of the exact quantiles, where the request-weighted mean
// of the replicas' own quantiles is far off.
func TestMergedBinsAreOneSketch(t *testing.T) {
	tests := []struct {
		name string
		// gen returns the latency of request i and the replica it reaches.
		gen func(r *rand.Rand, i int) (ms float64, replica int)
		n   int
	}{
		{"fast replica and slow replica", func(r *rand.Rand, i int) (float64, int) {
			// A 10 % share of slow requests lands on one replica (a slow
			// client's traces): the mean of the replicas' p50 is ~10× the
			// true p50.
			if i%10 == 0 {
				return 800 * math.Exp(r.NormFloat64()*0.2), 1
			}
			return 12 * math.Exp(r.NormFloat64()*0.3), 0
		}, 3000},
		{"even split of one population", func(r *rand.Rand, i int) (float64, int) {
			return 40 * math.Exp(r.NormFloat64()*0.8), r.IntN(2)
		}, 5000},
		{"narrow replica and wide replica", func(r *rand.Rand, i int) (float64, int) {
			// Bins of different widths: added at the wider.
			if i%2 == 0 {
				return 30 * math.Exp(r.NormFloat64()*0.05), 0
			}
			return 30 * math.Exp(r.NormFloat64()*1.5), 1
		}, 4000},
		{"zero latencies", func(r *rand.Rand, i int) (float64, int) {
			if i%4 == 0 {
				return 0, i % 3 % 2
			}
			return 3 * math.Exp(r.NormFloat64()), i % 2
		}, 800},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			all, parts := newSketch(t), [2]*ddsketch.DDSketch{newSketch(t), newSketch(t)}
			var values []float64
			var n [2]float64
			for i := 0; i < tt.n; i++ {
				ms, rep := tt.gen(r, i)
				values = append(values, ms)
				n[rep]++
				if err := all.Add(ms); err != nil {
					t.Fatal(err)
				}
				if err := parts[rep].Add(ms); err != nil {
					t.Fatal(err)
				}
			}
			a, b := latencySketch(parts[0]), latencySketch(parts[1])
			got, ok := Quantiles(a, b)
			if !ok {
				t.Fatal("no quantiles")
			}
			w := max(widthOf(t, a), widthOf(t, b))
			if tt.name == "narrow replica and wide replica" && widthOf(t, a) == widthOf(t, b) {
				t.Fatalf("both replicas emit width %d: the case does not add different widths", w)
			}
			if want := atWidth(t, latencySketch(all), w); got != want {
				t.Fatalf("merged bins give %v, one sketch of all requests at width %d %v", got, w, want)
			}
			// Bins of w indexes of the 1 % mapping: within w·1 %.
			acc := math.Tanh(float64(w) * math.Atanh(testAccuracy))
			sort.Float64s(values)
			for i, q := range quantileLevels {
				exact := values[int(q*float64(len(values)-1))]
				if exact == 0 {
					if got[i] != 0 {
						t.Errorf("p%v = %v, want 0", q*100, got[i])
					}
					continue
				}
				if rel := math.Abs(got[i]-exact) / exact; rel > acc+1e-9 {
					t.Errorf("p%v = %.3f, exact %.3f: %.2f%% off, beyond %.2f%% (width %d)", q*100, got[i], exact, rel*100, acc*100, w)
				}
			}
			if tt.name != "fast replica and slow replica" {
				return
			}
			// What the weighted mean of the replicas' quantiles gives.
			for _, q := range quantileLevels {
				a, _ := parts[0].GetValueAtQuantile(q)
				b, _ := parts[1].GetValueAtQuantile(q)
				mean := (a*n[0] + b*n[1]) / (n[0] + n[1])
				exact := values[int(q*float64(len(values)-1))]
				if math.Abs(mean-exact)/exact < 3*acc {
					t.Errorf("p%v: the weighted mean %.3f is close to the exact %.3f: the case does not tell the merges apart", q*100, mean, exact)
				}
			}
		})
	}
}

// TestEmittedBinWidth pins the resolution of the emitted bins.
func TestEmittedBinWidth(t *testing.T) {
	for _, tt := range []struct {
		acc  float64
		want int
	}{{0.01, 4}, {0.02, 2}, {0.005, 8}, {0.03, 1}, {0.05, 1}, {0.1, 1}} {
		if got := binWidth(tt.acc); got != tt.want {
			t.Errorf("binWidth(%v) = %d, want %d", tt.acc, got, tt.want)
		}
	}
	s := &entity.LatencySketch{RelativeAccuracy: 0.01, Bins: []entity.LatencyBin{{Index: -5, Count: 1}, {Index: -4, Count: 2}, {Index: 3, Count: 1}, {Index: 4, Count: 1}, {Index: 7, Count: 2}}}
	spec, idx, counts := emittedBins(s)
	if spec != "cubic:0.01:4" {
		t.Errorf("spec %q", spec)
	}
	wantIdx, wantCounts := []int64{-2, -1, 0, 1}, []float64{1, 2, 1, 3}
	if !equal(idx, wantIdx) || !equal(counts, wantCounts) {
		t.Errorf("bins %v %v, want %v %v", idx, counts, wantIdx, wantCounts)
	}
	// A sketch over 200 consecutive indexes: 50 bins of width 4, 25 of 8.
	wide := &entity.LatencySketch{RelativeAccuracy: 0.01}
	for i := int32(0); i < 200; i++ {
		wide.Bins = append(wide.Bins, entity.LatencyBin{Index: i, Count: 1})
	}
	if spec, idx, _ := emittedBins(wide); spec != "cubic:0.01:8" || len(idx) != 25 {
		t.Errorf("wide sketch: %q, %d bins; want cubic:0.01:8, 25 bins", spec, len(idx))
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBadBinLabels: labels a replica cannot have written are errors that
// name the label.
func TestBadBinLabels(t *testing.T) {
	for _, spec := range []string{"", "log:0.01:1", "cubic:x:1", "cubic:1.5:1", "cubic:0.01:0", "cubic:0.01:3", "cubic:0.01"} {
		if _, err := parseSpec(spec); err == nil {
			t.Errorf("parseSpec(%q): no error", spec)
		}
	}
	var bins binSamples
	bins.add(model.Metric{AttrSketch: "cubic:0.01:4", AttrBin: "x", AttrWindow: WindowShort, "junction_entity_id": "service:a"}, 1, 0)
	err := quantilesFromBins(bins.s, func(valueKey, float64) {})
	if err == nil || !containsAll(err.Error(), AttrBin, `"x"`) {
		t.Errorf("bad bin: %v", err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
