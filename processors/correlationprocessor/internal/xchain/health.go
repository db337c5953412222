package xchain

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/junction-sre/junction/entity"
)

// Hermes relayer metric names (its telemetry endpoint), accepted by
// ObserveMetric with or without a trailing "_total".
const (
	MetricBacklogSize            = "backlog_size"
	MetricBacklogOldestSequence  = "backlog_oldest_sequence"
	MetricBacklogOldestTimestamp = "backlog_oldest_timestamp"
	MetricWalletBalance          = "wallet_balance"
	MetricTxLatencySubmitted     = "tx_latency_submitted"
	MetricTxLatencyConfirmed     = "tx_latency_confirmed"
	MetricWSReconnect            = "ws_reconnect"
	MetricBroadcastErrors        = "broadcast_errors"
	MetricClientMisbehaviours    = "client_misbehaviours_submitted"
	MetricWorkers                = "workers"
	// Chain heads, under whichever names Config.Metrics lists.
	MetricChainLatestHeight    = "chain_latest_height"
	MetricChainFinalizedHeight = "chain_finalized_height"
)

// Labels read by ScopeFromMetric for the chains, first found wins: the
// xchain.* attributes, then Hermes' labels (chain/counterparty on path
// metrics, src_chain/dst_chain on client metrics), then common exporter
// spellings.
var (
	sourceChainLabels      = []string{AttrSourceChain, "chain", "src_chain", "chain_id"}
	destinationChainLabels = []string{AttrDestinationChain, "counterparty", "dst_chain", "counterparty_chain", "counterparty_chain_id"}
)

// Scope is the label set a relayer metric belongs to:
//   - a route: Relayer, SourceChain and DestinationChain set (backlog_*,
//     tx_latency_*: Hermes' chain and counterparty labels);
//   - a chain of a relayer: DestinationChain empty (wallet_balance,
//     ws_reconnect: Hermes' chain label alone);
//   - a whole relayer: both chains empty (workers, broadcast_errors);
//   - a chain for every relayer: Relayer and DestinationChain empty.
//     Chain head heights always go to this scope, whoever exports them.
type Scope struct {
	Relayer          string
	SourceChain      string
	DestinationChain string
}

// ID is the scope's key; for a route it is the relayer entity's id.
func (s Scope) ID() string {
	return entity.ID(entity.Relayer, s.Relayer, s.SourceChain, s.DestinationChain)
}

func (s Scope) isRoute() bool {
	return s.Relayer != "" && s.SourceChain != "" && s.DestinationChain != ""
}

// ScopeFromMetric reads the scope of a metric data point: the relayer from
// xchain.relayer or the resource's service.name, the chains from the data
// point's labels (chain + counterparty, src_chain + dst_chain, ...; a
// source chain alone is a chain scope, a destination alone is ignored).
func ScopeFromMetric(resource, attrs pcommon.Map) Scope {
	str := func(m pcommon.Map, key string) string {
		if v, ok := m.Get(key); ok {
			return v.AsString()
		}
		return ""
	}
	s := Scope{Relayer: str(attrs, AttrRelayer)}
	if s.Relayer == "" {
		s.Relayer = str(resource, AttrRelayer)
	}
	if s.Relayer == "" {
		s.Relayer = str(resource, attrServiceName)
	}
	first := func(keys []string) string {
		for _, k := range keys {
			if v := str(attrs, k); v != "" {
				return v
			}
		}
		return ""
	}
	s.SourceChain = first(sourceChainLabels)
	if s.SourceChain != "" {
		s.DestinationChain = first(destinationChainLabels)
	}
	return s
}

// series keeps a metric's recent samples, at least spacing apart except
// the newest, which is always the latest value.
type series struct {
	s       [seriesCap]sample
	head, n int
	spacing int64
}

const seriesCap = 64

type sample struct {
	t int64
	v float64
}

func (s *series) at(i int) sample { return s.s[(s.head+i)%seriesCap] }

func (s *series) add(t int64, v float64) {
	if s.n > 0 && t < s.at(s.n-1).t {
		return // out of order
	}
	if s.n >= 2 && t-s.at(s.n-2).t < s.spacing {
		s.s[(s.head+s.n-1)%seriesCap] = sample{t, v}
		return
	}
	if s.n == seriesCap {
		s.head = (s.head + 1) % seriesCap
		s.n--
	}
	s.s[(s.head+s.n)%seriesCap] = sample{t, v}
	s.n++
}

// window returns the indexes [i, n) of the samples at or after from.
func (s *series) window(from int64) int {
	i := 0
	for i < s.n && s.at(i).t < from {
		i++
	}
	return i
}

// pair returns the index of the first sample of the window ending at now,
// when the window holds at least two samples to compare.
func (s *series) pair(now int64, w time.Duration) (int, bool) {
	if s == nil {
		return 0, false
	}
	i := s.window(now - int64(w))
	return i, s.n-i >= 2
}

// counterRate is the increase per second of a cumulative counter, with
// resets (a drop) counted as a restart from zero.
func (s *series) counterRate(now int64, w time.Duration) (float64, bool) {
	i, ok := s.pair(now, w)
	if !ok {
		return 0, false
	}
	var inc float64
	for j := i + 1; j < s.n; j++ {
		d := s.at(j).v - s.at(j-1).v
		if d < 0 {
			d = s.at(j).v
		}
		inc += d
	}
	dt := float64(s.at(s.n-1).t-s.at(i).t) / 1e9
	if dt <= 0 {
		return 0, false
	}
	return inc / dt, true
}

// slope is the change per second of a gauge over the window.
func (s *series) slope(now int64, w time.Duration) (float64, bool) {
	i, ok := s.pair(now, w)
	if !ok {
		return 0, false
	}
	a, b := s.at(i), s.at(s.n-1)
	dt := float64(b.t-a.t) / 1e9
	if dt <= 0 {
		return 0, false
	}
	return (b.v - a.v) / dt, true
}

// burnPerHour is the sum of the decreases of a balance per hour over the
// window; top-ups (increases) do not offset spending.
func (s *series) burnPerHour(now int64, w time.Duration) (float64, bool) {
	i, ok := s.pair(now, w)
	if !ok {
		return 0, false
	}
	var spent float64
	for j := i + 1; j < s.n; j++ {
		if d := s.at(j-1).v - s.at(j).v; d > 0 {
			spent += d
		}
	}
	dt := float64(s.at(s.n-1).t-s.at(i).t) / 1e9 / 3600
	if dt <= 0 {
		return 0, false
	}
	return spent / dt, true
}

// secondsPerBlock is the block time measured from a height series.
func (s *series) secondsPerBlock(now int64, w time.Duration) (float64, bool) {
	i, ok := s.pair(now, w)
	if !ok {
		return 0, false
	}
	a, b := s.at(i), s.at(s.n-1)
	if b.v <= a.v {
		return 0, false
	}
	return float64(b.t-a.t) / 1e9 / (b.v - a.v), true
}

// scopeState holds the last value of each metric of one scope, and the
// series of the metrics whose rate matters.
type scopeState struct {
	scope  Scope
	last   map[string]sample
	series map[string]*series
	seen   int64
}

// metricKind says which series a metric keeps.
func (t *Tracker) seriesSpacing(name string) (int64, bool) {
	switch name {
	case MetricWalletBalance:
		return int64(t.cfg.BurnRateWindow) / (seriesCap - 4), true
	case MetricBacklogSize, MetricBroadcastErrors, MetricWSReconnect, MetricChainLatestHeight:
		return int64(longWindow) / (seriesCap - 4), true
	}
	return 0, false
}

// knownMetric returns the name a metric is kept under, and whether it is
// read at all.
func (t *Tracker) knownMetric(name string) (string, bool) {
	if slices.Contains(t.cfg.Metrics.LatestHeight, name) {
		return MetricChainLatestHeight, true
	}
	if slices.Contains(t.cfg.Metrics.FinalizedHeight, name) {
		return MetricChainFinalizedHeight, true
	}
	name = strings.TrimSuffix(name, "_total")
	switch name {
	case MetricBacklogSize, MetricBacklogOldestSequence, MetricBacklogOldestTimestamp,
		MetricWalletBalance, MetricTxLatencySubmitted, MetricTxLatencyConfirmed,
		MetricWSReconnect, MetricBroadcastErrors, MetricClientMisbehaviours, MetricWorkers:
		return name, true
	}
	return "", false
}

// ParseScopeID reads back a Scope from its ID. Names containing "/" are
// ambiguous in an id and are refused.
func ParseScopeID(id string) (Scope, error) {
	prefix := string(entity.Relayer) + ":"
	if !strings.HasPrefix(id, prefix) {
		return Scope{}, fmt.Errorf("%q is not a relayer entity or scope id (want %s<relayer>/<source chain>/<destination chain>)", id, prefix)
	}
	parts := strings.Split(id[len(prefix):], "/")
	if len(parts) != 3 {
		return Scope{}, fmt.Errorf("%q has %d parts, want <relayer>/<source chain>/<destination chain> without \"/\" in the names", id, len(parts))
	}
	return Scope{Relayer: parts[0], SourceChain: parts[1], DestinationChain: parts[2]}, nil
}

// ObserveMetric records one relayer metric value for a relayer entity or
// scope id (Scope.ID, e.g. ScopeFromMetric(resource, attrs).ID()): a
// Hermes metric or a chain head height (Config.Metrics). For histograms
// (tx_latency_*) pass the mean of the new observations in milliseconds. It
// reports false when the name is not one it reads, the value is not
// finite, the id is not a relayer id, or the scope table is full
// (counted).
func (t *Tracker) ObserveMetric(relayerID string, name string, value float64, ts time.Time) bool {
	s, err := ParseScopeID(relayerID)
	if err != nil {
		return false
	}
	return t.ObserveScopeMetric(s, name, value, ts)
}

// ObserveScopeMetric is ObserveMetric for a Scope, for names that contain
// "/".
func (t *Tracker) ObserveScopeMetric(s Scope, name string, value float64, ts time.Time) bool {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	name, ok := t.knownMetric(name)
	if !ok {
		return false
	}
	now := t.now().UnixNano()
	tsn := ts.UnixNano()
	if ts.IsZero() {
		tsn = now
	}
	if name == MetricChainLatestHeight || name == MetricChainFinalizedHeight {
		// Chain heads are facts about a chain, whoever exports them (a
		// node exporter, a relayer): one scope per chain.
		s = Scope{SourceChain: s.SourceChain}
	}
	id := s.ID()
	sc := t.scopes[id]
	if sc == nil {
		if len(t.scopes) >= t.cfg.MaxMetricScopes {
			t.gcScopes(now)
		}
		if len(t.scopes) >= t.cfg.MaxMetricScopes {
			t.counts.ScopesDropped++
			t.tel.scopesDropped.Add(t.ctx, 1)
			return false
		}
		sc = &scopeState{scope: s, last: map[string]sample{}, series: map[string]*series{}}
		t.scopes[id] = sc
	}
	sc.seen = max(sc.seen, tsn)
	if prev, ok := sc.last[name]; !ok || tsn >= prev.t {
		sc.last[name] = sample{tsn, value}
	}
	if spacing, ok := t.seriesSpacing(name); ok {
		sr := sc.series[name]
		if sr == nil {
			sr = &series{spacing: spacing}
			sc.series[name] = sr
		}
		sr.add(tsn, value)
	}
	return true
}

// gcScopes removes scopes not updated for longer than the longest window
// their values are used in.
func (t *Tracker) gcScopes(now int64) {
	keep := int64(max(t.cfg.BurnRateWindow, t.cfg.MetricStaleness, longWindow))
	for id, sc := range t.scopes {
		if now-sc.seen > keep {
			delete(t.scopes, id)
		}
	}
}

// healthScopes are the scope ids a relayer entity reads its metrics from,
// in order of preference, per kind of metric.
type healthScopes struct {
	route, reverse, relayer, src, dst, anySrc, anyDst string
}

func scopesOf(r *relayerState) healthScopes {
	return healthScopes{
		route:   Scope{r.relayer, r.src, r.dst}.ID(),
		reverse: Scope{r.relayer, r.dst, r.src}.ID(),
		relayer: Scope{Relayer: r.relayer}.ID(),
		src:     Scope{Relayer: r.relayer, SourceChain: r.src}.ID(),
		dst:     Scope{Relayer: r.relayer, SourceChain: r.dst}.ID(),
		anySrc:  Scope{SourceChain: r.src}.ID(),
		anyDst:  Scope{SourceChain: r.dst}.ID(),
	}
}

// order returns where a metric is looked up for an entity: backlog is per
// route, labelled with the source chain as Hermes' chain; tx latency is
// labelled with the chain the transaction went to, the destination for
// relaying src→dst, so the reverse label pair comes first; the wallet that pays for relaying src→dst is on
// the destination chain; chain heads are the source chain's (whoever
// reports them; finalityFeatures reads the destination's too);
// relayer-wide values come last.
func (t *Tracker) order(h healthScopes, name string) []string {
	switch name {
	case MetricWalletBalance:
		return []string{h.dst, h.relayer}
	case MetricChainLatestHeight, MetricChainFinalizedHeight:
		return []string{h.anySrc}
	case MetricTxLatencySubmitted, MetricTxLatencyConfirmed:
		return []string{h.reverse, h.route, h.dst, h.relayer}
	case MetricBroadcastErrors, MetricWSReconnect, MetricWorkers, MetricClientMisbehaviours:
		return []string{h.route, h.dst, h.src, h.relayer}
	}
	return []string{h.route, h.relayer}
}

// lookup finds the freshest-scoped value of a metric for an entity.
func (t *Tracker) lookup(h healthScopes, name string, now int64) (sample, *scopeState, bool) {
	for _, id := range t.order(h, name) {
		sc := t.scopes[id]
		if sc == nil {
			continue
		}
		if v, ok := sc.last[name]; ok && now-v.t <= int64(t.cfg.MetricStaleness) {
			return v, sc, true
		}
	}
	return sample{}, nil, false
}

// finalityFeatures writes finality.lag_blocks and finality.lag_s: the lag
// of whichever of the route's two chains lags longer. Relaying waits for
// the source chain's finality (a packet is relayed from a finalized
// height) and the acknowledgement for the destination's (it is relayed
// back from a finalized height there), so either chain's lag delays the
// route's messages. Lags are compared in seconds (blocks x the chain's
// block time, measured from its latest height over the long window
// whatever the feature's window: a minute holds too few blocks on slow
// chains); a chain whose block time is not known yet is compared in
// blocks only while no chain has a lag in seconds.
func (t *Tracker) finalityFeatures(h healthScopes, now int64, f map[string]float64) {
	found, haveSecs := false, false
	var lagBlocks, lagSecs float64
	for _, id := range []string{h.anySrc, h.anyDst} {
		sc := t.scopes[id]
		if sc == nil {
			continue
		}
		latest, okL := sc.last[MetricChainLatestHeight]
		final, okF := sc.last[MetricChainFinalizedHeight]
		stale := int64(t.cfg.MetricStaleness)
		if !okL || !okF || now-latest.t > stale || now-final.t > stale {
			continue
		}
		lag := max(0, latest.v-final.v)
		spb, okS := sc.series[MetricChainLatestHeight].secondsPerBlock(now, longWindow)
		switch {
		case okS && (!haveSecs || lag*spb > lagSecs):
			lagBlocks, lagSecs, haveSecs = lag, lag*spb, true
		case !okS && !haveSecs && (!found || lag > lagBlocks):
			lagBlocks = lag
		}
		found = true
	}
	if !found {
		return
	}
	f["finality.lag_blocks"] = lagBlocks
	if haveSecs {
		f["finality.lag_s"] = lagSecs
	}
}

// healthFeatures writes the relayer health features over window w and
// returns the raw metric values joined onto the entity.
func (t *Tracker) healthFeatures(h healthScopes, now int64, w time.Duration, f map[string]float64) map[string]float64 {
	var raw map[string]float64
	names := []string{MetricBacklogSize, MetricBacklogOldestSequence, MetricBacklogOldestTimestamp,
		MetricWalletBalance, MetricTxLatencySubmitted, MetricTxLatencyConfirmed, MetricWSReconnect,
		MetricBroadcastErrors, MetricClientMisbehaviours, MetricWorkers,
		MetricChainLatestHeight, MetricChainFinalizedHeight}
	for _, name := range names {
		if v, _, ok := t.lookup(h, name, now); ok {
			if raw == nil {
				raw = make(map[string]float64, len(names))
			}
			raw[name] = v.v
		}
	}
	if raw == nil {
		return nil
	}
	if v, ok := raw[MetricBacklogSize]; ok {
		f["backlog.size"] = v
		if _, sc, _ := t.lookup(h, MetricBacklogSize, now); sc != nil {
			if g, ok := sc.series[MetricBacklogSize].slope(now, w); ok {
				f["backlog.growth_rate"] = g
			}
		}
		if v == 0 {
			f["backlog.oldest_age_s"] = 0
		}
	}
	if ts, ok := raw[MetricBacklogOldestTimestamp]; ok && ts > 0 && f["backlog.size"] != 0 {
		// Hermes writes seconds since the epoch; accept milliseconds too.
		if ts > 1e11 {
			ts /= 1000
		}
		f["backlog.oldest_age_s"] = max(0, float64(now)/1e9-ts)
	}
	if v, ok := raw[MetricWalletBalance]; ok {
		f["wallet.balance"] = v
		if _, sc, _ := t.lookup(h, MetricWalletBalance, now); sc != nil {
			if burn, ok := sc.series[MetricWalletBalance].burnPerHour(now, t.cfg.BurnRateWindow); ok {
				f["wallet.burn_rate_per_hour"] = burn
				if burn > 0 {
					f["wallet.hours_left"] = v / burn
				}
			}
		}
	}
	t.finalityFeatures(h, now, f)
	if v, ok := raw[MetricTxLatencyConfirmed]; ok {
		f["tx.latency_confirmed_ms"] = v
	}
	if _, sc, ok := t.lookup(h, MetricBroadcastErrors, now); ok {
		if r, ok := sc.series[MetricBroadcastErrors].counterRate(now, w); ok {
			f["broadcast.errors_rate"] = r
		}
	}
	return raw
}
