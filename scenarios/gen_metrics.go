package scenarios

import (
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Connection pools of the database's callers.
const (
	poolName       = DBHost + ":5432/" + DBName
	ordersPoolMax  = 10
	catalogPoolMax = 8
	poolMinIdle    = 2
	poolTimeout    = 5 * time.Second
	// cfsPeriod is the kernel's CFS period: a container has one period
	// per 100ms of wall time.
	cfsPeriod = 100 * time.Millisecond
)

// Bucket bounds of the histograms, in their units.
var (
	waitBounds    = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	txLatencyBnds = []float64{500, 1000, 2000, 5000, 10000, 20000, 30000, 60000, 120000}
)

func poolMax(si int) int {
	if si == sOrders {
		return ordersPoolMax
	}
	return catalogPoolMax
}

func podKey(si, pi int) string { return specs[si].name + "/" + strconv.Itoa(pi) }

// poolAcquire draws the time a request waits for a pooled connection and
// whether it timed out; scale weighs the slow query's effect on this pool.
func (g *generator) poolAcquire(si, pi int, scale float64) (time.Duration, bool) {
	s := g.eff.dbSlowQuery * scale
	var wait time.Duration
	if s <= 0 {
		wait = g.logn(0.3, 0.5)
	} else {
		wait = g.logn(math.Max(0.3, s*1800), 0.7)
	}
	timeout := wait >= poolTimeout
	if timeout {
		wait = poolTimeout
		g.add("pool.timeouts/"+podKey(si, pi), 1)
	}
	g.hist("pool.wait/"+podKey(si, pi), waitBounds).observe(wait.Seconds(), 1)
	return wait, timeout
}

// dbQueries records a query's duration for the pool's occupancy.
func (g *generator) dbQueries(si, pi int, q time.Duration) {
	g.add("pool.hold/"+podKey(si, pi), q.Seconds())
}

// resourceMetrics writes kubeletstats metrics for every running pod and
// cAdvisor CFS counters for every container.
func (g *generator) resourceMetrics() {
	for si := range specs {
		s, l := &specs[si], &g.loads[si]
		for pi := 0; pi < l.replicas; pi++ {
			p := &g.pods[si][pi]
			usage := math.Min(l.cpuLimit, l.usage*(1+0.05*g.rng.NormFloat64()))
			mem := float64(s.memBase) * (1 + 0.02*g.rng.NormFloat64())
			if si == sRecommendations && g.eff.recsTraffic < 1 {
				mem *= 0.4 + 0.6*g.eff.recsTraffic
			}
			memReq, memLim := s.memRequest, s.memLimit

			pm := g.mset(g.metricScope(func(m pcommon.Map) { g.putPodAttrs(m, si, pi) }))
			pm.dbl(pm.gauge("k8s.pod.cpu.usage", "{cpu}", "Total CPU usage (sum of all cores per second) averaged over the sample window"), usage)
			pm.int(pm.gauge("k8s.pod.memory.working_set", "By", "Pod memory working set"), int64(mem))

			cm := g.mset(g.metricScope(func(m pcommon.Map) {
				g.putPodAttrs(m, si, pi)
				m.PutStr("k8s.container.name", s.name)
				m.PutStr("container.id", hexID([]byte(p.uid[:16])))
			}))
			cm.dbl(cm.gauge("k8s.container.cpu_request", "{cpu}", "CPU requested for the container"), l.cpuRequest)
			cm.dbl(cm.gauge("k8s.container.cpu_limit", "{cpu}", "Maximum CPU limit set for the container"), l.cpuLimit)
			cm.int(cm.gauge("k8s.container.memory_request", "By", "Memory requested for the container"), memReq)
			cm.int(cm.gauge("k8s.container.memory_limit", "By", "Maximum memory limit set for the container"), memLim)
			cm.int(cm.gauge("k8s.container.restarts", "{restart}", "How many times the container has restarted"), p.restarts)

			periods := g.add("cfs.periods/"+podKey(si, pi), float64(g.p.Step/cfsPeriod))
			thr := math.Max(0, math.Min(1, l.throttle*(1+0.1*g.rng.NormFloat64())))
			throttled := g.add("cfs.throttled/"+podKey(si, pi), math.Round(float64(g.p.Step/cfsPeriod)*thr))
			cv := g.mset(g.metricScope(func(m pcommon.Map) {
				putScrapeResource(m, "kubernetes-cadvisor", p.node+":10250")
				m.PutStr("k8s.namespace.name", s.namespace)
				m.PutStr("k8s.pod.name", p.name)
				m.PutStr("k8s.container.name", s.name)
			}))
			labels := []string{"namespace", s.namespace, "pod", p.name, "container", s.name}
			cv.cumDbl(cv.sum("container_cpu_cfs_periods_total", "", "Number of elapsed enforcement period intervals.", true), periods, labels...)
			cv.cumDbl(cv.sum("container_cpu_cfs_throttled_periods_total", "", "Number of throttled period intervals.", true), throttled, labels...)
		}
	}
}

// proxyMetrics writes the edge proxy's Envoy stats as the prometheus
// receiver turns them into OTLP.
func (g *generator) proxyMetrics() {
	capa := upstreamCapacity * g.p.EdgeRate
	for pi := 0; pi < g.loads[sProxy].replicas; pi++ {
		p := &g.pods[sProxy][pi]
		em := g.mset(g.metricScope(func(m pcommon.Map) { putScrapeResource(m, ProxyJob, p.ip+":9901") }))
		cl := []string{"envoy_cluster_name", ProxyCluster}
		ovf := g.add("envoy.overflow/"+p.name, float64(g.overflow[pi]))
		em.cumDbl(em.sum("envoy_cluster_upstream_rq_pending_overflow", "", "Total requests that overflowed connection pool or requests (mainly for HTTP/2 and above) circuit breaking and were failed", true), ovf, cl...)
		pending := float64(g.poisson(g.edgeRate * 0.004))
		if g.edgeRate > capa {
			pending = 64 * g.uniform(0.8, 1)
		}
		em.dbl(em.gauge("envoy_cluster_upstream_rq_pending_active", "", "Total active requests pending a connection pool connection"), math.Round(pending), cl...)
		open := 0.0
		if g.overflow[pi] > 0 {
			open = 1
		}
		em.dbl(em.gauge("envoy_cluster_circuit_breakers_default_rq_open", "", "Whether the requests circuit breaker is under its concurrency limit (0) or is at capacity and no longer admitting (1)"), open, cl...)
		em.dbl(em.gauge("envoy_cluster_circuit_breakers_default_rq_pending_open", "", "Whether the pending requests circuit breaker is under its concurrency limit (0) or is at capacity and no longer admitting (1)"), open, cl...)
		rq := em.sum("envoy_cluster_upstream_rq", "", "Total requests by response code", true)
		var total float64
		var byClass [6]float64
		for ci, name := range codeNames {
			v := g.add("envoy.rq."+name+"/"+p.name, float64(g.upstreamCodes[pi][ci]))
			total += v
			byClass[name[0]-'0'] += v
			em.cumDbl(rq, v, "envoy_cluster_name", ProxyCluster, "envoy_response_code", name)
		}
		xx := em.sum("envoy_cluster_upstream_rq_xx", "", "Total requests by response code class", true)
		for _, class := range []int{2, 4, 5} {
			em.cumDbl(xx, byClass[class], "envoy_cluster_name", ProxyCluster, "envoy_response_code_class", strconv.Itoa(class))
		}
		em.cumDbl(em.sum("envoy_cluster_upstream_rq_total", "", "Total requests", true), total, cl...)
		em.dbl(em.gauge("envoy_http_downstream_cx_active", "", "Total active connections"),
			math.Round(g.edgeRate/float64(g.loads[sProxy].replicas)*2+g.uniform(0, 4)), "envoy_http_conn_manager_prefix", "ingress_http")
	}
}

// dbMetrics writes the pools' db.client.connection.* metrics from every
// orders and catalog pod, and the postgres_exporter metrics.
func (g *generator) dbMetrics() {
	backends := 3.0 // autovacuum launcher, the exporter, a replication sender
	var used, idle float64
	for _, si := range []int{sCatalog, sOrders} {
		l := &g.loads[si]
		scale := 1.0
		if si == sCatalog {
			scale = 0.5
		}
		s := g.eff.dbSlowQuery * scale
		for pi := 0; pi < l.replicas; pi++ {
			key := podKey(si, pi)
			mx := float64(poolMax(si))
			hold := g.cum["pool.hold/"+key]
			g.cum["pool.hold/"+key] = 0
			// Little's law: connections busy on average.
			u := hold / g.p.Step.Seconds()
			pend := 0.0
			if s > 0 {
				u = math.Min(mx, mx*(0.3+1.4*s)+g.uniform(-1, 1))
				if u >= mx-0.5 {
					pend = math.Round(s * l.rate / float64(l.replicas) * 2.5 * g.uniform(0.7, 1.3))
				}
			}
			u = math.Max(0, math.Min(mx, math.Round(u+g.uniform(0, 0.8))))
			id := math.Min(mx-u, math.Max(poolMinIdle, mx/2-u))
			used += u
			idle += id
			pm := g.mset(g.metricScope(func(m pcommon.Map) { g.putAppResource(m, si, pi) }))
			attrs := []string{"db.client.connection.pool.name", poolName, "db.system.name", DBSystem,
				"server.address", DBHost, "server.port", strconv.Itoa(DBPort), "db.namespace", DBName}
			cnt := pm.sum("db.client.connection.count", "{connection}", "The number of connections that are currently in state described by the state attribute", false)
			pm.int(cnt, int64(u), with(attrs, "db.client.connection.state", "used")...)
			pm.int(cnt, int64(id), with(attrs, "db.client.connection.state", "idle")...)
			pm.int(pm.sum("db.client.connection.max", "{connection}", "The maximum number of open connections allowed", false), int64(mx), attrs...)
			pm.int(pm.sum("db.client.connection.pending_requests", "{request}", "The number of current pending requests for an open connection", false), int64(pend), attrs...)
			pm.cumInt(pm.sum("db.client.connection.timeouts", "{timeout}", "The number of connection timeouts that have occurred trying to obtain a connection from the pool", true),
				int64(g.cum["pool.timeouts/"+key]), attrs...)
			pm.histPoint(pm.hist("db.client.connection.wait_time", "s", "The time it took to obtain an open connection from the pool"),
				g.hist("pool.wait/"+key, waitBounds), attrs...)
		}
	}
	s := g.eff.dbSlowQuery
	backends += used + idle + math.Round(3*s)
	backends = math.Min(MaxBackends, backends)
	// The scrape config relabels instance to the database the exporter
	// watches (as for a multi-target exporter), so the resource names it.
	pg := g.mset(g.metricScope(func(m pcommon.Map) { putScrapeResource(m, DBExporter, DBHost+":"+strconv.Itoa(DBPort)) }))
	srv := []string{"server", DBHost + ":" + strconv.Itoa(DBPort)}
	db := with([]string{"datname", DBName}, srv...)
	pg.dbl(pg.gauge("pg_up", "", "Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no)."), 1, srv...)
	pg.dbl(pg.gauge("pg_stat_database_numbackends", "", "Number of backends currently connected to this database."), backends, db...)
	pg.dbl(pg.gauge("pg_settings_max_connections", "", "Sets the maximum number of concurrent connections."), MaxBackends, srv...)
	act := pg.gauge("pg_stat_activity_count", "", "number of connections in this state")
	pg.dbl(act, used+math.Round(3*s), with(db, "state", "active")...)
	pg.dbl(act, idle, with(db, "state", "idle")...)
	pg.dbl(act, math.Round(8*s), with(db, "state", "idle in transaction")...)
	locks := pg.gauge("pg_locks_count", "", "Number of locks")
	for _, lk := range []struct {
		mode string
		v    float64
	}{
		{"accesssharelock", 4 + math.Round(used*1.5)},
		{"rowsharelock", math.Round(10 * s)},
		{"rowexclusivelock", 1 + math.Round(used*0.5)},
		{"sharelock", math.Round(24 * s)},
		{"shareupdateexclusivelock", 0},
		{"sharerowexclusivelock", 0},
		{"exclusivelock", 1 + math.Round(12*s)},
		{"accessexclusivelock", 0},
	} {
		pg.dbl(locks, lk.v, with(db, "mode", lk.mode)...)
	}
	// The custom query Junction ships for the exporter
	// (deploy/postgres-exporter/queries.yaml): sessions waiting for a lock.
	pg.dbl(pg.gauge("pg_locks_waiting_count", "", "Sessions of the database waiting for a lock (pg_stat_activity wait_event_type Lock)"),
		math.Round(14*s), db...)
	pg.cumDbl(pg.sum("pg_stat_database_deadlocks", "", "Number of deadlocks detected in this database", true),
		g.add("pg.deadlocks", math.Round(s*g.uniform(0, 1.4))), db...)
	pg.cumDbl(pg.sum("pg_stat_database_xact_commit", "", "Number of transactions in this database that have been committed", true),
		g.add("pg.commits", math.Round((g.loads[sCatalog].rate+g.loads[sOrders].rate)*g.p.Step.Seconds())), db...)

	if s > 0 {
		g.postgresLog(s)
	}
}

// postgresLog writes the server's slow-statement and lock-wait lines.
func (g *generator) postgresLog(s float64) {
	n := g.poisson(3 * s * g.p.Step.Seconds() / 10)
	for i := 0; i < min(n, maxLogsPerTmpl); i++ {
		t := g.within()
		g.pgPID++
		lr := g.postgresLogs().AppendEmpty()
		lr.SetTimestamp(ts(t))
		lr.SetObservedTimestamp(ts(t))
		lr.SetSeverityNumber(9)
		lr.SetSeverityText("LOG")
		lr.Body().SetStr("process " + strconv.Itoa(g.pgPID) + " still waiting for ShareLock on transaction " +
			strconv.Itoa(8_200_000+g.rng.IntN(90_000)) + " after 1000.0" + strconv.Itoa(10+g.rng.IntN(89)) + " ms")
		lr.Attributes().PutStr("db.namespace", DBName)
	}
	if g.rng.Float64() < s {
		t := g.within()
		d := g.logn(12000, 0.3)
		lr := g.postgresLogs().AppendEmpty()
		lr.SetTimestamp(ts(t))
		lr.SetObservedTimestamp(ts(t))
		lr.SetSeverityNumber(9)
		lr.SetSeverityText("LOG")
		lr.Body().SetStr("duration: " + strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64) + " ms  statement: " + reportQuery)
		lr.Attributes().PutStr("db.namespace", DBName)
		// The reporting job's own span, from an orders pod.
		n := g.dbSpan(sOrders, 0, "SELECT", "orders", reportQuery, d)
		measure(n)
		g.lay(n, g.traceID(), pcommon.SpanID{}, t)
	}
}

const reportQuery = "SELECT o.customer_id, sum(i.amount_cents) FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.created_at > now() - interval '1 day' GROUP BY o.customer_id FOR UPDATE OF o"
