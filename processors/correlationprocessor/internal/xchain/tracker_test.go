package xchain

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// within1pc checks a sketch quantile against the exact value (the sketches
// have 1% relative accuracy).
func within1pc(t *testing.T, want, got float64, name string) {
	t.Helper()
	assert.InEpsilon(t, want, got, 0.011, "%s: want %v got %v", name, want, got)
}

func TestStagesOutOfOrderHoursApart(t *testing.T) {
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now})

	// The destination chain's events arrive first, hours before the
	// source chain's sent event is exported.
	clock.Set(at(3 * time.Hour))
	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageExecuted, at(3*time.Hour))))
	c := tr.Counts()
	assert.Equal(t, 0, c.Pending, "executed closes the message")
	assert.Equal(t, uint64(1), c.ClosedTotal)

	clock.Set(at(3*time.Hour + 10*time.Second))
	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageRelayed, at(2*time.Hour))))
	clock.Set(at(3*time.Hour + 20*time.Second))
	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageSent, at(0))))
	c = tr.Counts()
	assert.Equal(t, 0, c.Pending, "late stages of a closed message do not reopen it")
	assert.Equal(t, uint64(1), c.ClosedTotal)

	v := tr.Features(clock.Now())[routeID]
	within1pc(t, secondsOf(3*time.Hour), v.Features["latency.end_to_end_p99_s"], "end to end")
	within1pc(t, secondsOf(2*time.Hour), v.Features["latency.sent_to_relayed_p99_s"], "sent to relayed")
	within1pc(t, secondsOf(time.Hour), v.Features["latency.relayed_to_executed_p99_s"], "relayed to executed")
	assert.Equal(t, 0.0, v.Features["messages.pending"])
	assert.Equal(t, 0.0, v.Features["messages.failure_ratio"])
}

func TestStagesInOrderHoursApart(t *testing.T) {
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now})

	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageSent, at(0))))
	clock.Set(at(20 * time.Minute))
	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageSourceFinalized, at(20*time.Minute))))
	clock.Set(at(2 * time.Hour))
	v := tr.Features(clock.Now())[routeID]
	assert.Equal(t, 1.0, v.Features["messages.pending"])
	assert.Equal(t, secondsOf(2*time.Hour), v.Features["messages.oldest_pending_age_s"])
	require.Len(t, v.Stuck, 1, "pending past stuck_after is evidence")
	assert.Equal(t, "pending", v.Stuck[0].Status)
	assert.Equal(t, StageSourceFinalized, v.Stuck[0].LastStage)

	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageRelayed, at(2*time.Hour))))
	clock.Set(at(2*time.Hour + 30*time.Second))
	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageExecuted, at(2*time.Hour+30*time.Second))))
	v = tr.Features(clock.Now())[routeID]
	assert.Equal(t, 0.0, v.Features["messages.pending"])
	assert.Empty(t, v.Stuck)
	within1pc(t, secondsOf(2*time.Hour+30*time.Second), v.Features["latency.end_to_end_p99_s"], "end to end")
	within1pc(t, 30, v.Features["latency.relayed_to_executed_p99_s"], "relayed to executed")
	assert.Greater(t, v.Features["messages.throughput"], 0.0)
}

func TestDuplicatedStages(t *testing.T) {
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now})
	for range 3 {
		require.NoError(t, tr.Observe(ctxb(), ev("m1", StageSent, at(0))))
	}
	f := ev("m1", StageFailed, at(time.Minute))
	clock.Set(at(time.Minute))
	require.NoError(t, tr.Observe(ctxb(), f))
	require.NoError(t, tr.Observe(ctxb(), f))
	// A different terminal stage after the first does not change the
	// outcome or count the message twice.
	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageTimedOut, at(time.Minute))))

	c := tr.Counts()
	assert.Equal(t, uint64(3), c.Duplicates)
	assert.Equal(t, uint64(1), c.ClosedTotal)
	v := tr.Features(clock.Now())[routeID]
	assert.Equal(t, 1.0, v.Features["messages.failure_ratio"])
	assert.Equal(t, 0.0, v.Features["messages.timeout_ratio"])
}

func TestRelayerAttribution(t *testing.T) {
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now})
	// The dapp emits sent; no relayer has relayed on the route yet, so the
	// message sits with the emitting service until one is named.
	require.NoError(t, tr.Observe(ctxb(), Event{MessageID: "m1", Stage: StageSent, Time: at(0), Service: "bridge-ui", SourceChain: "osmosis-1"}))
	clock.Set(at(time.Hour))
	relayed := Event{MessageID: "m1", Stage: StageRelayed, Time: at(time.Hour), Service: "hermes", SourceChain: "osmosis-1", DestinationChain: "cosmoshub-4"}
	require.NoError(t, tr.Observe(ctxb(), relayed))
	// An indexer's executed names no relayer and does not move it.
	require.NoError(t, tr.Observe(ctxb(), Event{MessageID: "m1", Stage: StageExecuted, Time: at(time.Hour), Service: "indexer", SourceChain: "osmosis-1", DestinationChain: "cosmoshub-4"}))
	// The next message from the dapp goes to the route's relayer at once.
	require.NoError(t, tr.Observe(ctxb(), Event{MessageID: "m2", Stage: StageSent, Time: at(time.Hour), Service: "bridge-ui", SourceChain: "osmosis-1", DestinationChain: "cosmoshub-4"}))

	views := tr.Features(clock.Now())
	require.Contains(t, views, routeID)
	assert.Equal(t, 1.0, views[routeID].Features["messages.pending"], "m2 is pending on the route's relayer")
	within1pc(t, secondsOf(time.Hour), views[routeID].Features["latency.end_to_end_p99_s"], "m1 moved to hermes with its stages")
	assert.Equal(t, 0.0, views["relayer:bridge-ui/osmosis-1/"].Features["messages.pending"])
	assert.NotContains(t, views, "relayer:indexer/osmosis-1/cosmoshub-4")
}

func TestRestartWithFileStorage(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	fs := openFileStorage(t, dir)
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now, Storage: fs.client})
	sent := ev("m1", StageSent, at(0))
	sent.SourceTxHash = "0xabc"
	require.NoError(t, tr.Observe(ctxb(), sent))
	require.NoError(t, tr.Observe(ctxb(), ev("m2", StageSent, at(0))))
	clock.Set(at(time.Minute))
	require.NoError(t, tr.Observe(ctxb(), ev("m2", StageExecuted, at(time.Minute))))
	require.NoError(t, tr.Shutdown(ctxb()))
	require.NoError(t, tr.Shutdown(ctxb()), "Shutdown is idempotent")
	require.NoError(t, fs.ext.Shutdown(ctxb()))

	// A new process, an hour later.
	clock.Set(at(time.Hour))
	fs = openFileStorage(t, dir)
	tr = mustNew(t, DefaultConfig(), Settings{Now: clock.Now, Storage: fs.client})
	c := tr.Counts()
	assert.Equal(t, 1, c.Restored)
	assert.Equal(t, 1, c.Pending)
	v := tr.Features(clock.Now())[routeID]
	assert.Equal(t, 1.0, v.Features["messages.pending"])
	assert.Equal(t, secondsOf(time.Hour), v.Features["messages.oldest_pending_age_s"])
	require.Len(t, v.Stuck, 1)
	assert.Equal(t, "m1", v.Stuck[0].MessageID)
	assert.Equal(t, "0xabc", v.Stuck[0].Stages[0].SourceTxHash)

	// A duplicate of m2's closing stage stays a duplicate after the restart.
	require.NoError(t, tr.Observe(ctxb(), ev("m2", StageExecuted, at(time.Minute))))
	assert.Equal(t, uint64(1), tr.Counts().Duplicates)

	// m1's completion closes it, with its end-to-end latency from the
	// sent stage stored before the restart.
	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageRelayed, at(time.Hour-time.Minute))))
	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageExecuted, at(time.Hour))))
	c = tr.Counts()
	assert.Equal(t, 0, c.Pending)
	v = tr.Features(clock.Now())[routeID]
	within1pc(t, secondsOf(time.Hour), v.Features["latency.end_to_end_p99_s"], "end to end across the restart")
	require.NoError(t, tr.Shutdown(ctxb()))
	require.NoError(t, fs.ext.Shutdown(ctxb()))

	// And it stays closed through another restart.
	fs = openFileStorage(t, dir)
	tr = mustNew(t, DefaultConfig(), Settings{Now: clock.Now, Storage: fs.client})
	assert.Equal(t, 0, tr.Counts().Pending)
	assert.Equal(t, 2, tr.Counts().Closed)
	require.NoError(t, tr.Shutdown(ctxb()))
	require.NoError(t, fs.ext.Shutdown(ctxb()))
}

func TestRestartExpiresWhatAgedWhileDown(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	cfg := DefaultConfig()
	cfg.MaxAge = 2 * time.Hour
	fs := openFileStorage(t, dir)
	tr := mustNew(t, cfg, Settings{Now: clock.Now, Storage: fs.client})
	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageSent, at(0))))
	require.NoError(t, tr.Shutdown(ctxb()))
	require.NoError(t, fs.ext.Shutdown(ctxb()))

	clock.Set(at(3 * time.Hour))
	fs = openFileStorage(t, dir)
	tr = mustNew(t, cfg, Settings{Now: clock.Now, Storage: fs.client})
	c := tr.Counts()
	assert.Equal(t, 0, c.Pending)
	assert.Equal(t, uint64(1), c.Expired, "a message that passed max_age while down is reported, not lost")
	v := tr.Features(clock.Now())[routeID]
	require.Len(t, v.Stuck, 1)
	assert.Equal(t, "expired", v.Stuck[0].Status)
	assert.Equal(t, 1.0, v.Features["messages.timeout_ratio"])
	require.NoError(t, tr.Shutdown(ctxb()))
	require.NoError(t, fs.ext.Shutdown(ctxb()))
}

func TestCorruptRecordIsDeletedAtStart(t *testing.T) {
	dir := t.TempDir()
	fs := openFileStorage(t, dir)
	require.NoError(t, fs.client.Set(ctxb(), storageKey("bad"), []byte{recordVersion, 0}))
	require.NoError(t, fs.client.Set(ctxb(), "other/key", []byte("not ours")))
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now, Storage: fs.client})
	assert.Equal(t, uint64(1), tr.Counts().CorruptRecords)
	assert.Equal(t, 1, fs.keys(t), "the unreadable record is deleted, other keys are left alone")
	require.NoError(t, tr.Shutdown(ctxb()))
	require.NoError(t, fs.ext.Shutdown(ctxb()))
}

func TestRecordRoundTrip(t *testing.T) {
	m := &message{id: "m/1", relayer: "hermes", src: "a", dst: "b", status: statusFailed, recorded: recEndToEnd, closedAt: 42}
	m.add(stageRecord{stage: StageRelayed, time: 7, dstTx: "0xd", gasUsed: 21000, gasPrice: 3e10, fee: 6.3e14, feeDenom: "wei"})
	m.add(stageRecord{stage: StageSent, time: -5, srcTx: "0xs"})
	got, err := parseRecord(appendRecord(nil, m))
	require.NoError(t, err)
	assert.Equal(t, m.stages, got.stages)
	assert.Equal(t, []any{m.id, m.relayer, m.src, m.dst, m.status, m.recorded, m.closedAt},
		[]any{got.id, got.relayer, got.src, got.dst, got.status, got.recorded, got.closedAt})
	b := appendRecord(nil, m)
	for i := range len(b) {
		_, err := parseRecord(b[:i])
		assert.Error(t, err, "truncated at %d", i)
	}
}

// TestForgottenAndSeenAgainInOneBatch: a closed message pushed out of
// max_closed and seen again in the same batch must be stored, not deleted.
func TestForgottenAndSeenAgainInOneBatch(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	cfg := DefaultConfig()
	cfg.MaxClosed = 1
	fs := openFileStorage(t, dir)
	tr := mustNew(t, cfg, Settings{Now: clock.Now, Storage: fs.client})
	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageExecuted, at(0))))
	require.NoError(t, tr.ObserveBatch(ctxb(), []Event{
		ev("m2", StageExecuted, at(0)), // closes m2, pushing m1 out
		ev("m1", StageSent, at(0)),     // m1 again: a new pending record
	}))
	require.NoError(t, tr.Shutdown(ctxb()))
	require.NoError(t, fs.ext.Shutdown(ctxb()))

	fs = openFileStorage(t, dir)
	tr = mustNew(t, cfg, Settings{Now: clock.Now, Storage: fs.client})
	assert.Equal(t, 1, tr.Counts().Restored)
	require.NoError(t, tr.Shutdown(ctxb()))
	require.NoError(t, fs.ext.Shutdown(ctxb()))
}

// TestRouteRelayerSurvivesRestart: after a restart, a dapp's sent still goes
// to the relayer that relayed the route's messages before it.
func TestRouteRelayerSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	fs := openFileStorage(t, dir)
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now, Storage: fs.client})
	require.NoError(t, tr.Observe(ctxb(), ev("m1", StageRelayed, at(0))))
	require.NoError(t, tr.Shutdown(ctxb()))
	require.NoError(t, fs.ext.Shutdown(ctxb()))

	fs = openFileStorage(t, dir)
	tr = mustNew(t, DefaultConfig(), Settings{Now: clock.Now, Storage: fs.client})
	require.NoError(t, tr.Observe(ctxb(), Event{MessageID: "m2", Stage: StageSent, Time: at(0), Service: "bridge-ui", SourceChain: "osmosis-1", DestinationChain: "cosmoshub-4"}))
	assert.Equal(t, 2.0, tr.Features(clock.Now())[routeID].Features["messages.pending"])
	require.NoError(t, tr.Shutdown(ctxb()))
	require.NoError(t, fs.ext.Shutdown(ctxb()))
}

// TestDuplicateStageEarlierWins: a stage seen twice (its span ends after
// its log line) is as early as its earliest event, in either arrival
// order, so replicas that each saw one of them agree with one node.
func TestDuplicateStageEarlierWins(t *testing.T) {
	for _, order := range [][]time.Duration{{2 * time.Second, 0}, {0, 2 * time.Second}} {
		clock := newClock()
		tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now})
		for _, d := range order {
			e := ev("m1", StageSent, at(d))
			if d != 0 {
				e.SourceTxHash = "0xs" // only the later event has the hash
			}
			require.NoError(t, tr.Observe(ctxb(), e))
		}
		clock.Set(at(time.Hour))
		v := tr.Features(clock.Now())[routeID]
		require.Len(t, v.Stuck, 1)
		s := v.Stuck[0]
		assert.Equal(t, at(0), s.Since, "order %v", order)
		assert.Equal(t, secondsOf(time.Hour), s.AgeSeconds)
		require.Len(t, s.Stages, 1)
		assert.Equal(t, at(0), s.Stages[0].Time)
		assert.Equal(t, "0xs", s.Stages[0].SourceTxHash, "the known hash is kept")
		assert.Equal(t, uint64(1), tr.Counts().Duplicates)
	}
}
