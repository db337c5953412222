package xchain

import (
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/junction-sre/junction/entity"
)

// TestFeatureNamesAreTheSchema drives every input and checks that the
// features produced are exactly entity.Schema[entity.Relayer], in both
// windows, and the baselines are the schema's baseline features.
func TestFeatureNamesAreTheSchema(t *testing.T) {
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now})
	route := Scope{Relayer: "hermes", SourceChain: "osmosis-1", DestinationChain: "cosmoshub-4"}
	for i := range 40 {
		when := time.Duration(i) * 15 * time.Second
		clock.Set(at(when))
		id := strconv.Itoa(i)
		require.NoError(t, tr.Observe(ctxb(), ev(id, StageSent, at(when))))
		require.NoError(t, tr.Observe(ctxb(), ev(id, StageRelayed, at(when))))
		done := ev(id, StageExecuted, at(when))
		if i%5 == 0 {
			done.Stage = StageFailed
		}
		done.GasPrice, done.FeeAmount = 0.025, 3000
		require.NoError(t, tr.Observe(ctxb(), done))
		require.NoError(t, tr.Observe(ctxb(), ev("stuck"+id, StageSent, at(when))))
		tr.ObserveScopeMetric(route, MetricBacklogSize, float64(i), at(when))
		tr.ObserveScopeMetric(route, MetricBacklogOldestTimestamp, float64(t0.Unix()), at(when))
		tr.ObserveScopeMetric(route, MetricTxLatencyConfirmed, 1200, at(when))
		tr.ObserveScopeMetric(Scope{Relayer: "hermes"}, MetricBroadcastErrors, float64(i), at(when))
		tr.ObserveScopeMetric(Scope{Relayer: "hermes", SourceChain: "cosmoshub-4"}, MetricWalletBalance, float64(1000-i), at(when))
		tr.ObserveScopeMetric(Scope{SourceChain: "osmosis-1"}, MetricChainLatestHeight, float64(100+i*3), at(when))
		tr.ObserveScopeMetric(Scope{SourceChain: "osmosis-1"}, MetricChainFinalizedHeight, float64(90+i*3), at(when))
	}
	var want, wantBaseline []string
	for _, f := range entity.Schema[entity.Relayer] {
		want = append(want, f.Name)
		if f.Baseline {
			wantBaseline = append(wantBaseline, f.Name)
		}
	}
	sort.Strings(want)
	sort.Strings(wantBaseline)
	v := tr.Features(clock.Now())[routeID]
	assert.Equal(t, want, keys(v.Features))
	assert.Equal(t, want, keys(v.Features5m))
	assert.Equal(t, wantBaseline, keys(v.Baseline))
	assert.InDelta(t, 0.2, v.Features5m["messages.failure_ratio"], 0.05)
}

func keys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestRoutesMergeRelayers(t *testing.T) {
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now})
	for i, relayer := range []string{"hermes-a", "hermes-b"} {
		e := ev("m"+relayer, StageSent, at(time.Duration(i)*time.Minute))
		e.Relayer = relayer
		require.NoError(t, tr.Observe(ctxb(), e))
	}
	clock.Set(at(time.Hour))
	r := tr.Routes(clock.Now())["osmosis-1->cosmoshub-4"]
	assert.Equal(t, []string{"relayer:hermes-a/osmosis-1/cosmoshub-4", "relayer:hermes-b/osmosis-1/cosmoshub-4"}, r.Relayers)
	assert.Equal(t, 2.0, r.Features["messages.pending"])
	assert.Equal(t, secondsOf(time.Hour), r.Features["messages.oldest_pending_age_s"])
}

func TestRelayerTableBound(t *testing.T) {
	clock := newClock()
	cfg := DefaultConfig()
	cfg.MaxRelayers = 2
	tr := mustNew(t, cfg, Settings{Now: clock.Now})
	for i := range 5 {
		e := ev("m"+strconv.Itoa(i), StageSent, clock.Now())
		e.Relayer = "r" + strconv.Itoa(i)
		require.NoError(t, tr.Observe(ctxb(), e))
	}
	c := tr.Counts()
	assert.Equal(t, 2, c.Relayers)
	assert.Equal(t, uint64(3), c.EventsDropped)
	assert.Equal(t, 2, c.Pending)
}

// TestConcurrentUse runs the processor's three callers at once (run with
// -race).
func TestConcurrentUse(t *testing.T) {
	tr := mustNew(t, DefaultConfig(), Settings{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				id := strconv.Itoa(g) + "/" + strconv.Itoa(i)
				_ = tr.Observe(ctxb(), Event{MessageID: id, Stage: StageSent, Relayer: "hermes", SourceChain: "a", DestinationChain: "b"})
				tr.ObserveMetric("relayer:hermes/a/b", MetricBacklogSize, float64(i), time.Now())
				if i%50 == 0 {
					_ = tr.Features(time.Now())
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 2000, tr.Counts().Pending)
}
