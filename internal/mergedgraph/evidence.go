package mergedgraph

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"

	"github.com/junction-sre/junction/entity"
)

// MetricEvidence carries one item of an entity's evidence (an exemplar, a
// log sample, a stuck cross-chain message), so that the merged snapshot
// has the evidence of every replica (docs/deploy.md "Merged series"). The
// item is in the AttrEvidenceItem label as JSON, without the numbers that
// change every tick, which are the sample's value: an exemplar's duration
// in milliseconds, a log sample's count, a stuck message's age in seconds.
// A series thus lives as long as its item is in the replica's evidence.
// The merge reads the numbers it needs exactly from the item (an
// exemplar's duration, an expired message's age; a pending message's age
// from its start) rather than the value, which VictoriaMetrics keeps to
// about 12 significant digits; a count is exact in it.
const MetricEvidence = "junction.merge.evidence"

// Labels of MetricEvidence beyond the entity identity.
const (
	// AttrEvidence is the kind of item: EvidenceExemplar,
	// EvidenceLogSample or EvidenceStuck.
	AttrEvidence = "junction_evidence"
	// AttrEvidenceItem is the item as JSON.
	AttrEvidenceItem = "junction_evidence_item"
	// AttrEvidenceLimit is the replica's bound on that kind of item per
	// entity (per reason for exemplars), which the merge keeps.
	AttrEvidenceLimit = "junction_evidence_limit"
)

// Kinds of evidence items (AttrEvidence).
const (
	EvidenceExemplar  = "exemplar"
	EvidenceLogSample = "log_sample"
	EvidenceStuck     = "stuck"
)

// EvidenceLimits are a replica's bounds on an entity's evidence, emitted
// with each item so that the merged evidence keeps the same number a
// single node keeps. Zero leaves that kind of evidence out.
type EvidenceLimits struct {
	// Exemplars bounds the failed and, separately, the slow exemplars
	// (the correlation processor's limits::max_exemplars).
	Exemplars int
	// LogSamples bounds the log samples (limits::max_log_samples).
	LogSamples int
	// Stuck bounds the pending stuck messages and, separately, the
	// expired and evicted ones (xchain::max_evidence).
	Stuck int
}

// maxEvidenceText bounds each text of an item (a log line, its template,
// a message id, a transaction hash) as emitted: the item is a label value,
// and VictoriaMetrics truncates label values beyond -maxLabelValueLen
// (16 KiB by default), which would break the JSON. Escaped, every text of
// an item fits in it.
const maxEvidenceText = 1024

// logItem is a log sample without its count, which is the sample's value.
type logItem struct {
	Time     time.Time `json:"time"`
	Severity string    `json:"severity"`
	Template string    `json:"template"`
	Body     string    `json:"body"`
	TraceID  string    `json:"trace_id,omitempty"`
}

// stuckItem is a stuck message whose age is left out while it is pending
// (it grows every tick; the sample's value is the age): the outer
// AgeSeconds, nil then, hides the embedded one from encoding/json.
type stuckItem struct {
	entity.StuckMessage
	AgeSeconds *float64 `json:"age_s,omitempty"`
}

// cut returns s cut to at most maxEvidenceText bytes, at a rune boundary.
func cut(s string) string {
	if len(s) <= maxEvidenceText {
		return s
	}
	n := maxEvidenceText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// evidence writes the entity's evidence items, each bounded by lim.
func (w *writer) evidence(ev *entity.Evidence, lim EvidenceLimits) {
	put := func(kind string, limit int, item any, v float64) {
		b, _ := json.Marshal(item) // strings, numbers and times always marshal
		a := w.newPoint(&w.evM, MetricEvidence, v, 3)
		a.PutStr(AttrEvidence, kind)
		a.PutStr(AttrEvidenceLimit, strconv.Itoa(limit))
		a.PutStr(AttrEvidenceItem, string(b))
	}
	if lim.Exemplars > 0 {
		var failed, slow int
		for _, x := range ev.Exemplars {
			n := &slow
			if x.Reason == reasonError {
				n = &failed
			}
			if *n >= lim.Exemplars {
				continue
			}
			*n++
			x.TraceID, x.SpanID = cut(x.TraceID), cut(x.SpanID)
			put(EvidenceExemplar, lim.Exemplars, x, x.Value)
		}
	}
	for i, s := range ev.LogSamples {
		if i >= lim.LogSamples {
			break
		}
		put(EvidenceLogSample, lim.LogSamples, logItem{Time: s.Time, Severity: cut(s.Severity), Template: cut(s.Template), Body: cut(s.Body), TraceID: cut(s.TraceID)}, float64(s.Count))
	}
	if lim.Stuck > 0 {
		var pending, other int
		for _, s := range ev.Stuck {
			n := &other
			if s.Status == statusPending {
				n = &pending
			}
			if *n >= lim.Stuck {
				continue
			}
			*n++
			item := stuckItem{StuckMessage: cutStuck(s)}
			if s.Status != statusPending {
				// Its age as reported, which stays; a pending message's
				// grows, and the merge reads it from the snapshot's time.
				item.AgeSeconds = &s.AgeSeconds
			}
			put(EvidenceStuck, lim.Stuck, item, s.AgeSeconds)
		}
	}
}

func cutStuck(s entity.StuckMessage) entity.StuckMessage {
	s.MessageID, s.Status, s.Relayer = cut(s.MessageID), cut(s.Status), cut(s.Relayer)
	s.SourceChain, s.DestinationChain, s.LastStage = cut(s.SourceChain), cut(s.DestinationChain), cut(s.LastStage)
	if len(s.Stages) > 0 {
		stages := make([]entity.MessageStage, len(s.Stages))
		for i, st := range s.Stages {
			stages[i] = entity.MessageStage{Stage: cut(st.Stage), Time: st.Time, SourceTxHash: cut(st.SourceTxHash), DestinationTxHash: cut(st.DestinationTxHash)}
		}
		s.Stages = stages
	}
	return s
}

const (
	reasonError   = "error"
	statusPending = "pending"
)

// EvidenceQuery returns the query of the evidence: the raw samples within
// lookback of every replica's evidence series and of its entity series,
// unmerged. The source keeps, for each replica and entity, the items of
// that replica's latest tick of the entity (the timestamp of its entity
// series): an item no longer in a replica's evidence has no sample of its
// latest tick, and must not count.
func EvidenceQuery(lookback time.Duration) string {
	return `{__name__=~"` + label(MetricEntity) + "|" + label(MetricEvidence) + `"}[` + strconv.FormatInt(int64(lookback/time.Second), 10) + "s]"
}

// notReplica are the labels that tell apart the series of one replica's
// entity: what is left (the entity id, type, name and the replica's own
// labels, junction_replica) identifies the replica's entity.
var notReplica = map[model.LabelName]bool{
	model.MetricNameLabel:              true,
	model.LabelName(lEntityName):       true,
	model.LabelName(lEntityType):       true,
	model.LabelName(lVirtual):          true,
	model.LabelName(AttrAttributes):    true,
	model.LabelName(AttrEvidence):      true,
	model.LabelName(AttrEvidenceItem):  true,
	model.LabelName(AttrEvidenceLimit): true,
}

// replicaEntity is the key of one replica's series of one entity.
func replicaEntity(m model.Metric) model.Fingerprint {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		if !notReplica[k] {
			ls[k] = v
		}
	}
	return ls.Fingerprint()
}

// evidenceItem is one item read back, with its series' latest sample.
type evidenceItem struct {
	entity, kind, item string
	limit              int
	value              float64
	ts                 int64
}

// mergeEvidence sets the evidence of snap's entities from the answer of
// EvidenceQuery: each replica's items of its latest tick of the entity,
// merged as one node would have kept them (mergeEntityEvidence). Items
// that do not decode are left out and make the error; the others count.
func mergeEvidence(snap *entity.Snapshot, m model.Matrix) error {
	latest := map[model.Fingerprint]int64{}
	var items []evidenceItem
	var keys []model.Fingerprint
	evName := model.LabelValue(label(MetricEvidence))
	for _, ss := range m {
		n := len(ss.Values)
		if n == 0 {
			continue
		}
		last := ss.Values[n-1]
		k := replicaEntity(ss.Metric)
		if t := int64(last.Timestamp); t > latest[k] {
			latest[k] = t
		}
		if ss.Metric[model.MetricNameLabel] != evName {
			continue
		}
		limit, err := strconv.Atoi(get(ss.Metric, AttrEvidenceLimit))
		if err != nil || limit <= 0 || limit > maxEvidenceLimit {
			limit = min(max(limit, defaultEvidenceLimit), maxEvidenceLimit)
		}
		items = append(items, evidenceItem{
			entity: get(ss.Metric, lEntityID), kind: get(ss.Metric, AttrEvidence), item: get(ss.Metric, AttrEvidenceItem),
			limit: limit, value: float64(last.Value), ts: int64(last.Timestamp),
		})
		keys = append(keys, k)
	}
	byEntity := map[string]*entityEvidence{}
	var bad []error
	type seenKey struct {
		replica    model.Fingerprint
		kind, item string
	}
	seen := map[seenKey]bool{}
	for i, it := range items {
		if it.ts != latest[keys[i]] {
			continue // not in the replica's latest tick of the entity
		}
		// One item of a replica under two limits (its limits changed
		// within the lookback) counts once.
		sk := seenKey{keys[i], it.kind, it.item}
		if seen[sk] {
			continue
		}
		seen[sk] = true
		ee := byEntity[it.entity]
		if ee == nil {
			ee = &entityEvidence{}
			byEntity[it.entity] = ee
		}
		if err := ee.add(it); err != nil && len(bad) < maxBadItems {
			bad = append(bad, fmt.Errorf("entity %s: %s item %.200q: %w", it.entity, it.kind, it.item, err))
		}
	}
	for i := range snap.Entities {
		e := &snap.Entities[i]
		if ee := byEntity[e.ID]; ee != nil {
			e.Evidence = ee.merged(snap.Time)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("evidence items that do not decode were left out: %w", errors.Join(bad...))
	}
	return nil
}

// maxBadItems bounds the undecodable items an error names.
const maxBadItems = 3

// An item whose limit label is missing or not a positive number is kept
// within defaultEvidenceLimit (alerts show at most 10 of each kind);
// maxEvidenceLimit bounds what a limit label can ask for.
const (
	defaultEvidenceLimit = 10
	maxEvidenceLimit     = 1000
)

// entityEvidence gathers the replicas' items of one entity.
type entityEvidence struct {
	failed, slow  []entity.Exemplar
	exemplarLimit int
	logs          map[string]*entity.LogSample
	logLimit      int
	stuck         map[string]*entity.StuckMessage
	stuckLimit    int
}

func (ee *entityEvidence) add(it evidenceItem) error {
	switch it.kind {
	case EvidenceExemplar:
		var x entity.Exemplar
		if err := json.Unmarshal([]byte(it.item), &x); err != nil {
			return err
		}
		if x.Reason == reasonError {
			ee.failed = append(ee.failed, x)
		} else {
			ee.slow = append(ee.slow, x)
		}
		ee.exemplarLimit = max(ee.exemplarLimit, it.limit)
	case EvidenceLogSample:
		var l logItem
		if err := json.Unmarshal([]byte(it.item), &l); err != nil {
			return err
		}
		if ee.logs == nil {
			ee.logs = map[string]*entity.LogSample{}
		}
		n := int64(it.value)
		if cur := ee.logs[l.Template]; cur != nil {
			// The template's lines on several replicas: their counts add,
			// the sample is the latest line, of lines at the same instant
			// the greatest by body, then trace id, as one node keeps it.
			cur.Count += n
			if l.Time.After(cur.Time) || (l.Time.Equal(cur.Time) && (l.Body > cur.Body || (l.Body == cur.Body && l.TraceID > cur.TraceID))) {
				cur.Time, cur.Severity, cur.Body, cur.TraceID = l.Time, l.Severity, l.Body, l.TraceID
			}
		} else {
			ee.logs[l.Template] = &entity.LogSample{Time: l.Time, Severity: l.Severity, Template: l.Template, Body: l.Body, TraceID: l.TraceID, Count: n}
		}
		ee.logLimit = max(ee.logLimit, it.limit)
	case EvidenceStuck:
		var s stuckItem
		if err := json.Unmarshal([]byte(it.item), &s); err != nil {
			return err
		}
		m := s.StuckMessage
		if s.AgeSeconds != nil {
			m.AgeSeconds = *s.AgeSeconds
		}
		if ee.stuck == nil {
			ee.stuck = map[string]*entity.StuckMessage{}
		}
		if cur := ee.stuck[m.MessageID]; cur != nil {
			mergeStuck(cur, m)
		} else {
			ee.stuck[m.MessageID] = &m
		}
		ee.stuckLimit = max(ee.stuckLimit, it.limit)
	default:
		return fmt.Errorf("unknown %s %q", AttrEvidence, it.kind)
	}
	return nil
}

// stageOrder is the lifecycle order of the stages (xchain.stage).
var stageOrder = map[string]int{"sent": 1, "source_finalized": 2, "relayed": 3, "executed": 4, "acknowledged": 5, "failed": 6, "timed_out": 7}

// mergeStuck adds to cur what another replica knows of the same message,
// as one node that saw both replicas' events joins them: each stage at its
// earliest time, with the transaction hashes either knew; the message
// starts at its earliest stage; a message that left the pending set on a
// replica (expired, evicted) is reported so.
func mergeStuck(cur *entity.StuckMessage, m entity.StuckMessage) {
	for _, st := range m.Stages {
		i := slices.IndexFunc(cur.Stages, func(c entity.MessageStage) bool { return c.Stage == st.Stage })
		if i < 0 {
			cur.Stages = append(cur.Stages, st)
			continue
		}
		c := &cur.Stages[i]
		if st.Time.Before(c.Time) {
			c.Time = st.Time
		}
		if c.SourceTxHash == "" {
			c.SourceTxHash = st.SourceTxHash
		}
		if c.DestinationTxHash == "" {
			c.DestinationTxHash = st.DestinationTxHash
		}
	}
	sort.SliceStable(cur.Stages, func(i, j int) bool { return stageOrder[cur.Stages[i].Stage] < stageOrder[cur.Stages[j].Stage] })
	if n := len(cur.Stages); n > 0 {
		cur.LastStage = cur.Stages[n-1].Stage
		cur.Since = cur.Stages[0].Time
		for _, st := range cur.Stages {
			if st.Time.Before(cur.Since) {
				cur.Since = st.Time
			}
		}
	}
	if cur.Status == statusPending && m.Status != statusPending {
		cur.Status = m.Status
	}
	cur.AgeSeconds = max(cur.AgeSeconds, m.AgeSeconds)
}

// merged returns the entity's evidence as one node keeps it: exemplars
// failed first (newest first), then slow (slowest first), each up to the
// limit; log samples by count, each template's counts added and its latest
// line, up to the limit; stuck messages pending first (oldest first), then
// the latest expired and evicted ones, each up to the limit.
func (ee *entityEvidence) merged(at time.Time) entity.Evidence {
	var out entity.Evidence
	sort.Slice(ee.failed, func(i, j int) bool {
		a, b := ee.failed[i], ee.failed[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.After(b.Time)
		}
		if a.TraceID != b.TraceID {
			return a.TraceID < b.TraceID
		}
		return a.SpanID < b.SpanID
	})
	sort.Slice(ee.slow, func(i, j int) bool {
		a, b := ee.slow[i], ee.slow[j]
		if a.Value != b.Value {
			return a.Value > b.Value
		}
		if a.TraceID != b.TraceID {
			return a.TraceID < b.TraceID
		}
		return a.SpanID < b.SpanID
	})
	out.Exemplars = append(out.Exemplars, ee.failed[:min(len(ee.failed), ee.exemplarLimit)]...)
	out.Exemplars = append(out.Exemplars, ee.slow[:min(len(ee.slow), ee.exemplarLimit)]...)
	for _, l := range ee.logs {
		out.LogSamples = append(out.LogSamples, *l)
	}
	sort.Slice(out.LogSamples, func(i, j int) bool {
		a, b := out.LogSamples[i], out.LogSamples[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Template < b.Template
	})
	out.LogSamples = out.LogSamples[:min(len(out.LogSamples), ee.logLimit)]
	var pending, other []entity.StuckMessage
	for _, s := range ee.stuck {
		if s.Status == statusPending {
			// Pending: as old as it is at the snapshot's time.
			s.AgeSeconds = float64(at.UnixNano()-s.Since.UnixNano()) / 1e9
			pending = append(pending, *s)
		} else {
			other = append(other, *s)
		}
	}
	bySince := func(s []entity.StuckMessage) {
		sort.Slice(s, func(i, j int) bool {
			if !s[i].Since.Equal(s[j].Since) {
				return s[i].Since.Before(s[j].Since)
			}
			return s[i].MessageID < s[j].MessageID
		})
	}
	bySince(pending)
	bySince(other)
	out.Stuck = append(out.Stuck, pending[:min(len(pending), ee.stuckLimit)]...)
	out.Stuck = append(out.Stuck, other[max(0, len(other)-ee.stuckLimit):]...)
	if len(out.Exemplars) == 0 {
		out.Exemplars = nil
	}
	if len(out.LogSamples) == 0 {
		out.LogSamples = nil
	}
	if len(out.Stuck) == 0 {
		out.Stuck = nil
	}
	return out
}
