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

// OnsetKey names what an onset applies to: a rule, optionally only in
// one scenario and for one blamed entity (empty: any).
type OnsetKey struct {
	Rule, Scenario, Blame string
}

// Onsets are the rules that have an onset; every other rule has none: its
// condition must hold as soon as the fault shows in a 1-minute window.
var Onsets = map[OnsetKey]Onset{
	{Rule: scenarios.RuleCrossChainMessagesStuck}: {
		Wait: 900 * time.Second,
		Why: "`messages.oldest_pending_age_s > 900`: a message the stalled relayer holds back is 15 minutes old " +
			"15 minutes after it was sent (messages already in flight when the relayer stalled pass the age a little sooner)",
	},
	{Rule: scenarios.RuleDashboardStale}: {
		Wait: 60 * time.Second,
		Why: "`lag.seconds > 60`: the dashboard is a minute behind; every message produced since the consumer " +
			"slowed down is less than a minute old during the first minute, so it cannot truly be before then " +
			"(lag over the window's consume rate, which still holds the faster consumption, passes 60 a little sooner)",
	},
	{Rule: scenarios.RuleErrorBudgetBurn}: {
		Wait: time.Hour * 144 / 2000,
		Why: "`slo.burn_rate_1h > 14.4` (fast window, with `slo.burn_rate_5m`): the 1-hour rate averages the last hour; " +
			"with the cost cut's 20 % errors against a 99.9 % target (200× the budget) it passes 14.4 after " +
			"14.4/200 of an hour of errors",
	},
	{Rule: scenarios.RuleErrorBudgetBurn, Scenario: scenarios.CostCut, Blame: scenarios.FrontendID}: {
		Wait: time.Hour * 144 / 900,
		Why: "as above for catalog's callers: 45 % of frontend's requests (the products route) reach catalog and 20 % of " +
			"those fail, 9 % errors or 90× the budget, so the 1-hour rate passes 14.4 after 14.4/90 of an hour",
	},
	{Rule: scenarios.RuleErrorBudgetBurn, Scenario: scenarios.CostCut, Blame: scenarios.ProxySvcID}: {
		Wait: time.Hour * 144 / 900,
		Why: "the edge proxy passes frontend's failures on: 9 % errors, 90× the budget, as for frontend (its slow " +
			"condition, 30m and 6h over 6×, may hold sooner while the surge's errors are still in its 6-hour window)",
	},
	{Rule: scenarios.RuleProxySurge}: {
		Wait: time.Minute,
		Why: "`proxy.surge.factor > 3`: the 1-minute request rate over its baseline, a window mean: the surge ramps in " +
			"over 30 s to 6× and its share of the window grows for a minute, so the factor passes 3 once about 40 % of " +
			"the window is surge traffic (45–60 s into the fault in this run)",
	},
	{Rule: scenarios.RuleGasPriceSpike}: {
		Wait: 30 * time.Second,
		Why: "`relayer.gas.price > 3 × baseline`: the mean gas price of the messages relayed in the 1-minute window; " +
			"the price ramps to 6× over 30 s and a message is relayed 10–20 s after it is sent, so the window's mean " +
			"passes 3× its baseline once about half of its relays paid the new price, 30–45 s in",
	},
	{Rule: scenarios.RuleSlowQueries}: {
		Wait: 30 * time.Second,
		Why: "`query.slow_rate > 1`: slow queries per second over the 1-minute window; the slow query ramps in over " +
			"30 s, and the window's rate passes 1/s once the ramp's slow queries are in it",
	},
	{Rule: scenarios.RuleUnderProvisionedThrottled}: {
		Wait: time.Minute,
		Why: "`cpu.limit_utilization > 0.9`: a service's usage over the sum of its pods' CPU limits; the two pods the " +
			"cost cut removed count in that sum until their last samples are stale (three report intervals, at least " +
			"a minute: docs/entities.md), so the cut's one pod shows at its limit a minute after the cut",
	},
	{Rule: scenarios.RuleRelayerWalletLow}: {
		Wait: 30 * time.Minute,
		Why: "`wallet.hours_left < 24`: the balance over the burn rate measured over the last hour (`burn_rate_window`); " +
			"the relayer spends ~19 M uusdc/h relaying, ~117 M/h relaying at the congestion's 6× gas price and ~194 M/h on " +
			"failing broadcasts once it stalls, so the hour's mean passes the balance / 24 (~100 M/h of ~2.4 G) only once " +
			"about 20 minutes of the stall are in the hour: 25–30 minutes after the congestion began",
	},
}

// OnsetOf is the onset of rule for an expectation of scenario blaming
// blame: the most specific entry of Onsets, or none.
func OnsetOf(rule, scenario, blame string) Onset {
	for _, k := range []OnsetKey{{rule, scenario, blame}, {Rule: rule, Scenario: scenario}, {Rule: rule}} {
		if o, ok := Onsets[k]; ok {
			return o
		}
	}
	return Onset{}
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

// Bound is the latest time after its window's start an expectation of
// scenario may be detected by rule blaming blame: the onset, `for` and two
// evaluation intervals of the rule's group.
func Bound(rule, scenario, blame string, t RuleTiming) time.Duration {
	return OnsetOf(rule, scenario, blame).Wait + t.Bound()
}

// boundsMarkdown renders the detection bound of every expected rule of the
// plan: interval, `for`, onset and what the onset waits for.
func boundsMarkdown(plan *scenarios.Plan) (string, error) {
	timings, err := PackTimings()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("\n## Detection bounds\n\n")
	b.WriteString("`go test ./scenarios/e2e` (TestScenariosDetected) fails when an expected alert fires later after the start of its " +
		"expectation's window than `for` plus two evaluation intervals of its group, plus an onset for the rules whose condition " +
		"cannot hold sooner by its own definition, and when any alert fires that no expectation names. The latency column above is " +
		"measured from the window's start: the fault's start; for the cost cut, the cut; for the gas spike, the congestion; for the " +
		"stuck messages, the stall.\n\n")
	b.WriteString(noOnset + "\n\n")
	b.WriteString("| rule | scenario → blamed entity | interval | for | onset | bound | onset: what the condition waits for |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	seen := map[OnsetKey]bool{}
	for _, gt := range plan.Truth() {
		for _, e := range gt.Expect {
			for _, r := range e.Rules {
				t, ok := timings[r]
				if !ok {
					return "", fmt.Errorf("%s expects %s, which no built-in pack defines", gt.Scenario, r)
				}
				// One row per rule, and one more per scenario and blamed
				// entity with an onset of its own.
				k, where := OnsetKey{Rule: r}, "every expectation"
				if _, own := Onsets[OnsetKey{r, gt.Scenario, e.Blame}]; own {
					k, where = OnsetKey{r, gt.Scenario, e.Blame}, gt.Scenario+" → `"+e.Blame+"`"
				} else if _, own := Onsets[OnsetKey{Rule: r, Scenario: gt.Scenario}]; own {
					k, where = OnsetKey{Rule: r, Scenario: gt.Scenario}, gt.Scenario
				}
				if seen[k] {
					continue
				}
				seen[k] = true
				on, why := "–", ""
				if o, ok := Onsets[k]; ok {
					on, why = o.Wait.String(), o.Why
				}
				fmt.Fprintf(&b, "| %s | %s | %v | %v | %s | %v | %s |\n", r, where, t.Interval, t.For, on, Bound(r, k.Scenario, k.Blame, t), why)
			}
		}
	}
	return b.String(), nil
}
