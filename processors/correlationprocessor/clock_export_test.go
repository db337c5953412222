package correlationprocessor

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
)

// slowMetrics is a next consumer that blocks every call until the test
// releases it: it first sends the call's tick time (from clockBase) on
// entered, then waits for release.
type slowMetrics struct {
	entered chan time.Duration
	release chan struct{}
	sink    consumertest.MetricsSink
}

func newSlowMetrics() *slowMetrics {
	return &slowMetrics{entered: make(chan time.Duration), release: make(chan struct{})}
}

func (s *slowMetrics) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *slowMetrics) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	var one consumertest.MetricsSink
	_ = one.ConsumeMetrics(ctx, md)
	s.entered <- tickTimes(&one)[0]
	<-s.release
	return s.sink.ConsumeMetrics(ctx, md)
}

func newSlowClocked(t *testing.T, next consumer.Metrics) *Embedded {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Clock.Source = ClockTelemetry
	e, err := NewEmbedded(context.Background(), EmbeddedSettings{Config: cfg, Now: func() time.Time { return clockBase }, Metrics: next})
	require.NoError(t, err)
	return e
}

// TestTelemetryClockSlowExportDoesNotBlockIntake: while the derived
// metrics of a tick sit in a slow next consumer, other goroutines still
// consume spans, metrics and logs into the graph. (Before the tick's
// emission moved out of the clock's lock, the second batch waited for the
// consumer: this test then fails after its timeout.)
func TestTelemetryClockSlowExportDoesNotBlockIntake(t *testing.T) {
	next := newSlowMetrics()
	e := newSlowClocked(t, next)
	ctx := context.Background()
	require.NoError(t, e.ConsumeTraces(ctx, spanEndingAt(clockBase.Add(10*time.Second))))

	// This batch passes the 15 s boundary: its goroutine emits the tick
	// and blocks in the consumer.
	exported := make(chan error, 1)
	go func() { exported <- e.ConsumeTraces(ctx, spanEndingAt(clockBase.Add(20*time.Second))) }()
	select {
	case at := <-next.entered:
		require.Equal(t, 15*time.Second, at)
	case <-time.After(30 * time.Second):
		t.Fatal("the 15 s tick never reached the next consumer")
	}

	// Another goroutine consumes a batch of each signal meanwhile.
	intake := make(chan error, 1)
	go func() {
		late := spanEndingAt(clockBase.Add(18 * time.Second))
		late.ResourceSpans().At(0).Resource().Attributes().PutStr("service.name", "payments")
		err := e.ConsumeTraces(ctx, late)
		if err == nil {
			md := pmetric.NewMetrics()
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", "payments")
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("queue.depth")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(pcommon.NewTimestampFromTime(clockBase.Add(19 * time.Second)))
			dp.SetDoubleValue(3)
			err = e.ConsumeMetrics(ctx, md)
		}
		if err == nil {
			err = e.ConsumeLogs(ctx, plogWithRecord(clockBase.Add(19*time.Second), time.Time{}))
		}
		intake <- err
	}()
	select {
	case err := <-intake:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		close(next.release) // let the blocked goroutines finish
		t.Fatal("consuming a batch waited for a slow export of derived metrics")
	}
	snap, err := e.Snapshot(ctx, e.p.now())
	require.NoError(t, err)
	_, ok := snap.Entity(entity.ID(entity.Service, "", "payments"))
	require.True(t, ok, "the batch consumed during the export reached the graph: %v", snap.Entities)

	close(next.release)
	require.NoError(t, <-exported)
	require.Equal(t, secs(15), tickTimes(&next.sink))
	require.NoError(t, e.Shutdown(ctx))
}

// TestTelemetryClockLaterTickWaitsForEarlierEmission: a batch that passes
// the next boundary while the previous tick is still being emitted
// prepares its tick at once (the clock moves on) but emits it only after
// the earlier emission finished, so the next consumer sees the ticks in
// order.
func TestTelemetryClockLaterTickWaitsForEarlierEmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		next := newSlowMetrics()
		e := newSlowClocked(t, next)
		ctx := context.Background()
		require.NoError(t, e.ConsumeTraces(ctx, spanEndingAt(clockBase.Add(10*time.Second))))

		first := make(chan error, 1)
		go func() { first <- e.ConsumeTraces(ctx, spanEndingAt(clockBase.Add(20*time.Second))) }()
		require.Equal(t, 15*time.Second, <-next.entered)

		second := make(chan error, 1)
		go func() { second <- e.ConsumeTraces(ctx, spanEndingAt(clockBase.Add(35*time.Second))) }()
		synctest.Wait()
		require.Equal(t, clockBase.Add(35*time.Second), e.p.now(), "the second batch moved the clock past 30 s")
		select {
		case at := <-next.entered:
			t.Fatalf("the %s tick was emitted while the 15 s tick was still in the consumer", at)
		case err := <-second:
			t.Fatalf("the second batch returned (%v) before its tick was emitted", err)
		default:
		}

		next.release <- struct{}{}
		require.NoError(t, <-first)
		require.Equal(t, 30*time.Second, <-next.entered)
		next.release <- struct{}{}
		require.NoError(t, <-second)
		require.Equal(t, secs(15, 30), tickTimes(&next.sink))
		require.NoError(t, e.Shutdown(ctx))
	})
}
