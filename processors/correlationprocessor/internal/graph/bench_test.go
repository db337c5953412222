package graph

import (
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// semconvBatch is one batch of traces as real instrumentation writes them,
// half in the current conventions and half in the old ones: per trace an
// otelhttp SERVER span in frontend, its otelhttp CLIENT call to one of 4
// backends, the backend's SERVER span, an otelgrpc CLIENT call to an
// uninstrumented gRPC service, an otelsql query span and an otelhttp CLIENT
// call to an external API (no server counterpart): 6 spans per trace.
func semconvBatch(traces int) ptrace.Traces {
	td := ptrace.NewTraces()
	newRes := func(svc string) ptrace.SpanSlice {
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", svc)
		a.PutStr("service.namespace", "shop")
		a.PutStr("k8s.namespace.name", "shop")
		a.PutStr("k8s.pod.name", svc+"-7d9f8c-x2k4q")
		a.PutStr("telemetry.sdk.language", "go")
		a.PutStr("telemetry.sdk.name", "opentelemetry")
		return rs.ScopeSpans().AppendEmpty().Spans()
	}
	front := newRes("frontend")
	backs := make([]ptrace.SpanSlice, 4)
	for i := range backs {
		backs[i] = newRes("backend-" + strconv.Itoa(i))
	}
	base := time.Unix(1767225600, 0)
	ts := func(ms int) pcommon.Timestamp {
		return pcommon.NewTimestampFromTime(base.Add(time.Duration(ms) * time.Millisecond))
	}
	for i := 0; i < traces; i++ {
		old := i%2 == 1
		tid := pcommon.TraceID{byte(i), byte(i >> 8), 0, 0, 0, 0, 0, 0, 0x9e, byte(i * 7), byte(i * 13), byte(i), 0x5c, 1, 2, 3}
		sid := func(n byte) pcommon.SpanID { return pcommon.SpanID{n, byte(i), byte(i >> 8), 1} }
		b := backs[i%len(backs)]
		backend := "backend-" + strconv.Itoa(i%len(backs))
		add := func(ss ptrace.SpanSlice, id, parent byte, kind ptrace.SpanKind, name string, start, end int, attrs map[string]any) {
			s := ss.AppendEmpty()
			s.SetTraceID(tid)
			s.SetSpanID(sid(id))
			if parent != 0 {
				s.SetParentSpanID(sid(parent))
			}
			s.SetName(name)
			s.SetKind(kind)
			s.SetStartTimestamp(ts(start))
			s.SetEndTimestamp(ts(end))
			_ = s.Attributes().FromRaw(attrs)
		}
		if old {
			add(front, 1, 0, ptrace.SpanKindServer, "GET /api/cart", 0, 60+i%50, map[string]any{
				"http.method": "GET", "http.scheme": "http", "net.host.name": "frontend", "http.target": "/api/cart",
				"http.route": "/api/cart", "http.status_code": 200, "net.sock.peer.addr": "10.0.0.7"})
			add(front, 2, 1, ptrace.SpanKindClient, "HTTP POST", 2, 35+i%50, map[string]any{
				"http.method": "POST", "http.url": "http://" + backend + ":8080/items", "net.peer.name": backend,
				"net.peer.port": 8080, "http.status_code": 200})
			add(b, 3, 2, ptrace.SpanKindServer, "POST /items", 3, 33+i%50, map[string]any{
				"http.method": "POST", "http.route": "/items", "http.status_code": 200, "net.host.name": backend})
			add(front, 4, 1, ptrace.SpanKindClient, "shop.Pricing/Quote", 36, 40, map[string]any{
				"rpc.system": "grpc", "rpc.service": "shop.Pricing", "rpc.method": "Quote",
				"net.sock.peer.addr": "10.0.3.4", "net.sock.peer.port": 50051, "rpc.grpc.status_code": 0})
			add(b, 5, 3, ptrace.SpanKindClient, "sql.conn.query", 5, 25+i%50, map[string]any{
				"db.system": "postgresql", "db.statement": "SELECT * FROM items WHERE id = $1"})
			add(front, 6, 1, ptrace.SpanKindClient, "HTTP GET", 41, 58, map[string]any{
				"http.method": "GET", "http.url": "https://api.weather.example/v1/now", "net.peer.name": "api.weather.example",
				"http.status_code": 200})
			continue
		}
		add(front, 1, 0, ptrace.SpanKindServer, "GET /api/cart", 0, 60+i%50, map[string]any{
			"http.request.method": "GET", "url.scheme": "http", "server.address": "frontend", "url.path": "/api/cart",
			"http.route": "/api/cart", "http.response.status_code": 200, "network.peer.address": "10.0.0.7"})
		add(front, 2, 1, ptrace.SpanKindClient, "POST", 2, 35+i%50, map[string]any{
			"http.request.method": "POST", "url.full": "http://" + backend + ":8080/items", "server.address": backend,
			"server.port": 8080, "http.response.status_code": 200, "network.protocol.version": "1.1"})
		add(b, 3, 2, ptrace.SpanKindServer, "POST /items", 3, 33+i%50, map[string]any{
			"http.request.method": "POST", "http.route": "/items", "http.response.status_code": 200, "server.address": backend})
		add(front, 4, 1, ptrace.SpanKindClient, "shop.Pricing/Quote", 36, 40, map[string]any{
			"rpc.system.name": "grpc", "rpc.method": "shop.Pricing/Quote", "server.address": "10.0.3.4",
			"server.port": 50051, "rpc.response.status_code": "OK"})
		add(b, 5, 3, ptrace.SpanKindClient, "sql.conn.query", 5, 25+i%50, map[string]any{
			"db.system.name": "postgresql", "db.query.text": "SELECT * FROM items WHERE id = $1"})
		add(front, 6, 1, ptrace.SpanKindClient, "GET", 41, 58, map[string]any{
			"http.request.method": "GET", "url.full": "https://api.weather.example/v1/now", "server.address": "api.weather.example",
			"http.response.status_code": 200})
	}
	return td
}

// BenchmarkConsumeSemconvTraces measures the graph's span path on spans as
// otelhttp, otelgrpc and otelsql write them, old and new conventions alike,
// with the default identity lists.
func BenchmarkConsumeSemconvTraces(b *testing.B) {
	s := settings()
	s.CriticalPath.SampleRatio = 0.05
	s.Limits.MaxPendingSpans = 100000
	s.Limits.MaxEntitiesPerType = 5000
	s.Limits.MaxEdges = 20000
	s.Limits.PendingSpanTTL = 30 * time.Second
	s.Identity = benchIdentity()
	g := New(s, nil)
	td := semconvBatch(200)
	spans := float64(td.SpanCount())
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(100 * time.Millisecond)
		if i%150 == 0 {
			g.Tick(now)
		}
		g.ConsumeTraces(td, now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*spans), "ns/span")
}

func benchIdentity() Identity { return DefaultIdentity() }
