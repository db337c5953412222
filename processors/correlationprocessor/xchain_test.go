package correlationprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/entity"
)

const hermesRoute = "relayer:hermes/osmosis-1/cosmoshub-4"

// xstage is one cross-chain stage as a span or log record carries it.
type xstage struct {
	id, stage string
	at        time.Time
	srcTx     string
	dstTx     string
}

func (s xstage) put(attrs pcommon.Map) {
	attrs.PutStr("xchain.message.id", s.id)
	attrs.PutStr("xchain.stage", s.stage)
	attrs.PutStr("xchain.source.chain", "osmosis-1")
	attrs.PutStr("xchain.destination.chain", "cosmoshub-4")
	if s.srcTx != "" {
		attrs.PutStr("xchain.source.tx.hash", s.srcTx)
	}
	if s.dstTx != "" {
		attrs.PutStr("xchain.destination.tx.hash", s.dstTx)
	}
}

// xchainSpans is one batch of spans of service svc, one per stage, ending
// at the stage's time.
func xchainSpans(svc string, kind ptrace.SpanKind, stages ...xstage) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	ss := rs.ScopeSpans().AppendEmpty()
	for i, s := range stages {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("relay " + s.stage)
		sp.SetKind(kind)
		sp.SetTraceID(pcommon.TraceID{9, byte(i)})
		sp.SetSpanID(pcommon.SpanID{9, byte(i)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.at.Add(-time.Second)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.at))
		s.put(sp.Attributes())
	}
	return td
}

// xchainLogs is one batch of log records of service svc, one per stage,
// timestamped with the stage's time.
func xchainLogs(svc string, stages ...xstage) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", svc)
	sl := rl.ScopeLogs().AppendEmpty()
	for _, s := range stages {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(s.at))
		lr.Body().SetStr("packet " + s.stage)
		s.put(lr.Attributes())
	}
	return ld
}

// hermesMetrics is one Hermes scrape at at: backlog of the route, wallet
// on the destination chain, and the cumulative tx_latency_confirmed
// histogram (ms) of transactions submitted to the destination.
func hermesMetrics(at time.Time, backlog int64, wallet float64, latencySum float64, latencyCount uint64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "hermes")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ts := pcommon.NewTimestampFromTime(at)

	m := ms.AppendEmpty()
	m.SetName("backlog_size")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetIntValue(backlog)
	dp.Attributes().PutStr("chain", "osmosis-1")
	dp.Attributes().PutStr("counterparty", "cosmoshub-4")
	dp.Attributes().PutStr("channel", "channel-0")

	m = ms.AppendEmpty()
	m.SetName("wallet_balance")
	dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(wallet)
	dp.Attributes().PutStr("chain", "cosmoshub-4")
	dp.Attributes().PutStr("account", "cosmos1relayer")
	dp.Attributes().PutStr("denom", "uatom")

	m = ms.AppendEmpty()
	m.SetName("tx_latency_confirmed")
	m.SetUnit("ms")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := h.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts)
	hp.SetSum(latencySum)
	hp.SetCount(latencyCount)
	hp.Attributes().PutStr("chain", "cosmoshub-4")
	hp.Attributes().PutStr("counterparty", "osmosis-1")
	hp.Attributes().PutStr("channel", "channel-1")
	return md
}

func at(d time.Duration) time.Time { return t0.Add(d) }

// TestXChainRelayerEntity feeds message stages as spans and log records
// and Hermes metrics through the pipelines and checks the relayer entity
// of the snapshot and the derived metrics of a tick.
func TestXChainRelayerEntity(t *testing.T) {
	h := newHarness(t, "xchain", testConfig(), nopSettings())
	ctx := context.Background()

	// Message 2 completes; hermes relays it, so the route's relayer is
	// hermes from then on.
	h.clock.t = at(20 * time.Second)
	require.NoError(t, h.traces.ConsumeTraces(ctx, xchainSpans("hermes", ptrace.SpanKindInternal,
		xstage{id: "osmosis-1/channel-0/2", stage: "sent", at: at(0), srcTx: "AA02"},
		xstage{id: "osmosis-1/channel-0/2", stage: "relayed", at: at(10 * time.Second), dstTx: "BB02"},
		xstage{id: "osmosis-1/channel-0/2", stage: "executed", at: at(20 * time.Second), dstTx: "BB02"},
	)))
	// Message 1 is sent by a dapp and finalised, never relayed.
	h.clock.t = at(2 * time.Minute)
	require.NoError(t, h.traces.ConsumeTraces(ctx, xchainSpans("dapp", ptrace.SpanKindProducer,
		xstage{id: "osmosis-1/channel-0/1", stage: "sent", at: at(time.Minute), srcTx: "AA01"})))
	require.NoError(t, h.logs.ConsumeLogs(ctx, xchainLogs("osmosis-indexer",
		xstage{id: "osmosis-1/channel-0/1", stage: "source_finalized", at: at(2 * time.Minute), srcTx: "AA01"})))
	// Message 3 is sent recently: pending, not stuck.
	h.clock.t = at(40 * time.Minute)
	require.NoError(t, h.logs.ConsumeLogs(ctx, xchainLogs("dapp",
		xstage{id: "osmosis-1/channel-0/3", stage: "sent", at: at(40 * time.Minute), srcTx: "AA03"})))

	// Hermes scrapes: the wallet loses 100 uatom in 4 minutes; two
	// transactions of 300 ms each confirm between the last two scrapes.
	for i, s := range []struct {
		wallet   float64
		sum      float64
		count    uint64
		backlogN int64
	}{{1000, 3000, 3, 5}, {950, 3000, 3, 6}, {900, 3600, 5, 7}} {
		h.clock.t = at(40*time.Minute + time.Duration(i)*2*time.Minute)
		require.NoError(t, h.metrics.ConsumeMetrics(ctx, hermesMetrics(h.clock.t, s.backlogN, s.wallet, s.sum, s.count)))
	}

	now := at(45 * time.Minute)
	h.clock.t = now
	snap, err := h.p.Snapshot(ctx, now)
	require.NoError(t, err)
	e, ok := snap.Entity(hermesRoute)
	require.True(t, ok, "the relayer entity is in the snapshot")
	assert.Equal(t, entity.Relayer, e.Type)
	assert.Equal(t, "hermes osmosis-1->cosmoshub-4", e.Name)
	f := e.Features
	assert.Equal(t, 2.0, f["messages.pending"], "messages 1 and 3 are pending")
	assert.InDelta(t, (44 * time.Minute).Seconds(), f["messages.oldest_pending_age_s"], 1e-6, "message 1 was sent at 1m")
	assert.Equal(t, 7.0, f["backlog.size"])
	assert.Equal(t, 900.0, f["wallet.balance"])
	assert.InDelta(t, 1500, f["wallet.burn_rate_per_hour"], 1e-6, "100 uatom in 4 minutes")
	assert.InDelta(t, 0.6, f["wallet.hours_left"], 1e-9)
	assert.InDelta(t, 300, f["tx.latency_confirmed_ms"], 1e-9, "the mean of the two new observations, not of the cumulative histogram")
	assert.Equal(t, 2.0, e.Features5m["messages.pending"])
	assert.Contains(t, e.Baseline, "messages.throughput")
	assert.Equal(t, 900.0, e.Metrics["wallet_balance"])

	require.Len(t, e.Evidence.Stuck, 1, "only message 1 is older than stuck_after")
	stuck := e.Evidence.Stuck[0]
	assert.Equal(t, entity.StuckMessage{
		MessageID: "osmosis-1/channel-0/1", Status: "pending", Relayer: "hermes",
		SourceChain: "osmosis-1", DestinationChain: "cosmoshub-4",
		Since: at(time.Minute), AgeSeconds: (44 * time.Minute).Seconds(), LastStage: "source_finalized",
		Stages: []entity.MessageStage{
			{Stage: "sent", Time: at(time.Minute), SourceTxHash: "AA01"},
			{Stage: "source_finalized", Time: at(2 * time.Minute), SourceTxHash: "AA01"},
		},
	}, normalizeStuck(stuck))

	// The tick emits the tracker's features as derived metrics.
	n := len(h.ms.AllMetrics())
	require.NoError(t, h.p.tick(ctx, now))
	require.Greater(t, len(h.ms.AllMetrics()), n)
	got := derivedOf(h.ms.AllMetrics()[n], hermesRoute)
	assert.Equal(t, 2.0, got["junction.messages.pending"])
	assert.InDelta(t, 0.6, got["junction.wallet.hours_left"], 1e-9)
}

// normalizeStuck puts the times in UTC so that they compare with ==.
func normalizeStuck(s entity.StuckMessage) entity.StuckMessage {
	s.Since = s.Since.UTC()
	for i := range s.Stages {
		s.Stages[i].Time = s.Stages[i].Time.UTC()
	}
	return s
}

// derivedOf returns the derived gauges of the entity with id in md.
func derivedOf(md pmetric.Metrics, id string) map[string]float64 {
	out := map[string]float64{}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		if v, ok := rm.Resource().Attributes().Get(entity.AttrEntityID); !ok || v.Str() != id {
			continue
		}
		ms := rm.ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			out[ms.At(j).Name()] = ms.At(j).Gauge().DataPoints().At(0).DoubleValue()
		}
	}
	return out
}

// TestXChainMalformedEventsPassThrough checks that a span with a bad
// xchain.stage is left out of the message records and still passed on.
func TestXChainMalformedEventsPassThrough(t *testing.T) {
	h := newHarness(t, "xchainbad", testConfig(), nopSettings())
	ctx := context.Background()
	td := xchainSpans("hermes", ptrace.SpanKindInternal, xstage{id: "m1", stage: "teleported", at: t0})
	require.NoError(t, h.traces.ConsumeTraces(ctx, td))
	assert.Equal(t, 1, h.ts.SpanCount())
	assert.Zero(t, h.p.xchain.Load().Counts().Pending)
	snap, err := h.p.Snapshot(ctx, t0.Add(time.Second))
	require.NoError(t, err)
	_, ok := snap.Entity(hermesRoute)
	assert.False(t, ok)
}

// extHost is a host with extensions.
type extHost struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h extHost) GetExtensions() map[component.ID]component.Component { return h.ext }

var storageID = component.MustNewIDWithName("file_storage", "xchain")

// startFileStorage starts a real file_storage extension over dir.
func startFileStorage(t *testing.T, dir string) extension.Extension {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.Compaction.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return ext
}

// TestXChainPendingSurvivesRestart runs the processor with a file_storage
// extension, shuts it down with a message pending, and starts a new
// processor on the same storage: the message is still pending and stuck,
// and its completion records the end-to-end latency from the stored sent
// stage.
func TestXChainPendingSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ext := startFileStorage(t, dir)
	defer func() { require.NoError(t, ext.Shutdown(context.Background())) }()
	host := extHost{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{storageID: ext}}
	cfg := testConfig()
	cfg.XChain.Storage = &storageID
	ctx := context.Background()

	first := createHarness(t, "restart", cfg, nopSettings())
	require.NoError(t, first.start(host))
	require.NoError(t, first.traces.ConsumeTraces(ctx, xchainSpans("hermes", ptrace.SpanKindInternal,
		xstage{id: "osmosis-1/channel-0/7", stage: "sent", at: t0, srcTx: "AA07"},
		xstage{id: "osmosis-1/channel-0/7", stage: "relayed", at: t0.Add(time.Minute), dstTx: "BB07"})))
	require.NoError(t, first.shutdown())
	require.NoError(t, first.shutdown(), "shutdown is idempotent")

	second := createHarness(t, "restart", cfg, nopSettings())
	require.NotSame(t, first.p, second.p, "a new instance after the last shutdown")
	second.clock.t = t0.Add(40 * time.Minute)
	require.NoError(t, second.start(host))
	assert.Equal(t, 1, second.p.xchain.Load().Counts().Restored)
	snap, err := second.p.Snapshot(ctx, second.clock.t)
	require.NoError(t, err)
	e, ok := snap.Entity(hermesRoute)
	require.True(t, ok)
	assert.Equal(t, 1.0, e.Features["messages.pending"])
	assert.InDelta(t, (40 * time.Minute).Seconds(), e.Features["messages.oldest_pending_age_s"], 1e-6)
	require.Len(t, e.Evidence.Stuck, 1)
	assert.Equal(t, "osmosis-1/channel-0/7", e.Evidence.Stuck[0].MessageID)
	require.Len(t, e.Evidence.Stuck[0].Stages, 2)
	assert.Equal(t, "BB07", e.Evidence.Stuck[0].Stages[1].DestinationTxHash)

	second.clock.t = t0.Add(41 * time.Minute)
	require.NoError(t, second.logs.ConsumeLogs(ctx, xchainLogs("hermes",
		xstage{id: "osmosis-1/channel-0/7", stage: "executed", at: second.clock.t, dstTx: "BB07"})))
	snap, err = second.p.Snapshot(ctx, second.clock.t.Add(10*time.Second))
	require.NoError(t, err)
	e, ok = snap.Entity(hermesRoute)
	require.True(t, ok)
	assert.Equal(t, 0.0, e.Features["messages.pending"])
	assert.InDelta(t, (41 * time.Minute).Seconds(), e.Features["latency.end_to_end_p99_s"], (41*time.Minute).Seconds()*0.02,
		"end to end from the sent stage stored before the restart")
	assert.Empty(t, e.Evidence.Stuck)
}

// TestXChainStorageStartErrors checks that a missing or wrong storage
// extension fails Start with an error naming the key.
func TestXChainStorageStartErrors(t *testing.T) {
	nonStorage, err := extensiontest.NewNopFactory().Create(context.Background(), extensiontest.NewNopSettings(extensiontest.NopType), nil)
	require.NoError(t, err)
	tests := []struct {
		name string
		ext  map[component.ID]component.Component
		want string
	}{
		{"missing", nil, `xchain::storage: extension "file_storage/xchain" is not configured`},
		{"not a storage extension", map[component.ID]component.Component{storageID: nonStorage}, `xchain::storage: extension "file_storage/xchain" is not a storage extension`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.XChain.Storage = &storageID
			h := createHarness(t, "storageerr", cfg, nopSettings())
			err := h.start(extHost{Host: componenttest.NewNopHost(), ext: tt.ext})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Nil(t, h.p.xchain.Load())
		})
	}
}

// TestHistMeans checks the mean of new observations of relayer
// histograms, and the bound of the cumulative series table.
func TestHistMeans(t *testing.T) {
	tel, err := newTelemetry(componenttest.NewNopTelemetrySettings())
	require.NoError(t, err)
	res := pcommon.NewMap()
	res.PutStr("service.name", "hermes")
	series := func(channel string) pcommon.Map {
		m := pcommon.NewMap()
		m.PutStr("chain", "cosmoshub-4")
		m.PutStr("channel", channel)
		return m
	}
	type point struct {
		channel string
		sum     float64
		count   uint64
		delta   bool
		at      time.Duration
		want    float64
		ok      bool
	}
	tests := []struct {
		name   string
		points []point
	}{
		{"delta points are their own mean", []point{
			{channel: "a", sum: 900, count: 3, delta: true, want: 300, ok: true},
			{channel: "a", sum: 0, count: 0, delta: true},
		}},
		{"cumulative points yield the mean of what they add", []point{
			{channel: "a", sum: 3000, count: 3, want: 1000, ok: true},
			{channel: "a", sum: 3600, count: 5, at: time.Minute, want: 300, ok: true},
			{channel: "a", sum: 3600, count: 5, at: 2 * time.Minute},
		}},
		{"a reset starts over", []point{
			{channel: "a", sum: 3000, count: 3, want: 1000, ok: true},
			{channel: "a", sum: 400, count: 2, at: time.Minute, want: 200, ok: true},
		}},
		{"series are apart", []point{
			{channel: "a", sum: 3000, count: 3, want: 1000, ok: true},
			{channel: "b", sum: 100, count: 1, want: 100, ok: true},
			{channel: "a", sum: 3100, count: 4, at: time.Minute, want: 100, ok: true},
		}},
		{"a full table drops new series", []point{
			{channel: "a", sum: 10, count: 1, want: 10, ok: true},
			{channel: "b", sum: 20, count: 1, want: 20, ok: true},
			{channel: "c", sum: 30, count: 1, at: time.Minute},
			{channel: "a", sum: 20, count: 2, at: time.Minute, want: 10, ok: true},
		}},
		{"stale series make room", []point{
			{channel: "a", sum: 10, count: 1, want: 10, ok: true},
			{channel: "b", sum: 20, count: 1, want: 20, ok: true},
			{channel: "c", sum: 30, count: 1, at: 10 * time.Minute, want: 30, ok: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistMeans(2, 5*time.Minute, tel)
			for i, p := range tt.points {
				got, ok := h.mean(res, "tx_latency_confirmed", series(p.channel), p.sum, p.count, p.delta, t0.Add(p.at))
				require.Equal(t, p.ok, ok, "point %d", i)
				assert.InDelta(t, p.want, got, 1e-9, "point %d", i)
			}
			assert.LessOrEqual(t, len(h.last), 2)
		})
	}
}
