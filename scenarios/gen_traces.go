package scenarios

import (
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// node is a span before it is laid out in time: its own time before and
// after its children, which run one after the other.
type node struct {
	svc, pod  int
	id        pcommon.SpanID
	name      string
	kind      ptrace.SpanKind
	pre, post time.Duration
	children  []*node
	attrs     []kv
	err       bool
	msg       string
	dur       time.Duration
	start     time.Time // set by lay
	// part is the Kafka partition of a PRODUCER span's record.
	part int
}

type kv struct {
	k string
	s string
	i int64
	n bool // i holds the value
}

func str(k, v string) kv { return kv{k: k, s: v} }
func num(k string, v int64) kv {
	return kv{k: k, i: v, n: true}
}

const netHop = 300 * time.Microsecond

func (g *generator) newNode(si, pi int, name string, kind ptrace.SpanKind) *node {
	return &node{svc: si, pod: pi, id: g.spanID(), name: name, kind: kind}
}

// measure computes durations bottom-up.
func measure(n *node) time.Duration {
	d := n.pre + n.post
	for _, c := range n.children {
		d += measure(c)
	}
	n.dur = d
	return d
}

// lay writes n and its children as spans starting at start.
func (g *generator) lay(n *node, tid pcommon.TraceID, parent pcommon.SpanID, start time.Time) {
	sp := g.spans(n.svc, n.pod).AppendEmpty()
	sp.SetTraceID(tid)
	sp.SetSpanID(n.id)
	sp.SetParentSpanID(parent)
	sp.SetName(n.name)
	sp.SetKind(n.kind)
	sp.SetStartTimestamp(ts(start))
	sp.SetEndTimestamp(ts(start.Add(n.dur)))
	n.start = start
	m := sp.Attributes()
	for _, a := range n.attrs {
		if a.n {
			m.PutInt(a.k, a.i)
		} else {
			m.PutStr(a.k, a.s)
		}
	}
	if n.err {
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage(n.msg)
	}
	at := start.Add(n.pre)
	for _, c := range n.children {
		g.lay(c, tid, n.id, at)
		at = at.Add(c.dur)
	}
}

// httpServer returns the SERVER span of an HTTP handler.
func (g *generator) httpServer(si, pi int, method, route, path string, code int) *node {
	s := &specs[si]
	n := g.newNode(si, pi, method+" "+route, ptrace.SpanKindServer)
	n.attrs = []kv{
		str("http.request.method", method), str("http.route", route), str("url.path", path),
		str("url.scheme", "http"), str("server.address", s.host), num("server.port", int64(s.port)),
		num("http.response.status_code", int64(code)), str("network.protocol.version", "1.1"),
	}
	if code >= 500 {
		n.err = true
	}
	return n
}

// httpClient wraps a server span in the caller's CLIENT span.
func (g *generator) httpClient(si, pi int, method, path string, srv *node, code int) *node {
	t := &specs[srv.svc]
	n := g.newNode(si, pi, method, ptrace.SpanKindClient)
	n.attrs = []kv{
		str("http.request.method", method), str("server.address", t.host), num("server.port", int64(t.port)),
		str("url.full", "http://"+t.host+":"+strconv.Itoa(t.port)+path), num("http.response.status_code", int64(code)),
	}
	if code >= 400 {
		n.err, n.msg = true, "HTTP "+strconv.Itoa(code)
	}
	n.pre, n.post = netHop, netHop
	n.children = []*node{srv}
	return n
}

// grpcPair returns a CLIENT span around a gRPC SERVER span.
func (g *generator) grpcPair(fromSvc, fromPod int, srv *node, service, method string, code int64) *node {
	t := &specs[srv.svc]
	name := service + "/" + method
	srv.name, srv.kind = name, ptrace.SpanKindServer
	srv.attrs = append(srv.attrs, str("rpc.system", "grpc"), str("rpc.service", service), str("rpc.method", method),
		num("rpc.grpc.status_code", code), str("server.address", t.host), num("server.port", int64(t.port)))
	c := g.newNode(fromSvc, fromPod, name, ptrace.SpanKindClient)
	c.attrs = []kv{str("rpc.system", "grpc"), str("rpc.service", service), str("rpc.method", method),
		num("rpc.grpc.status_code", code), str("server.address", t.host), num("server.port", int64(t.port))}
	if code != 0 {
		srv.err, c.err = true, true
		c.msg = grpcCodeName(code)
		srv.msg = c.msg
	}
	c.pre, c.post = netHop, netHop
	c.children = []*node{srv}
	return c
}

func grpcCodeName(code int64) string {
	switch code {
	case 4:
		return "DEADLINE_EXCEEDED"
	case 14:
		return "UNAVAILABLE"
	default:
		return "UNKNOWN"
	}
}

// dbSpan returns a CLIENT span of a Postgres query.
func (g *generator) dbSpan(si, pi int, op, table, query string, d time.Duration) *node {
	n := g.newNode(si, pi, op+" "+table, ptrace.SpanKindClient)
	n.attrs = []kv{
		str("db.system.name", DBSystem), str("db.namespace", DBName), str("db.operation.name", op),
		str("db.collection.name", table), str("db.query.text", query),
		str("server.address", DBHost), num("server.port", DBPort),
	}
	n.pre = d
	return n
}

// request is one request entering at the edge proxy at t.
func (g *generator) request(t time.Time, route int) {
	tid := g.traceID()
	ctx := &reqCtx{tid: tid, t: t}
	pp := g.pickPod(sProxy)
	method, path, routeTmpl := "GET", "/", "/"
	switch route {
	case routeProducts:
		id := strconv.Itoa(1000 + g.rng.IntN(9000))
		path, routeTmpl = "/api/products/"+id, "/api/products/{id}"
	case routeCheckout:
		method, path, routeTmpl = "POST", "/api/checkout", "/api/checkout"
	case routeRecommendations:
		path, routeTmpl = "/api/recommendations", "/api/recommendations"
	}

	root := g.newNode(sProxy, pp, "ingress", ptrace.SpanKindServer)
	root.pre = g.logn(specs[sProxy].latency, 0.3)
	code, upstreamTime := 0, time.Duration(-1)
	// Shedding: the local rate limit answers 429 above rateLimit x the
	// healthy rate; above the upstream capacity the pending queue
	// overflows and Envoy answers 503.
	demand := g.edgeRate
	limit, capa := rateLimit*g.p.EdgeRate, upstreamCapacity*g.p.EdgeRate
	u := g.rng.Float64() * demand
	switch {
	case u < demand-limit:
		code = 429
	case u < demand-capa:
		code = 503
		g.overflow[pp]++
	default:
		fe := g.frontend(ctx, route, method, path, routeTmpl)
		code = fe.code
		if demand > capa {
			// Admitted requests wait in the pending queue.
			root.pre += g.logn(120, 0.5)
		}
		cl := g.httpClient(sProxy, pp, method, path, fe.n, fe.code)
		cl.name = "router " + ProxyCluster + " egress"
		cl.attrs = append(cl.attrs, str("upstream_cluster", ProxyCluster))
		root.children = []*node{cl}
		measure(cl)
		upstreamTime = cl.dur
	}
	root.post = netHop
	root.attrs = []kv{
		str("http.request.method", method), str("url.path", path), str("http.route", routeTmpl), str("url.scheme", "https"),
		str("server.address", "shop.example.com"), num("server.port", 443), num("http.response.status_code", int64(code)),
		str("upstream_cluster", ProxyCluster), str("client.address", g.clientIP()),
		str("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) ShopApp/5.2"),
	}
	if code >= 500 {
		root.err = true
	}
	measure(root)
	g.lay(root, tid, pcommon.SpanID{}, t)
	for _, pub := range g.published {
		g.produce(tid, pub.id, pub.start.Add(pub.dur), pub.part)
	}
	g.published = g.published[:0]
	g.upstreamCodes[pp][codeIndex(code)]++
	g.accessLog(pp, t, tid, root, method, path, code, upstreamTime)
}

type reqCtx struct {
	tid pcommon.TraceID
	t   time.Time
}

type served struct {
	n    *node
	code int
}

func (g *generator) clientIP() string {
	return fmt.Sprintf("203.0.113.%d", 1+g.rng.IntN(254))
}

// frontend serves every route and calls the services behind it.
func (g *generator) frontend(ctx *reqCtx, route int, method, path, routeTmpl string) served {
	fp := g.pickPod(sFrontend)
	l := &g.loads[sFrontend]
	self := g.logn(specs[sFrontend].latency*l.latMul, 0.35)
	code := 200
	var child *node
	switch route {
	case routeProducts:
		c := g.catalog(ctx, path)
		child = g.httpClient(sFrontend, fp, "GET", "/products/"+path[len("/api/products/"):], c.n, c.code)
		if c.code >= 500 {
			code = 502
			g.log(sFrontend, fp, ctx, plog.SeverityNumberError, "upstream-failed",
				fmt.Sprintf("upstream request failed: status=%d path=%s upstream=%s", c.code, path, Catalog))
		}
	case routeCheckout:
		c := g.checkout(ctx)
		child = g.httpClient(sFrontend, fp, "POST", "/checkout", c.n, c.code)
		if c.code >= 500 {
			code = 502
			g.log(sFrontend, fp, ctx, plog.SeverityNumberError, "upstream-failed",
				fmt.Sprintf("upstream request failed: status=%d path=%s upstream=%s", c.code, path, Checkout))
		}
	case routeRecommendations:
		if g.rng.Float64() < g.eff.recsTraffic {
			c := g.recommendations(ctx)
			child = g.httpClient(sFrontend, fp, "GET", "/recommendations", c.n, c.code)
		}
	}
	n := g.httpServer(sFrontend, fp, method, routeTmpl, path, code)
	n.pre, n.post = self*6/10, self*4/10
	if child != nil {
		n.children = []*node{child}
	}
	return served{n, code}
}

// catalog reads a product from Postgres through its connection pool.
func (g *generator) catalog(ctx *reqCtx, path string) served {
	cp := g.pickPod(sCatalog)
	l := &g.loads[sCatalog]
	self := g.logn(specs[sCatalog].latency*l.latMul, 0.4)
	id := path[len("/api/products/"):]
	code := 200
	n := g.httpServer(sCatalog, cp, "GET", "/products/{id}", "/products/"+id, code)
	n.pre, n.post = self/2, self/2
	wait, timeout := g.poolAcquire(sCatalog, cp, 0.5)
	n.pre += wait
	switch {
	case timeout:
		code = 500
		g.log(sCatalog, cp, ctx, plog.SeverityNumberError, "pool-timeout",
			fmt.Sprintf("timeout acquiring connection from pool %s after %dms (used=%d/%d)",
				poolName, wait.Milliseconds(), catalogPoolMax, catalogPoolMax))
	case g.rng.Float64() < l.errRatio:
		code = 503
		n.pre += g.logn(900, 0.3)
		g.log(sCatalog, cp, ctx, plog.SeverityNumberError, "request-timeout",
			fmt.Sprintf("request timed out after %dms: GET /products/%s (inflight=%d)", 800+g.rng.IntN(400), id, 20+g.rng.IntN(30)))
	default:
		q := g.logn(2, 0.4) + time.Duration(g.eff.dbSlowQuery*g.uniform(20, 300)*float64(time.Millisecond))
		n.children = []*node{g.dbSpan(sCatalog, cp, "SELECT", "products",
			"SELECT id, name, price_cents, stock FROM products WHERE id = $1", q)}
		g.dbQueries(sCatalog, cp, q)
	}
	n.attrs[6] = num("http.response.status_code", int64(code))
	n.err = code >= 500
	return served{n, code}
}

// checkout reserves stock (gRPC to inventory) and creates the order (gRPC
// to orders).
func (g *generator) checkout(ctx *reqCtx) served {
	cp := g.pickPod(sCheckout)
	l := &g.loads[sCheckout]
	self := g.logn(specs[sCheckout].latency*l.latMul, 0.35)
	code := 200

	inv := g.inventory(ctx)
	invCall := g.grpcPair(sCheckout, cp, inv.n, "inventory.v1.InventoryService", "Reserve", int64(inv.code))
	children := []*node{invCall}
	if inv.code != 0 {
		code = 503
		g.log(sCheckout, cp, ctx, plog.SeverityNumberError, "reserve-failed",
			fmt.Sprintf("inventory reservation failed: %s", grpcCodeName(int64(inv.code))))
	} else {
		ord := g.orders(ctx)
		children = append(children, g.grpcPair(sCheckout, cp, ord.n, "orders.v1.OrderService", "CreateOrder", int64(ord.code)))
		if ord.code != 0 {
			code = 500
			g.log(sCheckout, cp, ctx, plog.SeverityNumberError, "order-failed",
				fmt.Sprintf("create order failed: rpc error: code = %s desc = %s", grpcCodeName(int64(ord.code)), "connection pool exhausted"))
		}
	}
	n := g.httpServer(sCheckout, cp, "POST", "/checkout", "/checkout", code)
	n.pre, n.post = self/2, self/2
	n.children = children
	return served{n, code}
}

// inventory serves Reserve; its latency follows its CPU throttling.
func (g *generator) inventory(ctx *reqCtx) served {
	ip := g.pickPod(sInventory)
	l := &g.loads[sInventory]
	self := g.logn(specs[sInventory].latency*l.latMul, 0.45)
	n := g.newNode(sInventory, ip, "", ptrace.SpanKindServer)
	n.pre, n.post = self*8/10, self*2/10
	if self > 250*time.Millisecond {
		g.log(sInventory, ip, ctx, plog.SeverityNumberWarn, "slow-request",
			fmt.Sprintf("slow request: method=Reserve took %dms (cpu throttled %.0f%% of periods)", self.Milliseconds(), 100*l.throttle))
	}
	return served{n, 0}
}

// orders writes the order to Postgres and publishes an order event.
func (g *generator) orders(ctx *reqCtx) served {
	op := g.pickPod(sOrders)
	l := &g.loads[sOrders]
	self := g.logn(specs[sOrders].latency*l.latMul, 0.35)
	n := g.newNode(sOrders, op, "", ptrace.SpanKindServer)
	n.pre, n.post = self/2, self/2
	wait, timeout := g.poolAcquire(sOrders, op, 1)
	n.pre += wait
	if timeout {
		g.log(sOrders, op, ctx, plog.SeverityNumberError, "pool-timeout",
			fmt.Sprintf("timeout acquiring connection from pool %s after %dms (used=%d/%d, pending=%d)",
				poolName, wait.Milliseconds(), ordersPoolMax, ordersPoolMax, 10+g.rng.IntN(30)))
		return served{n, 14}
	}
	q := g.logn(4, 0.4)
	if g.eff.dbSlowQuery > 0 {
		// Row locks held by the reporting query.
		lockWait := time.Duration(g.eff.dbSlowQuery * g.uniform(200, 2500) * float64(time.Millisecond))
		q += lockWait
	}
	ins := g.dbSpan(sOrders, op, "INSERT", "orders",
		"INSERT INTO orders (customer_id, total_cents, status) VALUES ($1, $2, 'placed') RETURNING id", q)
	g.dbQueries(sOrders, op, q)
	if q > time.Second {
		g.log(sOrders, op, ctx, plog.SeverityNumberWarn, "slow-query",
			fmt.Sprintf("slow query took %dms: INSERT INTO orders", q.Milliseconds()))
	}
	pub := g.newNode(sOrders, op, "send "+Topic, ptrace.SpanKindProducer)
	pub.pre = g.logn(1.5, 0.3)
	part := g.rng.IntN(Partitions)
	pub.attrs = []kv{
		str("messaging.system", "kafka"), str("messaging.destination.name", Topic),
		str("messaging.operation.type", "send"), str("messaging.operation.name", "send"),
		num("messaging.destination.partition.id", int64(part)), str("server.address", "kafka-0.kafka.shop.svc"), num("server.port", 9092),
	}
	n.children = []*node{ins, pub}
	pub.part = part
	g.published = append(g.published, pub)
	return served{n, 0}
}

// recommendations computes recommendations in memory.
func (g *generator) recommendations(ctx *reqCtx) served {
	rp := g.pickPod(sRecommendations)
	l := &g.loads[sRecommendations]
	self := g.logn(specs[sRecommendations].latency*l.latMul, 0.4)
	n := g.httpServer(sRecommendations, rp, "GET", "/recommendations", "/recommendations", 200)
	n.pre, n.post = self*9/10, self/10
	return served{n, 200}
}

// log appends an application log record, at most maxLogsPerTmpl per
// service, template and step.
func (g *generator) log(si, pi int, ctx *reqCtx, sev plog.SeverityNumber, tmpl, body string) {
	key := specs[si].name + "/" + tmpl
	if g.logCap[key] >= maxLogsPerTmpl {
		return
	}
	g.logCap[key]++
	lr := g.logRecords(si, pi).AppendEmpty()
	t := g.t0
	if ctx != nil {
		t = ctx.t
		lr.SetTraceID(ctx.tid)
	}
	lr.SetTimestamp(ts(t))
	lr.SetObservedTimestamp(ts(t))
	lr.SetSeverityNumber(sev)
	lr.SetSeverityText(severityText(sev))
	lr.Body().SetStr(body)
	lr.Attributes().PutStr("code.function.name", tmpl)
}

func severityText(s plog.SeverityNumber) string {
	switch {
	case s >= plog.SeverityNumberError:
		return "ERROR"
	case s >= plog.SeverityNumberWarn:
		return "WARN"
	default:
		return "INFO"
	}
}

// accessLog writes the edge proxy's NGINX-style JSON access log line, as
// the filelog receiver's json_parser leaves it: the raw line as the body,
// the parsed fields as attributes.
func (g *generator) accessLog(pp int, t time.Time, tid pcommon.TraceID, root *node, method, path string, code int, upstream time.Duration) {
	lr := g.logRecords(sProxy, pp).AppendEmpty()
	end := t.Add(root.dur)
	lr.SetTimestamp(ts(end))
	lr.SetObservedTimestamp(ts(end))
	lr.SetTraceID(tid)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("INFO")
	reqTime := root.dur.Seconds()
	upAddr, upStatus, upTime := "-", "-", "-"
	if upstream >= 0 {
		fp := g.pods[sFrontend][g.rng.IntN(g.loads[sFrontend].replicas)]
		upAddr = fp.ip + ":" + strconv.Itoa(specs[sFrontend].port)
		upStatus = strconv.Itoa(code)
		upTime = strconv.FormatFloat(upstream.Seconds(), 'f', 3, 64)
	}
	bytes := 0
	if code < 400 {
		bytes = 800 + g.rng.IntN(6000)
	}
	remote := g.clientIP()
	body := fmt.Sprintf(`{"time_local":"%s","remote_addr":"%s","request":"%s %s HTTP/1.1","request_method":"%s","request_uri":"%s","status":%d,"body_bytes_sent":%d,"request_time":%.3f,"upstream":"%s","upstream_addr":"%s","upstream_status":"%s","upstream_response_time":"%s","trace_id":"%s"}`,
		end.Format("02/Jan/2006:15:04:05 -0700"), remote, method, path, method, path, code, bytes, reqTime, ProxyCluster, upAddr, upStatus, upTime, hexID(tid[:]))
	lr.Body().SetStr(body)
	a := lr.Attributes()
	a.PutStr("log.file.path", "/var/log/nginx/access.json")
	a.PutStr("remote_addr", remote)
	a.PutStr("request_method", method)
	a.PutStr("request_uri", path)
	a.PutInt("status", int64(code))
	a.PutInt("body_bytes_sent", int64(bytes))
	rt, _ := strconv.ParseFloat(strconv.FormatFloat(reqTime, 'f', 3, 64), 64) // as printed
	a.PutDouble("request_time", rt)
	a.PutStr("upstream", ProxyCluster)
	a.PutStr("upstream_addr", upAddr)
	a.PutStr("upstream_status", upStatus)
	a.PutStr("upstream_response_time", upTime)
}

// codeIndex maps a status code to the proxy's response counters.
func codeIndex(code int) int {
	switch code {
	case 200:
		return 0
	case 429:
		return 1
	case 502:
		return 2
	case 503:
		return 3
	default:
		return 4 // 500
	}
}

var codeNames = [...]string{"200", "429", "502", "503", "500"}

// requests generates this step's edge traffic.
func (g *generator) requests() {
	n := g.poisson(g.edgeRate * g.p.Step.Seconds())
	for i := 0; i < n; i++ {
		u, route := g.rng.Float64(), 0
		for acc := 0.0; route < len(routeWeights)-1; route++ {
			acc += routeWeights[route]
			if u < acc {
				break
			}
		}
		g.request(g.within(), route)
	}
}
