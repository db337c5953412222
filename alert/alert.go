// Package alert is the alert as it leaves the rule engine and travels
// through the collector: as an OTel log record (event.name junction.alert)
// in the logs pipeline and as an ALERTS-style gauge in the metrics pipeline.
// The rule engine encodes alerts with AppendLogs/AppendMetrics; the junction
// exporter decodes them with FromLogRecord.
package alert

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/junction-sre/junction/entity"
)

// State is an alert instance's lifecycle state, as in Prometheus.
type State string

// States. Inactive instances are not emitted.
const (
	StatePending  State = "pending"
	StateFiring   State = "firing"
	StateResolved State = "resolved"
)

// Alert is one instance of a rule for one entity.
type Alert struct {
	// ID identifies the instance: rule group, rule and entity (Fingerprint).
	ID       string     `json:"id"`
	Group    string     `json:"group"`
	Rule     string     `json:"rule"`
	Kind     string     `json:"kind"`
	Severity string     `json:"severity"`
	State    State      `json:"state"`
	Entity   entity.Ref `json:"entity"`
	// Blame is the entity the alert points at as the cause; it is the
	// alerting entity itself when the rule names no other.
	Blame       entity.Ref        `json:"blame"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Value is the value of the rule's expression when it is numeric, or 1.
	Value float64 `json:"value"`
	// ActiveAt is when the instance became pending; FiredAt when it began
	// firing; ResolvedAt when it resolved (zero while active).
	ActiveAt   time.Time `json:"active_at"`
	FiredAt    time.Time `json:"fired_at,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// EvaluatedAt is the evaluation that produced this record.
	EvaluatedAt time.Time `json:"evaluated_at"`
	Evidence    Evidence  `json:"evidence"`
}

// Evidence is what the alert saw when it was raised: the entity's and the
// blamed entity's exemplars and log samples, and the feature and metric
// values the expression read.
type Evidence struct {
	entity.Evidence
	// Values holds feature and metric values at evaluation time, keyed
	// "<entity id> <feature>".
	Values map[string]float64 `json:"values,omitempty"`
}

// Fingerprint returns the id of the alert instance of rule in group for the
// entity with id entityID.
func Fingerprint(group, rule, entityID string) string {
	return group + "/" + rule + "@" + entityID
}

// Summary returns the summary annotation, or the rule name.
func (a *Alert) Summary() string {
	if s := a.Annotations["summary"]; s != "" {
		return s
	}
	return a.Rule
}

// Validate reports what is missing from a decoded alert.
func (a *Alert) Validate() error {
	switch {
	case a.Rule == "":
		return fmt.Errorf("alert has no rule")
	case a.Entity.ID == "":
		return fmt.Errorf("alert %q has no entity", a.Rule)
	}
	switch a.State {
	case StatePending, StateFiring, StateResolved:
	default:
		return fmt.Errorf("alert %q has unknown state %q", a.Rule, a.State)
	}
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Evidence holds only strings, numbers and times.
		return "{}"
	}
	return string(b)
}
