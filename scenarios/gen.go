package scenarios

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ScopeName is the instrumentation scope of everything the simulator emits
// as an instrumented application would.
const ScopeName = "github.com/junction-sre/junction/scenarios"

// Bounds of the simulator's own state.
const (
	maxQueuedEvents   = 50000 // Kafka events produced and not yet consumed
	maxPendingXChain  = 5000  // cross-chain messages not yet terminal
	maxLogsPerTmpl    = 20    // log records per service and template per step
	maxRelaysPerStep  = 200   // messages the relayer relays per step (batched)
	xchainTimeout     = 20 * time.Minute
	consumeCapPerSec  = 10.0 // healthy consumer capacity, events per second
	messagesPerSecond = 0.3  // cross-chain messages sent per second
)

// batch is one step's output.
type batch struct {
	traces                 ptrace.Traces
	metrics                pmetric.Metrics
	logs                   plog.Logs
	spans, points, records int
}

// load is a service's state during one step, computed before any span so
// that spans and resource metrics agree.
type load struct {
	rate       float64 // requests per second the service serves
	replicas   int
	cpuRequest float64
	cpuLimit   float64
	demand     float64 // cores per pod wanted
	usage      float64 // cores per pod used
	throttle   float64 // share of CFS periods throttled
	latMul     float64 // latency multiplier
	errRatio   float64 // share of requests failing with 5xx
}

// generator holds the simulated system's state across steps. It is
// driven by one seeded random stream; map keys are never iterated, so the
// output depends only on the plan.
type generator struct {
	p    *Plan
	rng  *rand.Rand
	pods [][]pod

	// step state
	t0, t1   time.Time
	eff      effects
	loads    []load
	edgeRate float64 // demand at the edge this step
	// per proxy pod: overflowed requests and responses by codeIndex
	overflow      []int
	upstreamCodes [][len(codeNames)]int
	// published are the PRODUCER spans of the request being built.
	published []*node
	b         *batch
	spanRS    map[int]ptrace.SpanSlice
	logRS     map[int]plog.LogRecordSlice
	logCap    map[string]int

	// cumulative state
	cum      map[string]float64
	hists    map[string]*histState
	queue    []event // Kafka events not yet consumed
	consumed [Partitions]int64
	produced [Partitions]int64
	nextSeq  uint64
	xmsgs    []*xmsg
	wallet   [2]float64 // source, destination balances (micro-denom)
	heights  [2]int64   // chain heads
	dropped  int
	pgPID    int
}

func newGenerator(p *Plan) *generator {
	g := &generator{
		p:      p,
		rng:    rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15)),
		cum:    map[string]float64{},
		hists:  map[string]*histState{},
		wallet: [2]float64{250e6, 2500e6},
		// Heads at the plan's start, derived from the virtual time so
		// that they look like real chains.
		heights: [2]int64{p.Start.Unix()/5 - 330_000_000, p.Start.Unix()/2 - 860_000_000},
		nextSeq: 184_220,
		pgPID:   31_000,
	}
	for i := range specs {
		g.pods = append(g.pods, makePods(i))
	}
	return g
}

func (g *generator) step(off time.Duration) *batch {
	g.t0 = g.p.Start.Add(off)
	g.t1 = g.t0.Add(g.p.Step)
	g.eff = healthyEffects()
	if sc, ph, into, ok := g.p.At(off); ok && ph == PhaseFault {
		sc.apply(&g.eff, into, g.p.FaultOf(sc))
	}
	g.b = &batch{traces: ptrace.NewTraces(), metrics: pmetric.NewMetrics(), logs: plog.NewLogs()}
	g.spanRS = map[int]ptrace.SpanSlice{}
	g.logRS = map[int]plog.LogRecordSlice{}
	g.logCap = map[string]int{}

	g.computeLoads()
	g.requests()
	g.stream()
	g.xchain()
	g.resourceMetrics()
	g.proxyMetrics()
	g.dbMetrics()
	g.streamMetrics()
	g.relayerMetrics()

	b := g.b
	b.spans = b.traces.SpanCount()
	b.points = b.metrics.DataPointCount()
	b.records = b.logs.LogRecordCount()
	return b
}

// Proxy capacity relative to the healthy edge rate: the upstream cluster
// takes 3x, the local rate limit admits 4.5x.
const (
	upstreamCapacity = 3.0
	rateLimit        = 4.5
)

// Route mix at the edge.
const (
	routeProducts = iota
	routeCheckout
	routeRecommendations
	routeHome
)

var routeWeights = [...]float64{0.45, 0.25, 0.20, 0.10}

// edgeDemand is the request rate arriving at the edge proxy this step.
func (g *generator) edgeDemand() float64 {
	return g.p.EdgeRate * g.eff.edgeRate * (1 + 0.05*g.rng.NormFloat64())
}

func (g *generator) computeLoads() {
	base := g.p.EdgeRate
	demand := g.edgeDemand()
	g.edgeRate = demand
	accepted := math.Min(demand, upstreamCapacity*base)
	recs := routeWeights[routeRecommendations] * accepted * g.eff.recsTraffic
	rates := [...]float64{
		sProxy:           demand,
		sFrontend:        accepted,
		sCatalog:         routeWeights[routeProducts] * accepted,
		sCheckout:        routeWeights[routeCheckout] * accepted,
		sInventory:       routeWeights[routeCheckout] * accepted,
		sOrders:          routeWeights[routeCheckout] * accepted,
		sRecommendations: recs,
		sDashboard:       routeWeights[routeCheckout] * accepted,
		sRelayer:         messagesPerSecond,
	}
	g.loads = make([]load, len(specs))
	g.overflow = make([]int, specs[sProxy].replicas)
	g.upstreamCodes = make([][len(codeNames)]int, specs[sProxy].replicas)
	for i := range specs {
		s := &specs[i]
		l := load{rate: rates[i], replicas: s.replicas, cpuRequest: s.cpuRequest, cpuLimit: s.cpuLimit, latMul: 1}
		perReq := s.cpuPerReq
		switch i {
		case sInventory:
			perReq *= g.eff.inventoryCPU
		case sRecommendations:
			if g.eff.recsReplicas > 0 {
				l.replicas, l.cpuRequest, l.cpuLimit = g.eff.recsReplicas, g.eff.recsCPU, 2*g.eff.recsCPU
			}
		case sCatalog:
			if g.eff.catalogCut {
				l.replicas, l.cpuRequest, l.cpuLimit = 1, 0.1, 0.15
				l.errRatio = 0.2
			}
		}
		l.demand = s.idleCPU + perReq*l.rate/float64(l.replicas)
		l.usage = math.Min(l.demand, l.cpuLimit)
		if r := l.demand / l.cpuLimit; r > 0.8 {
			l.throttle = math.Min(0.9, 0.02+(r-0.8)*0.8)
			l.latMul = math.Min(15, 1+12*(r-0.8))
		} else {
			l.throttle = 0.004 * r
		}
		g.loads[i] = l
	}
}

// pickPod chooses the pod of service si that serves a request.
func (g *generator) pickPod(si int) int { return g.rng.IntN(g.loads[si].replicas) }

// Random helpers.

func (g *generator) traceID() pcommon.TraceID {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.rng.Uint64())
	binary.BigEndian.PutUint64(b[8:], g.rng.Uint64())
	return b
}

func (g *generator) spanID() pcommon.SpanID {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], g.rng.Uint64()|1)
	return b
}

// logn returns a log-normal duration with the given median in ms.
func (g *generator) logn(medianMS, sigma float64) time.Duration {
	return time.Duration(medianMS * math.Exp(sigma*g.rng.NormFloat64()) * float64(time.Millisecond))
}

func (g *generator) uniform(lo, hi float64) float64 { return lo + (hi-lo)*g.rng.Float64() }

// poisson draws a count with the given mean.
func (g *generator) poisson(mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 30 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*g.rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= g.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func (g *generator) within() time.Time {
	return g.t0.Add(time.Duration(g.rng.Int64N(int64(g.p.Step))))
}

func ts(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

func hexID(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

func (g *generator) txHash() string {
	var b [32]byte
	for i := 0; i < 32; i += 8 {
		binary.BigEndian.PutUint64(b[i:], g.rng.Uint64())
	}
	return strings.ToUpper(hexID(b[:]))
}

// with returns a new slice of base followed by kv.
func with(base []string, kv ...string) []string {
	out := make([]string, 0, len(base)+len(kv))
	return append(append(out, base...), kv...)
}
