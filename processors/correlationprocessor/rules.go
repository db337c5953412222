package correlationprocessor

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/rules"
)

// evaluateRules is the evaluate hook: it evaluates the rule groups that are
// due on the tick's snapshot, emits their alerts and the rule statuses,
// and writes the alert state file.
func (p *correlationProcessor) evaluateRules(ctx context.Context, snap *entity.Snapshot, now time.Time) {
	m := p.rules.Load()
	if m == nil {
		return
	}
	alerts, status := m.EvalDue(ctx, snap, now)
	if err := p.emitAlerts(ctx, alerts, status, now); err != nil {
		p.logger.Warn("Emitting alerts failed", zap.Error(err))
	}
	if err := m.SaveState(); err != nil {
		p.logger.Warn("Alert state not saved", zap.String("rules::state_file", p.cfg.Rules.StateFile), zap.Error(err))
	}
}

// rulesWatch delivers the rule file changes and reload_interval ticks the
// emit loop reloads rules on; its channels are nil when rules are off.
type rulesWatch struct {
	events  <-chan fsnotify.Event
	ticks   <-chan time.Time
	watcher *fsnotify.Watcher
	ticker  *time.Ticker
	// settled fires rulesSettle after the last file-system event, so that
	// a file being written is read once complete.
	settled <-chan time.Time
	settle  *time.Timer
	// sum is the hash of the rule files last loaded or tried.
	sum [sha256.Size]byte
}

// watchRules watches the directories of the rule files and starts the
// reload_interval ticker. Without file-system notifications, changes are
// picked up every reload_interval.
func (p *correlationProcessor) watchRules() *rulesWatch {
	rw := &rulesWatch{}
	if p.rules.Load() == nil {
		return rw
	}
	rw.sum, _ = rulesFilesSum(p.cfg.Rules.Files)
	if w, err := watchDirs(p.cfg.Rules.Files); err != nil {
		p.logger.Warn("Rule files are not watched; changes are picked up every rules::reload_interval", zap.Error(err))
	} else {
		rw.watcher, rw.events = w, w.Events
	}
	if d := p.cfg.Rules.ReloadInterval; d > 0 {
		rw.ticker = time.NewTicker(d)
		rw.ticks = rw.ticker.C
	}
	return rw
}

// rulesSettle is how long the rule files must be quiet after a
// file-system event before they are read: editors and ConfigMap updates
// write in several steps (truncate, write, rename).
const rulesSettle = 500 * time.Millisecond

// changed notes a file-system event and (re)starts the settle timer.
func (rw *rulesWatch) changed() {
	if rw.settle == nil {
		rw.settle = time.NewTimer(rulesSettle)
		rw.settled = rw.settle.C
		return
	}
	rw.settle.Reset(rulesSettle)
}

func (rw *rulesWatch) close() {
	if rw.settle != nil {
		rw.settle.Stop()
	}
	if rw.watcher != nil {
		rw.watcher.Close()
	}
	if rw.ticker != nil {
		rw.ticker.Stop()
	}
}

// reloadRulesIfChanged reloads the rules when the contents of the rule
// files changed since the last load or attempt. A failed reload keeps the
// running rules (the manager logs every error); the same broken contents
// are not retried.
func (p *correlationProcessor) reloadRulesIfChanged(rw *rulesWatch) {
	m := p.rules.Load()
	if m == nil {
		return
	}
	sum, err := rulesFilesSum(p.cfg.Rules.Files)
	if err == nil && sum == rw.sum {
		return
	}
	rw.sum = sum
	if err := m.Reload(); err == nil {
		p.logger.Info("Rules reloaded", zap.Strings("rules::files", p.cfg.Rules.Files))
	}
}

// rulesFilesSum hashes the names and contents of the rule files.
func rulesFilesSum(paths []string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	files, err := rules.ExpandPaths(paths)
	if err != nil {
		return out, err
	}
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return out, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
		h.Write(data)
	}
	copy(out[:], h.Sum(nil))
	return out, nil
}

// watchDirs watches the directories that hold the rule files, and the
// directories named in paths, so new, changed and replaced files are
// noticed.
func watchDirs(paths []string) (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	files, _ := rules.ExpandPaths(paths)
	for _, f := range files {
		dirs[filepath.Dir(f)] = true
	}
	for _, p := range paths {
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
