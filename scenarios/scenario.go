package scenarios

import (
	"fmt"
	"strings"
	"time"

	"github.com/junction-sre/junction/entity"
)

// ProxySvcID is the edge proxy as a service (its server spans): the
// entity of its error budget.
var ProxySvcID = entity.ID(entity.Service, IngressNS, ProxyService)

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

// More rules of the packs that the scenarios expect besides their main
// detections: every true consequence of a fault is expected, so that any
// other firing is a false positive.
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
	// congestion is how long the destination chain is congested (gas
	// price and finality lag up) before the relayer stalls.
	congestion = 5 * time.Minute
	// budgetSettle is how long after its fault ErrorBudgetBurn may keep
	// firing: its fast condition holds until the fault's errors have left
	// the 5-minute window (the slow one ends with them too), then it
	// resolves at its group's next evaluation.
	budgetSettle = 10 * time.Minute
	// walletSettle is how long after the stall RelayerWalletLow may keep
	// firing: until the stall's burn has left its 1-hour burn-rate window
	// far enough for the hours left to pass 24 again.
	walletSettle = 35 * time.Minute
	// costIdleShare is the share of the cost scenario's fault spent idle
	// and over-provisioned; the cost cut takes the rest.
	costIdleShare = 0.6
)

// Scenario is one injected fault with its ground truth.
type Scenario struct {
	Name    string
	Summary string
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

// congestionOf is how long the crosschain scenario's congestion lasts
// before the relayer stalls in a fault of the given length: congestion,
// or half a shorter fault.
func congestionOf(fault time.Duration) time.Duration {
	return min(congestion, (fault / 2).Truncate(10*time.Second))
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
		// Shed requests are failed requests at the edge: the edge's error
		// budget burns.
		expect: func(h, f time.Duration) []Expectation {
			w := Window{h, h + f}
			return []Expectation{
				{Rules: []string{RuleProxyShedding}, Blame: ProxyID, Window: w},
				{Rules: []string{RuleProxyCircuitOpen}, Blame: ProxyID, Window: w},
				{Rules: []string{RuleProxyPendingOverflow}, Blame: ProxyID, Window: w},
				{Rules: []string{RuleProxySurge}, Blame: ProxyID, Window: w},
				{Rules: []string{RuleErrorBudgetBurn}, Blame: ProxySvcID, Window: w, Settle: budgetSettle},
			}
		},
		apply: func(e *effects, into, _ time.Duration) { e.edgeRate = 1 + 5*ramp(into) },
	},
	{
		Name:    Bottleneck,
		Summary: "inventory (three hops below the edge) ships a CPU-heavy release: its pods hit their CPU limit and are throttled; latency climbs at checkout, frontend and the edge",
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
		// The database rules see the fault from the server's side; the
		// requests wait for a pooled connection inside catalog and orders,
		// which own the latency of their callers; pool timeouts fail
		// checkouts, burning the error budgets of orders, checkout and
		// the edge.
		expect: func(h, f time.Duration) []Expectation {
			w := Window{h, h + f}
			return []Expectation{
				{Rules: []string{RuleConnectionPoolSaturated}, Blame: DatabaseID, Window: w},
				{Rules: []string{RuleConnectionPoolWait}, Blame: DatabaseID, Window: w},
				{Rules: []string{RuleSlowQueries}, Blame: DatabaseID, Window: w},
				{Rules: []string{RuleLockWaits}, Blame: DatabaseID, Window: w},
				{Rules: []string{RuleDatabaseConnectionLimit}, Blame: DatabaseID, Window: w},
				{Rules: []string{RuleHopOwnsLatency}, Blame: CatalogID, Window: w},
				{Rules: []string{RuleHopOwnsLatency}, Blame: OrdersID, Window: w},
				{Rules: []string{RuleErrorBudgetBurn}, Blame: OrdersID, Window: w, Settle: budgetSettle},
				{Rules: []string{RuleErrorBudgetBurn}, Blame: CheckoutID, Window: w, Settle: budgetSettle},
				{Rules: []string{RuleErrorBudgetBurn}, Blame: ProxySvcID, Window: w, Settle: budgetSettle},
			}
		},
		apply: func(e *effects, into, _ time.Duration) {
			e.edgeRate = 1 + 0.8*ramp(into)
			e.dbSlowQuery = ramp(into)
		},
	},
	{
		Name:    CrossChain,
		Summary: "the destination chain congests (gas price x6, finality 200 blocks behind); 5 minutes later the relayer stalls for the rest of the fault (at least 35 minutes): messages stuck at source_finalized, failing broadcasts drain its wallet",
		// Messages count as stuck after 15 minutes of the stall.
		MinFault: 40 * time.Minute,
		expect: func(h, f time.Duration) []Expectation {
			w, c := Window{h, h + f}, congestionOf(f)
			return []Expectation{
				// Gas prices are read from relayed messages: the spike
				// shows while the relayer still relays.
				{Rules: []string{RuleGasPriceSpike}, Blame: RelayerID, Window: Window{h, h + c}},
				{Rules: []string{RuleFinalityLag}, Blame: RelayerID, Window: w},
				{Rules: []string{RuleRelayerWalletLow}, Blame: RelayerID, Window: w, Settle: walletSettle},
				{Rules: []string{RuleCrossChainMessagesStuck}, Blame: RelayerID, Window: Window{h + c, h + f}},
			}
		},
		apply: func(e *effects, into, fault time.Duration) {
			e.relayerStall = into >= congestionOf(fault)
			e.gasPrice = 1 + 5*ramp(into)
			e.finalityLag = int64(200 * ramp(into))
		},
	},
	{
		Name:    Streaming,
		Summary: "the dashboard's Kafka consumer slows to a twentieth of its capacity: lag grows and the dashboard goes stale",
		expect:  whole([]string{RuleDashboardStale}, StreamID),
		apply:   func(e *effects, into, _ time.Duration) { e.consumeCapacity = 0.05 },
	},
	{
		Name:    CostCut,
		Summary: "recommendations is scaled to 8 idle pods of 2 CPUs (over-provisioned) for 60% of the fault; then a cost cut takes catalog from 3 pods to 1 with a CPU limit of 0.15 cores, burning its error budget",
		// Idle pods make recommendations' requests expensive. The cut
		// leaves catalog throttled at its CPU limit, owning the
		// products route's latency and failing requests of its callers,
		// whose error budgets burn too.
		// OverProvisioned waits 10 minutes on a 5-minute window; the
		// budget burn needs minutes of the 1h window.
		MinFault: 30 * time.Minute,
		// The cut's alerts resolve well inside this recovery
		// (ErrorBudgetBurn about 5 minutes after the cut ends); it keeps
		// the documented plan's length.
		MinRecover: 35 * time.Minute,
		expect: func(h, f time.Duration) []Expectation {
			split := h + costSplit(f)
			cut := Window{split, h + f}
			return []Expectation{
				{Rules: []string{RuleOverProvisioned}, Blame: RecommendID, Window: Window{h, split}},
				{Rules: []string{RuleCostPer1kSpike}, Blame: RecommendID, Window: Window{h, split}},
				{Rules: []string{RuleCostCutBurnedBudget, RuleErrorBudgetBurn}, Blame: CatalogID, Window: cut},
				{Rules: []string{RuleUnderProvisionedThrottled}, Blame: CatalogID, Window: cut},
				{Rules: []string{RuleCPUThrottlingBehindLatency}, Blame: CatalogID, Window: cut},
				{Rules: []string{RuleHopOwnsLatency}, Blame: CatalogID, Window: cut},
				{Rules: []string{RuleErrorBudgetBurn}, Blame: FrontendID, Window: cut},
				{Rules: []string{RuleErrorBudgetBurn}, Blame: ProxySvcID, Window: cut},
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
