package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/derived"
)

// Options configure a Store. Every field is required; the exporter's
// config supplies validated values.
type Options struct {
	Dir           string
	Retention     time.Duration
	FlushInterval time.Duration
	MinFreeBytes  uint64
	// MaxEntities, MaxEdges and MaxRules bound the in-memory latest state.
	MaxEntities int
	MaxEdges    int
	MaxRules    int
	// EntityTTL drops entities and edges not updated for this long, and is
	// how far back the latest state is rebuilt from storage at open.
	EntityTTL time.Duration
	// MaxAlertInstances bounds the alert instances kept; MaxAlertHistory
	// the state transitions kept per instance; AlertLogMaxBytes the alert
	// log's size before it is compacted.
	MaxAlertInstances int
	MaxAlertHistory   int
	AlertLogMaxBytes  int64
	// GraphWindow is how far back the graph rollup reaches; GraphMaxSeries
	// bounds its series.
	GraphWindow    time.Duration
	GraphMaxSeries int
	// Now is the clock; time.Now in production.
	Now func() time.Time
}

// Stats are the store's counters, read by the exporter's own telemetry.
type Stats struct {
	SamplesWritten  int64 // samples written to series storage
	SamplesSkipped  int64 // data points of unsupported types (histograms, summaries)
	SamplesRejected int64 // samples not stored because storage was read-only (disk full)
	SamplesNoEntity int64 // data points of other metrics without junction.entity.id
	EntityDrops     int64 // entities not kept: max_entities reached
	EdgeDrops       int64 // edges not kept: max_edges reached
	RuleDrops       int64 // rule statuses not kept: max_rules reached
	EntityEvictions int64 // entities and edges dropped after entity_ttl
	RollupRefused   int64 // graph rollup series refused: graph_cache.max_series reached
	Alerts          AlertLogStats
	AlertInstances  int
	Entities        int
	Edges           int
}

type sample struct {
	v float64
	t int64 // Unix ms
}

type entityState struct {
	ref        entity.Ref
	virtual    bool
	attributes map[string]string
	features   map[string]sample
	updated    int64
	// roll caches the entity's graph rollup series, by nodeStats index.
	roll [len(nodeStatsArr)]*rollupSeries
}

type edgeState struct {
	source, target string
	typ            entity.EdgeType
	features       map[string]sample
	updated        int64
	// roll caches the edge's graph rollup series, by edgeStats index.
	roll [numEdgeStats]*rollupSeries
}

// Store holds series, alerts and the latest state. It is safe for
// concurrent use.
type Store struct {
	opts   Options
	series *Series

	// stateMu guards entities, edges and rules.
	stateMu  sync.RWMutex
	entities map[string]*entityState
	edges    map[string]*edgeState
	rules    map[string]alert.RuleStatus

	// rollup has its own lock, taken after stateMu.
	rollup *rollup
	// keyBuf and edgeKeyBuf are scratch buffers guarded by stateMu.
	keyBuf, edgeKeyBuf []byte

	// alertMu guards alerts.
	alertMu sync.Mutex
	alerts  *alertLog

	dirtySeries atomic.Bool
	closed      atomic.Bool

	samplesWritten, samplesSkipped, samplesRejected atomic.Int64
	samplesNoEntity                                 atomic.Int64
	entityDrops, edgeDrops, ruleDrops, ttlEvictions atomic.Int64

	ingestPool sync.Pool
}

// maxAttributes bounds the attributes kept per entity.
const maxAttributes = 64

// Open checks the data directory, opens series storage and the alert log
// and rebuilds the latest state from storage. Errors wrap ErrStorage when
// the directory is the problem.
func Open(opts Options) (*Store, error) {
	if err := CheckDirectory(opts.Dir, opts.MinFreeBytes); err != nil {
		return nil, err
	}
	now := opts.Now()
	al, err := openAlertLog(opts.Dir, opts.AlertLogMaxBytes, opts.MaxAlertInstances, opts.MaxAlertHistory, opts.Retention, now)
	if err != nil {
		return nil, err
	}
	s := &Store{
		opts:     opts,
		series:   OpenSeries(opts.Dir, opts.Retention, opts.FlushInterval, opts.MinFreeBytes),
		entities: make(map[string]*entityState),
		edges:    make(map[string]*edgeState),
		rules:    make(map[string]alert.RuleStatus),
		alerts:   al,
		rollup:   newRollup(opts.GraphWindow.Milliseconds(), opts.GraphMaxSeries),
	}
	if err := s.rebuild(now); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.rebuildRollup(now); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close flushes everything and closes the storage. It is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.alertMu.Lock()
	closing := s.alerts.Close()
	s.alertMu.Unlock()
	err := closing.run()
	s.series.Close()
	return err
}

// Flush makes everything received so far durable: series are written to
// disk and the alert log is fsync'd. Shutdown calls it; a kill -9 right
// after it loses nothing it covered.
func (s *Store) Flush() error {
	var errs []error
	// A read-only (full) storage cannot take a snapshot: VictoriaMetrics
	// would end the process.
	if !s.series.ReadOnly() && s.dirtySeries.Swap(false) {
		if err := s.series.Sync(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, s.Checkpoint())...)
}

// Checkpoint is what the exporter does every flush interval: it fsyncs the
// alert log and expires idle entities. Series are not forced to disk here:
// VictoriaMetrics' own background flush, set to the same interval at open,
// writes every in-memory part older than the interval, so a kill -9 loses at
// most the series of about two intervals plus its 2 s of pending rows.
// Forcing them (Sync: a snapshot created and deleted) costs work that grows
// with the whole store, not with what changed, every interval.
func (s *Store) Checkpoint() error {
	var errs []error
	// The alert lock covers the queuing, not the fsync (alertLog).
	s.alertMu.Lock()
	flush := s.alerts.Flush()
	s.alertMu.Unlock()
	if flush != nil {
		errs = append(errs, flush.run())
	} else {
		errs = append(errs, s.alerts.LastErr())
	}
	s.expire()
	return errors.Join(errs...)
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	st := Stats{
		SamplesWritten: s.samplesWritten.Load(), SamplesSkipped: s.samplesSkipped.Load(), SamplesRejected: s.samplesRejected.Load(),
		SamplesNoEntity: s.samplesNoEntity.Load(),
		EntityDrops:     s.entityDrops.Load(), EdgeDrops: s.edgeDrops.Load(), RuleDrops: s.ruleDrops.Load(),
		EntityEvictions: s.ttlEvictions.Load(),
	}
	s.rollup.mu.Lock()
	st.RollupRefused = s.rollup.refused
	s.rollup.mu.Unlock()
	s.alertMu.Lock()
	st.Alerts = s.alerts.stats
	st.AlertInstances = len(s.alerts.instances)
	s.alertMu.Unlock()
	s.stateMu.RLock()
	st.Entities, st.Edges = len(s.entities), len(s.edges)
	s.stateMu.RUnlock()
	return st
}

// Health describes whether the store can write.
type Health struct {
	OK        bool   `json:"ok"`
	Path      string `json:"path"`
	FreeBytes uint64 `json:"free_bytes"`
	Reason    string `json:"reason,omitempty"`
}

// Health reports the storage state.
func (s *Store) Health() Health {
	h := Health{OK: true, Path: s.opts.Dir}
	free, err := FreeBytes(s.opts.Dir)
	h.FreeBytes = free
	lastErr := s.alerts.LastErr()
	switch {
	case err != nil:
		h.OK, h.Reason = false, err.Error()
	case s.series.ReadOnly():
		h.OK, h.Reason = false, fmt.Sprintf("series storage is read-only: less than storage.min_free_bytes (%d) free", s.opts.MinFreeBytes)
	case lastErr != nil:
		h.OK, h.Reason = false, "alert log cannot be written: "+lastErr.Error()
	}
	return h
}

// ReadOnly reports whether series storage refuses writes because free
// space fell below storage.min_free_bytes.
func (s *Store) ReadOnly() bool { return s.series.ReadOnly() }

// AddMetrics writes gauge and sum data points as series samples and updates
// the latest entity, edge and rule state. Stored are junction.* metrics,
// ALERTS, and any other metric whose resource carries junction.entity.id;
// the rest is counted (SamplesNoEntity) and skipped. It returns the number of
// samples written.
//
// It works in steps: decode the batch (derived.Decode) and build its
// series rows with no lock held; update the latest state and the graph
// rollup in one locked section that only applies the decoded points; add
// the rows to series storage, which has its own synchronisation.
func (s *Store) AddMetrics(md pmetric.Metrics) int {
	w, _ := s.ingestPool.Get().(*ingest)
	if w == nil {
		w = &ingest{}
	}
	defer func() { w.reset(); s.ingestPool.Put(w) }()

	derived.Decode(&w.batch, md, s.opts.Now().UnixMilli())
	s.samplesNoEntity.Add(int64(w.batch.NoEntity))
	s.samplesSkipped.Add(int64(w.batch.Skipped))
	appendRows(&w.rows, &w.batch)
	s.applyLatest(w)
	return s.writeRows(w.rows.Finish())
}

// ingest is the scratch state of one AddMetrics call, pooled.
type ingest struct {
	batch derived.Batch
	rows  RowBuilder
	// es caches, per resource of the batch, its entity's state (nil
	// before the first feature point or when max_entities is reached).
	es []*entityState
}

func (w *ingest) reset() {
	w.batch.Reset()
	w.rows.Reset()
	clear(w.es)
	w.es = w.es[:0]
}

// appendRows builds one series row per decoded point: the metric name, the
// entity labels of its resource and the point's attributes.
func appendRows(rb *RowBuilder, b *derived.Batch) {
	for i := range b.Points {
		p := &b.Points[i]
		res := &b.Resources[p.Resource]
		rb.StartSeries(p.Metric)
		if res.Entity.ID != "" {
			rb.Label(entity.AttrEntityID, res.Entity.ID)
			rb.Label(entity.AttrEntityType, string(res.Entity.Type))
			rb.Label(entity.AttrEntityName, res.Entity.Name)
			if res.Virtual {
				rb.Label(entity.AttrVirtual, "true")
			}
		}
		for k, av := range p.DataPoint.Attributes().All() {
			rb.Label(k, av.AsString())
		}
		rb.Append(p.Time, p.Value)
	}
}

// applyLatest updates the latest rule, entity and edge state and the graph
// rollup from the decoded points, under stateMu and the rollup's lock.
func (s *Store) applyLatest(w *ingest) {
	b := &w.batch
	w.es = append(w.es[:0], make([]*entityState, len(b.Resources))...)
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.rollup.mu.Lock()
	defer s.rollup.mu.Unlock()
	for i := range b.Points {
		p := &b.Points[i]
		switch p.Kind {
		case derived.RuleStatus:
			s.putRuleLocked(alert.RuleStatusFromDataPoint(p.DataPoint), p.Time)
		case derived.EdgeFeature:
			s.applyEdgeLocked(p)
		case derived.EntityFeature:
			s.applyEntityLocked(w, p)
		}
	}
}

// applyEdgeLocked stores an edge feature point and adds it to the edge's
// rollup series.
func (s *Store) applyEdgeLocked(p *derived.Point) {
	e := p.Edge
	s.edgeKeyBuf = appendEdgeKey(s.edgeKeyBuf[:0], e.Source, e.Target, e.Type)
	es := s.putEdgeFeatureLocked(e.Source, e.Target, e.Type, s.edgeKeyBuf, p.Feature, p.Value, p.Time)
	rk, rolled := rollupFeature[p.Metric]
	if !rolled {
		return
	}
	var rs *rollupSeries
	if es != nil && es.roll[rk.idx] != nil && !es.roll[rk.idx].dead {
		rs = es.roll[rk.idx]
	} else if rs = s.rollEdgeLocked(rk, e.Source, e.Target, e.Type, s.edgeKeyBuf, p.Time); es != nil {
		es.roll[rk.idx] = rs
	}
	if rs != nil {
		rs.add(s.rollup.slots, p.Time, p.Value)
	}
}

// applyEntityLocked stores an entity feature point (creating the entity on
// its resource's first point) and adds it to the entity's rollup series.
func (s *Store) applyEntityLocked(w *ingest, p *derived.Point) {
	res := &w.batch.Resources[p.Resource]
	es := w.es[p.Resource]
	if es == nil {
		es = s.entityLocked(res.Entity, res.Virtual, res.Attributes, p.Time)
		w.es[p.Resource] = es
	}
	if es != nil {
		putFeature(es.features, p.Feature, p.Value, p.Time)
		es.updated = max(es.updated, p.Time)
	}
	rk, rolled := rollupFeature[p.Metric]
	if !rolled {
		return
	}
	var rs *rollupSeries
	if es != nil && es.roll[rk.idx] != nil && !es.roll[rk.idx].dead {
		rs = es.roll[rk.idx]
	} else if rs = s.rollNodeLocked(rk, res.Entity, res.Virtual, p.Time); es != nil {
		es.roll[rk.idx] = rs
	}
	if rs != nil {
		rs.add(s.rollup.slots, p.Time, p.Value)
	}
}

// writeRows adds rows to series storage and returns how many were written.
func (s *Store) writeRows(rows []storage.MetricRow) int {
	if s.series.ReadOnly() {
		// The disk is (nearly) full: VictoriaMetrics would keep the rows
		// in memory and fail to write them out. They are counted, not
		// stored; the latest state is still updated.
		s.samplesRejected.Add(int64(len(rows)))
		return 0
	}
	s.series.Add(rows)
	if len(rows) > 0 {
		s.dirtySeries.Store(true)
	}
	s.samplesWritten.Add(int64(len(rows)))
	return len(rows)
}

func putFeature(m map[string]sample, name string, v float64, ts int64) {
	if old, ok := m[name]; ok && old.t > ts {
		return
	}
	m[name] = sample{v: v, t: ts}
}

// entityLocked returns the entity's state, creating it when there is room.
func (s *Store) entityLocked(ref entity.Ref, virtual bool, res pcommon.Map, ts int64) *entityState {
	es := s.entities[ref.ID]
	if es == nil {
		if len(s.entities) >= s.opts.MaxEntities {
			s.entityDrops.Add(1)
			return nil
		}
		es = &entityState{ref: ref, features: make(map[string]sample)}
		s.entities[ref.ID] = es
	}
	if ref.Name != "" {
		es.ref.Name = ref.Name
	}
	if ref.Type != "" {
		es.ref.Type = ref.Type
	}
	es.virtual = virtual
	if res.Len() > 0 && !sameAttributes(es.attributes, res) {
		attrs := make(map[string]string, min(res.Len(), maxAttributes))
		for k, v := range res.All() {
			if len(attrs) == maxAttributes {
				break
			}
			attrs[k] = v.AsString()
		}
		es.attributes = attrs
	}
	return es
}

// appendEdgeKey appends entity.Edge.Key without building an Edge.
func appendEdgeKey(b []byte, src, dst string, typ entity.EdgeType) []byte {
	b = append(b, src...)
	b = append(b, "->"...)
	b = append(b, dst...)
	b = append(b, '#')
	return append(b, typ...)
}

// sameAttributes reports whether attrs already hold res (as kept: at most
// maxAttributes), so the common case allocates nothing.
func sameAttributes(attrs map[string]string, res pcommon.Map) bool {
	if len(attrs) != min(res.Len(), maxAttributes) {
		return false
	}
	same := true
	for k, v := range res.All() {
		if old, ok := attrs[k]; !ok || old != v.AsString() {
			same = false
			break
		}
	}
	return same
}

// putEdgeFeatureLocked stores an edge feature and returns the edge's state
// (nil when max_edges is reached).
func (s *Store) putEdgeFeatureLocked(src, dst string, typ entity.EdgeType, key []byte, feature string, v float64, ts int64) *edgeState {
	e := s.edges[string(key)]
	if e == nil {
		if len(s.edges) >= s.opts.MaxEdges {
			s.edgeDrops.Add(1)
			return nil
		}
		e = &edgeState{source: src, target: dst, typ: typ, features: make(map[string]sample)}
		s.edges[string(key)] = e
	}
	putFeature(e.features, feature, v, ts)
	e.updated = max(e.updated, ts)
	return e
}

func (s *Store) putRuleLocked(r alert.RuleStatus, ts int64) {
	key := r.Group + "/" + r.Rule
	if _, ok := s.rules[key]; !ok && len(s.rules) >= s.opts.MaxRules {
		s.ruleDrops.Add(1)
		return
	}
	if r.LastEvaluation.IsZero() {
		r.LastEvaluation = time.UnixMilli(ts).UTC()
	}
	s.rules[key] = r
}

// rollNodeLocked returns the graph rollup series of a node feature (nil
// when the rollup is off or full).
func (s *Store) rollNodeLocked(f rollupFeatureInfo, ref entity.Ref, virtual bool, ts int64) *rollupSeries {
	s.keyBuf = appendRollupKey(s.keyBuf[:0], f, ref.ID)
	return s.rollup.get(s.keyBuf, f, ref.ID, ts/rollupBucketMs, func(rs *rollupSeries) {
		rs.typ, rs.name, rs.virtual = ref.Type, ref.Name, virtual
	})
}

// rollEdgeLocked returns the graph rollup series of an edge feature.
func (s *Store) rollEdgeLocked(f rollupFeatureInfo, src, dst string, typ entity.EdgeType, edgeKey []byte, ts int64) *rollupSeries {
	s.keyBuf = append(appendRollupKey(s.keyBuf[:0], f, ""), edgeKey...)
	return s.rollup.get(s.keyBuf, f, "", ts/rollupBucketMs, func(rs *rollupSeries) {
		rs.id, rs.source, rs.target, rs.edgeType = string(edgeKey), src, dst, typ
	})
}

// rebuildRollup fills the graph rollup from the series of its window.
func (s *Store) rebuildRollup(now time.Time) error {
	if s.opts.GraphWindow <= 0 {
		return nil
	}
	from, to := now.Add(-s.opts.GraphWindow).UnixMilli(), now.UnixMilli()
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.rollup.mu.Lock()
	defer s.rollup.mu.Unlock()
	var names []string
	for name := range rollupFeature {
		names = append(names, name)
	}
	for _, name := range names {
		f := rollupFeature[name]
		var rs *rollupSeries
		err := s.series.Search([]Filter{{Value: name}}, from, to, func(b SeriesBlock) {
			if b.NewSeries {
				rs = nil
				tag := func(name string) string { return string(b.Name.GetTagValue(name)) }
				bucket := b.Timestamps[0] / rollupBucketMs
				if f.edge {
					src, dst, typ := tag(entity.AttrEdgeSource), tag(entity.AttrEdgeTarget), entity.EdgeType(tag(entity.AttrEdgeType))
					if src == "" || dst == "" {
						return
					}
					s.edgeKeyBuf = appendEdgeKey(s.edgeKeyBuf[:0], src, dst, typ)
					s.keyBuf = append(appendRollupKey(s.keyBuf[:0], f, ""), s.edgeKeyBuf...)
					rs = s.rollup.get(s.keyBuf, f, "", bucket, func(rs *rollupSeries) {
						rs.id, rs.source, rs.target, rs.edgeType = string(s.edgeKeyBuf), src, dst, typ
					})
				} else {
					id := tag(entity.AttrEntityID)
					if id == "" {
						return
					}
					s.keyBuf = appendRollupKey(s.keyBuf[:0], f, id)
					rs = s.rollup.get(s.keyBuf, f, id, bucket, func(rs *rollupSeries) {
						rs.typ, rs.name, rs.virtual = entity.Type(tag(entity.AttrEntityType)), tag(entity.AttrEntityName), tag(entity.AttrVirtual) == "true"
					})
				}
			}
			if rs == nil {
				return
			}
			for i, t := range b.Timestamps {
				rs.add(s.rollup.slots, t, b.Values[i])
			}
		})
		if err != nil {
			return fmt.Errorf("rebuild graph rollup: %w", err)
		}
	}
	return nil
}

// expire drops entities and edges not updated within EntityTTL.
func (s *Store) expire() {
	s.rollup.expire(s.opts.Now().UnixMilli())
	cutoff := s.opts.Now().Add(-s.opts.EntityTTL).UnixMilli()
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	for id, e := range s.entities {
		if e.updated < cutoff {
			delete(s.entities, id)
			s.ttlEvictions.Add(1)
		}
	}
	for k, e := range s.edges {
		if e.updated < cutoff {
			delete(s.edges, k)
			s.ttlEvictions.Add(1)
		}
	}
}

// AddAlerts stores alert records. It returns the records that changed an
// instance's state (new instances included), in order; the exporter streams
// and notifies those.
//
// The records are in the store's memory, and so in every query, when it
// returns; they are written to the alert log after the alert lock is
// released, in order (alertLog), so queries do not wait for the disk.
func (s *Store) AddAlerts(alerts []alert.Alert) ([]alert.Alert, error) {
	s.alertMu.Lock()
	changed, write, err := s.alerts.Append(alerts, s.opts.Now())
	s.alertMu.Unlock()
	return changed, errors.Join(err, write.run())
}

// rebuild restores the latest entity, edge and rule state from the series
// written within EntityTTL: the last sample of every series.
func (s *Store) rebuild(now time.Time) error {
	from, to := now.Add(-s.opts.EntityTTL).UnixMilli(), now.UnixMilli()
	type last struct {
		labels map[string]string
		name   string
		v      float64
		t      int64
	}
	latest := make(map[string]*last)
	err := s.series.Search([]Filter{{Value: `junction\..*`, Regexp: true}}, from, to, func(b SeriesBlock) {
		key := string(b.Name.Marshal(nil))
		l := latest[key]
		n := len(b.Timestamps) - 1
		if l == nil {
			l = &last{labels: make(map[string]string, len(b.Name.Tags)), name: string(b.Name.MetricGroup)}
			for _, t := range b.Name.Tags {
				l.labels[string(t.Key)] = string(t.Value)
			}
			latest[key] = l
		} else if l.t > b.Timestamps[n] {
			return
		}
		l.v, l.t = b.Values[n], b.Timestamps[n]
	})
	if err != nil {
		return fmt.Errorf("rebuild latest state: %w", err)
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	for _, l := range latest {
		switch {
		case l.name == alert.RuleStatusMetric:
			md := pmetric.NewNumberDataPoint()
			for k, v := range l.labels {
				md.Attributes().PutStr(k, v)
			}
			if v, ok := l.labels[alert.AttrRuleActive]; ok {
				var n int64
				fmt.Sscan(v, &n)
				md.Attributes().PutInt(alert.AttrRuleActive, n)
			}
			md.SetDoubleValue(l.v)
			s.putRuleLocked(alert.RuleStatusFromDataPoint(md), l.t)
		case strings.HasPrefix(l.name, entity.EdgeMetricPrefix):
			src, dst, typ := l.labels[entity.AttrEdgeSource], l.labels[entity.AttrEdgeTarget], entity.EdgeType(l.labels[entity.AttrEdgeType])
			if src == "" || dst == "" {
				continue
			}
			s.edgeKeyBuf = appendEdgeKey(s.edgeKeyBuf[:0], src, dst, typ)
			s.putEdgeFeatureLocked(src, dst, typ, s.edgeKeyBuf, l.name[len(entity.EdgeMetricPrefix):], l.v, l.t)
		default:
			id := l.labels[entity.AttrEntityID]
			if id == "" {
				continue
			}
			ref := entity.Ref{ID: id, Type: entity.Type(l.labels[entity.AttrEntityType]), Name: l.labels[entity.AttrEntityName]}
			if ref.Type == "" {
				ref.Type = derived.TypeFromID(id)
			}
			es := s.entityLocked(ref, l.labels[entity.AttrVirtual] == "true", pcommon.NewMap(), l.t)
			if es != nil {
				putFeature(es.features, l.name[len(entity.MetricPrefix):], l.v, l.t)
				es.updated = max(es.updated, l.t)
			}
		}
	}
	return nil
}
