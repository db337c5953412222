package mergedgraph_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/mergedgraph"
)

// evidenceLimits are the correlation processor's defaults
// (limits::max_exemplars, max_log_samples, xchain::max_evidence).
var evidenceLimits = mergedgraph.EvidenceLimits{Exemplars: 5, LogSamples: 5, Stuck: 10}

var relayer = entity.Ref{Type: entity.Relayer, ID: "relayer:hermes/osmosis/cosmoshub", Name: "hermes osmosis->cosmoshub"}

func ex(trace, reason string, at time.Time, ms float64) entity.Exemplar {
	return entity.Exemplar{TraceID: trace, SpanID: trace[:4] + "0000", Time: at, Reason: reason, Value: ms}
}

func stuck(id, status string, since time.Time, age float64, stages ...string) entity.StuckMessage {
	s := entity.StuckMessage{MessageID: id, Status: status, Relayer: "hermes", SourceChain: "osmosis", DestinationChain: "cosmoshub", Since: since, AgeSeconds: age}
	for i, st := range stages {
		s.Stages = append(s.Stages, entity.MessageStage{Stage: st, Time: since.Add(time.Duration(i) * time.Minute), SourceTxHash: "0x" + id})
		s.LastStage = st
	}
	return s
}

// TestMergedEvidence writes two replicas' evidence through the deployed
// remote-write config into VictoriaMetrics and reads the merged snapshot
// back: each entity has the evidence one node that saw both replicas'
// telemetry keeps, with the same bounds: failed exemplars newest first and
// slow ones slowest first, log samples by their summed count with the
// latest line, stuck messages oldest first. What a replica's earlier tick
// had and its latest has not is gone.
func TestMergedEvidence(t *testing.T) {
	stores(t, func(t *testing.T, vm metricStore) {
		a, b := replicaWriter(t, vm, "gateway-a"), replicaWriter(t, vm, "gateway-b")
		lim := mergedgraph.EvidenceLimits{Exemplars: 2, LogSamples: 2, Stuck: 2}
		at := func(d time.Duration) time.Time { return t0.Add(d) }

		// Replica A's previous tick: an exemplar and a database log sample
		// that its latest tick no longer has.
		prevA := &entity.Snapshot{Entities: []entity.Entity{
			{Ref: checkout, Evidence: entity.Evidence{Exemplars: []entity.Exemplar{ex("0ld0aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "error", at(-14*time.Second), 40)}}},
			{Ref: db, Evidence: entity.Evidence{LogSamples: []entity.LogSample{{Time: at(-12 * time.Second), Severity: "ERROR", Template: "deadlock detected", Body: "deadlock detected", Count: 3}}}},
		}}
		writeLim(t, a, prevA, at(-10*time.Second), lim)

		snapA := &entity.Snapshot{Entities: []entity.Entity{
			{Ref: checkout, Evidence: entity.Evidence{
				Exemplars: []entity.Exemplar{
					ex("a1a1aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "error", at(-10*time.Second), 55),
					ex("a2a2aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "error", at(-20*time.Second), 60),
					ex("a3a3aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "slow", at(-40*time.Second), 900),
					ex("a4a4aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "slow", at(-30*time.Second), 300),
				},
				LogSamples: []entity.LogSample{
					{Time: at(-5 * time.Second), Severity: "ERROR", Template: "timeout after <*> ms", Body: "timeout after 12 ms", Count: 7, TraceID: "a1a1aaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
					{Time: at(-9 * time.Second), Severity: "INFO", Template: "order <*> placed", Body: "order 7 placed", Count: 4},
				},
			}},
			{Ref: db},
			{Ref: relayer, Evidence: entity.Evidence{Stuck: []entity.StuckMessage{
				stuck("m1", "pending", at(-30*time.Minute), 1800, "sent", "source_finalized"),
				stuck("m2", "expired", at(-3*time.Hour), 7200, "sent"),
			}}},
		}}
		snapB := &entity.Snapshot{Entities: []entity.Entity{
			{Ref: checkout, Evidence: entity.Evidence{
				Exemplars: []entity.Exemplar{
					ex("b1b1bbbbbbbbbbbbbbbbbbbbbbbbbbbb", "error", at(-5*time.Second), 70),
					ex("b2b2bbbbbbbbbbbbbbbbbbbbbbbbbbbb", "slow", at(-50*time.Second), 600),
				},
				LogSamples: []entity.LogSample{
					{Time: at(-2 * time.Second), Severity: "ERROR", Template: "timeout after <*> ms", Body: "timeout after 40 ms", Count: 3},
					{Time: at(-3 * time.Second), Severity: "WARN", Template: "retrying <*>", Body: "retrying payment", Count: 5},
				},
			}},
			{Ref: relayer, Evidence: entity.Evidence{Stuck: []entity.StuckMessage{
				stuck("m3", "pending", at(-40*time.Minute), 2400, "sent"),
				stuck("m1", "pending", at(-20*time.Minute), 1200, "source_finalized"),
				stuck("m4", "pending", at(-10*time.Minute), 600, "sent"),
			}}},
		}}
		writeLim(t, a, snapA, t0, lim)
		writeLim(t, b, snapB, t0, lim)
		vm.Flush(t)

		var failures []error
		src, err := mergedgraph.New(mergedgraph.Config{URL: vm.QueryURL(), Lookback: mergedgraph.DefaultLookback, EvidenceFailed: func(err error) { failures = append(failures, err) }})
		require.NoError(t, err)
		got, err := src.Snapshot(context.Background(), t0)
		require.NoError(t, err)
		require.Empty(t, failures)
		require.False(t, got.EvidenceUnavailable)

		c, ok := got.Entity(checkout.ID)
		require.True(t, ok)
		require.Equal(t, []entity.Exemplar{
			ex("b1b1bbbbbbbbbbbbbbbbbbbbbbbbbbbb", "error", at(-5*time.Second), 70),
			ex("a1a1aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "error", at(-10*time.Second), 55),
			ex("a3a3aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "slow", at(-40*time.Second), 900),
			ex("b2b2bbbbbbbbbbbbbbbbbbbbbbbbbbbb", "slow", at(-50*time.Second), 600),
		}, utc(c.Evidence.Exemplars), "two failed (newest first), two slow (slowest first); the previous tick's exemplar gone")
		require.Equal(t, []entity.LogSample{
			{Time: at(-2 * time.Second), Severity: "ERROR", Template: "timeout after <*> ms", Body: "timeout after 40 ms", Count: 10},
			{Time: at(-3 * time.Second), Severity: "WARN", Template: "retrying <*>", Body: "retrying payment", Count: 5},
		}, utcLogs(c.Evidence.LogSamples), "counts of a template add up, its sample is the latest line; two templates kept")
		require.Empty(t, c.Evidence.Stuck)

		d, ok := got.Entity(db.ID)
		require.True(t, ok)
		require.Equal(t, entity.Evidence{}, d.Evidence, "the log sample of replica A's previous tick counted")

		r, ok := got.Entity(relayer.ID)
		require.True(t, ok)
		m1 := stuck("m1", "pending", at(-30*time.Minute), 1800, "sent", "source_finalized")
		m1.Stages[1].Time = at(-29 * time.Minute) // A's, earlier than B's
		require.Equal(t, []entity.StuckMessage{
			stuck("m3", "pending", at(-40*time.Minute), 2400, "sent"),
			m1,
			stuck("m2", "expired", at(-3*time.Hour), 7200, "sent"),
		}, utcStuck(r.Evidence.Stuck), "the two oldest pending (m1 joined from both replicas, each stage at its earliest), then the expired one")

		// Without a limit a kind of evidence is not emitted.
		writeLim(t, a, &entity.Snapshot{Entities: []entity.Entity{{Ref: checkout, Evidence: snapA.Entities[0].Evidence}}}, t0.Add(time.Minute), mergedgraph.EvidenceLimits{})
		vm.Flush(t)
		got, err = src.Snapshot(context.Background(), t0.Add(time.Minute))
		require.NoError(t, err)
		c, ok = got.Entity(checkout.ID)
		require.True(t, ok)
		require.Equal(t, entity.Evidence{}, c.Evidence)
	})
}

func writeLim(t *testing.T, exp exporter.Metrics, snap *entity.Snapshot, at time.Time, lim mergedgraph.EvidenceLimits) {
	t.Helper()
	md := pmetric.NewMetrics()
	mergedgraph.AppendSeries(md, snap, at, lim)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))
}

func utc(xs []entity.Exemplar) []entity.Exemplar {
	for i := range xs {
		xs[i].Time = xs[i].Time.UTC()
	}
	return xs
}

func utcLogs(xs []entity.LogSample) []entity.LogSample {
	for i := range xs {
		xs[i].Time = xs[i].Time.UTC()
	}
	return xs
}

func utcStuck(ss []entity.StuckMessage) []entity.StuckMessage {
	for j := range ss {
		s := &ss[j]
		s.Since = s.Since.UTC()
		for i := range s.Stages {
			s.Stages[i].Time = s.Stages[i].Time.UTC()
		}
	}
	return ss
}

// TestEvidenceQueryFails: a store that answers the graph's queries but not
// the evidence query yields the snapshot all the same, marked
// EvidenceUnavailable, and says why.
func TestEvidenceQueryFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.FormValue("query")
		switch {
		case q == mergedgraph.EvidenceQuery(15*time.Second):
			http.Error(w, "too many series", http.StatusServiceUnavailable)
		case q == mergedgraph.BinsQuery(15*time.Second):
			_, _ = w.Write([]byte(emptyMatrix))
		case strings.Contains(q, "junction_merge_entity"):
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"junction_entity_id":"service:shop/checkout","junction_entity_type":"service","junction_entity_name":"checkout"},"value":[1,"1"]}]}}`))
		default:
			_, _ = w.Write([]byte(emptyVector))
		}
	}))
	defer srv.Close()
	var failures []error
	src, err := mergedgraph.New(mergedgraph.Config{URL: srv.URL, Lookback: 15 * time.Second, EvidenceFailed: func(err error) { failures = append(failures, err) }})
	require.NoError(t, err)
	snap, err := src.Snapshot(context.Background(), t0)
	require.NoError(t, err)
	require.True(t, snap.EvidenceUnavailable)
	require.Len(t, snap.Entities, 1)
	require.Equal(t, checkout.ID, snap.Entities[0].ID)
	require.Len(t, failures, 1)
	require.ErrorContains(t, failures[0], "evidence: query")
	require.ErrorContains(t, failures[0], "503 Service Unavailable: too many series")
}

// TestEvidenceItemDoesNotDecode: an item that is not JSON is left out and
// named; the others count, one without a limit label too.
func TestEvidenceItemDoesNotDecode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.FormValue("query")
		switch {
		case q == mergedgraph.EvidenceQuery(15*time.Second):
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[` +
				`{"metric":{"__name__":"junction_merge_evidence","junction_entity_id":"service:shop/checkout","junction_evidence":"exemplar","junction_evidence_limit":"5","junction_evidence_item":"{broken"},"values":[[1,"1"]]},` +
				`{"metric":{"__name__":"junction_merge_evidence","junction_entity_id":"service:shop/checkout","junction_evidence":"exemplar","junction_evidence_limit":"5","junction_evidence_item":"{\"trace_id\":\"ab\",\"time\":\"2026-01-05T09:00:00Z\",\"reason\":\"error\",\"value\":12}"},"values":[[1,"12"]]},` +
				`{"metric":{"__name__":"junction_merge_evidence","junction_entity_id":"service:shop/checkout","junction_evidence":"exemplar","junction_evidence_item":"{\"trace_id\":\"cd\",\"time\":\"2026-01-05T08:59:59Z\",\"reason\":\"error\",\"value\":13}"},"values":[[1,"13"]]}]}}`))
		case q == mergedgraph.BinsQuery(15*time.Second):
			_, _ = w.Write([]byte(emptyMatrix))
		case strings.Contains(q, "junction_merge_entity"):
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"junction_entity_id":"service:shop/checkout","junction_entity_type":"service","junction_entity_name":"checkout"},"value":[1,"1"]}]}}`))
		default:
			_, _ = w.Write([]byte(emptyVector))
		}
	}))
	defer srv.Close()
	var failures []error
	src, err := mergedgraph.New(mergedgraph.Config{URL: srv.URL, Lookback: 15 * time.Second, EvidenceFailed: func(err error) { failures = append(failures, err) }})
	require.NoError(t, err)
	snap, err := src.Snapshot(context.Background(), t0)
	require.NoError(t, err)
	require.False(t, snap.EvidenceUnavailable)
	require.Equal(t, []entity.Exemplar{{TraceID: "ab", Time: t0, Reason: "error", Value: 12}, {TraceID: "cd", Time: t0.Add(-time.Second), Reason: "error", Value: 13}},
		utc(snap.Entities[0].Evidence.Exemplars), "an item without a limit label is kept")
	require.Len(t, failures, 1)
	require.ErrorContains(t, failures[0], `exemplar item "{broken"`)
}
