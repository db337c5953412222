// Package entity is the typed, read-only model of Junction's entity graph:
// entities, edges, their features and evidence, and the snapshot of the
// graph at an instant that rules are evaluated on.
//
// The correlation processor builds snapshots from telemetry (the in-process
// source); a query-backed source can build the same snapshot from merged
// series in VictoriaMetrics. The rule engine only sees the Source interface.
package entity

import (
	"cmp"
	"context"
	"sort"
	"strings"
	"time"
)

// Type is an entity type.
type Type string

// Entity types (docs/entities.md).
const (
	Service  Type = "service"
	Pod      Type = "pod"
	Database Type = "database"
	Proxy    Type = "proxy"
	Relayer  Type = "relayer"
	Stream   Type = "stream"
)

// Types lists every entity type in a stable order.
var Types = []Type{Service, Pod, Database, Proxy, Relayer, Stream}

// EdgeType is the kind of interaction an edge stands for.
type EdgeType string

// Edge types.
const (
	EdgeHTTP      EdgeType = "http"
	EdgeGRPC      EdgeType = "grpc"
	EdgeDB        EdgeType = "db"
	EdgeMessaging EdgeType = "messaging"
	EdgeXChain    EdgeType = "xchain"
)

// EdgeTypes lists every edge type in a stable order.
var EdgeTypes = []EdgeType{EdgeHTTP, EdgeGRPC, EdgeDB, EdgeMessaging, EdgeXChain}

// Ref identifies an entity. ID is unique across types and stable across
// restarts and replicas: it is derived only from the identity attributes
// (see ID).
type Ref struct {
	Type Type   `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// IsZero reports whether r refers to no entity.
func (r Ref) IsZero() bool { return r.ID == "" }

// ID returns the canonical entity id for an entity type and its identity
// parts in order, e.g. ID(Service, "shop", "checkout") = "service:shop/checkout".
// Empty parts are kept so that ids stay positional.
func ID(t Type, parts ...string) string {
	n := len(t) + 1
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, t...)
	b = append(b, ':')
	for i, p := range parts {
		if i > 0 {
			b = append(b, '/')
		}
		b = append(b, p...)
	}
	return string(b)
}

// AppendID appends ID(t, parts...) to dst, so a caller can look an entity
// up by its id without building a string.
func AppendID(dst []byte, t Type, parts ...string) []byte {
	dst = append(dst, t...)
	dst = append(dst, ':')
	for i, p := range parts {
		if i > 0 {
			dst = append(dst, '/')
		}
		dst = append(dst, p...)
	}
	return dst
}

// Entity is one node of the graph at the snapshot's instant.
type Entity struct {
	Ref
	// Virtual is true for an entity known only from its callers' client
	// spans (an uninstrumented database, external API or broker).
	Virtual bool `json:"virtual,omitempty"`
	// Attributes are the identity and descriptive attributes
	// (service.namespace, k8s.pod.name, db.system.name, ...).
	Attributes map[string]string `json:"attributes,omitempty"`
	// Features holds the schema's features (Schema) over the short window
	// (1 minute), by feature name. A feature without data is absent.
	Features map[string]float64 `json:"features,omitempty"`
	// Features5m holds the same features over the long window (5 minutes).
	Features5m map[string]float64 `json:"features_5m,omitempty"`
	// Baseline holds the baseline of the features that have one.
	Baseline map[string]float64 `json:"baseline,omitempty"`
	// Metrics holds the last raw value of every metric joined onto the
	// entity, by metric name, so rules can use metrics the schema does not
	// name.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Evidence is what supports the features: exemplar traces, log samples.
	Evidence Evidence `json:"evidence"`
	// Latency holds the latency sketches behind the latency features when
	// the processor emits mergeable series (mergeable_series); nil
	// otherwise.
	Latency *LatencySketches `json:"latency_sketches,omitempty"`
}

// Edge is a directed interaction from a client entity to a server entity.
type Edge struct {
	Source   string             `json:"source"` // client entity id
	Target   string             `json:"target"` // server entity id
	Type     EdgeType           `json:"type"`
	Features map[string]float64 `json:"features,omitempty"`
	Evidence Evidence           `json:"evidence"`
	// Latency holds the latency sketch behind the edge's latency features
	// (Short only) when the processor emits mergeable series; nil
	// otherwise.
	Latency *LatencySketches `json:"latency_sketches,omitempty"`
}

// Key returns the edge's identity: source, target and type.
func (e Edge) Key() string { return e.Source + "->" + e.Target + "#" + string(e.Type) }

// Evidence is kept with the features it explains.
type Evidence struct {
	// Exemplars are trace ids of slow and failed requests.
	Exemplars []Exemplar `json:"exemplars,omitempty"`
	// LogSamples are sample log lines, one or a few per log template.
	LogSamples []LogSample `json:"log_samples,omitempty"`
	// Stuck lists cross-chain messages of a relayer entity that did not
	// complete: pending longer than stuck_after, oldest first, then the
	// latest expired and evicted ones (docs/crosschain.md "Evidence").
	Stuck []StuckMessage `json:"stuck,omitempty"`
}

// StuckMessage is one cross-chain message that did not complete.
type StuckMessage struct {
	MessageID string `json:"message_id"`
	// Status is "pending", "expired" (pending longer than max_age) or
	// "evicted" (pushed out of the bounded message table).
	Status           string `json:"status"`
	Relayer          string `json:"relayer"`
	SourceChain      string `json:"source_chain"`
	DestinationChain string `json:"destination_chain"`
	// Since is the time of the message's earliest known stage;
	// AgeSeconds how long it had been pending when it was reported.
	Since      time.Time `json:"since"`
	AgeSeconds float64   `json:"age_s"`
	// LastStage is the latest known stage (xchain.stage).
	LastStage string `json:"last_stage"`
	// Stages are the known stages in lifecycle order.
	Stages []MessageStage `json:"stages,omitempty"`
}

// MessageStage is one known stage of a cross-chain message.
type MessageStage struct {
	// Stage is the xchain.stage value: sent, source_finalized, relayed,
	// executed, acknowledged, failed, timed_out.
	Stage             string    `json:"stage"`
	Time              time.Time `json:"time"`
	SourceTxHash      string    `json:"source_tx_hash,omitempty"`
	DestinationTxHash string    `json:"destination_tx_hash,omitempty"`
}

// Exemplar points at one trace that shows a feature's value.
type Exemplar struct {
	TraceID string    `json:"trace_id"`
	SpanID  string    `json:"span_id,omitempty"`
	Time    time.Time `json:"time"`
	// Reason is "slow" or "error".
	Reason string `json:"reason"`
	// Value is the span's duration in milliseconds.
	Value float64 `json:"value"`
}

// LogSample is one log line kept as an example of its template.
type LogSample struct {
	Time     time.Time `json:"time"`
	Severity string    `json:"severity"`
	Template string    `json:"template"`
	Body     string    `json:"body"`
	// Count is how many lines matched the template in the window.
	Count int64 `json:"count"`
	// TraceID links the line to its trace when the record had one.
	TraceID string `json:"trace_id,omitempty"`
}

// Snapshot is the graph at one instant. Entities are sorted by ID and edges
// by Key; a snapshot is never modified after it is handed out.
type Snapshot struct {
	Time     time.Time `json:"time"`
	Entities []Entity  `json:"entities"`
	Edges    []Edge    `json:"edges"`
	// EvidenceUnavailable is set by a source that could read the graph but
	// not its evidence (the merged graph's evidence query failed): rules
	// then keep the evidence their alerts had rather than clear it.
	EvidenceUnavailable bool `json:"evidence_unavailable,omitempty"`
}

// Sort puts entities and edges in their canonical order.
func (s *Snapshot) Sort() {
	sort.Slice(s.Entities, func(i, j int) bool { return s.Entities[i].ID < s.Entities[j].ID })
	sort.Slice(s.Edges, func(i, j int) bool { return compareEdgeKeys(&s.Edges[i], &s.Edges[j]) < 0 })
}

// compareEdgeKeys compares e.Key() with f.Key() without building them
// (sorting the edges of a snapshot built two strings per comparison).
func compareEdgeKeys(e, f *Edge) int {
	a := [...]string{e.Source, "->", e.Target, "#", string(e.Type)}
	b := [...]string{f.Source, "->", f.Target, "#", string(f.Type)}
	return compareConcat(a[:], b[:])
}

// compareConcat compares the concatenation of a with that of b.
func compareConcat(a, b []string) int {
	var x, y string
	for {
		for x == "" && len(a) > 0 {
			x, a = a[0], a[1:]
		}
		for y == "" && len(b) > 0 {
			y, b = b[0], b[1:]
		}
		if x == "" || y == "" {
			return cmp.Compare(len(x), len(y))
		}
		n := min(len(x), len(y))
		if c := strings.Compare(x[:n], y[:n]); c != 0 {
			return c
		}
		x, y = x[n:], y[n:]
	}
}

// Entity returns the entity with the given id, using binary search on the
// sorted entities.
func (s *Snapshot) Entity(id string) (*Entity, bool) {
	i := sort.Search(len(s.Entities), func(i int) bool { return s.Entities[i].ID >= id })
	if i < len(s.Entities) && s.Entities[i].ID == id {
		return &s.Entities[i], true
	}
	return nil, false
}

// Source yields snapshots of the graph. The correlation processor is the
// in-process source; a query-backed source reads merged series.
type Source interface {
	// Snapshot returns the graph as of at.
	Snapshot(ctx context.Context, at time.Time) (*Snapshot, error)
}
