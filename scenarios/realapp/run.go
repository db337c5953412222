package realapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"

	"github.com/junction-sre/junction/internal/pgtest"
)

// Timeline is how long each phase of a fault run lasts: the application
// healthy (the baseline), then the fault until its alert fires, then the
// fix until every alert of the instance has resolved, then a quiet spell
// in which nothing may fire.
type Timeline struct {
	Healthy time.Duration
	// FaultMax bounds the fault: it is fixed once the expected alert fires
	// (and FaultHold has passed), at the latest after FaultMax.
	FaultMax  time.Duration
	FaultHold time.Duration
	// FixedMax bounds the wait for the instance's alerts to resolve.
	FixedMax time.Duration
	Quiet    time.Duration
}

// DefaultTimeline fits the built-in packs: HopOwnsLatency holds for 1m,
// groups are evaluated every 15s, features cover the last minute. The
// healthy phase gives each entity its baseline: a feature's baseline
// starts one minute after the feature is first seen (docs/entities.md),
// so 100s leave about half a minute of healthy baseline before the fault.
func DefaultTimeline() Timeline {
	return Timeline{
		Healthy:   100 * time.Second,
		FaultMax:  150 * time.Second,
		FaultHold: 5 * time.Second,
		FixedMax:  120 * time.Second,
		Quiet:     20 * time.Second,
	}
}

// Config configures Run.
type Config struct {
	// Junction is the path of the junction binary.
	Junction string
	// Postgres serves the instances' databases.
	Postgres *pgtest.Server
	// Faults run concurrently, one application instance each
	// (service.namespace realapp-<fault>), into one Junction.
	Faults []Fault
	// RecordDir, when set, receives <fault>.jsonl, <fault>.jsonl.gz and
	// <fault>.truth.json per fault.
	RecordDir string
	Timeline  Timeline
	// EmitInterval is the correlation processor's; 5s when zero.
	EmitInterval time.Duration
	// Rate is the load per instance (requests/s); Rate when zero.
	Rate float64
	// Logf reports progress; nil for none.
	Logf func(format string, args ...any)
}

// Firing is one time an alert went to firing.
type Firing struct {
	Alert    string    `json:"alert"`
	Rule     string    `json:"rule"`
	Entity   string    `json:"entity"`
	Blame    string    `json:"blame"`
	Pending  time.Time `json:"pending"`
	Fired    time.Time `json:"fired"`
	Resolved time.Time `json:"resolved,omitzero"`
	Summary  string    `json:"summary"`
	Path     string    `json:"path,omitempty"`
	Expected bool      `json:"expected"`
	// Blames are the blames polled while it fired, each time it changed;
	// ResolvedBlame is the blame of its last evaluation before it
	// resolved (the rule evaluates the blame at every evaluation).
	Blames        []BlameSeen `json:"blames,omitempty"`
	ResolvedBlame string      `json:"resolved_blame,omitempty"`
}

// BlameSeen is a firing alert's blame at one time.
type BlameSeen struct {
	At    time.Time `json:"at"`
	Blame string    `json:"blame"`
}

func (b BlameSeen) String() string { return clock(b.At) + " " + b.Blame }

// Result is what Junction made of one fault.
type Result struct {
	Fault Fault `json:"fault"`
	Truth Truth `json:"truth"`
	// Edges are the graph's edges of the instance (an end is one of its
	// entities or carries its namespace) over the whole run.
	Edges     []Edge  `json:"edges"`
	Missing   []Edge  `json:"missing,omitempty"`
	Extra     []Edge  `json:"extra,omitempty"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	// ExtraNodes are the graph's nodes of the instance that are not its
	// entities (a duplicate node for one dependency shows here).
	ExtraNodes []string `json:"extra_nodes,omitempty"`
	// Firings are every firing of an alert raised by or blaming one of
	// the instance's entities.
	Firings []Firing `json:"firings"`
	// Blamed is the blame of the first expected firing.
	Blamed string `json:"blamed,omitempty"`
	// Share is the critical-path share of the blamed hop when the alert
	// fired: the latency.share of the edge into a blamed dependency, or a
	// blamed service's critical_path.self_share; ShareOf says which.
	Share   float64 `json:"share"`
	ShareOf string  `json:"share_of,omitempty"`
	// FaultAt, FixAt: when the fault was switched on and fixed.
	FaultAt time.Time `json:"fault_at"`
	FixAt   time.Time `json:"fix_at"`
	// PendingBefore is how long before the fault the first expected
	// firing went pending (on the healthy application's latency), zero
	// when it went pending on the fault.
	PendingBefore time.Duration `json:"pending_before,omitempty"`
	// FiredAfter is the first expected firing after FaultAt;
	// ResolvedAfter the last resolution after FixAt (zero when none).
	FiredAfter    time.Duration `json:"fired_after"`
	ResolvedAfter time.Duration `json:"resolved_after"`
	// Unresolved are the instance's alerts still firing at the end.
	Unresolved []string `json:"unresolved,omitempty"`
	// PendingAtEnd are its alerts pending at the end, PendingOnly its
	// activations that resolved without firing: no firing, so no failure,
	// but shown.
	PendingAtEnd []string `json:"pending_at_end,omitempty"`
	PendingOnly  []string `json:"pending_only,omitempty"`
	// Requests and Failed count the load's requests.
	Requests int64 `json:"requests"`
	Failed   int64 `json:"failed"`
	// Recording holds the recording's paths when one was written.
	Recording *Recording `json:"recording,omitempty"`
}

// Problems lists every way the result is wrong: an edge missing or extra,
// a node too many, no expected firing, a firing that is not expected, an
// alert that did not resolve. Empty means Junction was right.
func (r *Result) Problems() []string {
	var p []string
	for _, e := range r.Missing {
		p = append(p, "missing edge "+e.String())
	}
	for _, e := range r.Extra {
		p = append(p, "extra edge "+e.String())
	}
	for _, n := range r.ExtraNodes {
		p = append(p, "extra node "+n)
	}
	if r.Truth.Blame != "" && r.Blamed == "" {
		p = append(p, fmt.Sprintf("no alert fired blaming %s within %v of the fault", r.Truth.Blame, r.FixAt.Sub(r.FaultAt).Round(time.Second)))
	}
	for _, f := range r.Firings {
		if !f.Expected {
			p = append(p, fmt.Sprintf("unexpected firing %s (blame %s, pending %s, fired %s; fault %s, fix %s): %s",
				f.Alert, f.Blame, clock(f.Pending), clock(f.Fired), clock(r.FaultAt), clock(r.FixAt), f.Summary))
			continue
		}
		for _, b := range f.Blames {
			if b.Blame != f.Blame && b.At.Before(r.FixAt) {
				p = append(p, fmt.Sprintf("%s blamed %s at %s while the fault was on (fired blaming %s)", f.Alert, b.Blame, clock(b.At), f.Blame))
			}
		}
	}
	for _, id := range r.Unresolved {
		p = append(p, "not resolved after the fix: "+id)
	}
	return p
}

// Notes lists what is not wrong but a user would see: an expected alert
// whose blame moved after the fix, while it resolved; alerts that went
// pending and resolved without firing.
func (r *Result) Notes() []string {
	var n []string
	for _, f := range r.Firings {
		if !f.Expected {
			continue
		}
		for _, b := range f.Blames {
			if b.Blame != f.Blame && !b.At.Before(r.FixAt) {
				n = append(n, fmt.Sprintf("%s blamed %s at %s, after the fix, before it resolved", f.Alert, b.Blame, clock(b.At)))
			}
		}
		if f.Pending.Before(r.FaultAt) {
			n = append(n, fmt.Sprintf("%s went pending at %s, %v before the fault, on the healthy application's latency",
				f.Alert, clock(f.Pending), r.FaultAt.Sub(f.Pending).Round(time.Second)))
		}
		if f.ResolvedBlame != "" && f.ResolvedBlame != f.Blame {
			n = append(n, fmt.Sprintf("%s last blamed %s before it resolved", f.Alert, f.ResolvedBlame))
		}
	}
	for _, s := range r.PendingOnly {
		n = append(n, "pending, resolved without firing: "+s)
	}
	for _, s := range r.PendingAtEnd {
		n = append(n, "pending at the end: "+s)
	}
	return n
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05")
}

// Report is the outcome of Run.
type Report struct {
	Results []Result `json:"results"`
	// StrayNodes, StrayEdges and StrayFirings belong to no instance.
	StrayNodes   []string  `json:"stray_nodes,omitempty"`
	StrayEdges   []Edge    `json:"stray_edges,omitempty"`
	StrayFirings []Firing  `json:"stray_firings,omitempty"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	// StreamReconnects counts how often Junction ended the alert stream
	// and it was reopened.
	StreamReconnects int `json:"stream_reconnects"`
	// JunctionOutput is the end of Junction's log.
	JunctionOutput string `json:"-"`
}

// Problems lists the stray nodes, edges and firings.
func (r *Report) Problems() []string {
	var p []string
	for _, n := range r.StrayNodes {
		p = append(p, "node of no instance "+n)
	}
	for _, e := range r.StrayEdges {
		p = append(p, "edge of no instance "+e.String())
	}
	for _, f := range r.StrayFirings {
		p = append(p, fmt.Sprintf("firing of no instance %s (blame %s): %s", f.Alert, f.Blame, f.Summary))
	}
	return p
}

// instance is one application under one fault.
type instance struct {
	once   sync.Once
	fault  Fault
	app    *App
	rec    *Recorder
	truth  Truth
	res    Result
	shared *runState
	// obs are the blames seen on the instance's firing alerts, per alert,
	// each time it changed (polled every 2s).
	obs map[string][]blameSeen
}

type blameSeen struct {
	at    time.Time
	blame string
}

// observe polls the alerts of the instance and notes each firing alert's
// blame when it changed; it returns them.
func (in *instance) observe(ctx context.Context) ([]alert.Alert, error) {
	as, err := in.shared.j.Alerts(ctx, in.shared.start, time.Now())
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var mine []alert.Alert
	for _, a := range as {
		if !in.truth.Owns(a.Entity.ID) && !in.truth.Owns(a.Blame.ID) {
			continue
		}
		mine = append(mine, a)
		if a.State != alert.StateFiring {
			continue
		}
		if in.obs == nil {
			in.obs = map[string][]blameSeen{}
		}
		seen := in.obs[a.ID]
		if n := len(seen); n == 0 || seen[n-1].blame != a.Blame.ID {
			in.obs[a.ID] = append(seen, blameSeen{now, a.Blame.ID})
		}
	}
	return mine, nil
}

type runState struct {
	j     *Junction
	start time.Time
	cfg   Config
}

// Run starts Junction, runs every fault concurrently in its own instance
// of the application, and scores what Junction's query API shows.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Junction == "" || cfg.Postgres == nil || len(cfg.Faults) == 0 {
		return nil, errors.New("realapp: Config needs Junction, Postgres and Faults")
	}
	if cfg.Timeline == (Timeline{}) {
		cfg.Timeline = DefaultTimeline()
	}
	if cfg.EmitInterval == 0 {
		cfg.EmitInterval = 5 * time.Second
	}
	if cfg.Rate == 0 {
		cfg.Rate = Rate
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	j, err := StartJunction(ctx, cfg.Junction, cfg.EmitInterval)
	if err != nil {
		return nil, err
	}
	defer j.Stop()
	stream, err := j.Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	st := &runState{j: j, start: time.Now(), cfg: cfg}
	var insts []*instance
	defer func() {
		for _, in := range insts {
			in.close()
		}
	}()
	for _, f := range cfg.Faults {
		in := &instance{fault: f, shared: st}
		tel := &Telemetry{OTLPGRPC: j.OTLP}
		if cfg.RecordDir != "" {
			if in.rec, err = NewRecorder(filepath.Join(cfg.RecordDir, string(f))); err != nil {
				return nil, err
			}
			tel.Recorder = in.rec
		}
		if in.app, err = Start(ctx, AppConfig{Namespace: "realapp-" + string(f), Postgres: cfg.Postgres, Telemetry: tel}); err != nil {
			if in.rec != nil {
				_ = in.rec.Close()
			}
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		in.truth = in.app.Truth(f)
		insts = append(insts, in)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(insts))
	for i, in := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = in.run(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := j.Exited(); err != nil {
		return nil, err
	}
	rep := &Report{Start: st.start, End: time.Now(), JunctionOutput: j.Output(16 << 10)}
	for _, in := range insts {
		in.close()
		if in.rec != nil {
			jl, gz := in.rec.Paths()
			lines, spans := in.rec.Counts()
			in.res.Recording = &Recording{Truth: in.truth, JSONL: jl, JSONLGz: gz, Lines: lines, Spans: spans,
				FaultAt: in.res.FaultAt, FixAt: in.res.FixAt}
			if err := writeTruth(filepath.Join(cfg.RecordDir, string(in.fault)+".truth.json"), *in.res.Recording); err != nil {
				return nil, err
			}
		}
	}
	records, reconnects := stream.Records()
	rep.StreamReconnects = reconnects
	if err := stream.Close(); err != nil {
		return nil, err
	}
	if err := score(ctx, j, st.start, rep.End, insts, records, rep); err != nil {
		return nil, err
	}
	for _, in := range insts {
		rep.Results = append(rep.Results, in.res)
	}
	return rep, nil
}

// close stops the application, then the recorder (after the exporters
// flushed into it).
func (in *instance) close() {
	in.once.Do(func() {
		if in.app != nil {
			in.app.Close()
		}
		if in.rec != nil {
			_ = in.rec.Close()
		}
	})
}

// run plays the instance's timeline: healthy, fault until its alert fires,
// fix until its alerts resolve, quiet.
func (in *instance) run(ctx context.Context) error {
	cfg := in.shared.cfg
	tl := cfg.Timeline
	loadCtx, stopLoad := context.WithCancel(ctx)
	var sent, failed int64
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		sent, failed = Load(loadCtx, in.app.FrontendURL(), cfg.Rate, in.fault.seed())
	}()
	defer func() {
		stopLoad()
		<-loadDone
		in.res.Requests, in.res.Failed = sent, failed
	}()
	in.res.Fault, in.res.Truth = in.fault, in.truth
	if !sleepCtx(ctx, tl.Healthy) {
		return ctx.Err()
	}
	in.res.FaultAt = time.Now()
	if err := in.app.Set(ctx, in.fault.Settings()); err != nil {
		return err
	}
	cfg.Logf("%s: fault on (%s)", in.fault, in.fault.Describe())
	// The fault stays on until an alert blaming the true bottleneck has
	// fired and no alert of the instance is still pending (so none fires
	// after the fix on what the fault did), at most FaultMax.
	deadline := in.res.FaultAt.Add(tl.FaultMax)
	var fired time.Time
	for time.Now().Before(deadline) {
		if !sleepCtx(ctx, 2*time.Second) {
			return ctx.Err()
		}
		as, err := in.observe(ctx)
		if err != nil {
			return err
		}
		pending := 0
		for _, a := range as {
			if a.State == alert.StatePending {
				pending++
			}
			if fired.IsZero() && in.truth.Blame != "" && a.Blame.ID == in.truth.Blame && !a.FiredAt.IsZero() {
				fired = a.FiredAt
				cfg.Logf("%s: %s blaming %s fired %v after the fault", in.fault, a.ID, in.truth.Blame, fired.Sub(in.res.FaultAt).Round(time.Second))
				in.measureShare(ctx, fired)
			}
		}
		if !fired.IsZero() && pending == 0 && time.Since(fired) >= tl.FaultHold {
			break
		}
	}
	in.res.FixAt = time.Now()
	if err := in.app.Set(ctx, Healthy()); err != nil {
		return err
	}
	cfg.Logf("%s: fixed", in.fault)
	deadline = in.res.FixAt.Add(tl.FixedMax)
	for time.Now().Before(deadline) {
		if !sleepCtx(ctx, 2*time.Second) {
			return ctx.Err()
		}
		as, err := in.observe(ctx)
		if err != nil {
			return err
		}
		active := 0
		for _, a := range as {
			if a.State != alert.StateResolved {
				active++
			}
		}
		if active == 0 {
			cfg.Logf("%s: nothing active %v after the fix", in.fault, time.Since(in.res.FixAt).Round(time.Second))
			break
		}
	}
	for end := time.Now().Add(tl.Quiet); time.Now().Before(end); {
		if !sleepCtx(ctx, 2*time.Second) {
			return ctx.Err()
		}
		if _, err := in.observe(ctx); err != nil {
			return err
		}
	}
	return nil
}

// measureShare reads the blamed hop's critical-path share at the firing.
func (in *instance) measureShare(ctx context.Context, at time.Time) {
	j := in.shared.j
	blame := in.truth.Blame
	if strings.HasPrefix(blame, string(entity.Service)+":"+in.truth.Namespace+"/") {
		e, err := j.Entity(ctx, blame)
		if err == nil {
			if v, ok := e.Features["critical_path.self_share"]; ok {
				in.res.Share, in.res.ShareOf = v, "critical_path.self_share of "+blame
			}
		}
		return
	}
	g, err := j.Graph(ctx, at.Add(-10*time.Second), at)
	if err != nil {
		return
	}
	for _, e := range g.Edges {
		if e.Target == blame && in.truth.Owns(e.Source) {
			if v, ok := e.Stats["latency.share"]; ok {
				in.res.Share, in.res.ShareOf = v, "latency.share of "+e.Source+" -> "+e.Target
			}
		}
	}
}

// belongs reports whether id is one of the instance's entities or carries
// its namespace or database name.
func (in *instance) belongs(id string) bool {
	return in.truth.Owns(id) ||
		strings.HasPrefix(id, string(entity.Service)+":"+in.truth.Namespace+"/") ||
		strings.HasSuffix(id, "/"+databaseName(in.truth.Namespace))
}

// score reads the graph and the alerts of the run and fills each
// instance's result.
func score(ctx context.Context, j *Junction, from, to time.Time, insts []*instance, records []alert.Alert, rep *Report) error {
	g, err := j.Graph(ctx, from, to)
	if err != nil {
		return err
	}
	owner := func(id string) *instance {
		for _, in := range insts {
			if in.belongs(id) {
				return in
			}
		}
		return nil
	}
	for _, n := range g.Nodes {
		in := owner(n.ID)
		switch {
		case in == nil:
			rep.StrayNodes = append(rep.StrayNodes, n.ID)
		case !in.truth.Owns(n.ID):
			in.res.ExtraNodes = append(in.res.ExtraNodes, n.ID)
		}
	}
	for _, ge := range g.Edges {
		e := Edge{ge.Source, ge.Target, ge.Type}
		in := owner(e.Source)
		if in == nil {
			in = owner(e.Target)
		}
		if in == nil {
			rep.StrayEdges = append(rep.StrayEdges, e)
			continue
		}
		in.res.Edges = append(in.res.Edges, e)
	}
	for _, in := range insts {
		r := &in.res
		sortEdges(r.Edges)
		r.Missing, r.Extra = diffEdges(in.truth.Edges, r.Edges)
		hit := len(r.Edges) - len(r.Extra)
		if len(r.Edges) > 0 {
			r.Precision = float64(hit) / float64(len(r.Edges))
		}
		r.Recall = float64(len(in.truth.Edges)-len(r.Missing)) / float64(len(in.truth.Edges))
	}

	owned := func(a alert.Alert) *instance {
		if in := owner(a.Entity.ID); in != nil {
			return in
		}
		return owner(a.Blame.ID)
	}
	// Firings from the stream: the record of each change to firing carries
	// the blame the rule gave then.
	byID := map[string][]alert.Alert{}
	var ids []string
	for _, a := range records {
		if _, ok := byID[a.ID]; !ok {
			ids = append(ids, a.ID)
		}
		byID[a.ID] = append(byID[a.ID], a)
	}
	for _, id := range ids {
		fs, pendingOnly := firings(byID[id])
		in := owned(byID[id][0])
		if in == nil {
			rep.StrayFirings = append(rep.StrayFirings, fs...)
			continue
		}
		r := &in.res
		r.PendingOnly = append(r.PendingOnly, pendingOnly...)
		for _, f := range fs {
			f.Expected = r.expects(f)
			f.Blames = in.blamesDuring(f)
			if f.Blame == "" && len(f.Blames) > 0 {
				f.Blame = f.Blames[0].Blame
			}
			r.Firings = append(r.Firings, f)
			if f.Expected && (r.Blamed == "" || f.Fired.Sub(r.FaultAt) < r.FiredAfter) {
				r.Blamed, r.FiredAfter = f.Blame, f.Fired.Sub(r.FaultAt)
				r.PendingBefore = 0
				if f.Pending.Before(r.FaultAt) {
					r.PendingBefore = r.FaultAt.Sub(f.Pending)
				}
			}
			if !f.Resolved.IsZero() && f.Resolved.After(r.FixAt) && f.Resolved.Sub(r.FixAt) > r.ResolvedAfter {
				r.ResolvedAfter = f.Resolved.Sub(r.FixAt)
			}
		}
	}
	// What is still active at the end.
	as, err := j.Alerts(ctx, from, to)
	if err != nil {
		return err
	}
	for _, a := range as {
		in := owned(a)
		if in == nil || a.State == alert.StateResolved {
			continue
		}
		if a.State == alert.StateFiring {
			in.res.Unresolved = append(in.res.Unresolved, a.ID)
		} else {
			in.res.PendingAtEnd = append(in.res.PendingAtEnd, a.ID)
		}
	}
	return nil
}

// expects reports whether f is the expected firing: it blames the
// fault's entity and fired while the fault was on. Before the fault and
// after the fix nothing may fire. (An alert that went pending on the
// healthy application's noise and fired on the fault is shown in Notes.)
func (r *Result) expects(f Firing) bool {
	return r.Truth.Blame != "" && f.Blame == r.Truth.Blame &&
		!r.FaultAt.IsZero() && !f.Fired.Before(r.FaultAt) && f.Fired.Before(r.FixAt)
}

// blamesDuring returns the blames polled on f's alert between its firing
// and its resolution, when they changed.
func (in *instance) blamesDuring(f Firing) []BlameSeen {
	var out []BlameSeen
	for _, b := range in.obs[f.Alert] {
		if b.at.Before(f.Fired) || (!f.Resolved.IsZero() && b.at.After(f.Resolved)) {
			continue
		}
		out = append(out, BlameSeen{At: b.at, Blame: b.blame})
	}
	return out
}

// firings turns one alert's state changes into its firings, and lists
// its activations that resolved without firing.
func firings(recs []alert.Alert) (out []Firing, pendingOnly []string) {
	var open *Firing
	for _, a := range recs {
		switch a.State {
		case alert.StatePending:
			open = nil
		case alert.StateFiring:
			out = append(out, Firing{Alert: a.ID, Rule: a.Rule, Entity: a.Entity.ID, Blame: a.Blame.ID,
				Pending: a.ActiveAt, Fired: a.FiredAt, Summary: a.Summary(), Path: a.Annotations["path"]})
			open = &out[len(out)-1]
		case alert.StateResolved:
			switch {
			case open != nil:
				open.Resolved, open.ResolvedBlame = a.ResolvedAt, a.Blame.ID
				open = nil
			case !a.FiredAt.IsZero():
				// Its firing record fell in a gap of the stream: the blame
				// at firing is the first one polled.
				out = append(out, Firing{Alert: a.ID, Rule: a.Rule, Entity: a.Entity.ID,
					Pending: a.ActiveAt, Fired: a.FiredAt, Resolved: a.ResolvedAt, ResolvedBlame: a.Blame.ID,
					Summary: a.Summary(), Path: a.Annotations["path"]})
			default:
				pendingOnly = append(pendingOnly, fmt.Sprintf("%s (pending %s, resolved %s)", a.ID, clock(a.ActiveAt), clock(a.ResolvedAt)))
			}
		}
	}
	return out, pendingOnly
}

func diffEdges(truth, got []Edge) (missing, extra []Edge) {
	in := func(e Edge, es []Edge) bool {
		for _, x := range es {
			if x == e {
				return true
			}
		}
		return false
	}
	for _, e := range truth {
		if !in(e, got) {
			missing = append(missing, e)
		}
	}
	for _, e := range got {
		if !in(e, truth) {
			extra = append(extra, e)
		}
	}
	return missing, extra
}

// Recording is one recorded run of the application.
type Recording struct {
	Truth Truth `json:"truth"`
	// JSONL and JSONLGz are the paths of the OTLP JSON lines, plain and
	// gzipped (the same lines).
	JSONL   string `json:"jsonl"`
	JSONLGz string `json:"jsonl_gz"`
	// Lines and Spans count what was written.
	Lines int `json:"lines"`
	Spans int `json:"spans"`
	// FaultAt and FixAt are when the fault was switched on and fixed (on
	// the recording's clock: the spans' timestamps).
	FaultAt time.Time `json:"fault_at"`
	FixAt   time.Time `json:"fix_at"`
}

func writeTruth(path string, r Recording) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// RecordOptions configures Record.
type RecordOptions struct {
	// Postgres serves the database; Record starts its own when nil.
	Postgres *pgtest.Server
	// Healthy, Fault and Fixed are the phases' lengths; 120s, 150s and 90s
	// when zero: long enough for a baseline (it starts a minute after a
	// feature is first seen, on the default 15s ticks), for the built-in
	// packs to fire (1m of `for`) and to resolve on the recording's own
	// clock.
	Healthy, Fault, Fixed time.Duration
	// Rate is the load (requests/s); Rate when zero.
	Rate float64
}

// Record runs one instance of the application with fault f (healthy,
// fault, fixed) exporting only to a recorder, and writes dir/<f>.jsonl,
// dir/<f>.jsonl.gz and dir/<f>.truth.json (the Recording, with the true
// edges and the blamed entity). It takes as long as its phases.
func Record(ctx context.Context, dir string, f Fault, o RecordOptions) (*Recording, error) {
	if o.Healthy == 0 {
		o.Healthy = 120 * time.Second
	}
	if o.Fault == 0 {
		o.Fault = 150 * time.Second
	}
	if o.Fixed == 0 {
		o.Fixed = 90 * time.Second
	}
	if o.Rate == 0 {
		o.Rate = Rate
	}
	pg := o.Postgres
	if pg == nil {
		bin, err := pgtest.BinDir()
		if err != nil {
			return nil, err
		}
		if pg, err = pgtest.Start(ctx, bin, pgtest.Options{Name: "realapp"}); err != nil {
			return nil, err
		}
		defer pg.Stop()
	}
	rec, err := NewRecorder(filepath.Join(dir, string(f)))
	if err != nil {
		return nil, err
	}
	app, err := Start(ctx, AppConfig{Namespace: "realapp-" + string(f), Postgres: pg, Telemetry: &Telemetry{Recorder: rec}})
	if err != nil {
		_ = rec.Close()
		return nil, err
	}
	truth := app.Truth(f)
	loadCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Load(loadCtx, app.FrontendURL(), o.Rate, f.seed())
	}()
	r := &Recording{Truth: truth}
	err = func() error {
		if !sleepCtx(ctx, o.Healthy) {
			return ctx.Err()
		}
		r.FaultAt = time.Now()
		if err := app.Set(ctx, f.Settings()); err != nil {
			return err
		}
		if !sleepCtx(ctx, o.Fault) {
			return ctx.Err()
		}
		r.FixAt = time.Now()
		if err := app.Set(ctx, Healthy()); err != nil {
			return err
		}
		if !sleepCtx(ctx, o.Fixed) {
			return ctx.Err()
		}
		return nil
	}()
	stop()
	<-done
	app.Close()
	err = errors.Join(err, rec.Close())
	if err != nil {
		return nil, err
	}
	r.JSONL, r.JSONLGz = rec.Paths()
	r.Lines, r.Spans = rec.Counts()
	if err := writeTruth(filepath.Join(dir, string(f)+".truth.json"), *r); err != nil {
		return nil, err
	}
	return r, nil
}

// RecordAll records each fault as Record does, concurrently (one
// application instance each, one PostgreSQL), so that recording every
// fault takes as long as recording one.
func RecordAll(ctx context.Context, dir string, faults []Fault, o RecordOptions) ([]*Recording, error) {
	if o.Postgres == nil {
		bin, err := pgtest.BinDir()
		if err != nil {
			return nil, err
		}
		pg, err := pgtest.Start(ctx, bin, pgtest.Options{Name: "realapp"})
		if err != nil {
			return nil, err
		}
		defer pg.Stop()
		o.Postgres = pg
	}
	recs := make([]*Recording, len(faults))
	errs := make([]error, len(faults))
	var wg sync.WaitGroup
	for i, f := range faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i], errs[i] = Record(ctx, dir, f, o)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("recording %s: %w", f, errs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return recs, nil
}
