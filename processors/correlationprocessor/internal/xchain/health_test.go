package xchain

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestHermesHealth(t *testing.T) {
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now})
	route := Scope{Relayer: "hermes", SourceChain: "osmosis-1", DestinationChain: "cosmoshub-4"}
	dstWallet := Scope{Relayer: "hermes", SourceChain: "cosmoshub-4"}
	srcWallet := Scope{Relayer: "hermes", SourceChain: "osmosis-1"}
	srcChain := Scope{SourceChain: "osmosis-1"} // a node exporter, for every relayer
	relayerWide := Scope{Relayer: "hermes"}
	observe := func(s Scope, name string, v float64, when time.Duration) {
		t.Helper()
		require.True(t, tr.ObserveMetric(s.ID(), name, v, at(when)), name)
	}

	// Wallet on the destination chain: 10 spent every 6 minutes for an
	// hour, with a top-up of 500 at 36 minutes that does not hide the
	// spending. The source chain's wallet is not the one that pays.
	balances := []float64{1000, 990, 980, 970, 960, 950, 1450, 1440, 1430, 1420, 1410}
	for i, b := range balances {
		observe(dstWallet, MetricWalletBalance, b, time.Duration(i)*6*time.Minute)
		observe(srcWallet, MetricWalletBalance, 5, time.Duration(i)*6*time.Minute)
	}
	// Chain heads of the source chain: a block every 6 s, finalized 12
	// blocks behind.
	for s := 0; s <= 300; s += 30 {
		when := time.Hour - 300*time.Second + time.Duration(s)*time.Second
		h := 10_000 + float64(s)/6
		observe(srcChain, "chain_head_height", h, when) // an alias in the defaults
		observe(srcChain, MetricChainFinalizedHeight, h-12, when)
	}
	// Backlog of the route growing by 2 every 15 s over the last minute;
	// its oldest packet was sent at t0+50m.
	for i, b := range []float64{10, 12, 14, 16, 18} {
		observe(route, MetricBacklogSize, b, time.Hour-time.Minute+time.Duration(i)*15*time.Second)
	}
	observe(route, MetricBacklogOldestTimestamp, float64(at(50*time.Minute).Unix()), time.Hour)
	// Confirmation latency of the acks (to the source chain) and of the
	// receives (to the destination chain): relaying src→dst is the latter.
	observe(route, MetricTxLatencyConfirmed, 2500, time.Hour)
	observe(Scope{Relayer: "hermes", SourceChain: "cosmoshub-4", DestinationChain: "osmosis-1"}, MetricTxLatencyConfirmed, 3100, time.Hour)
	// Broadcast errors: a counter that resets (relayer restart).
	for i, c := range []float64{0, 3, 6, 2, 5} {
		observe(relayerWide, MetricBroadcastErrors+"_total", c, time.Hour-time.Minute+time.Duration(i)*15*time.Second)
	}
	assert.False(t, tr.ObserveMetric(route.ID(), "unrelated_metric", 1, at(time.Hour)))
	assert.False(t, tr.ObserveMetric("service:shop/checkout", MetricBacklogSize, 1, at(time.Hour)))

	clock.Set(at(time.Hour))
	views := tr.Features(clock.Now())
	require.Contains(t, views, routeID, "a route known only from metrics is an entity")
	f := views[routeID].Features
	assert.Equal(t, 1410.0, f["wallet.balance"])
	assert.InDelta(t, 90, f["wallet.burn_rate_per_hour"], 1e-9)
	assert.InDelta(t, 1410.0/90, f["wallet.hours_left"], 1e-9)
	assert.Equal(t, 12.0, f["finality.lag_blocks"])
	assert.InDelta(t, 72, f["finality.lag_s"], 1e-9)
	assert.Equal(t, 18.0, f["backlog.size"])
	assert.InDelta(t, 8.0/60, f["backlog.growth_rate"], 1e-9)
	assert.Equal(t, 600.0, f["backlog.oldest_age_s"])
	assert.Equal(t, 3100.0, f["tx.latency_confirmed_ms"])
	assert.InDelta(t, 11.0/60, f["broadcast.errors_rate"], 1e-9)
	assert.Equal(t, 1410.0, views[routeID].Metrics[MetricWalletBalance])

	// Five minutes without a scrape: the values are stale and absent.
	clock.Set(at(time.Hour + DefaultMetricStaleness + time.Second))
	f = tr.Features(clock.Now())[routeID].Features
	for _, name := range []string{"wallet.balance", "backlog.size", "finality.lag_blocks", "tx.latency_confirmed_ms"} {
		assert.NotContains(t, f, name)
	}
}

func TestStuckEvidenceCarriesRelayerMetrics(t *testing.T) {
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now})
	sent := ev("m1", StageSent, at(0))
	sent.SourceTxHash = "0xsent"
	require.NoError(t, tr.Observe(ctxb(), sent))
	fin := ev("m1", StageSourceFinalized, at(time.Minute))
	fin.SourceTxHash = "0xsent"
	require.NoError(t, tr.Observe(ctxb(), fin))
	require.NoError(t, tr.Observe(ctxb(), ev("m2", StageSent, at(50*time.Minute)))) // pending, not stuck yet

	clock.Set(at(time.Hour))
	route := Scope{Relayer: "hermes", SourceChain: "osmosis-1", DestinationChain: "cosmoshub-4"}
	tr.ObserveScopeMetric(route, MetricBacklogSize, 40, at(time.Hour))
	tr.ObserveScopeMetric(Scope{Relayer: "hermes", SourceChain: "cosmoshub-4"}, MetricWalletBalance, 0, at(time.Hour))

	v := tr.Features(clock.Now())[routeID]
	require.Len(t, v.Stuck, 1)
	s := v.Stuck[0]
	assert.Equal(t, "m1", s.MessageID)
	assert.Equal(t, "pending", s.Status)
	assert.Equal(t, routeID, s.EntityID)
	assert.Equal(t, "osmosis-1", s.SourceChain)
	assert.Equal(t, "cosmoshub-4", s.DestinationChain)
	assert.Equal(t, secondsOf(time.Hour), s.AgeSeconds)
	assert.Equal(t, StageSourceFinalized, s.LastStage)
	require.Len(t, s.Stages, 2)
	assert.Equal(t, StageSent, s.Stages[0].Stage)
	assert.Equal(t, "0xsent", s.Stages[0].SourceTxHash)
	assert.Equal(t, at(time.Minute), s.Stages[1].Time)
	assert.Equal(t, 40.0, s.Metrics["backlog.size"])
	assert.Equal(t, 0.0, s.Metrics["wallet.balance"])
	assert.Equal(t, 2.0, v.Features["messages.pending"])
}

func TestGasBaselineAndFees(t *testing.T) {
	clock := newClock()
	cfg := DefaultConfig()
	cfg.Fee = FeeConfig{Unit: "USD", Prices: map[string]float64{"uatom": 10e-6}}
	tr := mustNew(t, cfg, Settings{Now: clock.Now})
	id := 0
	deliver := func(gasPrice, fee float64, denom string) {
		id++
		name := string(rune('a'+id%26)) + time.Duration(id).String()
		require.NoError(t, tr.Observe(ctxb(), ev(name, StageSent, clock.Now())))
		e := ev(name, StageExecuted, clock.Now())
		e.GasPrice, e.FeeAmount, e.FeeDenom = gasPrice, fee, denom
		require.NoError(t, tr.Observe(ctxb(), e))
	}
	// Two hours at gas price 0.025, one message every 30 s.
	for range 240 {
		deliver(0.025, 5000, "uatom")
		clock.Advance(30 * time.Second)
	}
	v := tr.Features(clock.Now())[routeID]
	assert.InDelta(t, 0.025, v.Baseline["gas.price"], 1e-12)
	assert.InDelta(t, 1.0/30, v.Baseline["messages.throughput"], 1e-3)
	// A spike: four times the gas price in the last minute.
	for range 2 {
		deliver(0.1, 20000, "uatom")
		clock.Advance(30 * time.Second)
	}
	deliver(0.1, 1, "unknown-denom")
	v = tr.Features(clock.Now())[routeID]
	assert.InDelta(t, 0.1, v.Features["gas.price"], 1e-12)
	assert.Greater(t, v.Features["gas.price"], 3*v.Baseline["gas.price"])
	// Fees in the last minute: 20000 uatom at 10e-6 USD (the current
	// bucket's message has an unpriced fee), over the messages closed.
	assert.Equal(t, uint64(1), tr.Counts().FeesUnpriced)
	assert.InDelta(t, 0.2*1/2.0, v.Features["fee.per_message"], 1e-9)
}

func TestScopeFromMetric(t *testing.T) {
	tests := []struct {
		name        string
		resource    map[string]any
		attrs       map[string]any
		want        Scope
		wantEntity  string
		wantIsRoute bool
	}{
		{"route", map[string]any{"service.name": "hermes"}, map[string]any{"chain": "osmosis-1", "counterparty": "cosmoshub-4", "channel": "channel-0"},
			Scope{"hermes", "osmosis-1", "cosmoshub-4"}, routeID, true},
		{"client labels", map[string]any{"service.name": "hermes"}, map[string]any{"src_chain": "a", "dst_chain": "b"},
			Scope{"hermes", "a", "b"}, "relayer:hermes/a/b", true},
		{"exporter spelling", map[string]any{"service.name": "relayer-x"}, map[string]any{"chain_id": "a", "counterparty_chain_id": "b"},
			Scope{"relayer-x", "a", "b"}, "relayer:relayer-x/a/b", true},
		{"chain only", map[string]any{"service.name": "hermes"}, map[string]any{"chain": "a", "denom": "uatom"},
			Scope{Relayer: "hermes", SourceChain: "a"}, "relayer:hermes/a/", false},
		{"relayer override", map[string]any{"service.name": "prometheus"}, map[string]any{"xchain.relayer": "hermes-2"},
			Scope{Relayer: "hermes-2"}, "relayer:hermes-2//", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, attrs := pcommon.NewMap(), pcommon.NewMap()
			require.NoError(t, res.FromRaw(tt.resource))
			require.NoError(t, attrs.FromRaw(tt.attrs))
			got := ScopeFromMetric(res, attrs)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantEntity, got.ID())
			assert.Equal(t, tt.wantIsRoute, got.isRoute())
		})
	}
}

func TestParseScopeID(t *testing.T) {
	for _, s := range []Scope{
		{"hermes", "osmosis-1", "cosmoshub-4"}, {Relayer: "hermes"}, {SourceChain: "osmosis-1"}, {Relayer: "hermes", SourceChain: "a"},
	} {
		got, err := ParseScopeID(s.ID())
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
	_, err := ParseScopeID("service:shop/checkout")
	assert.ErrorContains(t, err, "is not a relayer entity or scope id")
	_, err = ParseScopeID("relayer:hermes/a/b/c")
	assert.ErrorContains(t, err, "has 4 parts")
}

// TestFinalityLagOfEitherChain: a route waits for the source chain's
// finality to relay and for the destination's to acknowledge, so its
// finality lag is the longer of the two in seconds.
func TestFinalityLagOfEitherChain(t *testing.T) {
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now})
	route := Scope{Relayer: "hermes", SourceChain: "osmosis-1", DestinationChain: "noble-1"}
	heads := func(chain string, blockTime time.Duration, lag float64) {
		for s := 0; s <= 300; s += 30 {
			when := time.Hour - 300*time.Second + time.Duration(s)*time.Second
			h := 10_000 + float64(time.Duration(s)*time.Second/blockTime)
			require.True(t, tr.ObserveMetric(Scope{SourceChain: chain}.ID(), MetricChainLatestHeight, h, at(when)))
			require.True(t, tr.ObserveMetric(Scope{SourceChain: chain}.ID(), MetricChainFinalizedHeight, h-lag, at(when)))
		}
	}
	require.True(t, tr.ObserveMetric(route.ID(), MetricBacklogSize, 0, at(time.Hour)))
	// The source finalizes 10 blocks of 5 s behind (50 s); the destination
	// 200 blocks of 2 s behind (400 s), fewer seconds per block but longer.
	heads("osmosis-1", 5*time.Second, 10)
	heads("noble-1", 2*time.Second, 200)
	clock.Set(at(time.Hour))
	f := tr.Features(clock.Now())[route.ID()].Features
	assert.Equal(t, 200.0, f["finality.lag_blocks"])
	assert.InDelta(t, 400, f["finality.lag_s"], 1e-9)

	// Only the source chain lags: its lag.
	tr = mustNew(t, DefaultConfig(), Settings{Now: clock.Now})
	require.True(t, tr.ObserveMetric(route.ID(), MetricBacklogSize, 0, at(time.Hour)))
	heads("osmosis-1", 5*time.Second, 10)
	heads("noble-1", 2*time.Second, 2)
	f = tr.Features(clock.Now())[route.ID()].Features
	assert.Equal(t, 10.0, f["finality.lag_blocks"])
	assert.InDelta(t, 50, f["finality.lag_s"], 1e-9)
}
