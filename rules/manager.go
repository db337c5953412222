// Package rules is Junction's CEL rule engine: it loads rule files,
// type-checks every expression against the entity schema, evaluates groups
// of rules on entity snapshots and runs the alert lifecycle (pending,
// firing, resolved) as Prometheus does. docs/rules.md describes the rule
// language.
package rules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

// Manager loads rule files and evaluates their groups. All methods are
// safe for concurrent use; evaluations are serialised.
type Manager struct {
	cfg    Config
	set    Settings
	logger *zap.Logger
	tel    *telemetry

	mu       sync.Mutex // guards everything below
	groups   []*group
	states   map[string]*ruleState // by stateKey(group, rule)
	lastEval map[string]time.Time  // by group name
	filesSum [sha256.Size]byte

	// removed holds the active instances of rules a reload removed; the
	// next evaluation emits them as resolved. Bounded by the instances the
	// removed rules had.
	removed []instance
}

func stateKey(group, rule string) string { return group + "\x00" + rule }

// Close stops the manager's own telemetry (its rule health and active
// alert gauges); call it when the manager is discarded, e.g. when the
// processor that runs it shuts down. Close is idempotent; the manager must
// not be used afterwards.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tel == nil || m.tel.reg == nil {
		return nil
	}
	err := m.tel.reg.Unregister()
	m.tel.reg = nil
	return err
}

// NewManager loads and compiles the rule files of cfg and restores alert
// state from cfg.StateFile. It fails with every error of every rule file
// (an ErrorList) when the rules do not compile.
func NewManager(cfg Config, set Settings) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, set: set, logger: set.Logger, states: map[string]*ruleState{}, lastEval: map[string]time.Time{}}
	if m.logger == nil {
		m.logger = zap.NewNop()
	}
	if m.set.Now == nil {
		m.set.Now = time.Now
	}
	groups, sum, errs := m.load()
	if len(errs) > 0 {
		return nil, errs
	}
	m.install(groups, sum)
	tel, err := newTelemetry(set.MeterProvider, m.observe)
	if err != nil {
		return nil, fmt.Errorf("rules: telemetry: %w", err)
	}
	m.tel = tel
	if cfg.StateFile != "" {
		if err := m.restoreState(); err != nil {
			// A lost or corrupt state file costs pending timers, not
			// correctness: rules re-derive their alerts.
			m.logger.Warn("Alert state not restored; starting with no active alerts", zap.Error(err))
		}
	}
	return m, nil
}

func (m *Manager) load() ([]*group, [sha256.Size]byte, ErrorList) {
	sum, _ := filesSum(m.cfg.Files)
	groups, errs := compileFiles(m.cfg.Files, m.cfg.CostLimit)
	return groups, sum, errs
}

// filesSum hashes the names and contents of the rule files.
func filesSum(paths []string) ([sha256.Size]byte, error) {
	h := sha256.New()
	files, err := ExpandPaths(paths)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	for _, f := range files {
		data, err := readRuleFile(f)
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
		h.Write(data)
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}

// install makes groups the running rule set. Rules with the same group,
// name and entity type as a running rule keep its alert instances.
// Callers hold m.mu (or own m exclusively).
func (m *Manager) install(groups []*group, sum [sha256.Size]byte) {
	states := map[string]*ruleState{}
	lastEval := map[string]time.Time{}
	for _, g := range groups {
		if t, ok := m.lastEval[g.name]; ok {
			lastEval[g.name] = t
		}
		for _, r := range g.rules {
			k := stateKey(g.name, r.name)
			if old, ok := m.states[k]; ok && old.forEach == r.forEach {
				old.status.Kind, old.status.Severity, old.status.File = r.kind, r.severity, r.file
				states[k] = old
				continue
			}
			states[k] = &ruleState{forEach: r.forEach, active: map[string]*instance{}, status: alert.RuleStatus{
				Group: g.name, Rule: r.name, Kind: r.kind, Severity: r.severity, File: r.file, Health: alert.HealthUnknown,
			}}
		}
	}
	for k, old := range m.states {
		if states[k] == old {
			continue
		}
		for _, inst := range old.active {
			m.removed = append(m.removed, *inst)
		}
	}
	m.groups, m.states, m.lastEval, m.filesSum = groups, states, lastEval, sum
}

// Reload recompiles the rule files. When any file has an error the running
// rules stay in place and every error is returned (an ErrorList);
// otherwise the new rules replace them, and rules that kept their group,
// name and entity type keep their pending and firing alerts.
func (m *Manager) Reload() error {
	groups, sum, errs := m.load()
	if len(errs) > 0 {
		m.tel.reloadFails.Add(context.Background(), 1)
		m.logger.Error("Rule reload failed; the last good rules keep running", zap.Error(errs))
		return errs
	}
	m.mu.Lock()
	m.install(groups, sum)
	m.mu.Unlock()
	m.tel.reloads.Add(context.Background(), 1)
	return nil
}

// ReloadIfChanged reloads the rules when the rule files' names or contents
// changed since the last load or attempt, for callers that drive reloads
// from their own ticks and file-system events (Run does it itself). It
// reports whether a reload was attempted and its error; the same broken
// contents are not retried.
func (m *Manager) ReloadIfChanged() (bool, error) {
	sum, err := filesSum(m.cfg.Files)
	m.mu.Lock()
	same := err == nil && sum == m.filesSum
	m.mu.Unlock()
	if same {
		return false, nil
	}
	if err := m.Reload(); err != nil {
		m.mu.Lock()
		m.filesSum = sum
		m.mu.Unlock()
		return true, err
	}
	return true, nil
}

// Eval evaluates every group on snap at now, whatever their intervals, and
// returns the alert instances that are pending or firing or resolved in
// this evaluation and every rule's status. Alerts come in group and rule
// order (as in the files) and by entity id within a rule, after the
// instances of rules a reload removed (resolved now). It is deterministic
// for a given rule set, state and snapshot.
func (m *Manager) Eval(ctx context.Context, snap *entity.Snapshot, now time.Time) ([]alert.Alert, []alert.RuleStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	alerts := m.evalLocked(ctx, snap, now, func(*group) bool { return true })
	return alerts, m.statusLocked()
}

// EvalDue evaluates the groups whose interval has passed since their last
// evaluation (all groups the first time) on snap at now, for callers that
// drive evaluation from their own ticks; otherwise it is Eval. The caller
// saves state (SaveState) when it wants it to survive a restart.
func (m *Manager) EvalDue(ctx context.Context, snap *entity.Snapshot, now time.Time) ([]alert.Alert, []alert.RuleStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	alerts := m.evalLocked(ctx, snap, now, func(g *group) bool { return m.isDue(g, now) })
	return alerts, m.statusLocked()
}

func (m *Manager) evalLocked(ctx context.Context, snap *entity.Snapshot, now time.Time, due func(*group) bool) []alert.Alert {
	g := newGraph(snap)
	var results [][]alert.Alert
	n := 0
	for _, grp := range m.groups {
		if !due(grp) {
			continue
		}
		m.lastEval[grp.name] = now
		for _, r := range grp.rules {
			st := m.states[stateKey(grp.name, r.name)]
			res := evalRule(r, st, g, now)
			results = append(results, res.alerts)
			n += len(res.alerts)
			m.tel.recordEval(ctx, r, st.status.EvaluationDuration, res.failed, res.dropped)
			if res.failed {
				m.logger.Debug("Rule evaluation failed", zap.String("group", grp.name), zap.String("rule", r.name),
					zap.String("error", st.status.LastError))
			}
		}
	}
	out := make([]alert.Alert, 0, n+len(m.removed))
	// Instances of rules removed by a reload resolve now, in id order.
	sort.Slice(m.removed, func(i, j int) bool { return m.removed[i].ID < m.removed[j].ID })
	for _, inst := range m.removed {
		a := inst.Alert
		a.State, a.ResolvedAt, a.EvaluatedAt = alert.StateResolved, now, now
		out = append(out, a)
	}
	m.removed = nil
	for _, r := range results {
		out = append(out, r...)
	}
	return out
}

// Status returns the status of every rule, in group and rule order.
func (m *Manager) Status() []alert.RuleStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statusLocked()
}

func (m *Manager) statusLocked() []alert.RuleStatus {
	var out []alert.RuleStatus
	for _, g := range m.groups {
		for _, r := range g.rules {
			out = append(out, m.states[stateKey(g.name, r.name)].status)
		}
	}
	return out
}

func (m *Manager) observe() []ruleObservation {
	var out []ruleObservation
	for _, s := range m.Status() {
		h := int64(1)
		if s.Health == alert.HealthErr {
			h = 0
		}
		out = append(out, ruleObservation{group: s.Group, rule: s.Rule, health: h, active: s.Active})
	}
	return out
}

// ReloadSettle is how long rule files must be quiet after a file-system
// event before they are read: editors, `cp` and ConfigMap updates write in
// several steps (truncate, write, rename), and a file read between the
// truncate and the write is empty, which is a valid rule file with no
// rules: installing it would resolve every alert of the file.
const ReloadSettle = 500 * time.Millisecond

// NotifyFunc receives what one evaluation of Run yields: the evaluation's
// time, the alerts pending, firing or resolved in it, and every rule's
// status.
type NotifyFunc func(ctx context.Context, at time.Time, alerts []alert.Alert, status []alert.RuleStatus)

// Run evaluates each group on its interval against snapshots from src and
// hands the alerts of every evaluation (pending, firing, and those resolved
// in it) and all rule statuses to notify, with the evaluation's time. It reloads rule files when they
// change (file-system notifications, read once the files have been quiet
// for ReloadSettle, and every ReloadInterval), writes the
// state file after every evaluation, and returns nil when ctx is done.
func (m *Manager) Run(ctx context.Context, src entity.Source, notify NotifyFunc) error {
	// The watcher is in place before the first evaluation, so a change
	// made after it is seen.
	reloads := m.startReloads()
	reloadsDone := make(chan struct{})
	go func() {
		defer close(reloadsDone)
		reloads.loop(ctx)
	}()
	defer func() { <-reloadsDone }()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := m.SaveState(); err != nil {
				m.logger.Warn("Alert state not saved", zap.Error(err))
			}
			return nil
		case <-timer.C:
			now := m.set.Now()
			if m.anyDue(now) {
				m.evalDue(ctx, src, notify, now)
			}
			timer.Reset(m.nextDue(m.set.Now()))
		}
	}
}

// RunReloads reloads the rule files whenever they change, until ctx is
// done: on file-system notifications (unless Settings.NoWatch), read once
// the files have been quiet for ReloadSettle, and every ReloadInterval.
// Run does this itself; a caller that evaluates on its own ticks
// (EvalDue) runs RunReloads beside them, so rule files reload the same
// way wherever rules run.
func (m *Manager) RunReloads(ctx context.Context) {
	m.startReloads().loop(ctx)
}

// reloader holds what RunReloads listens to; its channels are nil when
// the source is off.
type reloader struct {
	m       *Manager
	events  <-chan fsnotify.Event
	errs    <-chan error
	ticks   <-chan time.Time
	watcher *fsnotify.Watcher
	ticker  *time.Ticker
}

func (m *Manager) startReloads() *reloader {
	r := &reloader{m: m}
	if !m.set.NoWatch {
		if w, err := m.Watch(); err != nil {
			m.logger.Warn("Rule files are not watched; changes are picked up every reload_interval", zap.Error(err))
		} else {
			r.watcher, r.events, r.errs = w, w.Events, w.Errors
		}
	}
	if m.cfg.ReloadInterval > 0 {
		r.ticker = time.NewTicker(m.cfg.ReloadInterval)
		r.ticks = r.ticker.C
	}
	return r
}

func (r *reloader) loop(ctx context.Context) {
	defer func() {
		if r.watcher != nil {
			r.watcher.Close()
		}
		if r.ticker != nil {
			r.ticker.Stop()
		}
	}()
	// A file-system event starts (or restarts) the settle timer; the files
	// are read once they have been quiet for ReloadSettle.
	settle := time.NewTimer(ReloadSettle)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.ticks:
			r.m.reloadIfChangedLogged()
		case <-r.events:
			settle.Reset(ReloadSettle)
		case err := <-r.errs:
			// An overflowed event queue loses events: read the files.
			r.m.logger.Warn("Rule file watcher error; reading the rule files", zap.Error(err))
			settle.Reset(ReloadSettle)
		case <-settle.C:
			r.m.reloadIfChangedLogged()
		}
	}
}

// reloadIfChangedLogged is ReloadIfChanged with a log line for a reload
// that took (a failed one is logged by Reload).
func (m *Manager) reloadIfChangedLogged() {
	if tried, err := m.ReloadIfChanged(); tried && err == nil {
		m.logger.Info("Rules reloaded", zap.Strings("rules::files", m.cfg.Files))
	}
}

// isDue reports whether g's interval has passed since its last evaluation,
// allowing dueSlack early: a caller ticking at the group interval sees its
// ticks arrive a little early or late, and a tick a hair early must not
// skip a whole interval.
func (m *Manager) isDue(g *group, now time.Time) bool {
	last, ok := m.lastEval[g.name]
	return !ok || !now.Before(last.Add(g.interval-dueSlack(g.interval)))
}

// dueSlack is a tenth of the interval, at most one second.
func dueSlack(interval time.Duration) time.Duration {
	return min(interval/10, time.Second)
}

func (m *Manager) anyDue(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range m.groups {
		if m.isDue(g, now) {
			return true
		}
	}
	return false
}

// nextDue returns how long until the next group is due.
func (m *Manager) nextDue(now time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := time.Duration(-1)
	for _, g := range m.groups {
		d := time.Duration(0)
		if last, ok := m.lastEval[g.name]; ok {
			d = last.Add(g.interval).Sub(now)
		}
		if next < 0 || d < next {
			next = d
		}
	}
	if next < 0 {
		next = DefaultGroupInterval // no groups: look again later
	}
	return max(next, 0)
}

func (m *Manager) evalDue(ctx context.Context, src entity.Source, notify NotifyFunc, now time.Time) {
	snap, err := src.Snapshot(ctx, now)
	if err != nil {
		m.logger.Warn("No entity snapshot; rule evaluation skipped", zap.Error(err))
		m.mu.Lock()
		for _, g := range m.groups {
			if m.isDue(g, now) {
				m.lastEval[g.name] = now
			}
		}
		m.mu.Unlock()
		return
	}
	m.mu.Lock()
	alerts := m.evalLocked(ctx, snap, now, func(g *group) bool { return m.isDue(g, now) })
	status := m.statusLocked()
	m.mu.Unlock()
	notify(ctx, now, alerts, status)
	if m.cfg.StateFile != "" {
		if err := m.SaveState(); err != nil {
			m.tel.stateFailures.Add(ctx, 1)
			m.logger.Warn("Alert state not saved", zap.Error(err))
		}
	}
}

// Watch returns a file-system watcher on the directories holding the rule
// files (and the directories the config names), for callers that reload
// with ReloadIfChanged; built-in packs need no watching. The caller closes
// it.
func (m *Manager) Watch() (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	files, _ := ExpandPaths(m.cfg.Files)
	for _, f := range files {
		if !isBuiltin(f) {
			dirs[filepath.Dir(f)] = true
		}
	}
	for _, p := range m.cfg.Files {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			dirs[p] = true
		}
	}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return nil, fmt.Errorf("watching %s: %w", d, err)
		}
	}
	return w, nil
}

// stateFile is the JSON document of StateFile.
type stateFile struct {
	Version int        `json:"version"`
	SavedAt time.Time  `json:"saved_at"`
	Alerts  []instance `json:"alerts"`
}

const stateVersion = 1

// SaveState writes the pending and firing alert instances to StateFile
// atomically (a temporary file renamed over it). It does nothing when no
// StateFile is configured.
func (m *Manager) SaveState() error {
	if m.cfg.StateFile == "" {
		return nil
	}
	m.mu.Lock()
	doc := stateFile{Version: stateVersion, SavedAt: m.set.Now().UTC()}
	keys := make([]string, 0, len(m.states))
	for k := range m.states {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		st := m.states[k]
		ids := make([]string, 0, len(st.active))
		for id := range st.active {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			doc.Alerts = append(doc.Alerts, *st.active[id])
		}
	}
	m.mu.Unlock()
	data, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return fmt.Errorf("rules: state: %w", err)
	}
	return writeFileAtomic(m.cfg.StateFile, data)
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("rules: state file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("rules: state file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("rules: state file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("rules: state file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("rules: state file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rules: state file %s: %w", path, err)
	}
	return nil
}

// restoreState loads StateFile into the rules that still exist.
func (m *Manager) restoreState() error {
	data, err := os.ReadFile(m.cfg.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	var doc stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("state file %s: %w", m.cfg.StateFile, err)
	}
	if doc.Version != stateVersion {
		return fmt.Errorf("state file %s: version %d, expected %d", m.cfg.StateFile, doc.Version, stateVersion)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range doc.Alerts {
		inst := doc.Alerts[i]
		st, ok := m.states[stateKey(inst.Group, inst.Rule)]
		if !ok || inst.State == alert.StateResolved || inst.Entity.ID == "" || len(st.active) >= maxActivePerRule {
			continue
		}
		st.active[inst.Entity.ID] = &inst
	}
	return nil
}
