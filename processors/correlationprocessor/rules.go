package correlationprocessor

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/junction-sre/junction/entity"
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
