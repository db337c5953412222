package e2e

import (
	"fmt"
	"strings"
	"time"

	"github.com/junction-sre/junction/scenarios"
)

// Onset is how long after a fault starts a rule's condition can first hold
// by the condition's own definition: an age that must pass a threshold, or
// a rate over a long window that must fill. The detection bound of an
// expected alert is its onset plus `for` and two evaluation intervals of
// its group (RuleTiming.Bound).
type Onset struct {
	Wait time.Duration
	// Why names what the condition waits for.
	Why string
}

// Onsets are the rules that have an onset; every other rule has none: its
// condition must hold as soon as the fault shows in a 1-minute window.
var Onsets = map[string]Onset{
	scenarios.RuleCrossChainMessagesStuck: {
		Wait: 900 * time.Second,
		Why: "`messages.oldest_pending_age_s > 900`: a message the stalled relayer holds back is 15 minutes old " +
			"15 minutes after it was sent (messages already in flight when the relayer stalled pass the age a little sooner)",
	},
	scenarios.RuleDashboardStale: {
		Wait: 60 * time.Second,
		Why: "`lag.seconds > 60`: the dashboard is a minute behind; every message produced since the consumer " +
			"slowed down is less than a minute old during the first minute, so it cannot truly be before then " +
			"(lag over the window's consume rate, which still holds the faster consumption, passes 60 a little sooner)",
	},
	scenarios.RuleErrorBudgetBurn: {
		Wait: time.Hour * 144 / 2000,
		Why: "`slo.burn_rate_1h > 14.4` (fast window, with `slo.burn_rate_5m`): the 1-hour rate averages the last hour; " +
			"with the cost cut's 20 % errors against a 99.9 % target (200× the budget) it passes 14.4 after " +
			"14.4/200 of an hour of errors",
	},
}

// noOnset says why the other rules need none.
const noOnset = "The simulator ramps a fault in over 30 s; the first scrape that shows it ends 30 s after the fault's start, " +
	"and every rule without an onset reads a signal that moves with that scrape: a p99 of the 1-minute window (a tail, " +
	"which the slow requests of one scrape already make), the newest gauge sample, or a ratio that passes its threshold " +
	"within the scrape. So the bottleneck rules do not wait for window means to fill: CPUThrottlingBehindLatency counts a " +
	"service as throttled when its pods run at 90 % of their CPU limit (`cpu.limit_utilization`, the newest " +
	"`k8s.pod.cpu.usage` sample) as well as when over 25 % of the window's CFS periods were throttled (a mean that passes " +
	"0.25 only once about a third of the minute is throttled, 30 s later), and HopOwnsLatency walks the critical path by " +
	"each call's `latency.share` weighed by how much its server's p99 grew over its baseline relative to its client's " +
	"(the shares are means over the window's sampled traces, still diluted by the traces from before the fault)."

// Bound is the latest time after the fault's start the rule may fire: its
// onset, `for` and two evaluation intervals of its group.
func Bound(rule string, t RuleTiming) time.Duration { return Onsets[rule].Wait + t.Bound() }

// boundsMarkdown renders the detection bound of every expected rule of the
// plan: interval, `for`, onset and what the onset waits for.
func boundsMarkdown(plan *scenarios.Plan) (string, error) {
	timings, err := PackTimings()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("\n## Detection bounds\n\n")
	b.WriteString("`go test ./scenarios/e2e` (TestScenariosDetected) fails when an expected alert fires later after its fault's start than " +
		"`for` plus two evaluation intervals of its group, plus an onset for the few rules whose condition cannot hold sooner " +
		"by its own definition. The latency column above is measured from the fault's start (for the cost cut, from the cut).\n\n")
	b.WriteString(noOnset + "\n\n")
	b.WriteString("| rule | interval | for | onset | bound | onset: what the condition waits for |\n| --- | --- | --- | --- | --- | --- |\n")
	seen := map[string]bool{}
	for _, gt := range plan.Truth() {
		for _, e := range gt.Expect {
			for _, r := range e.Rules {
				if seen[r] {
					continue
				}
				seen[r] = true
				t, ok := timings[r]
				if !ok {
					return "", fmt.Errorf("%s expects %s, which no built-in pack defines", gt.Scenario, r)
				}
				on, why := "–", ""
				if o, ok := Onsets[r]; ok {
					on, why = o.Wait.String(), o.Why
				}
				fmt.Fprintf(&b, "| %s | %v | %v | %s | %v | %s |\n", r, t.Interval, t.For, on, Bound(r, t), why)
			}
		}
	}
	return b.String(), nil
}
