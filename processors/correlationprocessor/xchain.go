package correlationprocessor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/graph"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/xchain"
)

// xchainStorageName is the name of the storage client the tracker gets
// from the storage extension.
const xchainStorageName = "xchain"

// startXChain creates the cross-chain tracker with the storage client of
// xchain::storage, when set, and loads the messages kept there.
func (p *correlationProcessor) startXChain(ctx context.Context, host component.Host) (*xchain.Tracker, error) {
	var client storage.Client
	if id := p.cfg.XChain.Storage; id != nil {
		ext, ok := host.GetExtensions()[*id]
		if !ok {
			return nil, fmt.Errorf("xchain::storage: extension %q is not configured; add it under extensions and to service::extensions", id)
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			return nil, fmt.Errorf("xchain::storage: extension %q is not a storage extension (use file_storage)", id)
		}
		var err error
		client, err = se.GetClient(ctx, component.KindProcessor, p.id, xchainStorageName)
		if err != nil {
			return nil, fmt.Errorf("xchain::storage: getting a client from %q: %w", id, err)
		}
	}
	tr, err := xchain.New(p.cfg.XChain.Tracker(), xchain.Settings{
		Storage:       client,
		Now:           func() time.Time { return p.now() },
		Logger:        p.logger.With(zap.String("part", "xchain")),
		MeterProvider: p.telset.MeterProvider,
	})
	if err != nil {
		if client != nil {
			_ = client.Close(ctx)
		}
		return nil, fmt.Errorf("xchain: %w", err)
	}
	if err := tr.Start(ctx); err != nil {
		_ = tr.Shutdown(ctx)
		return nil, fmt.Errorf("xchain::storage: %w", err)
	}
	return tr, nil
}

// observeSpans feeds the spans carrying xchain.* attributes to the
// tracker as one batch, timestamped with their end time, and returns the
// storage write to commit (writeXChain) outside the telemetry clock.
func (p *correlationProcessor) observeSpans(ctx context.Context, td ptrace.Traces) *xchain.Write {
	tr := p.xchain.Load()
	if tr == nil {
		return nil
	}
	var b eventBatch
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		_, resHasID := res.Get(xchain.AttrMessageID)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if !resHasID && !hasMessageID(sp.Attributes()) {
					continue // the common case: not a cross-chain event
				}
				ev, ok, err := xchain.EventFromAttributes(res, sp.Attributes(), sp.EndTimestamp().AsTime())
				if ok && err == nil && ev.Relayer == "" && (sp.Kind() == ptrace.SpanKindClient || sp.Kind() == ptrace.SpanKindProducer) {
					// A call to the relayer names it as the graph does:
					// by peer.service (identity::peer_service).
					ev.Relayer = p.peerService(sp.Attributes())
				}
				b.add(ev, ok, err)
			}
		}
	}
	return p.observeEvents(ctx, tr, &b)
}

func (p *correlationProcessor) peerService(attrs pcommon.Map) string {
	for _, k := range p.cfg.Identity.PeerService {
		if v, ok := attrs.Get(k); ok && v.Str() != "" {
			return v.Str()
		}
	}
	return ""
}

// observeLogs feeds the log records carrying xchain.* attributes to the
// tracker as one batch, timestamped with the record's time (its observed
// time when it has none), and returns the storage write as observeSpans.
func (p *correlationProcessor) observeLogs(ctx context.Context, ld plog.Logs) *xchain.Write {
	tr := p.xchain.Load()
	if tr == nil {
		return nil
	}
	var b eventBatch
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		_, resHasID := res.Get(xchain.AttrMessageID)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				if !resHasID && !hasMessageID(lr.Attributes()) {
					continue
				}
				ts := lr.Timestamp()
				if ts == 0 {
					ts = lr.ObservedTimestamp()
				}
				b.add(xchain.EventFromAttributes(res, lr.Attributes(), ts.AsTime()))
			}
		}
	}
	return p.observeEvents(ctx, tr, &b)
}

func hasMessageID(attrs pcommon.Map) bool {
	_, ok := attrs.Get(xchain.AttrMessageID)
	return ok
}

// eventBatch collects one pdata batch's cross-chain events and counts the
// records whose xchain.* attributes were malformed.
type eventBatch struct {
	events   []xchain.Event
	rejected int64
	firstErr error
}

func (b *eventBatch) add(ev xchain.Event, ok bool, err error) {
	switch {
	case err != nil:
		b.rejected++
		if b.firstErr == nil {
			b.firstErr = err
		}
	case ok:
		b.events = append(b.events, ev)
	}
}

func (p *correlationProcessor) observeEvents(ctx context.Context, tr *xchain.Tracker, b *eventBatch) *xchain.Write {
	if b.rejected > 0 {
		p.tel.xchainRejected.Add(ctx, b.rejected)
		p.logger.Debug("Cross-chain events with malformed xchain.* attributes were left out", zap.Int64("count", b.rejected), zap.Error(b.firstErr))
	}
	if len(b.events) == 0 {
		return nil
	}
	w, err := tr.RecordBatch(b.events)
	if err != nil {
		p.logger.Warn("Some cross-chain events were not recorded", zap.Error(err))
	}
	return w
}

// relayerMetricNames are the metric names the tracker reads: Hermes
// metrics with and without _total, and the configured chain head names.
func relayerMetricNames(latestHeight, finalizedHeight []string) map[string]bool {
	names := map[string]bool{}
	for _, n := range []string{
		xchain.MetricBacklogSize, xchain.MetricBacklogOldestSequence, xchain.MetricBacklogOldestTimestamp,
		xchain.MetricWalletBalance, xchain.MetricTxLatencySubmitted, xchain.MetricTxLatencyConfirmed,
		xchain.MetricWSReconnect, xchain.MetricBroadcastErrors, xchain.MetricClientMisbehaviours, xchain.MetricWorkers,
	} {
		names[n], names[n+"_total"] = true, true
	}
	for _, n := range latestHeight {
		names[n] = true
	}
	for _, n := range finalizedHeight {
		names[n] = true
	}
	return names
}

// observeRelayerMetrics feeds relayer metric data points to the tracker:
// gauge and sum values as they are, histograms as the mean of their new
// observations in milliseconds.
func (p *correlationProcessor) observeRelayerMetrics(md pmetric.Metrics) {
	tr := p.xchain.Load()
	if tr == nil {
		return
	}
	now := p.now()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if !p.relayerMetrics[m.Name()] {
					continue
				}
				p.observeRelayerMetric(tr, res, m, now)
			}
		}
	}
}

func (p *correlationProcessor) observeRelayerMetric(tr *xchain.Tracker, res pcommon.Map, m pmetric.Metric, now time.Time) {
	number := func(dps pmetric.NumberDataPointSlice) {
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			v := dp.DoubleValue()
			if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
				v = float64(dp.IntValue())
			}
			tr.ObserveScopeMetric(xchain.ScopeFromMetric(res, dp.Attributes()), m.Name(), v, tsOr(dp.Timestamp(), now))
		}
	}
	scale := 1.0
	if m.Unit() == "s" {
		scale = 1000
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		number(m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		number(m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		delta := m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := m.Histogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if !dp.HasSum() {
				continue
			}
			if mean, ok := p.hist.mean(res, m.Name(), dp.Attributes(), dp.Sum(), dp.Count(), delta, now); ok {
				tr.ObserveScopeMetric(xchain.ScopeFromMetric(res, dp.Attributes()), m.Name(), mean*scale, tsOr(dp.Timestamp(), now))
			}
		}
	case pmetric.MetricTypeExponentialHistogram:
		delta := m.ExponentialHistogram().AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if !dp.HasSum() {
				continue
			}
			if mean, ok := p.hist.mean(res, m.Name(), dp.Attributes(), dp.Sum(), dp.Count(), delta, now); ok {
				tr.ObserveScopeMetric(xchain.ScopeFromMetric(res, dp.Attributes()), m.Name(), mean*scale, tsOr(dp.Timestamp(), now))
			}
		}
	}
}

func tsOr(ts pcommon.Timestamp, now time.Time) time.Time {
	if ts == 0 {
		return now
	}
	return ts.AsTime()
}

// histMeans keeps the last sum and count of each cumulative relayer
// histogram series, so that each data point yields the mean of the
// observations since the previous one. The table is bounded: series not
// updated for the staleness period are removed first, then new series are
// dropped and counted.
type histMeans struct {
	max       int
	staleness time.Duration
	tel       *telemetry

	mu   sync.Mutex
	last map[string]histPoint
	key  strings.Builder
}

type histPoint struct {
	sum   float64
	count uint64
	seen  time.Time
}

func newHistMeans(max int, staleness time.Duration, tel *telemetry) *histMeans {
	return &histMeans{max: max, staleness: staleness, tel: tel, last: map[string]histPoint{}}
}

// mean returns the mean of the observations a data point adds.
func (h *histMeans) mean(res pcommon.Map, name string, attrs pcommon.Map, sum float64, count uint64, delta bool, now time.Time) (float64, bool) {
	if delta {
		if count == 0 {
			return 0, false
		}
		return sum / float64(count), true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.key.Reset()
	h.key.WriteString(name)
	for _, m := range []pcommon.Map{res, attrs} {
		h.key.WriteByte(0)
		m.Range(func(k string, v pcommon.Value) bool {
			h.key.WriteString(k)
			h.key.WriteByte('=')
			h.key.WriteString(v.AsString())
			h.key.WriteByte(0)
			return true
		})
	}
	key := h.key.String()
	prev, ok := h.last[key]
	if !ok && len(h.last) >= h.max {
		for k, v := range h.last {
			if now.Sub(v.seen) > h.staleness {
				delete(h.last, k)
			}
		}
		if len(h.last) >= h.max {
			h.tel.xchainHistDropped.Add(bgCtx, 1)
			return 0, false
		}
	}
	h.last[key] = histPoint{sum: sum, count: count, seen: now}
	if !ok || count < prev.count || sum < prev.sum {
		// First point of a series, or a reset: the cumulative values are
		// the new observations (the series started counting recently).
		if count == 0 {
			return 0, false
		}
		return sum / float64(count), true
	}
	if count == prev.count {
		return 0, false
	}
	return (sum - prev.sum) / float64(count-prev.count), true
}

// augmentXChain merges the cross-chain tracker's relayer views into the
// relayer entities of snap.
func (p *correlationProcessor) augmentXChain(snap *entity.Snapshot, at time.Time) {
	tr := p.xchain.Load()
	if tr == nil {
		return
	}
	for id, v := range tr.Features(at) {
		graph.Merge(snap, relayerEntity(id, v))
	}
}

// relayerEntity is the relayer entity of a tracker view, named and
// attributed as the graph names relayer entities.
func relayerEntity(id string, v xchain.RelayerView) entity.Entity {
	e := entity.Entity{
		Ref: entity.Ref{Type: entity.Relayer, ID: id, Name: v.Relayer + " " + v.SourceChain + "->" + v.DestinationChain},
		Attributes: map[string]string{
			"service.name":             v.Relayer,
			"xchain.source.chain":      v.SourceChain,
			"xchain.destination.chain": v.DestinationChain,
		},
		Features:   v.Features,
		Features5m: v.Features5m,
		Baseline:   v.Baseline,
		Metrics:    v.Metrics,
	}
	if len(v.Stuck) > 0 {
		e.Evidence.Stuck = make([]entity.StuckMessage, len(v.Stuck))
		for i, s := range v.Stuck {
			e.Evidence.Stuck[i] = stuckMessage(s)
		}
	}
	return e
}

func stuckMessage(s xchain.StuckMessage) entity.StuckMessage {
	out := entity.StuckMessage{
		MessageID:        s.MessageID,
		Status:           s.Status,
		Relayer:          s.Relayer,
		SourceChain:      s.SourceChain,
		DestinationChain: s.DestinationChain,
		Since:            s.Since,
		AgeSeconds:       s.AgeSeconds,
		LastStage:        s.LastStage.String(),
	}
	if len(s.Stages) > 0 {
		out.Stages = make([]entity.MessageStage, len(s.Stages))
		for i, st := range s.Stages {
			out.Stages[i] = entity.MessageStage{Stage: st.Stage.String(), Time: st.Time, SourceTxHash: st.SourceTxHash, DestinationTxHash: st.DestinationTxHash}
		}
	}
	return out
}
