package analyze

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

// SchemaVersion names the JSON report's schema (docs/analyze.md); it
// changes when a field changes meaning or goes away.
const SchemaVersion = "junction.analyze/v1"

// Report is what an analysis found. Its JSON form is `junction analyze
// --format json`.
type Report struct {
	Schema string `json:"schema"`
	// Time is the instant the graph and critical paths are reported as of:
	// the recording's clock at its end, or --until.
	Time  time.Time `json:"time"`
	Rules []string  `json:"rules"`
	Input Input     `json:"input"`
	Graph Graph     `json:"graph"`
	// CriticalPaths start at the slowest entry points.
	CriticalPaths []CriticalPath `json:"critical_paths"`
	Alerts        Alerts         `json:"alerts"`
}

// Input is what was read.
type Input struct {
	Files []*FileStats `json:"files"`
	// Records counts the export requests replayed; Spans, Points and
	// LogRecords what they held.
	Records    int `json:"records"`
	Spans      int `json:"spans"`
	Points     int `json:"points"`
	LogRecords int `json:"log_records"`
	// Bad counts records that could not be decoded, and files whose rest
	// could not be read; Unreadable the files from which nothing was read.
	Bad        int `json:"bad_records"`
	Unreadable int `json:"unreadable_files"`
	// AfterUntil is 1 when the replay stopped at --until.
	AfterUntil int `json:"stopped_at_until"`
	// First and Last are the oldest and newest record timestamps replayed.
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Errors are the first bad records, with where they are.
	Errors []RecordErrorReport `json:"errors,omitempty"`
}

// FileStats is one file of the recording.
type FileStats struct {
	Path        string `json:"path"`
	Format      string `json:"format,omitempty"`
	Compression string `json:"compression,omitempty"`
	Bytes       int64  `json:"bytes"`
	Records     int    `json:"records"`
	Spans       int    `json:"spans"`
	Points      int    `json:"points"`
	LogRecords  int    `json:"log_records"`
	Bad         int    `json:"bad_records"`
	// Empty counts export requests with no resource in them.
	Empty int `json:"empty_records,omitempty"`
	// Profiles counts profiles export requests, which are skipped.
	Profiles int `json:"profiles_records,omitempty"`
	// Error says why the file, or its rest, could not be read.
	Error string `json:"error,omitempty"`
}

// RecordErrorReport is one bad record.
type RecordErrorReport struct {
	File string `json:"file"`
	// Line is the JSON line number; Message the framed protobuf message
	// number; Offset the byte offset in the uncompressed stream.
	Line    int    `json:"line,omitempty"`
	Message int    `json:"message,omitempty"`
	Offset  int64  `json:"offset,omitempty"`
	Error   string `json:"error"`
}

func recordErrorOf(re *RecordError) RecordErrorReport {
	r := RecordErrorReport{File: re.File, Offset: re.Offset, Error: re.Err.Error()}
	if re.Message {
		r.Message = re.Line
	} else {
		r.Line = re.Line
	}
	return r
}

// Graph is the entity graph at Report.Time. Feature values are over the
// processor's short window (1 minute); a value without data is absent.
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// Node is one entity.
type Node struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	Virtual bool   `json:"virtual,omitempty"`
	// RequestRate is requests per second; ErrorRatio the share that
	// failed; P50Ms and P99Ms latency quantiles; SelfShare the mean share
	// of sampled traces' critical path spent in the entity itself
	// (critical_path.self_share).
	RequestRate *float64 `json:"request_rate,omitempty"`
	ErrorRatio  *float64 `json:"error_ratio,omitempty"`
	P50Ms       *float64 `json:"p50_ms,omitempty"`
	P99Ms       *float64 `json:"p99_ms,omitempty"`
	SelfShare   *float64 `json:"self_share,omitempty"`
}

// Edge is one client → server edge.
type Edge struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Type   string `json:"type"`
	// Latencies are as the client saw them; LatencyShare is the mean
	// share of the client's latency spent in this call in sampled traces
	// (the edge's latency.share).
	RequestRate  *float64 `json:"request_rate,omitempty"`
	ErrorRatio   *float64 `json:"error_ratio,omitempty"`
	P50Ms        *float64 `json:"p50_ms,omitempty"`
	P99Ms        *float64 `json:"p99_ms,omitempty"`
	LatencyShare *float64 `json:"latency_share,omitempty"`
}

// CriticalPath is the path of dominant calls from one entry point: at each
// hop the call with the largest latency share.
type CriticalPath struct {
	Entry     string   `json:"entry"`
	P99Ms     *float64 `json:"p99_ms,omitempty"`
	SelfShare *float64 `json:"self_share,omitempty"`
	Hops      []Hop    `json:"hops"`
}

// Hop is one call on a critical path.
type Hop struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Type   string `json:"type"`
	// CallShare is the edge's latency.share; P99Ms the call's p99 as the
	// client saw it; TargetSelfShare the target's critical_path.self_share.
	CallShare       *float64 `json:"call_share,omitempty"`
	P99Ms           *float64 `json:"p99_ms,omitempty"`
	TargetSelfShare *float64 `json:"target_self_share,omitempty"`
}

// Alerts are the alert episodes of the replay.
type Alerts struct {
	// Episodes fired, or were still pending when the recording ended, in
	// the order they became active.
	Episodes []Episode `json:"episodes"`
	// PendingOnly counts episodes that went pending and cleared without
	// firing.
	PendingOnly int `json:"pending_only"`
	// Dropped counts episodes beyond the report's bound (10000).
	Dropped int `json:"dropped,omitempty"`
	// DecodeErrors counts alert records the report could not decode.
	DecodeErrors int `json:"decode_errors,omitempty"`
}

// Episode is one alert instance (rule + entity) from pending to resolved.
type Episode struct {
	ID       string `json:"id"`
	Group    string `json:"group"`
	Rule     string `json:"rule"`
	Kind     string `json:"kind,omitempty"`
	Severity string `json:"severity,omitempty"`
	// State is the instance's state when the recording ended: firing,
	// resolved or pending.
	State      string            `json:"state"`
	Entity     entity.Ref        `json:"entity"`
	Blame      entity.Ref        `json:"blame"`
	ActiveAt   time.Time         `json:"active_at"`
	FiredAt    time.Time         `json:"fired_at,omitzero"`
	ResolvedAt time.Time         `json:"resolved_at,omitzero"`
	Summary    string            `json:"summary,omitempty"`
	Value      float64           `json:"value"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Annotations and Evidence are those of the record that fired (of the
	// latest record while pending): exemplar trace ids, log samples and
	// the values the rule read.
	Annotations map[string]string `json:"annotations,omitempty"`
	Evidence    alert.Evidence    `json:"evidence"`
	// AtFiring is the blamed entity in the graph when the alert fired.
	AtFiring *Firing `json:"at_firing,omitempty"`
}

// Firing describes the blamed entity at the instant an alert fired.
type Firing struct {
	Time          time.Time `json:"time"`
	P99Ms         *float64  `json:"p99_ms,omitempty"`
	BaselineP99Ms *float64  `json:"baseline_p99_ms,omitempty"`
	SelfShare     *float64  `json:"self_share,omitempty"`
	// Call is the call into the blamed entity with the largest latency
	// share, when it has callers.
	Call *Hop `json:"call,omitempty"`
}

// Feature names the report reads (entity.Schema, entity.EdgeSchema).
const (
	fRate      = "request.rate"
	fErrors    = "error.ratio"
	fP50       = "latency.p50_ms"
	fP99       = "latency.p99_ms"
	fSelfShare = "critical_path.self_share"
	fShare     = "latency.share"
)

func feat(m map[string]float64, name string) *float64 {
	if v, ok := m[name]; ok {
		return &v
	}
	return nil
}

// graphOf is the report's graph of snap: every entity, in entity.Types
// order and by id, and every edge.
func graphOf(snap *entity.Snapshot) Graph {
	g := Graph{Nodes: make([]Node, 0, len(snap.Entities)), Edges: make([]Edge, 0, len(snap.Edges))}
	for _, e := range snap.Entities {
		g.Nodes = append(g.Nodes, Node{
			ID: e.ID, Type: string(e.Type), Name: e.Name, Virtual: e.Virtual,
			RequestRate: feat(e.Features, fRate), ErrorRatio: feat(e.Features, fErrors),
			P50Ms: feat(e.Features, fP50), P99Ms: feat(e.Features, fP99), SelfShare: feat(e.Features, fSelfShare),
		})
	}
	order := map[string]int{}
	for i, t := range entity.Types {
		order[string(t)] = i
	}
	sort.SliceStable(g.Nodes, func(i, j int) bool {
		if g.Nodes[i].Type != g.Nodes[j].Type {
			return order[g.Nodes[i].Type] < order[g.Nodes[j].Type]
		}
		return g.Nodes[i].ID < g.Nodes[j].ID
	})
	for _, e := range snap.Edges {
		g.Edges = append(g.Edges, edgeOf(e))
	}
	return g
}

func edgeOf(e entity.Edge) Edge {
	return Edge{
		Source: e.Source, Target: e.Target, Type: string(e.Type),
		RequestRate: feat(e.Features, fRate), ErrorRatio: feat(e.Features, fErrors),
		P50Ms: feat(e.Features, fP50), P99Ms: feat(e.Features, fP99), LatencyShare: feat(e.Features, fShare),
	}
}

// maxHops bounds a critical path (the rule engine's critical_path walks at
// most as many).
const maxHops = 16

// criticalPaths walks, from each of the top slowest entry points (entities
// with a p99 latency that no edge calls; the slowest entities when every
// one is called), the calls with the largest latency.share, never visiting
// an entity twice. The shares are the processor's, from the critical paths
// of sampled traces; nothing is recomputed here.
func criticalPaths(snap *entity.Snapshot, top int) []CriticalPath {
	called := map[string]bool{}
	down := map[string][]entity.Edge{}
	for _, e := range snap.Edges {
		if e.Source != e.Target {
			called[e.Target] = true
		}
		down[e.Source] = append(down[e.Source], e)
	}
	// Entry points: entities with a latency that nobody calls and that
	// call others; failing those, any that nobody calls; failing those
	// (every entity is called: a cycle), every entity with a latency.
	var callers, uncalled, all []*entity.Entity
	for i := range snap.Entities {
		e := &snap.Entities[i]
		if _, ok := e.Features[fP99]; !ok || e.Type == entity.Pod {
			continue
		}
		all = append(all, e)
		if !called[e.ID] {
			uncalled = append(uncalled, e)
			if len(down[e.ID]) > 0 {
				callers = append(callers, e)
			}
		}
	}
	entries := callers
	if len(entries) == 0 {
		entries = uncalled
	}
	if len(entries) == 0 {
		entries = all
	}
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i].Features[fP99], entries[j].Features[fP99]
		if a != b {
			return a > b
		}
		return entries[i].ID < entries[j].ID
	})
	if len(entries) > top {
		entries = entries[:top]
	}
	out := make([]CriticalPath, 0, len(entries))
	for _, ent := range entries {
		cp := CriticalPath{Entry: ent.ID, P99Ms: feat(ent.Features, fP99), SelfShare: feat(ent.Features, fSelfShare), Hops: []Hop{}}
		visited := map[string]bool{ent.ID: true}
		cur := ent.ID
		for len(cp.Hops) < maxHops {
			var best *entity.Edge
			bestShare := 0.0
			for i := range down[cur] {
				e := &down[cur][i]
				s, ok := e.Features[fShare]
				if !ok || s <= 0 || visited[e.Target] {
					continue
				}
				if best == nil || s > bestShare || (s == bestShare && e.Target < best.Target) {
					best, bestShare = e, s
				}
			}
			if best == nil {
				break
			}
			cp.Hops = append(cp.Hops, hopOf(snap, *best))
			visited[best.Target] = true
			cur = best.Target
		}
		out = append(out, cp)
	}
	return out
}

func hopOf(snap *entity.Snapshot, e entity.Edge) Hop {
	h := Hop{Source: e.Source, Target: e.Target, Type: string(e.Type), CallShare: feat(e.Features, fShare), P99Ms: feat(e.Features, fP99)}
	if t, ok := snap.Entity(e.Target); ok {
		h.TargetSelfShare = feat(t.Features, fSelfShare)
	}
	return h
}

// firingOf describes the blamed entity id in snap.
func firingOf(snap *entity.Snapshot, id string, at time.Time) *Firing {
	f := &Firing{Time: at}
	if e, ok := snap.Entity(id); ok {
		f.P99Ms, f.BaselineP99Ms, f.SelfShare = feat(e.Features, fP99), feat(e.Baseline, fP99), feat(e.Features, fSelfShare)
	}
	var best *entity.Edge
	for i := range snap.Edges {
		e := &snap.Edges[i]
		if e.Target != id || e.Source == id {
			continue
		}
		if s, ok := e.Features[fShare]; ok && (best == nil || s > best.Features[fShare]) {
			best = e
		}
	}
	if best != nil {
		h := hopOf(snap, *best)
		f.Call = &h
	}
	return f
}

// alertSink folds the alert records the processor emits into episodes. At
// an episode's first firing record it takes a snapshot of the graph (the
// processor is between ticks' evaluation and the next batch then) to
// describe the blamed entity.
type alertSink struct {
	src interface {
		Snapshot(ctx context.Context, at time.Time) (*entity.Snapshot, error)
	}
	max int

	mu       sync.Mutex
	open     map[string]*Episode
	episodes []*Episode
	alerts   Alerts
}

func newAlertSink(max int) *alertSink { return &alertSink{max: max, open: map[string]*Episode{}} }

func (s *alertSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *alertSink) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if !alert.IsAlert(lr) {
					continue
				}
				a, err := alert.FromLogRecord(lr)
				if err != nil {
					s.alerts.DecodeErrors++
					continue
				}
				s.add(ctx, &a)
			}
		}
	}
	return nil
}

func (s *alertSink) add(ctx context.Context, a *alert.Alert) {
	id := a.ID
	if id == "" {
		id = alert.Fingerprint(a.Group, a.Rule, a.Entity.ID)
	}
	ep := s.open[id]
	if ep == nil {
		if a.State == alert.StateResolved {
			return // an episode beyond the bound, or one already closed
		}
		if len(s.episodes) >= s.max {
			s.alerts.Dropped++
			return
		}
		ep = &Episode{ID: id, Group: a.Group, Rule: a.Rule, ActiveAt: a.ActiveAt}
		s.open[id] = ep
		s.episodes = append(s.episodes, ep)
	}
	ep.State = string(a.State)
	ep.Kind, ep.Severity, ep.Entity = a.Kind, a.Severity, a.Entity
	if ep.FiredAt.IsZero() && a.State != alert.StateResolved {
		// Until it fires, the latest record's view.
		ep.Blame, ep.Summary, ep.Value, ep.Labels, ep.Annotations, ep.Evidence = a.Blame, a.Summary(), a.Value, a.Labels, a.Annotations, a.Evidence
	}
	switch a.State {
	case alert.StateFiring:
		if ep.FiredAt.IsZero() {
			ep.FiredAt = a.FiredAt
			if ep.FiredAt.IsZero() {
				ep.FiredAt = a.EvaluatedAt
			}
			ep.Blame, ep.Summary, ep.Value, ep.Labels, ep.Annotations, ep.Evidence = a.Blame, a.Summary(), a.Value, a.Labels, a.Annotations, a.Evidence
			blame := a.Blame.ID
			if blame == "" {
				blame = a.Entity.ID
			}
			if snap, err := s.src.Snapshot(ctx, a.EvaluatedAt); err == nil {
				ep.AtFiring = firingOf(snap, blame, a.EvaluatedAt)
			}
		}
	case alert.StateResolved:
		ep.ResolvedAt = a.ResolvedAt
		if ep.ResolvedAt.IsZero() {
			ep.ResolvedAt = a.EvaluatedAt
		}
		delete(s.open, id)
	}
}

// report is the episodes that fired or are still pending.
func (s *alertSink) report() Alerts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.alerts
	out.Episodes = []Episode{}
	for _, ep := range s.episodes {
		if ep.FiredAt.IsZero() && ep.State == string(alert.StateResolved) {
			out.PendingOnly++
			continue
		}
		out.Episodes = append(out.Episodes, *ep)
	}
	return out
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error { return writeIndentedJSON(w, r) }

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	in := &r.Input
	b := &strings.Builder{}
	fmt.Fprintf(b, "Recording: %d file(s), %d records: %d spans, %d data points, %d log records; %d bad record(s)\n",
		len(in.Files), in.Records, in.Spans, in.Points, in.LogRecords, in.Bad)
	for _, f := range in.Files {
		if f.Error != "" {
			fmt.Fprintf(b, "  %s: %s\n", f.Path, f.Error)
		}
	}
	if !in.First.IsZero() {
		fmt.Fprintf(b, "Time: %s to %s (%s)", in.First.Format(time.RFC3339), in.Last.Format(time.RFC3339), in.Last.Sub(in.First).Round(time.Second))
	}
	fmt.Fprintf(b, "; graph as of %s (features over the last minute)\n", r.Time.Format(time.RFC3339))
	fmt.Fprintf(b, "Rules: %s\n", strings.Join(r.Rules, ", "))

	b.WriteString("\nNODES\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tID\tREQ/S\tERRORS\tP50 MS\tP99 MS\tSELF SHARE")
	pods := 0
	for _, n := range r.Graph.Nodes {
		if n.Type == string(entity.Pod) {
			pods++
			continue
		}
		id := n.ID
		if n.Virtual {
			id += " (virtual)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Type, id, num(n.RequestRate, "%.2f"), pct(n.ErrorRatio), num(n.P50Ms, "%.1f"), num(n.P99Ms, "%.1f"), pct(n.SelfShare))
	}
	tw.Flush()
	if pods > 0 {
		fmt.Fprintf(b, "(%d pods not listed; --format json lists every entity)\n", pods)
	}

	b.WriteString("\nEDGES\n")
	tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\t\tTARGET\tTYPE\tREQ/S\tERRORS\tP50 MS\tP99 MS\tSHARE")
	for _, e := range r.Graph.Edges {
		fmt.Fprintf(tw, "%s\t->\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Source, e.Target, e.Type, num(e.RequestRate, "%.2f"), pct(e.ErrorRatio), num(e.P50Ms, "%.1f"), num(e.P99Ms, "%.1f"), pct(e.LatencyShare))
	}
	tw.Flush()
	if len(r.Graph.Edges) == 0 {
		b.WriteString("(no edges: the recording has no client/server span pairs or client spans)\n")
	}

	b.WriteString("\nCRITICAL PATH from the slowest entry points (call share: part of the caller's latency in the call; self: part of the sampled traces' critical path spent in the entity itself)\n")
	if len(r.CriticalPaths) == 0 {
		b.WriteString("(no entity with a latency)\n")
	}
	for i, cp := range r.CriticalPaths {
		fmt.Fprintf(b, "%d. %s  p99 %s ms  self %s\n", i+1, cp.Entry, num(cp.P99Ms, "%.1f"), pct(cp.SelfShare))
		for _, h := range cp.Hops {
			fmt.Fprintf(b, "   -> %s (%s)  call share %s  call p99 %s ms  self %s\n", h.Target, h.Type, pct(h.CallShare), num(h.P99Ms, "%.1f"), pct(h.TargetSelfShare))
		}
		if len(cp.Hops) == 0 {
			b.WriteString("   (no call with a latency share: no sampled trace of it completed)\n")
		}
	}

	al := &r.Alerts
	fmt.Fprintf(b, "\nALERTS: %d episode(s)", len(al.Episodes))
	if al.PendingOnly > 0 {
		fmt.Fprintf(b, "; %d more went pending and cleared without firing", al.PendingOnly)
	}
	if al.Dropped > 0 {
		fmt.Fprintf(b, "; %d beyond the report's bound not kept", al.Dropped)
	}
	b.WriteString("\n")
	for _, ep := range al.Episodes {
		writeEpisode(b, &ep)
	}
	if len(in.Errors) > 0 {
		fmt.Fprintf(b, "\nBAD RECORDS: %d", in.Bad)
		if in.Bad > len(in.Errors) {
			fmt.Fprintf(b, " (the first %d)", len(in.Errors))
		}
		b.WriteString("\n")
		for _, e := range in.Errors {
			b.WriteString("  " + e.String() + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (e RecordErrorReport) String() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Error)
	case e.Message > 0:
		return fmt.Sprintf("%s: message %d (byte %d): %s", e.File, e.Message, e.Offset, e.Error)
	}
	return e.Error
}

func writeEpisode(b *strings.Builder, ep *Episode) {
	fmt.Fprintf(b, "- %s [%s] %s on %s, blamed %s\n", ep.Rule, ep.Severity, ep.State, ep.Entity.ID, ep.Blame.ID)
	fmt.Fprintf(b, "    pending %s", clock(ep.ActiveAt))
	if !ep.FiredAt.IsZero() {
		fmt.Fprintf(b, ", fired %s", clock(ep.FiredAt))
	}
	if !ep.ResolvedAt.IsZero() {
		fmt.Fprintf(b, ", resolved %s", clock(ep.ResolvedAt))
	}
	b.WriteString("\n")
	if ep.Summary != "" {
		fmt.Fprintf(b, "    %s\n", ep.Summary)
	}
	for _, k := range sortedKeys(ep.Annotations) {
		if k != "summary" {
			fmt.Fprintf(b, "    %s: %s\n", k, ep.Annotations[k])
		}
	}
	if f := ep.AtFiring; f != nil {
		fmt.Fprintf(b, "    at firing: %s p99 %s ms (baseline %s ms), self share %s", ep.Blame.ID, num(f.P99Ms, "%.1f"), num(f.BaselineP99Ms, "%.1f"), pct(f.SelfShare))
		if f.Call != nil {
			fmt.Fprintf(b, "; call from %s owns %s of its latency", f.Call.Source, pct(f.Call.CallShare))
		}
		b.WriteString("\n")
	}
	if ex := ep.Evidence.Exemplars; len(ex) > 0 {
		// The alerting and the blamed entity's exemplars often share
		// traces: each trace once, with its first (slowest) span.
		parts := make([]string, 0, maxTextExemplars)
		seen := map[string]bool{}
		for _, e := range ex {
			if seen[e.TraceID] || len(parts) == maxTextExemplars {
				continue
			}
			seen[e.TraceID] = true
			parts = append(parts, fmt.Sprintf("%s (%s, %.1f ms)", e.TraceID, e.Reason, e.Value))
		}
		fmt.Fprintf(b, "    traces: %s\n", strings.Join(parts, ", "))
	}
	if v := ep.Evidence.Values; len(v) > 0 {
		keys := sortedKeys(v)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, v[k]))
		}
		fmt.Fprintf(b, "    values: %s\n", strings.Join(parts, "; "))
	}
}

// maxTextExemplars bounds the trace ids the text report prints per alert;
// the JSON report has them all.
const maxTextExemplars = 5

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

func num(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func pct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100**v)
}
