package graph

import (
	"strings"
	"time"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/window"
)

// Feature names used below, as in entity.Schema.
const (
	fRequestRate    = "request.rate"
	fErrorRatio     = "error.ratio"
	fP50            = "latency.p50_ms"
	fP90            = "latency.p90_ms"
	fP99            = "latency.p99_ms"
	fSurge          = "surge.factor"
	fCostPerHour    = "cost.per_hour"
	fCPUUsage       = "cpu.usage_cores"
	fCPURequest     = "cpu.request_cores"
	fCPULimit       = "cpu.limit_cores"
	fCPURequestUtil = "cpu.request_utilization"
	fCPULimitUtil   = "cpu.limit_utilization"
	fMemRequestUtil = "memory.request_utilization"
	fMemLimitUtil   = "memory.limit_utilization"
	fMemUsage       = "memory.usage_bytes"
	fMemRequest     = "memory.request_bytes"
	fMemLimit       = "memory.limit_bytes"
	fThrottling     = "cpu.throttling_ratio"
	fRestarts       = "restarts"
	fOOMKills       = "oom_kills"
	fPoolUtil       = "pool.utilization"
	fPoolPending    = "pool.pending"
	fPoolWait       = "pool.wait_ms"
	fPoolTimeouts   = "pool.timeouts_rate"
	fLatencyShare   = "latency.share"
	fSelfShare      = "critical_path.self_share"
	fLogErrorRate   = "log.error_rate"
	fConnActive     = "connections.active"
	fConnMax        = "connections.max"
	fCircuitBreaker = "circuit_breaker.open"
)

// Inputs: the names metric mappings feed (docs/entities.md).
const (
	InCPUUsage      = "cpu.usage"
	InCPUSeconds    = "cpu.seconds"
	InMemWorkingSet = "memory.working_set"
	// InContainerWorkingSet is cAdvisor's per-container working set, read
	// only where no pod-level working set (kubeletstats) is known, so a
	// node that reports both does not count a pod's memory twice.
	InContainerWorkingSet = "memory.container_working_set"
	// InMemUsage is kubeletstats' k8s.pod.memory.usage (page cache
	// included): the numerator of its memory utilization ratios.
	InMemUsage   = "memory.usage"
	InCPURequest = "cpu.request"
	InCPULimit   = "cpu.limit"
	InMemRequest = "memory.request"
	InMemLimit   = "memory.limit"
	// Utilization ratios as kubeletstats reports them (usage / the pod's
	// summed limits or requests), read where the limit or request itself
	// (k8s_cluster) is not known.
	InCPURequestUtil   = "cpu.request_utilization"
	InCPULimitUtil     = "cpu.limit_utilization"
	InMemRequestUtil   = "memory.request_utilization"
	InMemLimitUtil     = "memory.limit_utilization"
	InRestarts         = "restarts"
	InOOMKills         = "oom_kills"
	InThrottledPeriods = "cpu.throttled_periods"
	InPeriods          = "cpu.periods"
	InPoolConnections  = "pool.connections" // split by state: .used, .idle
	InPoolMax          = "pool.max"
	InPoolPending      = "pool.pending"
	InPoolWait         = "pool.wait_time" // histogram in seconds: .sum, .count
	InPoolTimeouts     = "pool.timeouts"
	InConnActive       = "connections.active"
	InConnMax          = "connections.max"
	InConnReserved     = "connections.reserved" // superuser-only: not for clients
	InLocks            = "locks"
	InDeadlocks        = "deadlocks"
	InPendingActive    = "pending.active"
	InPendingOverflow  = "pending.overflow"
	InCircuitBreaker   = "circuit_breaker.open"
	InUpstreamRequests = "upstream.requests" // split by response code class
	InDownstreamConns  = "connections.active"
	InProxyRequests    = "requests"
	InBacklogSize      = "backlog.size"
	InWalletBalance    = "wallet.balance"
	InHermes           = "hermes" // other Hermes metrics: raw values only
	InLagPartition     = "lag.partition"
	InLagSum           = "lag.sum"
	InConsumedOffset   = "consumed.offset"
)

const gib = 1 << 30

type calc struct {
	g  *Graph
	at time.Time
	d  time.Duration
	// fallback is a database's server-level entity whose inputs stand in
	// for the ones the entity lacks.
	fallback *entityState
	// sketch is the latency sketch red merged for the current entity or
	// edge, kept only while the graph collects sketches (TickMergeable).
	sketch *entity.LatencySketch
}

func (c *calc) inputs(e *entityState, in string) *input {
	if ip := e.inputs[in]; ip != nil {
		return ip
	}
	if c.fallback != nil {
		return c.fallback.inputs[in]
	}
	return nil
}

// last sums the newest values of the input's series that are not stale
// (seriesState.staleAfter).
func (c *calc) last(e *entityState, in string) (float64, bool) {
	ip := c.inputs(e, in)
	if ip == nil {
		return 0, false
	}
	var sum float64
	ok := false
	for _, s := range ip.series {
		v, t, has := s.Last()
		if !has || t.After(c.at) || c.at.Sub(t) > s.staleAfter() {
			continue
		}
		sum += v
		ok = true
	}
	return sum, ok
}

// increase sums the increases of the input's counter series over the
// window; rate sums their per-second rates.
func (c *calc) increase(e *entityState, in string) (inc, rate float64, ok bool) {
	ip := c.inputs(e, in)
	if ip == nil {
		return 0, 0, false
	}
	for _, s := range ip.series {
		i, secs, has := s.Increase(c.at, c.d)
		if !has {
			continue
		}
		inc += i
		if secs > 0 {
			rate += i / secs
		}
		ok = true
	}
	return inc, rate, ok
}

// changeRate sums the per-second changes of gauge series over the window.
func (c *calc) changeRate(e *entityState, in string) (float64, bool) {
	ip := c.inputs(e, in)
	if ip == nil {
		return 0, false
	}
	var r float64
	ok := false
	for _, s := range ip.series {
		d, secs, has := s.Change(c.at, c.d)
		if has && secs > 0 {
			r += d / secs
			ok = true
		}
	}
	return r, ok
}

var quantiles = []float64{0.5, 0.9, 0.99}

// red sets the request features of a window that observed requests.
func (c *calc) red(w *window.Window, out map[string]float64, p90 bool) {
	if !w.Observed() {
		return
	}
	req := w.Sum(c.at, c.d, window.Requests)
	out[fRequestRate] = w.Rate(c.at, c.d, window.Requests)
	if req == 0 {
		return
	}
	out[fErrorRatio] = w.Sum(c.at, c.d, window.Errors) / req
	var q [3]float64
	if w.Quantiles(c.g.scratch, c.at, c.d, quantiles, q[:]) {
		out[fP50] = q[0]
		if p90 {
			out[fP90] = q[1]
		}
		out[fP99] = q[2]
		if c.g.sketches.keep() {
			c.sketch = latencySketch(c.g.scratch, c.g.wcfg.SketchAccuracy)
		}
	}
}

// keepSketch files the latency sketch red merged for entity id (if any)
// under the window's sketches.
func (c *calc) keepSketch(id string) {
	if c.sketch == nil {
		return
	}
	if m := c.g.sketches.window(c.d); m != nil {
		m[id] = c.sketch
	}
	c.sketch = nil
}

func (c *calc) share(w *window.Window, out map[string]float64, name string) {
	if n := w.Sum(c.at, c.d, window.ShareN); n > 0 {
		out[name] = w.Sum(c.at, c.d, window.ShareSum) / n
	}
}

func ratio(out map[string]float64, name string, num, den float64, ok bool) {
	if ok && den > 0 {
		out[name] = num / den
	}
}

func (c *calc) pod(e *entityState) map[string]float64 {
	out := map[string]float64{}
	usage, ok := c.last(e, InCPUUsage)
	if !ok {
		_, usage, ok = c.increase(e, InCPUSeconds)
	}
	if ok {
		out[fCPUUsage] = usage
	}
	mem, memOK := c.last(e, InMemWorkingSet)
	if !memOK {
		mem, memOK = c.last(e, InContainerWorkingSet)
	}
	if memOK {
		out[fMemUsage] = mem
	}
	for _, r := range []struct{ in, f, util, utilIn string }{
		{InCPURequest, fCPURequest, fCPURequestUtil, InCPURequestUtil},
		{InCPULimit, fCPULimit, fCPULimitUtil, InCPULimitUtil},
		{InMemRequest, fMemRequest, fMemRequestUtil, InMemRequestUtil},
		{InMemLimit, fMemLimit, fMemLimitUtil, InMemLimitUtil},
	} {
		cpu := strings.HasPrefix(r.in, "cpu")
		if v, has := c.last(e, r.in); has {
			out[r.f] = v
			if cpu {
				ratio(out, r.util, usage, v, ok)
			} else {
				ratio(out, r.util, mem, v, memOK)
			}
			continue
		}
		// Only the receiver's ratio is known: it is no limit or request
		// feature, so a replica that has the limit itself (k8s_cluster)
		// and one that has the ratio never add up the same limit.
		u, has := c.last(e, r.utilIn)
		if !has || u < 0 {
			continue
		}
		if cpu {
			// kubeletstats divides its k8s.pod.cpu.usage, which is
			// cpu.usage_cores wherever it reports the usage.
			out[r.util] = u
			continue
		}
		// kubeletstats divides its memory usage (page cache included),
		// not the working set: the limit is usage / ratio.
		if mu, has := c.last(e, InMemUsage); has && memOK {
			switch {
			case u > 0 && mu > 0:
				out[r.util] = mem * u / mu
			case mu == 0:
				out[r.util] = 0
			}
		}
	}
	thr, _, tok := c.increase(e, InThrottledPeriods)
	per, _, pok := c.increase(e, InPeriods)
	ratio(out, fThrottling, thr, per, tok && pok)
	if v, _, has := c.increase(e, InRestarts); has {
		out[fRestarts] = v
	}
	if v, _, has := c.increase(e, InOOMKills); has {
		out[fOOMKills] = v
	}
	c.cost(out)
	return out
}

// cost prices the CPU and memory requested, or used where nothing is
// requested.
func (c *calc) cost(out map[string]float64) {
	cores, ok := out[fCPURequest]
	if !ok {
		cores, ok = out[fCPUUsage]
	}
	mem, mok := out[fMemRequest]
	if !mok {
		mem, mok = out[fMemUsage]
	}
	if !ok && !mok {
		return
	}
	p := c.g.s.Prices
	out[fCostPerHour] = cores*p.CPUCoreHour + mem/gib*p.MemoryGiBHour
}

// service computes a service's features; pods holds its pods' features of
// the same window.
func (c *calc) service(e *entityState, pods map[string]map[string]float64) map[string]float64 {
	out := map[string]float64{}
	c.red(&e.win, out, true)
	if e.templates != nil {
		out[fLogErrorRate] = e.win.Rate(c.at, c.d, window.LogErrors)
	}
	c.share(&e.win, out, fSelfShare)
	if b, ok := e.baseline[fRequestRate]; ok && b > 0 {
		if r, ok := out[fRequestRate]; ok {
			out[fSurge] = r / b
		}
	}
	// Resources: sums over the pods, throttling of the most throttled pod.
	n := 0
	sums := map[string]float64{}
	for id := range e.pods {
		pf := pods[id]
		if len(pf) == 0 {
			continue
		}
		n++
		for _, f := range []string{fCPUUsage, fCPURequest, fCPULimit, fMemUsage, fMemRequest, fMemLimit, fRestarts, fOOMKills, fCostPerHour} {
			if v, ok := pf[f]; ok {
				sums[f] += v
				out[f] = sums[f]
			}
		}
		if v, ok := pf[fThrottling]; ok && v >= out[fThrottling] {
			out[fThrottling] = v
		}
	}
	if n > 0 {
		out["replicas"] = float64(n)
		for _, r := range []struct{ util, usage, den string }{
			{fCPURequestUtil, fCPUUsage, fCPURequest},
			{fCPULimitUtil, fCPUUsage, fCPULimit},
			{fMemRequestUtil, fMemUsage, fMemRequest},
			{fMemLimitUtil, fMemUsage, fMemLimit},
		} {
			c.serviceUtil(e, pods, out, r.util, r.usage, r.den)
		}
	}
	if cost, ok := out[fCostPerHour]; ok {
		if r := out[fRequestRate]; r > 0 {
			out["cost.per_1k_requests"] = cost / (r * 3600 / 1000)
		}
	}
	c.pool(e, out)
	if e.win.Observed() {
		target := 1 - c.g.s.SLO.AvailabilityTarget
		for _, b := range []struct {
			name string
			d    time.Duration
		}{{"slo.burn_rate_5m", 5 * time.Minute}, {"slo.burn_rate_30m", 30 * time.Minute}, {"slo.burn_rate_1h", time.Hour}, {"slo.burn_rate_6h", 6 * time.Hour}} {
			if req := e.win.Sum(c.at, b.d, window.Requests); req > 0 {
				out[b.name] = e.win.Sum(c.at, b.d, window.Errors) / req / target
			}
		}
	}
	return out
}

// serviceUtil sets a service's utilization: the usage of its pods over
// their limits (or requests), a pod's limit being the feature or, where
// only the ratio is known (kubeletstats), the one it implies (usage /
// ratio). Pods without either count in neither sum.
func (c *calc) serviceUtil(e *entityState, pods map[string]map[string]float64, out map[string]float64, util, usage, den string) {
	var num, sum float64
	has := false
	for id := range e.pods {
		pf := pods[id]
		u, uok := pf[usage]
		if !uok {
			continue
		}
		if d, ok := pf[den]; ok {
			num, sum, has = num+u, sum+d, true
		} else if r, ok := pf[util]; ok && r > 0 {
			num, sum, has = num+u, sum+u/r, true
		}
	}
	ratio(out, util, num, sum, has)
}

// pool sets the pool features from db.client.connection.* inputs.
func (c *calc) pool(e *entityState, out map[string]float64) {
	used, uok := c.last(e, InPoolConnections+".used")
	max, mok := c.last(e, InPoolMax)
	ratio(out, fPoolUtil, used, max, uok && mok)
	if v, ok := c.last(e, InPoolPending); ok {
		out[fPoolPending] = v
	}
	sum, _, sok := c.increase(e, InPoolWait+".sum")
	cnt, _, cok := c.increase(e, InPoolWait+".count")
	if sok && cok && cnt > 0 {
		out[fPoolWait] = sum / cnt * 1000
	}
	if _, r, ok := c.increase(e, InPoolTimeouts); ok {
		out[fPoolTimeouts] = r
	}
}

// database computes a database's features; callers are the pool features
// of services whose only database is this one.
func (c *calc) database(e *entityState, callers []map[string]float64) map[string]float64 {
	out := map[string]float64{}
	c.red(&e.win, out, true)
	if e.win.Observed() {
		out["query.slow_rate"] = e.win.Rate(c.at, c.d, window.Slow)
	}
	active, aok := c.last(e, InConnActive)
	if aok {
		out[fConnActive] = active
	}
	max, mok := c.last(e, InConnMax)
	if mok {
		out[fConnMax] = max
	}
	// Clients are refused once max - reserved connections are in use, so
	// utilization is measured against that.
	if reserved, ok := c.last(e, InConnReserved); ok && mok && reserved < max {
		max -= reserved
	}
	ratio(out, "connections.utilization", active, max, aok && mok)
	if v, ok := c.last(e, InLocks); ok {
		out["locks.waiting"] = v
	}
	if _, r, ok := c.increase(e, InDeadlocks); ok {
		out["deadlocks.rate"] = r
	}
	for _, f := range callers {
		if v, ok := f[fPoolUtil]; ok && v >= out[fPoolUtil] {
			out[fPoolUtil] = v
		}
		if v, ok := f[fPoolWait]; ok && v >= out[fPoolWait] {
			out[fPoolWait] = v
		}
		for _, k := range []string{fPoolPending, fPoolTimeouts} {
			if v, ok := f[k]; ok {
				out[k] += v
			}
		}
	}
	return out
}

func (c *calc) proxy(e *entityState) map[string]float64 {
	out := map[string]float64{}
	c.red(&e.win, out, true)
	if req := e.win.Sum(c.at, c.d, window.Requests); req > 0 {
		out["shed.ratio"] = e.win.Sum(c.at, c.d, window.Shed) / req
	} else if ip := e.inputs; ip != nil && !e.win.Observed() {
		// No access logs or spans: requests from the upstream stats.
		var total, failed float64
		has := false
		for in := range ip {
			if !strings.HasPrefix(in, InUpstreamRequests+".") && in != InProxyRequests {
				continue
			}
			_, r, ok := c.increase(e, in)
			if !ok {
				continue
			}
			has = true
			total += r
			if strings.HasSuffix(in, ".5") || strings.HasSuffix(in, ".5xx") {
				failed += r
			}
		}
		if has {
			out[fRequestRate] = total
			ratio(out, fErrorRatio, failed, total, true)
		}
	}
	if b, ok := e.baseline[fRequestRate]; ok && b > 0 {
		if r, ok := out[fRequestRate]; ok {
			out[fSurge] = r / b
		}
	}
	if v, ok := c.last(e, InPendingActive); ok {
		out["pending.active"] = v
	}
	if _, r, ok := c.increase(e, InPendingOverflow); ok {
		out["pending.overflow_rate"] = r
	}
	if v, ok := c.last(e, InCircuitBreaker); ok {
		out[fCircuitBreaker] = 0
		if v > 0 {
			out[fCircuitBreaker] = 1
		}
	}
	if v, ok := c.last(e, InDownstreamConns); ok {
		out[fConnActive] = v
	}
	return out
}

func (c *calc) relayer(e *entityState) map[string]float64 {
	out := map[string]float64{}
	if v, ok := c.last(e, InBacklogSize); ok {
		out["backlog.size"] = v
	}
	if v, ok := c.last(e, InWalletBalance); ok {
		out["wallet.balance"] = v
	}
	return out
}

func (c *calc) stream(e *entityState) map[string]float64 {
	out := map[string]float64{}
	lagIn := InLagSum
	lag, ok := c.last(e, lagIn)
	if !ok {
		lagIn = InLagPartition
		lag, ok = c.last(e, lagIn)
	}
	if ok {
		out["lag.messages"] = lag
		if r, has := c.changeRate(e, lagIn); has {
			out["lag.growth_rate"] = r
		}
	}
	if e.win.Sum(c.at, LongWindow, window.Produced) > 0 {
		out["produce.rate"] = e.win.Rate(c.at, c.d, window.Produced)
	}
	consume, cok := 0.0, false
	if e.win.Sum(c.at, LongWindow, window.Consumed) > 0 {
		consume, cok = e.win.Rate(c.at, c.d, window.Consumed), true
	} else if _, r, has := c.increase(e, InConsumedOffset); has {
		consume, cok = r, true
	}
	if cok {
		out["consume.rate"] = consume
		if ok && consume > 0 {
			out["lag.seconds"] = lag / consume
		}
	}
	return out
}

func (c *calc) edge(e *edgeState) map[string]float64 {
	out := map[string]float64{}
	c.red(&e.win, out, false)
	c.share(&e.win, out, fLatencyShare)
	return out
}

// features computes the features of every entity and edge over the window
// d ending at at.
func (g *Graph) features(at time.Time, d time.Duration) (map[string]map[string]float64, map[edgeKey]map[string]float64) {
	c := &calc{g: g, at: at, d: d}
	ents := make(map[string]map[string]float64, len(g.entities))
	for id, e := range g.entities {
		switch e.ref.Type {
		case entity.Pod:
			ents[id] = c.pod(e)
		case entity.Proxy:
			ents[id] = c.proxy(e)
		case entity.Relayer:
			ents[id] = c.relayer(e)
		case entity.Stream:
			ents[id] = c.stream(e)
		}
		c.keepSketch(id)
	}
	for id, e := range g.entities {
		if e.ref.Type == entity.Service {
			ents[id] = c.service(e, ents)
			c.keepSketch(id)
		}
	}
	// Pool features of services with exactly one database downstream.
	onlyDB := map[string]string{}
	for k := range g.edges {
		if k.typ != entity.EdgeDB {
			continue
		}
		if prev, ok := onlyDB[k.src]; ok && prev != k.dst {
			onlyDB[k.src] = ""
		} else if !ok {
			onlyDB[k.src] = k.dst
		}
	}
	callers := map[string][]map[string]float64{}
	for svc, db := range onlyDB {
		if db != "" {
			callers[db] = append(callers[db], ents[svc])
		}
	}
	for id, e := range g.entities {
		if e.ref.Type == entity.Database {
			c.fallback = nil
			if sys, srv, ns := e.attrs["db.system.name"], e.attrs["server.address"], e.attrs["db.namespace"]; ns != "" {
				c.fallback = g.entities[entity.ID(entity.Database, sys, srv, "")]
			}
			ents[id] = c.database(e, callers[id])
			c.keepSketch(id)
		}
	}
	c.fallback = nil
	edges := make(map[edgeKey]map[string]float64, len(g.edges))
	for k, e := range g.edges {
		edges[k] = c.edge(e)
		if c.sketch != nil && d == ShortWindow {
			g.sketches.edges[k] = c.sketch
		}
		c.sketch = nil
	}
	return ents, edges
}
