package correlationprocessor

import (
	"context"
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
}

// watchRules watches the directories of the rule files and starts the
// reload_interval ticker. Without file-system notifications, changes are
// picked up every reload_interval.
func (p *correlationProcessor) watchRules() *rulesWatch {
	rw := &rulesWatch{}
	m := p.rules.Load()
	if m == nil {
		return rw
	}
	if w, err := m.Watch(); err != nil {
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
// file-system event before they are read (rules.ReloadSettle says why).
const rulesSettle = rules.ReloadSettle

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
func (p *correlationProcessor) reloadRulesIfChanged() {
	m := p.rules.Load()
	if m == nil {
		return
	}
	if tried, err := m.ReloadIfChanged(); tried && err == nil {
		p.logger.Info("Rules reloaded", zap.Strings("rules::files", p.cfg.Rules.Files))
	}
}
