package xchain

import (
	"sort"
	"time"
)

// RelayerView is one relayer entity's features at an instant.
type RelayerView struct {
	Relayer          string `json:"relayer"`
	SourceChain      string `json:"source_chain"`
	DestinationChain string `json:"destination_chain"`
	// Features are the entity.Schema[entity.Relayer] features over the
	// short window (1 minute); Features5m over the long window (5
	// minutes). Instantaneous features (pending, backlog, wallet,
	// finality) are the same in both. A feature without data is absent.
	Features   map[string]float64 `json:"features"`
	Features5m map[string]float64 `json:"features_5m"`
	// Baseline holds the EWMA baselines of gas.price and
	// messages.throughput.
	Baseline map[string]float64 `json:"baseline,omitempty"`
	// Metrics are the raw relayer metric values joined onto the entity.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Stuck lists, oldest first, the pending messages older than
	// stuck_after, then the latest expired and evicted ones; at most
	// max_evidence of each.
	Stuck []StuckMessage `json:"stuck,omitempty"`
}

// StuckMessage is the evidence for one message that did not complete.
type StuckMessage struct {
	MessageID string `json:"message_id"`
	// Status is "pending", "expired" (pending longer than max_age) or
	// "evicted" (pushed out by max_messages).
	Status           string    `json:"status"`
	EntityID         string    `json:"entity_id"`
	Relayer          string    `json:"relayer"`
	SourceChain      string    `json:"source_chain"`
	DestinationChain string    `json:"destination_chain"`
	Since            time.Time `json:"since"`
	AgeSeconds       float64   `json:"age_s"`
	LastStage        Stage     `json:"last_stage"`
	// Stages are the known stages with their times and transaction
	// hashes, in lifecycle order.
	Stages []StageRecord `json:"stages"`
	// Metrics are the relayer's health features and raw metric values
	// (backlog, wallet, finality...) when the message was reported.
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	ReportedAt time.Time          `json:"reported_at"`
}

// RouteView aggregates the message features of every relayer serving a
// route (source chain → destination chain).
type RouteView struct {
	SourceChain      string `json:"source_chain"`
	DestinationChain string `json:"destination_chain"`
	// Relayers are the relayer entity ids on the route, sorted.
	Relayers   []string           `json:"relayers"`
	Features   map[string]float64 `json:"features"`
	Features5m map[string]float64 `json:"features_5m"`
}

// Features returns the relayer entities' views at now, keyed by entity id
// (entity.ID(entity.Relayer, relayer, source chain, destination chain)).
// Relayer entities known only from a fresh backlog_size of their route are
// included. It
// first expires messages past max_age; their records are written by the
// next Flush, Observe, ObserveBatch, RecordBatch's Commit or Shutdown,
// not under the tracker's lock (a restart before that expires them again
// at Start).
func (t *Tracker) Features(now time.Time) map[string]RelayerView {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := now.UnixNano()
	t.housekeep(n)
	t.gcRelayers(n)
	t.gcScopes(n)
	out := make(map[string]RelayerView, len(t.relayers))
	for id, r := range t.relayers {
		out[id] = t.view(r, n)
	}
	for id, sc := range t.scopes {
		// A route's backlog (labelled chain = source, as the entity) makes
		// it an entity; tx latencies are labelled the other way round and
		// do not.
		b, ok := sc.last[MetricBacklogSize]
		if _, known := out[id]; known || !ok || !sc.scope.isRoute() || n-b.t > int64(t.cfg.MetricStaleness) {
			continue
		}
		r := newRelayerState(id, sc.scope.Relayer, sc.scope.SourceChain, sc.scope.DestinationChain, n)
		out[id] = t.view(r, n)
	}
	return out
}

func (t *Tracker) view(r *relayerState, now int64) RelayerView {
	r.advance(now, t.alpha)
	v := RelayerView{
		Relayer: r.relayer, SourceChain: r.src, DestinationChain: r.dst,
		Features: map[string]float64{}, Features5m: map[string]float64{},
	}
	h := r.scopes
	for _, w := range []struct {
		f      map[string]float64
		window time.Duration
	}{{v.Features, shortWindow}, {v.Features5m, longWindow}} {
		var a windowAgg
		r.aggregate(&a, now, w.window)
		a.features(w.f)
		pendingFeatures(r, now, w.f)
		v.Metrics = t.healthFeatures(h, now, w.window, w.f)
	}
	if r.gasBase.set || r.tputBase.set {
		v.Baseline = map[string]float64{}
		if r.gasBase.set {
			v.Baseline["gas.price"] = r.gasBase.v
		}
		if r.tputBase.set {
			v.Baseline["messages.throughput"] = r.tputBase.v
		}
	}
	stuckLimit := now - int64(t.cfg.StuckAfter)
	for _, m := range r.pending.oldest(t.cfg.MaxEvidence) {
		if m.begin > stuckLimit {
			break
		}
		v.Stuck = append(v.Stuck, t.stuck(m, now))
	}
	reported := make([]StuckMessage, 0, len(r.reported))
	for i := range r.reported {
		reported = append(reported, r.reported[(r.reportedNext+i)%len(r.reported)])
	}
	sort.SliceStable(reported, func(i, j int) bool { return reported[i].Since.Before(reported[j].Since) })
	v.Stuck = append(v.Stuck, reported...)
	return v
}

func pendingFeatures(r *relayerState, now int64, f map[string]float64) {
	f["messages.pending"] = float64(r.pending.len())
	if m := r.pending.min(); m != nil {
		f["messages.oldest_pending_age_s"] = max(0, float64(now-m.begin)/1e9)
	} else {
		f["messages.oldest_pending_age_s"] = 0
	}
}

// Routes returns the message features per route, keyed "source->destination",
// merging the sketches and counts of every relayer on the route.
func (t *Tracker) Routes(now time.Time) map[string]RouteView {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := now.UnixNano()
	groups := map[string][]*relayerState{}
	for _, r := range t.relayers {
		r.advance(n, t.alpha)
		k := r.src + "->" + r.dst
		groups[k] = append(groups[k], r)
	}
	out := make(map[string]RouteView, len(groups))
	for k, rs := range groups {
		v := RouteView{SourceChain: rs[0].src, DestinationChain: rs[0].dst,
			Features: map[string]float64{}, Features5m: map[string]float64{}}
		var pending int
		var oldest int64 = -1
		for _, r := range rs {
			v.Relayers = append(v.Relayers, r.id)
			pending += r.pending.len()
			if m := r.pending.min(); m != nil && (oldest < 0 || m.begin < oldest) {
				oldest = m.begin
			}
		}
		sort.Strings(v.Relayers)
		for _, w := range []struct {
			f      map[string]float64
			window time.Duration
		}{{v.Features, shortWindow}, {v.Features5m, longWindow}} {
			var a windowAgg
			for _, r := range rs {
				r.aggregate(&a, n, w.window)
			}
			a.features(w.f)
			w.f["messages.pending"] = float64(pending)
			w.f["messages.oldest_pending_age_s"] = 0
			if oldest >= 0 {
				w.f["messages.oldest_pending_age_s"] = max(0, float64(n-oldest)/1e9)
			}
		}
		out[k] = v
	}
	return out
}
