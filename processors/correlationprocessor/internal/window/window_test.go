package window

import (
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
