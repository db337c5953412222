package rules

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

// MaxActivePerRule bounds the pending and firing instances of one rule;
// new instances beyond it are dropped and counted
// (otelcol_processor_correlation_rule_alerts_dropped).
const MaxActivePerRule = 100_000

// maxActivePerRule is MaxActivePerRule; tests lower it.
var maxActivePerRule = MaxActivePerRule

// maxEvidenceItems bounds the exemplars and log samples copied into one
// alert's evidence.
const maxEvidenceItems = 10

// activation resolves the entity variable and the rule's variables, which
// are evaluated lazily (on first use) and at most once per entity.
type activation struct {
	varName string
	ev      *entityVal
	r       *rule
	vals    []ref.Val
}

func (a *activation) reset(ev *entityVal) {
	a.ev = ev
	for i := range a.vals {
		a.vals[i] = nil
	}
}

func (a *activation) ResolveName(name string) (any, bool) {
	if name == a.varName {
		return a.ev, true
	}
	i, ok := a.r.varIndex[name]
	if !ok {
		return nil, false
	}
	if a.vals[i] == nil {
		a.vals[i] = evalProg(a.r.vars[i].prog, a)
	}
	return a.vals[i], true
}

func (a *activation) Parent() interpreter.Activation { return nil }

func evalProg(p cel.Program, a *activation) ref.Val {
	if p == nil {
		return types.NewErr("expression did not compile")
	}
	v, _, err := p.Eval(a)
	if err != nil {
		if v != nil && types.IsError(v) {
			return v
		}
		return types.WrapErr(err)
	}
	return v
}

// isNoData reports whether err comes from reading a feature or metric that
// has no value.
func isNoData(err error) bool {
	var nd *NoDataError
	if errors.As(err, &nd) {
		return true
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "no such key") || strings.Contains(msg, "no value for feature")
}

// asError returns the error of a CEL error value.
func asError(v ref.Val) error {
	if err, ok := v.(error); ok {
		return err
	}
	return fmt.Errorf("%v", v.Value())
}

func isCostLimit(err error) bool {
	return strings.Contains(err.Error(), "cost limit exceeded")
}

// instance is the state of one alert instance between evaluations.
type instance struct {
	alert.Alert
	// KeepFiringSince is when the expression stopped being true while the
	// instance kept firing (keep_firing_for).
	KeepFiringSince time.Time `json:"keep_firing_since,omitzero"`
	// seen is the evaluation sequence number that last saw the instance
	// active (or could not decide because of an error).
	seen uint64
}

// ruleState is what a rule carries between evaluations.
type ruleState struct {
	forEach entity.Type
	active  map[string]*instance
	status  alert.RuleStatus
	dropped int64
	seq     uint64
}

// evalResult is what one rule evaluation produced.
type evalResult struct {
	alerts  []alert.Alert
	failed  bool
	dropped int64
}

// evalRule evaluates r over every entity of its type in g at now,
// advancing the lifecycle of its instances in st.
func evalRule(r *rule, st *ruleState, g *graph, now time.Time) evalResult {
	start := time.Now()
	var res evalResult
	act := &activation{varName: string(r.forEach), r: r, vals: make([]ref.Val, len(r.vars))}
	st.seq++
	seq := st.seq
	var firstErr string
	aborted := false
	for _, ev := range g.byType[r.forEach] {
		act.reset(ev)
		v := evalProg(r.expr, act)
		id := ev.e.ID
		if types.IsError(v) {
			err := asError(v)
			if isNoData(err) {
				continue // no data: not active
			}
			if inst := st.active[id]; inst != nil {
				inst.seen = seq // keep the instance as it is
			}
			if firstErr == "" {
				firstErr = id + ": " + err.Error()
			}
			if isCostLimit(err) {
				aborted = true
				break
			}
			continue
		}
		b, ok := v.(types.Bool)
		if !ok {
			if firstErr == "" {
				firstErr = fmt.Sprintf("%s: expr yielded %s, not a bool", id, v.Type().TypeName())
			}
			continue
		}
		if !b {
			continue
		}
		inst := st.active[id]
		if inst == nil {
			if len(st.active) >= maxActivePerRule {
				res.dropped++
				continue
			}
			inst = &instance{Alert: alert.Alert{
				ID: alert.Fingerprint(r.group, r.name, id), Group: r.group, Rule: r.name,
				State: alert.StatePending, ActiveAt: now,
			}}
			st.active[id] = inst
		}
		inst.seen = seq
		inst.KeepFiringSince = time.Time{}
		a := &inst.Alert
		a.Kind, a.Severity, a.Entity, a.Value = r.kind, r.severity, ev.ref(), 1
		blamed := ev
		if r.blame != nil {
			bv := evalProg(r.blame, act)
			if b, ok := bv.(*entityVal); ok {
				blamed = b
			} else if types.IsError(bv) {
				// No data in the blame expression: blame the entity itself.
				if err := asError(bv); !isNoData(err) && firstErr == "" {
					firstErr = id + ": blame: " + err.Error()
				}
			}
		}
		a.Blame = blamed.ref()
		a.Labels = renderTemplates(r.labels, act)
		a.Annotations = renderTemplates(r.annotations, act)
		prev := a.Evidence
		a.Evidence = evidence(r, ev, blamed)
		if g.snap.EvidenceUnavailable {
			// The source read the graph but not its evidence: keep the
			// items the alert had; the values are the snapshot's.
			a.Evidence.Exemplars, a.Evidence.LogSamples, a.Evidence.Stuck = prev.Exemplars, prev.LogSamples, prev.Stuck
		}
		if a.State == alert.StatePending && now.Sub(a.ActiveAt) >= r.forDur {
			a.State = alert.StateFiring
			a.FiredAt = now
		}
	}
	if !aborted {
		for _, inst := range st.active {
			if inst.seen == seq {
				continue
			}
			if inst.State == alert.StateFiring && r.keepFiringFor > 0 {
				if inst.KeepFiringSince.IsZero() {
					inst.KeepFiringSince = now
				}
				if now.Sub(inst.KeepFiringSince) < r.keepFiringFor {
					continue
				}
			}
			inst.State = alert.StateResolved
			inst.ResolvedAt = now
		}
	}
	ids := make([]string, 0, len(st.active))
	for id := range st.active {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	res.alerts = make([]alert.Alert, 0, len(ids))
	active := 0
	for _, id := range ids {
		inst := st.active[id]
		a := inst.Alert
		a.EvaluatedAt = now
		res.alerts = append(res.alerts, a)
		if inst.State == alert.StateResolved {
			delete(st.active, id)
		} else {
			active++
		}
	}
	st.dropped += res.dropped
	st.status = alert.RuleStatus{
		Group: r.group, Rule: r.name, Kind: r.kind, Severity: r.severity, File: r.file,
		Health: alert.HealthOK, LastEvaluation: now, EvaluationDuration: time.Since(start), Active: active,
	}
	if firstErr != "" {
		st.status.Health = alert.HealthErr
		st.status.LastError = firstErr
		res.failed = true
	}
	return res
}

// renderTemplates renders labels or annotations. A {{ }} part that cannot
// be evaluated (no data, error) renders as <no value>.
func renderTemplates(ts []compiledTemplate, act *activation) map[string]string {
	if len(ts) == 0 {
		return nil
	}
	out := make(map[string]string, len(ts))
	var b strings.Builder
	for _, t := range ts {
		b.Reset()
		for _, p := range t.parts {
			if p.prog == nil {
				b.WriteString(p.lit)
				continue
			}
			b.WriteString(formatValue(evalProg(p.prog, act)))
		}
		out[t.key] = b.String()
	}
	return out
}

// formatValue renders a CEL value in a template: doubles with at most
// three decimals, entities by name, edges as client -> server, lists
// comma-separated.
func formatValue(v ref.Val) string {
	switch x := v.(type) {
	case *types.Err:
		return "<no value>"
	case types.String:
		return string(x)
	case types.Double:
		f := float64(x)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		return strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64)
	case types.Int:
		return strconv.FormatInt(int64(x), 10)
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10)
	case types.Bool:
		return strconv.FormatBool(bool(x))
	case *entityVal:
		return x.e.Name
	case *edgeVal:
		return x.client.e.Name + " -> " + x.server.e.Name
	case traits.Lister:
		var parts []string
		it := x.Iterator()
		for it.HasNext() == types.True {
			parts = append(parts, formatValue(it.Next()))
		}
		return strings.Join(parts, ", ")
	}
	if s, ok := v.ConvertToType(types.StringType).(types.String); ok {
		return string(s)
	}
	return "<no value>"
}

// evidence collects the entity's and the blamed entity's evidence and the
// feature and metric values the rule reads.
func evidence(r *rule, ev, blamed *entityVal) alert.Evidence {
	var out alert.Evidence
	add := func(e *entity.Entity) {
		for _, x := range e.Evidence.Exemplars {
			if len(out.Exemplars) >= maxEvidenceItems {
				break
			}
			out.Exemplars = append(out.Exemplars, x)
		}
		for _, x := range e.Evidence.LogSamples {
			if len(out.LogSamples) >= maxEvidenceItems {
				break
			}
			out.LogSamples = append(out.LogSamples, x)
		}
		for _, x := range e.Evidence.Stuck {
			if len(out.Stuck) >= maxEvidenceItems {
				break
			}
			out.Stuck = append(out.Stuck, x)
		}
		for _, rd := range r.reads {
			var v float64
			var ok bool
			var key string
			if rd.metric != "" {
				v, ok = e.Metrics[rd.metric]
				key = e.ID + " metrics." + rd.metric
			} else {
				var m map[string]float64
				switch rd.src {
				case srcNow:
					m = e.Features
				case src5m:
					m = e.Features5m
				case srcBaseline:
					m = e.Baseline
				}
				v, ok = m[rd.feature]
				key = e.ID + " " + sourcePrefix[rd.src] + rd.feature
			}
			if ok {
				if out.Values == nil {
					out.Values = map[string]float64{}
				}
				out.Values[key] = v
			}
		}
	}
	add(ev.e)
	if blamed != ev {
		add(blamed.e)
	}
	return out
}
