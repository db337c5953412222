package scenarios

import (
	"fmt"
	"strings"
	"time"
)

// Rule names of the rule packs that detect the scenarios.
const (
	RuleProxyShedding              = "ProxyShedding"
	RuleProxyCircuitOpen           = "ProxyCircuitOpen"
	RuleCPUThrottlingBehindLatency = "CPUThrottlingBehindLatency"
	RuleHopOwnsLatency             = "HopOwnsLatency"
	RuleConnectionPoolSaturated    = "ConnectionPoolSaturated"
	RuleCrossChainMessagesStuck    = "CrossChainMessagesStuck"
	RuleDashboardStale             = "DashboardStale"
	RuleOverProvisioned            = "OverProvisioned"
	RuleCostCutBurnedBudget        = "CostCutBurnedBudget"
	RuleErrorBudgetBurn            = "ErrorBudgetBurn"
)

// Rules of the packs that legitimately fire as consequences of a fault
// (Scenario.Tolerated).
const (
	RuleProxyPendingOverflow      = "ProxyPendingOverflow"
	RuleProxySurge                = "ProxySurge"
	RuleUnderProvisionedThrottled = "UnderProvisionedThrottled"
	RuleConnectionPoolWait        = "ConnectionPoolWait"
	RuleSlowQueries               = "SlowQueries"
	RuleLockWaits                 = "LockWaits"
	RuleDatabaseConnectionLimit   = "DatabaseConnectionLimit"
	RuleFinalityLag               = "FinalityLag"
	RuleGasPriceSpike             = "GasPriceSpike"
	RuleRelayerWalletLow          = "RelayerWalletLow"
	RuleCrossChainFailureRatio    = "CrossChainFailureRatio"
	RuleConsumerLagGrowing        = "ConsumerLagGrowing"
	RuleCostPer1kSpike            = "CostPer1kSpike"
)

// Scenario names.
const (
	Surge      = "surge"
	Bottleneck = "bottleneck"
	DBPool     = "database"
	CrossChain = "crosschain"
	Streaming  = "streaming"
	CostCut    = "cost"
	rampUp     = 30 * time.Second
	// costIdleShare is the share of the cost scenario's fault spent idle
	// and over-provisioned; the cost cut takes the rest.
	costIdleShare = 0.6
)

// Scenario is one injected fault with its ground truth.
type Scenario struct {
	Name    string
	Summary string
	// Tolerated rules may fire as consequences of the fault.
	Tolerated []string
	// MinFault is the shortest fault that lets the symptoms reach what
	// the detecting rules wait for (e.g. messages pending for 30 minutes,
	// 10 minutes of idleness); the plan's fault is stretched to it.
	MinFault time.Duration
	// MinRecover is the shortest recovery in which the detecting alerts
	// can resolve (e.g. a 30-minute burn-rate window draining).
	MinRecover time.Duration
	// expect returns the expectations for a healthy phase and a fault of
	// the given lengths.
	expect func(healthy, fault time.Duration) []Expectation
	// apply sets the fault's effects; into is the time since the fault
	// began and fault the fault's length.
	apply func(e *effects, into, fault time.Duration)
}

// expectations returns the scenario's expectations, none for a scenario
// not built by this package.
func (s *Scenario) expectations(healthy, fault time.Duration) []Expectation {
	if s.expect == nil {
		return nil
	}
	return s.expect(healthy, fault)
}

// String returns the scenario's name.
func (s *Scenario) String() string {
	if s == nil {
		return "<nil>"
	}
	return s.Name
}

// effects are the knobs the generator reads each step. The zero value
// (with multipliers at 1, see healthyEffects) is the healthy system.
type effects struct {
	// edgeRate multiplies the healthy request rate at the edge.
	edgeRate float64
	// inventoryCPU multiplies inventory's CPU per request (a CPU-heavy
	// release), driving it into its CPU limit.
	inventoryCPU float64
	// dbSlowQuery is the severity (0..1) of the slow, lock-holding query
	// that exhausts the connection pools.
	dbSlowQuery float64
	// relayerStall stops relaying: messages stay at source_finalized.
	relayerStall bool
	// gasPrice multiplies the destination chain's gas price.
	gasPrice float64
	// finalityLag adds blocks of finality lag on the destination chain.
	finalityLag int64
	// consumeCapacity multiplies the stream consumer's capacity.
	consumeCapacity float64
	// recsReplicas overrides the recommendations replicas and its CPU
	// request (the over-provisioned deployment); recsTraffic multiplies
	// its traffic.
	recsReplicas int
	recsCPU      float64
	recsTraffic  float64
	// catalogCut is the cost cut: catalog's replicas and CPU limit.
	catalogCut bool
}

func healthyEffects() effects {
	return effects{edgeRate: 1, inventoryCPU: 1, gasPrice: 1, consumeCapacity: 1, recsTraffic: 1}
}

func ramp(into time.Duration) float64 {
	if into >= rampUp {
		return 1
	}
	return float64(into) / float64(rampUp)
}

func whole(rules []string, blame string) func(healthy, fault time.Duration) []Expectation {
	return func(healthy, fault time.Duration) []Expectation {
		return []Expectation{{Rules: rules, Blame: blame, Window: Window{healthy, healthy + fault}}}
	}
}

// costSplit is where the cost scenario's fault turns from the idle
// deployment to the cost cut, relative to the fault's start.
func costSplit(fault time.Duration) time.Duration {
	return time.Duration(float64(fault) * costIdleShare).Truncate(10 * time.Second)
}

var all = []*Scenario{
	{
		Name:    Surge,
		Summary: "weather-event surge at the edge proxy: traffic x6, 429/503 shedding, pending overflow, open circuit breaker",
		// Shed requests are failed requests at the edge; the pending queue
		// is the edge's own latency.
		Tolerated: []string{RuleErrorBudgetBurn, RuleProxyPendingOverflow, RuleProxySurge, RuleHopOwnsLatency},
		expect: func(h, f time.Duration) []Expectation {
			w := Window{h, h + f}
			return []Expectation{
				{Rules: []string{RuleProxyShedding}, Blame: ProxyID, Window: w},
				{Rules: []string{RuleProxyCircuitOpen}, Blame: ProxyID, Window: w},
			}
		},
		apply: func(e *effects, into, _ time.Duration) { e.edgeRate = 1 + 5*ramp(into) },
	},
	{
		Name:      Bottleneck,
		Summary:   "inventory (three hops below the edge) ships a CPU-heavy release: its pods hit their CPU limit and are throttled; latency climbs at checkout, frontend and the edge",
		Tolerated: []string{RuleUnderProvisionedThrottled},
		expect: func(h, f time.Duration) []Expectation {
			w := Window{h, h + f}
			return []Expectation{
				{Rules: []string{RuleCPUThrottlingBehindLatency}, Blame: InventoryID, Window: w},
				{Rules: []string{RuleHopOwnsLatency}, Blame: InventoryID, Window: w},
			}
		},
		apply: func(e *effects, into, _ time.Duration) { e.inventoryCPU = 1 + 6*ramp(into) },
	},
	{
		Name:    DBPool,
		Summary: "peak hour (traffic x1.8) meets a slow reporting query holding row locks: lock waits, the orders and catalog pools exhaust, requests wait and time out",
		// Pool timeouts fail checkouts; the wait is spent in orders; the
		// database rules see the same fault from the server's side.
		Tolerated: []string{RuleErrorBudgetBurn, RuleHopOwnsLatency, RuleConnectionPoolWait, RuleSlowQueries,
			RuleLockWaits, RuleDatabaseConnectionLimit},
		expect: whole([]string{RuleConnectionPoolSaturated}, DatabaseID),
		apply: func(e *effects, into, _ time.Duration) {
			e.edgeRate = 1 + 0.8*ramp(into)
			e.dbSlowQuery = ramp(into)
		},
	},
	{
		Name:      CrossChain,
		Summary:   "the relayer stalls for at least 40 minutes: messages stuck at source_finalized, destination gas price x6, failing broadcasts drain the wallet, destination finality lags",
		Tolerated: []string{RuleFinalityLag, RuleGasPriceSpike, RuleRelayerWalletLow, RuleCrossChainFailureRatio},
		// Messages count as stuck after 30 minutes.
		MinFault: 40 * time.Minute,
		expect:   whole([]string{RuleCrossChainMessagesStuck}, RelayerID),
		apply: func(e *effects, into, _ time.Duration) {
			e.relayerStall = true
			e.gasPrice = 1 + 5*ramp(into)
			e.finalityLag = int64(200 * ramp(into))
		},
	},
	{
		Name:      Streaming,
		Summary:   "the dashboard's Kafka consumer slows to a twentieth of its capacity: lag grows and the dashboard goes stale",
		Tolerated: []string{RuleConsumerLagGrowing},
		expect:    whole([]string{RuleDashboardStale}, StreamID),
		apply:     func(e *effects, into, _ time.Duration) { e.consumeCapacity = 0.05 },
	},
	{
		Name:    CostCut,
		Summary: "recommendations is scaled to 8 idle pods of 2 CPUs (over-provisioned) for 60% of the fault; then a cost cut takes catalog from 3 pods to 1 with a CPU limit of 0.15 cores, burning its error budget",
		// Idle pods make requests expensive; the cut leaves catalog
		// throttled, owning the products route's latency and failing
		// requests of its callers.
		Tolerated: []string{RuleCostPer1kSpike, RuleCPUThrottlingBehindLatency, RuleHopOwnsLatency,
			RuleUnderProvisionedThrottled, RuleErrorBudgetBurn},
		// OverProvisioned waits 10 minutes on a 5-minute window; the
		// budget burn needs minutes of the 1h window.
		MinFault: 30 * time.Minute,
		// ErrorBudgetBurn's slow window (30m at 6x) keeps firing until the
		// cut's errors have left it.
		MinRecover: 35 * time.Minute,
		expect: func(h, f time.Duration) []Expectation {
			split := h + costSplit(f)
			return []Expectation{
				{Rules: []string{RuleOverProvisioned}, Blame: RecommendID, Window: Window{h, split}},
				{Rules: []string{RuleCostCutBurnedBudget, RuleErrorBudgetBurn}, Blame: CatalogID, Window: Window{split, h + f}},
			}
		},
		apply: func(e *effects, into, fault time.Duration) {
			if into < costSplit(fault) {
				e.recsReplicas, e.recsCPU, e.recsTraffic = 8, 2, 0.05
				return
			}
			e.catalogCut = true
		},
	},
}

// Names lists the scenarios in their default order.
func Names() []string {
	out := make([]string, len(all))
	for i, s := range all {
		out[i] = s.Name
	}
	return out
}

// Lookup returns the scenario called name.
func Lookup(name string) (*Scenario, bool) {
	for _, s := range all {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

// Select returns the named scenarios in the given order; "all" or no
// names select every scenario. Names may also come comma-separated.
func Select(names ...string) ([]*Scenario, error) {
	var flat []string
	for _, n := range names {
		for _, p := range strings.Split(n, ",") {
			if p = strings.TrimSpace(p); p != "" {
				flat = append(flat, p)
			}
		}
	}
	if len(flat) == 0 || (len(flat) == 1 && flat[0] == "all") {
		return append([]*Scenario(nil), all...), nil
	}
	out := make([]*Scenario, 0, len(flat))
	for _, n := range flat {
		s, ok := Lookup(n)
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q: want all or some of %s", n, strings.Join(Names(), ", "))
		}
		out = append(out, s)
	}
	return out, nil
}
