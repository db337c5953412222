package xchain

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestBoundMillionMessages feeds 1M messages that never complete, one per
// fake millisecond: memory stays within max_messages and max_closed,
// every eviction is counted, and the oldest-pending figure is the oldest
// message still held. Then the survivors pass max_age and are reported.
func TestBoundMillionMessages(t *testing.T) {
	const (
		total    = 1_000_000
		maxMsgs  = 10_000
		maxClose = 20_000
	)
	reader := sdkmetric.NewManualReader()
	clock := newClock()
	cfg := DefaultConfig()
	cfg.MaxMessages = maxMsgs
	cfg.MaxClosed = maxClose
	tr := mustNew(t, cfg, Settings{Now: clock.Now, MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})

	e := ev("", StageSent, time.Time{})
	for i := range total {
		clock.Set(at(time.Duration(i) * time.Millisecond))
		e.MessageID = strconv.Itoa(i)
		e.Time = clock.Now()
		require.NoError(t, tr.Observe(ctxb(), e))
		if i%100_000 == 0 {
			c := tr.Counts()
			require.LessOrEqual(t, c.Pending, maxMsgs)
			require.LessOrEqual(t, c.Closed, maxClose)
		}
	}
	c := tr.Counts()
	assert.Equal(t, maxMsgs, c.Pending)
	assert.Equal(t, maxClose, c.Closed)
	assert.Equal(t, uint64(total-maxMsgs), c.Evicted)
	assert.Equal(t, uint64(0), c.Expired)
	assert.Equal(t, total-maxMsgs, int(counterValue(t, reader, "otelcol_processor_correlation_xchain_messages_evicted")))
	assert.Equal(t, maxMsgs, int(counterValue(t, reader, "otelcol_processor_correlation_xchain_messages_pending")))

	now := clock.Now()
	v := tr.Features(now)[routeID]
	// The oldest message held is number total-maxMsgs, sent at that many ms.
	oldest := at(time.Duration(total-maxMsgs) * time.Millisecond)
	assert.Equal(t, now.Sub(oldest).Seconds(), v.Features["messages.oldest_pending_age_s"])
	assert.Equal(t, float64(maxMsgs), v.Features["messages.pending"])
	require.Len(t, v.Stuck, cfg.MaxEvidence, "the latest evicted messages are evidence")
	assert.Equal(t, "evicted", v.Stuck[0].Status)
	assert.Equal(t, strconv.Itoa(total-maxMsgs-cfg.MaxEvidence), v.Stuck[0].MessageID)

	// A day later every survivor has passed max_age: reported as expired
	// (timed out), not silently dropped.
	clock.Set(now.Add(cfg.MaxAge + time.Millisecond))
	v = tr.Features(clock.Now())[routeID]
	c = tr.Counts()
	assert.Equal(t, 0, c.Pending)
	assert.Equal(t, uint64(maxMsgs), c.Expired)
	assert.Equal(t, uint64(total-maxMsgs), c.Evicted)
	require.Len(t, v.Stuck, cfg.MaxEvidence)
	for _, s := range v.Stuck {
		assert.Equal(t, "expired", s.Status)
	}
	assert.Equal(t, 1.0, v.Features5m["messages.timeout_ratio"])
	assert.Equal(t, 0.0, v.Features["messages.oldest_pending_age_s"])
}

// TestBoundWithFileStorage checks that storage holds no more than the
// bounds either: evicted and forgotten messages are deleted.
func TestBoundWithFileStorage(t *testing.T) {
	fs := openFileStorage(t, t.TempDir())
	clock := newClock()
	cfg := DefaultConfig()
	cfg.MaxMessages = 500
	cfg.MaxClosed = 300
	tr := mustNew(t, cfg, Settings{Now: clock.Now, Storage: fs.client})
	batch := make([]Event, 0, 100)
	for i := range 20_000 {
		clock.Set(at(time.Duration(i) * time.Second))
		batch = append(batch, ev(strconv.Itoa(i), StageSent, clock.Now()))
		if len(batch) == cap(batch) {
			require.NoError(t, tr.ObserveBatch(ctxb(), batch))
			batch = batch[:0]
		}
	}
	c := tr.Counts()
	assert.Equal(t, uint64(20_000-500), c.Evicted)
	assert.Equal(t, 500+300, fs.keys(t))
	require.NoError(t, tr.Shutdown(ctxb()))
	require.NoError(t, fs.ext.Shutdown(ctxb()))
}

func counterValue(t *testing.T, r *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(ctxb(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				var v int64
				for _, dp := range s.DataPoints {
					v += dp.Value
				}
				return v
			}
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
