package window

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Unix(1767225600, 0)

func testConfig() *Config {
	return &Config{Width: 10 * time.Second, DetailBuckets: 30, FineBuckets: 180, CoarseWidth: 5 * time.Minute, CoarseBuckets: 72, SketchAccuracy: 0.01, SketchBins: 1024}
}

func TestQuantilesMergeBuckets(t *testing.T) {
	cfg := testConfig()
	w := New(cfg, t0)
	for i := 1; i <= 100; i++ {
		// 100 requests over 50 s: 1..100 ms.
		w.Observe(t0.Add(time.Duration(i)*500*time.Millisecond), float64(i), i%10 == 0)
	}
	at := t0.Add(55 * time.Second)
	out := make([]float64, 3)
	require.True(t, w.Quantiles(cfg.NewScratch(), at, time.Minute, []float64{0.5, 0.9, 0.99}, out))
	assert.InDelta(t, 50, out[0], 1.5)
	assert.InDelta(t, 90, out[1], 1.5)
	assert.InDelta(t, 99, out[2], 1.5)
	assert.Equal(t, 100.0, w.Sum(at, time.Minute, Requests))
	assert.Equal(t, 10.0, w.Sum(at, time.Minute, Errors))
	assert.InDelta(t, 100.0/55, w.Rate(at, time.Minute, Requests), 1e-9, "rate over the time the window existed")

	// The 10 s window only holds the last bucket: 50 s..55 s holds request 100 (at 50 s).
	require.True(t, w.Quantiles(cfg.NewScratch(), at, 10*time.Second, []float64{0.5}, out[:1]))
	assert.InDelta(t, 100, out[0], 1.5)
}

func TestOldBucketsDropOut(t *testing.T) {
	cfg := testConfig()
	w := New(cfg, t0)
	w.Observe(t0, 10, true)
	at := t0.Add(2 * time.Minute)
	assert.Zero(t, w.Sum(at, time.Minute, Requests))
	assert.Equal(t, 1.0, w.Sum(at, 5*time.Minute, Requests))
	assert.False(t, w.Quantiles(cfg.NewScratch(), at, time.Minute, []float64{0.5}, make([]float64, 1)))
	// Burn-rate windows: the fine ring covers 30 min, the coarse ring 6 h.
	assert.Equal(t, 1.0, w.Sum(t0.Add(29*time.Minute), 30*time.Minute, Errors))
	assert.Equal(t, 1.0, w.Sum(t0.Add(5*time.Hour), 6*time.Hour, Errors))
	assert.Zero(t, w.Sum(t0.Add(7*time.Hour), 6*time.Hour, Errors))
	// A bucket reused by a later time starts empty.
	w.Observe(t0.Add(5*time.Minute), 20, false)
	assert.Equal(t, 1.0, w.Sum(t0.Add(5*time.Minute), 10*time.Second, Requests))
	assert.Zero(t, w.Sum(t0.Add(5*time.Minute), 10*time.Second, Errors))
}

// TestRateOfASteadyStream: a steady 4 requests per second reads as 4/s
// whatever the tick's offset into its bucket; the bucket holding the tick
// is only partly filled and counts only for the time it covers.
func TestRateOfASteadyStream(t *testing.T) {
	for _, offset := range []time.Duration{0, 2500 * time.Millisecond, 5 * time.Second, 9750 * time.Millisecond} {
		cfg := testConfig()
		w := New(cfg, t0)
		at := t0.Add(3*time.Minute + offset)
		for ts := t0; ts.Before(at); ts = ts.Add(250 * time.Millisecond) {
			w.Observe(ts, 10, false)
		}
		assert.InDelta(t, 4.0, w.Rate(at, time.Minute, Requests), 0.07, "1m rate at offset %v", offset)
		assert.InDelta(t, 4.0, w.Rate(at, 5*time.Minute, Requests), 0.07, "5m rate at offset %v (window 3m old)", offset)
	}
}

// TestCursorMatchesUncached writes the same sequence (repeated times, as a
// batch writes them, and times going back past a ring's reach) into a
// window and into one whose bucket cursor is dropped before every write,
// and reads the same sums and quantiles from both.
func TestCursorMatchesUncached(t *testing.T) {
	cfg := testConfig()
	cached, uncached := New(cfg, t0), New(cfg, t0)
	rng := rand.New(rand.NewPCG(1, 2))
	at := t0
	for i := 0; i < 20000; i++ {
		switch r := rng.IntN(100); {
		case r < 60: // the same time: the rest of a batch
		case r < 95:
			at = at.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		case r < 98: // a late batch, possibly older than the rings reach
			at = at.Add(-time.Duration(rng.IntN(7200)) * time.Second)
		default:
			at = at.Add(time.Duration(rng.IntN(7200)) * time.Second)
		}
		ms, failed := float64(rng.IntN(500)), rng.IntN(10) == 0
		acc := Acc(rng.IntN(int(NumAcc)))
		for _, w := range []*Window{cached, uncached} {
			if w == uncached {
				w.cur = cursor{}
			}
			if i%3 == 0 {
				w.Add(at, acc, 1)
			} else {
				w.Observe(at, ms, failed)
			}
		}
		if i%50 != 0 {
			continue
		}
		for _, d := range []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute, 6 * time.Hour} {
			for a := Acc(0); a < NumAcc; a++ {
				require.Equal(t, uncached.Sum(at, d, a), cached.Sum(at, d, a), "write %d, window %v, acc %d", i, d, a)
				require.Equal(t, sumByModulo(cached, at, d, a), cached.Sum(at, d, a), "write %d, window %v, acc %d", i, d, a)
			}
			qs := []float64{0.5, 0.99}
			want, got := make([]float64, 2), make([]float64, 2)
			wok := uncached.Quantiles(cfg.NewScratch(), at, d, qs, want)
			gok := cached.Quantiles(cfg.NewScratch(), at, d, qs, got)
			require.Equal(t, wok, gok)
			require.Equal(t, want, got, "write %d, window %v", i, d)
		}
	}
}

// TestObserveMatchesSketchAdd checks that Observe's direct store update
// gives the sketch DDSketch.Add would: zero, tiny, ordinary, huge and
// unindexable latencies.
func TestObserveMatchesSketchAdd(t *testing.T) {
	cfg := testConfig()
	w := New(cfg, t0)
	want := cfg.NewScratch()
	values := []float64{0, -3, 1e-300, 0.4, 1, 7.5, 20, 20, 250, 1e6, 1e300, math.Inf(1), math.NaN()}
	for i := 0; i < 50; i++ {
		values = append(values, float64(i*i)/7)
	}
	for _, v := range values {
		w.Observe(t0, v, false)
		if v < 0 {
			v = 0
		}
		_ = want.Add(v)
	}
	qs := []float64{0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1}
	got := make([]float64, len(qs))
	require.True(t, w.Quantiles(cfg.NewScratch(), t0, 10*time.Second, qs, got))
	for i, q := range qs {
		v, err := want.GetValueAtQuantile(q)
		require.NoError(t, err)
		assert.Equal(t, v, got[i], "q%v", q)
	}
	assert.Equal(t, want.GetCount(), w.detail[t0.UnixNano()/int64(cfg.Width)%int64(len(w.detail))].sketch.GetCount())
}

// sumByModulo is Sum as first written, finding each bucket with a modulo:
// the reference for the readers that step through the rings.
func sumByModulo(w *Window, at time.Time, d time.Duration, a Acc) float64 {
	n := at.UnixNano()
	width := int64(w.cfg.Width)
	last := n / width
	first := last - (int64(d)+width-1)/width + 1
	var s float64
	if w.detail != nil && last-first < int64(len(w.detail)) {
		for id := first; id <= last; id++ {
			if b := &w.detail[id%int64(len(w.detail))]; b.id == id {
				s += b.acc[a]
			}
		}
		return s
	}
	if (a != Requests && a != Errors) || w.fine == nil {
		return 0
	}
	ring := w.fine
	if int64(d) > width*int64(len(ring)) {
		ring, width = w.coarse, int64(w.cfg.CoarseWidth)
	}
	last = n / width
	first = last - (int64(d)+width-1)/width + 1
	if last-first >= int64(len(ring)) {
		first = last - int64(len(ring)) + 1
	}
	for id := first; id <= last; id++ {
		if p := &ring[id%int64(len(ring))]; p.id == id {
			if a == Requests {
				s += p.req
			} else {
				s += p.err
			}
		}
	}
	return s
}

// BenchmarkSum reads the sums a tick reads of one window filled for 6
// hours: the short windows from the detail ring, the burn-rate windows
// from the fine and coarse rings.
func BenchmarkSum(b *testing.B) {
	cfg := testConfig()
	w := New(cfg, t0)
	at := t0
	for i := 0; i < 6*3600; i++ {
		at = t0.Add(time.Duration(i) * time.Second)
		w.Observe(at, float64(i%100), i%50 == 0)
	}
	ds := []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, time.Hour, 6 * time.Hour}
	b.ReportAllocs()
	var s float64
	for b.Loop() {
		for _, d := range ds {
			s += w.Sum(at, d, Requests) + w.Sum(at, d, Errors)
		}
	}
	if s == 0 {
		b.Fatal("no requests summed")
	}
}
