package graph

import (
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/entity"
)

// The spans below carry the attributes real instrumentation writes, from
// the module sources: otelhttp v0.72.0 (semconv v1.43: http.request.method,
// url.full, server.address, server.port only when not 80/443,
// http.response.status_code), otelgrpc v0.72.0 (rpc.system.name=grpc,
// rpc.method "pkg.Service/Method", server.address and server.port from the
// dial target or the peer's IP address; with
// OTEL_SEMCONV_STABILITY_OPT_IN=rpc/dup also rpc.system, rpc.service and a
// bare rpc.method), otelsql v0.41-v0.44 (db.system or db.system.name as the
// user passes them to WithAttributes, db.statement or db.query.text, no
// server address unless AttributesFromDSN is added), otelpgx v0.13
// (db.system.name, server.address, server.port, db.namespace,
// db.query.text), and the older conventions' names from the
// go.opentelemetry.io/otel/semconv v1.7.0-v1.24.0 packages.

func semconvSettings() *Settings {
	s := settings()
	s.Identity = DefaultIdentity()
	return s
}

// call is one span of a test trace; every span has its own resource.
type call struct {
	res        map[string]any // resource attributes; a string is service.name
	svc        string
	kind       ptrace.SpanKind
	trace      byte
	id, parent byte
	dur        int
	attrs      map[string]any
}

func callTraces(calls ...call) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, c := range calls {
		rs := td.ResourceSpans().AppendEmpty()
		if c.res != nil {
			_ = rs.Resource().Attributes().FromRaw(c.res)
		} else {
			rs.Resource().Attributes().PutStr("service.name", c.svc)
		}
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		tr := c.trace
		if tr == 0 {
			tr = 1
		}
		sp.SetTraceID(pcommon.TraceID{tr, 1})
		sp.SetSpanID(pcommon.SpanID{c.id})
		if c.parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{c.parent})
		}
		sp.SetKind(c.kind)
		dur := c.dur
		if dur == 0 {
			dur = 10
		}
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(dur) * time.Millisecond)))
		_ = sp.Attributes().FromRaw(c.attrs)
	}
	return td
}

// runBatches consumes each batch one second after the previous one and
// returns the snapshot after every pending span expired.
func runBatches(t *testing.T, batches ...[]call) *entity.Snapshot {
	t.Helper()
	g := New(semconvSettings(), nil)
	for i, b := range batches {
		g.ConsumeTraces(callTraces(b...), t0.Add(time.Duration(i)*time.Second))
	}
	return g.Tick(t0.Add(time.Minute))
}

func entityIDs(s *entity.Snapshot) []string {
	out := []string{}
	for _, e := range s.Entities {
		out = append(out, e.ID)
	}
	sort.Strings(out)
	return out
}

func sortedEdges(s *entity.Snapshot) []string {
	out := edgeKeys(s)
	if out == nil {
		out = []string{}
	}
	sort.Strings(out)
	return out
}

var (
	client   = ptrace.SpanKindClient
	serverK  = ptrace.SpanKindServer
	producer = ptrace.SpanKindProducer
	consumer = ptrace.SpanKindConsumer
)

// TestSemconvVariantsSameEntities: one call written in each convention (and
// by each library) gives the same entities, the same edges and the same
// edge type.
func TestSemconvVariantsSameEntities(t *testing.T) {
	type variant struct {
		name  string
		calls []call
	}
	httpServer := func(attrs map[string]any) call {
		return call{svc: "cart", kind: serverK, id: 3, parent: 2, attrs: attrs}
	}
	for _, tc := range []struct {
		name     string
		variants []variant
		entities []string
		edges    []string
	}{
		{
			name: "HTTP call to an instrumented server",
			variants: []variant{
				{"otelhttp v0.72 (semconv 1.43)", []call{
					{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.request.method": "POST", "url.full": "http://cart:8080/items", "server.address": "cart", "server.port": 8080, "http.response.status_code": 200}},
					httpServer(map[string]any{"http.request.method": "POST", "url.path": "/items", "http.route": "/items", "server.address": "cart", "server.port": 8080, "http.response.status_code": 200}),
				}},
				{"semconv 1.20", []call{
					{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.method": "POST", "http.url": "http://cart:8080/items", "net.peer.name": "cart", "net.peer.port": 8080, "http.status_code": 200}},
					httpServer(map[string]any{"http.method": "POST", "http.target": "/items", "http.route": "/items", "net.host.name": "cart", "net.host.port": 8080, "http.status_code": 200}),
				}},
				{"semconv 1.7", []call{
					{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.method": "POST", "http.url": "http://cart:8080/items", "http.status_code": 200}},
					httpServer(map[string]any{"http.method": "POST", "http.target": "/items", "http.host": "cart:8080", "http.status_code": 200}),
				}},
			},
			entities: []string{"service:/cart", "service:/frontend"},
			edges:    []string{"service:/frontend->service:/cart#http"},
		},
		{
			name: "HTTP call to an untraced external API",
			variants: []variant{
				{"otelhttp v0.72: no server.port for 443", []call{{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.request.method": "GET", "url.full": "https://api.weather.example/v1/now", "server.address": "api.weather.example", "http.response.status_code": 200}}}},
				{"server.port 443 written (required by the spec)", []call{{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.request.method": "GET", "url.full": "https://api.weather.example/v1/now", "server.address": "api.weather.example", "server.port": 443}}}},
				{"semconv 1.20", []call{{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.method": "GET", "http.url": "https://api.weather.example/v1/now", "net.peer.name": "api.weather.example", "http.status_code": 200}}}},
				{"semconv 1.7: only http.url", []call{{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.method": "GET", "http.url": "https://user:secret@api.weather.example:443/v1/now?q=1"}}}},
				{"url.full only", []call{{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.request.method": "GET", "url.full": "https://api.weather.example/v1/now"}}}},
			},
			entities: []string{"service:/api.weather.example", "service:/frontend"},
			edges:    []string{"service:/frontend->service:/api.weather.example#http"},
		},
		{
			name: "HTTP call to an untraced service on a non-default port",
			variants: []variant{
				{"server.address and server.port", []call{{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.request.method": "GET", "url.full": "http://legacy:8080/x", "server.address": "legacy", "server.port": 8080}}}},
				{"net.peer.name and net.peer.port", []call{{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.method": "GET", "http.url": "http://legacy:8080/x", "net.peer.name": "legacy", "net.peer.port": "8080"}}}},
				{"URL only", []call{{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.method": "GET", "http.url": "http://legacy:8080/x"}}}},
				{"logical host wins over the socket address", []call{{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.method": "GET", "http.url": "http://legacy:8080/x", "net.sock.peer.addr": "10.1.1.1", "net.sock.peer.port": 8080}}}},
			},
			entities: []string{"service:/frontend", "service:/legacy:8080"},
			edges:    []string{"service:/frontend->service:/legacy:8080#http"},
		},
		{
			name: "gRPC call to an instrumented server",
			variants: []variant{
				{"otelgrpc v0.72", []call{
					{svc: "orders", kind: client, id: 2, attrs: map[string]any{"rpc.system.name": "grpc", "rpc.method": "shop.Inventory/Reserve", "server.address": "127.0.0.1", "server.port": 50051, "rpc.response.status_code": "OK"}},
					{svc: "inventory", kind: serverK, id: 3, parent: 2, attrs: map[string]any{"rpc.system.name": "grpc", "rpc.method": "shop.Inventory/Reserve", "server.address": "127.0.0.1", "server.port": 50051}},
				}},
				{"otelgrpc with OTEL_SEMCONV_STABILITY_OPT_IN=rpc/dup", []call{
					{svc: "orders", kind: client, id: 2, attrs: map[string]any{"rpc.system": "grpc", "rpc.service": "shop.Inventory", "rpc.system.name": "grpc", "rpc.method": "shop.Inventory/Reserve", "server.address": "inventory", "server.port": 50051}},
					{svc: "inventory", kind: serverK, id: 3, parent: 2, attrs: map[string]any{"rpc.system": "grpc", "rpc.service": "shop.Inventory", "rpc.system.name": "grpc", "rpc.method": "shop.Inventory/Reserve"}},
				}},
				{"semconv 1.20", []call{
					{svc: "orders", kind: client, id: 2, attrs: map[string]any{"rpc.system": "grpc", "rpc.service": "shop.Inventory", "rpc.method": "Reserve", "net.peer.name": "inventory", "net.peer.port": 50051, "rpc.grpc.status_code": 0}},
					{svc: "inventory", kind: serverK, id: 3, parent: 2, attrs: map[string]any{"rpc.system": "grpc", "rpc.service": "shop.Inventory", "rpc.method": "Reserve", "net.sock.peer.addr": "10.0.0.3"}},
				}},
			},
			entities: []string{"service:/inventory", "service:/orders"},
			edges:    []string{"service:/orders->service:/inventory#grpc"},
		},
		{
			name: "gRPC call to an untraced server",
			variants: []variant{
				{"otelgrpc v0.72 naming the peer by its IP", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"rpc.system.name": "grpc", "rpc.method": "shop.Pricing/Quote", "server.address": "10.0.3.4", "server.port": 50051}}}},
				{"otelgrpc v0.72 naming the dial target", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"rpc.system.name": "grpc", "rpc.method": "shop.Pricing/Quote", "server.address": "pricing", "server.port": 50051}}}},
				{"semconv 1.20 with a socket address", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"rpc.system": "grpc", "rpc.service": "shop.Pricing", "rpc.method": "Quote", "net.sock.peer.addr": "10.0.3.5", "net.sock.peer.port": 50051}}}},
				{"semconv 1.7 with net.peer.ip", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"rpc.system": "grpc", "rpc.service": "shop.Pricing", "rpc.method": "Quote", "net.peer.ip": "10.0.3.6", "net.peer.port": 50051}}}},
			},
			entities: []string{"service:/orders", "service:/shop.Pricing"},
			edges:    []string{"service:/orders->service:/shop.Pricing#grpc"},
		},
		{
			name: "PostgreSQL query",
			variants: []variant{
				{"otelpgx v0.13", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"db.system.name": "postgresql", "server.address": "pg", "server.port": 5432, "db.namespace": "orders", "db.query.text": "SELECT 1", "db.operation.name": "SELECT"}}}},
				{"semconv 1.20", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"db.system": "postgresql", "net.peer.name": "pg", "net.peer.port": 5432, "db.name": "orders", "db.statement": "SELECT 1", "db.operation": "SELECT"}}}},
				{"default port left out (server.port is conditional)", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"db.system.name": "postgresql", "server.address": "pg", "db.namespace": "orders", "db.query.text": "SELECT 1"}}}},
				{"otelsql v0.41 with AttributesFromDSN, legacy attributes", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"db.system": "postgresql", "server.address": "pg", "server.port": 5432, "db.name": "orders", "db.statement": "SELECT 1"}}}},
			},
			entities: []string{"database:postgresql/pg:5432/orders", "service:/orders"},
			edges:    []string{"service:/orders->database:postgresql/pg:5432/orders#db"},
		},
		{
			name: "database reached by IP only",
			variants: []variant{
				{"semconv 1.20 socket attributes", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"db.system": "mysql", "net.sock.peer.addr": "10.0.0.9", "net.sock.peer.port": 3306, "db.name": "shop"}}}},
				{"semconv 1.43 network.peer.*", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"db.system.name": "mysql", "network.peer.address": "10.0.0.9", "network.peer.port": 3306, "db.namespace": "shop"}}}},
			},
			entities: []string{"database:mysql/10.0.0.9:3306/shop", "service:/orders"},
			edges:    []string{"service:/orders->database:mysql/10.0.0.9:3306/shop#db"},
		},
		{
			name: "SQL Server renamed in semconv 1.30",
			variants: []variant{
				{"db.system mssql", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"db.system": "mssql", "net.peer.name": "sql", "db.name": "shop"}}}},
				{"db.system.name microsoft.sql_server", []call{{svc: "orders", kind: client, id: 2, attrs: map[string]any{"db.system.name": "microsoft.sql_server", "server.address": "sql", "server.port": 1433, "db.namespace": "shop"}}}},
			},
			entities: []string{"database:microsoft.sql_server/sql:1433/shop", "service:/orders"},
			edges:    []string{"service:/orders->database:microsoft.sql_server/sql:1433/shop#db"},
		},
		{
			name: "Redis command",
			variants: []variant{
				{"semconv 1.20", []call{{svc: "cart", kind: client, id: 2, attrs: map[string]any{"db.system": "redis", "net.peer.name": "cache", "net.peer.port": 6379, "db.redis.database_index": 0, "db.statement": "get k"}}}},
				{"semconv 1.43", []call{{svc: "cart", kind: client, id: 2, attrs: map[string]any{"db.system.name": "redis", "server.address": "cache", "server.port": 6379, "db.namespace": "0", "db.query.text": "get k"}}}},
			},
			entities: []string{"database:redis/cache:6379/0", "service:/cart"},
			edges:    []string{"service:/cart->database:redis/cache:6379/0#db"},
		},
		{
			name: "Kafka message produced and consumed",
			variants: []variant{
				{"semconv 1.43", []call{
					{svc: "shop", kind: producer, id: 2, attrs: map[string]any{"messaging.system": "kafka", "messaging.destination.name": "orders", "messaging.operation.type": "send"}},
					{svc: "billing", kind: consumer, id: 3, parent: 2, attrs: map[string]any{"messaging.system": "kafka", "messaging.destination.name": "orders", "messaging.consumer.group.name": "billing", "messaging.operation.type": "process"}},
				}},
				{"semconv 1.24", []call{
					{svc: "shop", kind: producer, id: 2, attrs: map[string]any{"messaging.system": "kafka", "messaging.destination.name": "orders", "messaging.operation": "publish"}},
					{svc: "billing", kind: consumer, id: 3, parent: 2, attrs: map[string]any{"messaging.system": "kafka", "messaging.destination.name": "orders", "messaging.kafka.consumer.group": "billing", "messaging.operation": "process"}},
				}},
				{"semconv 1.17-1.20: consumers name the source", []call{
					{svc: "shop", kind: producer, id: 2, attrs: map[string]any{"messaging.system": "kafka", "messaging.destination.name": "orders", "messaging.operation": "publish"}},
					{svc: "billing", kind: consumer, id: 3, parent: 2, attrs: map[string]any{"messaging.system": "kafka", "messaging.source.name": "orders", "messaging.kafka.consumer.group": "billing", "messaging.operation": "process"}},
				}},
				{"semconv 1.7-1.12", []call{
					{svc: "shop", kind: producer, id: 2, attrs: map[string]any{"messaging.system": "kafka", "messaging.destination": "orders", "messaging.destination_kind": "topic"}},
					{svc: "billing", kind: consumer, id: 3, parent: 2, attrs: map[string]any{"messaging.system": "kafka", "messaging.destination": "orders", "messaging.destination_kind": "topic", "messaging.kafka.consumer_group": "billing", "messaging.operation": "process"}},
				}},
			},
			entities: []string{"service:/billing", "service:/shop", "stream:orders/billing"},
			edges:    []string{"service:/shop->stream:orders/billing#messaging", "stream:orders/billing->service:/billing#messaging"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range tc.variants {
				for _, order := range []string{"client first", "server first"} {
					calls := v.calls
					if order == "server first" {
						calls = append([]call{}, calls...)
						sort.SliceStable(calls, func(i, j int) bool { return calls[i].parent != 0 && calls[j].parent == 0 })
					}
					batches := make([][]call, len(calls))
					for i, c := range calls {
						batches[i] = []call{c}
					}
					snap := runBatches(t, batches...)
					assert.Equal(t, tc.entities, entityIDs(snap), "%s, %s: entities", v.name, order)
					assert.Equal(t, tc.edges, sortedEdges(snap), "%s, %s: edges", v.name, order)
				}
			}
		})
	}
}

// TestOneVirtualNodePerDependency: callers of one untraced dependency agree
// on its node whatever convention each writes, and peer.service takes
// precedence consistently: a server address that one caller names by
// peer.service is that peer.service for callers that do not set it.
func TestOneVirtualNodePerDependency(t *testing.T) {
	newHTTP := func(svc string, tr byte, extra map[string]any) call {
		a := map[string]any{"http.request.method": "GET", "url.full": "http://pay.internal:8080/charge", "server.address": "pay.internal", "server.port": 8080}
		for k, v := range extra {
			a[k] = v
		}
		return call{svc: svc, kind: client, trace: tr, id: 2, attrs: a}
	}
	oldHTTP := func(svc string, tr byte) call {
		return call{svc: svc, kind: client, trace: tr, id: 2, attrs: map[string]any{"http.method": "GET", "http.url": "http://pay.internal:8080/charge", "net.peer.name": "pay.internal", "net.peer.port": 8080}}
	}
	for _, tc := range []struct {
		name     string
		batches  [][]call
		entities []string
		edges    []string
	}{
		{
			name:     "two callers, old and new conventions, no peer.service",
			batches:  [][]call{{newHTTP("checkout", 1, nil)}, {oldHTTP("refunds", 2)}},
			entities: []string{"service:/checkout", "service:/pay.internal:8080", "service:/refunds"},
			edges:    []string{"service:/checkout->service:/pay.internal:8080#http", "service:/refunds->service:/pay.internal:8080#http"},
		},
		{
			name:     "one caller sets peer.service, the other not",
			batches:  [][]call{{newHTTP("checkout", 1, map[string]any{"peer.service": "payments"})}, {oldHTTP("refunds", 2)}},
			entities: []string{"service:/checkout", "service:/payments", "service:/refunds"},
			edges:    []string{"service:/checkout->service:/payments#http", "service:/refunds->service:/payments#http"},
		},
		{
			name:     "service.peer.name (semconv 1.43) like peer.service",
			batches:  [][]call{{newHTTP("checkout", 1, map[string]any{"service.peer.name": "payments"})}, {newHTTP("refunds", 2, nil)}},
			entities: []string{"service:/checkout", "service:/payments", "service:/refunds"},
			edges:    []string{"service:/checkout->service:/payments#http", "service:/refunds->service:/payments#http"},
		},
		{
			name: "the gRPC rpc service and peer.service",
			batches: [][]call{
				{{svc: "orders", kind: client, trace: 1, id: 2, attrs: map[string]any{"rpc.system": "grpc", "rpc.service": "shop.Pricing", "rpc.method": "Quote", "peer.service": "pricing"}}},
				{{svc: "cart", kind: client, trace: 2, id: 2, attrs: map[string]any{"rpc.system.name": "grpc", "rpc.method": "shop.Pricing/Quote", "server.address": "10.0.3.4", "server.port": 50051}}},
			},
			entities: []string{"service:/cart", "service:/orders", "service:/pricing"},
			edges:    []string{"service:/cart->service:/pricing#grpc", "service:/orders->service:/pricing#grpc"},
		},
		{
			name: "gRPC health checks are named by their server, not as one node",
			batches: [][]call{
				{{svc: "orders", kind: client, trace: 1, id: 2, attrs: map[string]any{"rpc.system.name": "grpc", "rpc.method": "grpc.health.v1.Health/Check", "server.address": "pricing", "server.port": 50051}}},
				{{svc: "orders", kind: client, trace: 2, id: 2, attrs: map[string]any{"rpc.system.name": "grpc", "rpc.method": "grpc.health.v1.Health/Check", "server.address": "tax", "server.port": 50051}}},
			},
			entities: []string{"service:/orders", "service:/pricing:50051", "service:/tax:50051"},
			edges:    []string{"service:/orders->service:/pricing:50051#grpc", "service:/orders->service:/tax:50051#grpc"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := runBatches(t, tc.batches...)
			assert.Equal(t, tc.entities, entityIDs(snap))
			assert.Equal(t, tc.edges, sortedEdges(snap))
			for _, id := range tc.entities {
				e, _ := snap.Entity(id)
				if e.Type == entity.Service && !isCaller(id, tc.batches) {
					assert.True(t, e.Virtual, "%s is a virtual node", id)
				}
			}
		})
	}
}

func isCaller(id string, batches [][]call) bool {
	for _, b := range batches {
		for _, c := range b {
			if "service:/"+c.svc == id {
				return true
			}
		}
	}
	return false
}

// TestPeerServiceLearnedLater: a caller without peer.service whose calls
// expire before any caller named the server's peer.service gets the
// address node; once learned, its later calls join the peer.service node
// and the address node ages out.
func TestPeerServiceLearnedLater(t *testing.T) {
	g := New(semconvSettings(), nil)
	plain := func(tr byte) ptrace.Traces {
		return callTraces(call{svc: "refunds", kind: client, trace: tr, id: 2, attrs: map[string]any{"http.method": "GET", "net.peer.name": "pay.internal", "net.peer.port": 8080}})
	}
	g.ConsumeTraces(plain(1), t0)
	snap := g.Tick(t0.Add(20 * time.Second))
	assert.Equal(t, []string{"service:/refunds->service:/pay.internal:8080#http"}, sortedEdges(snap))
	g.ConsumeTraces(callTraces(call{svc: "checkout", kind: client, trace: 2, id: 2, attrs: map[string]any{"http.request.method": "GET", "server.address": "pay.internal", "server.port": 8080, "peer.service": "payments"}}), t0.Add(20*time.Second))
	g.Tick(t0.Add(40 * time.Second))
	g.ConsumeTraces(plain(3), t0.Add(40*time.Second))
	snap = g.Tick(t0.Add(60 * time.Second))
	assert.Contains(t, sortedEdges(snap), "service:/refunds->service:/payments#http")
	snap = g.Tick(t0.Add(20*time.Second + settings().Limits.EntityTTL))
	assert.Equal(t, []string{"service:/checkout->service:/payments#http", "service:/refunds->service:/payments#http"}, sortedEdges(snap), "the address node aged out")
	_, ok := snap.Entity("service:/pay.internal:8080")
	assert.False(t, ok, "the address node aged out")
}

// TestOnBehalfOfDependency: spans emitted on behalf of a dependency under a
// resource named after it make the dependency one node, whose caller is
// the service of the span's parent.
func TestOnBehalfOfDependency(t *testing.T) {
	orders := call{svc: "orders", kind: serverK, id: 1, dur: 50, attrs: map[string]any{"http.request.method": "GET", "http.route": "/orders"}}
	for _, tc := range []struct {
		name     string
		delegate call
		entities []string
		edges    []string
	}{
		{
			name:     `resource service.name "postgres", db.system.name postgresql`,
			delegate: call{svc: "postgres", kind: client, id: 2, parent: 1, attrs: map[string]any{"db.system.name": "postgresql", "server.address": "pg", "server.port": 5432, "db.namespace": "orders", "db.query.text": "SELECT 1"}},
			entities: []string{"database:postgresql/pg:5432/orders", "service:/orders"},
			edges:    []string{"service:/orders->database:postgresql/pg:5432/orders#db"},
		},
		{
			name:     `resource service.name "redis", old conventions`,
			delegate: call{svc: "redis", kind: client, id: 2, parent: 1, attrs: map[string]any{"db.system": "redis", "net.peer.name": "cache", "net.peer.port": 6379, "db.statement": "get k"}},
			entities: []string{"database:redis/cache:6379/", "service:/orders"},
			edges:    []string{"service:/orders->database:redis/cache:6379/#db"},
		},
		{
			name:     `resource named after the host's first label ("cache" for cache.shop.svc)`,
			delegate: call{svc: "cache", kind: client, id: 2, parent: 1, attrs: map[string]any{"db.system.name": "redis", "server.address": "cache.shop.svc", "server.port": 6379}},
			entities: []string{"database:redis/cache.shop.svc:6379/", "service:/orders"},
			edges:    []string{"service:/orders->database:redis/cache.shop.svc:6379/#db"},
		},
		{
			name:     `resource named after an external API ("stripe" for api.stripe.com)`,
			delegate: call{svc: "stripe", kind: client, id: 2, parent: 1, attrs: map[string]any{"http.request.method": "POST", "url.full": "https://api.stripe.com/v1/charges", "server.address": "api.stripe.com"}},
			entities: []string{"service:/orders", "service:/stripe"},
			edges:    []string{"service:/orders->service:/stripe#http"},
		},
		{
			name:     `resource named by the span's peer.service`,
			delegate: call{svc: "Payments", kind: client, id: 2, parent: 1, attrs: map[string]any{"http.request.method": "POST", "server.address": "10.2.0.1", "server.port": 8443, "peer.service": "payments"}},
			entities: []string{"service:/orders", "service:/payments"},
			edges:    []string{"service:/orders->service:/payments#http"},
		},
		{
			name:     `resource named after the messaging system`,
			delegate: call{svc: "kafka", kind: producer, id: 2, parent: 1, attrs: map[string]any{"messaging.system": "kafka", "messaging.destination.name": "orders"}},
			entities: []string{"service:/orders", "stream:orders/"},
			edges:    []string{"service:/orders->stream:orders/#messaging"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range []string{"dependency span first", "caller span first, delegate spans seen before", "same batch", "same batch, caller first"} {
				var batches [][]call
				switch order {
				case "dependency span first":
					batches = [][]call{{tc.delegate}, {orders}}
				case "caller span first, delegate spans seen before":
					// An earlier trace's delegate span (no parent) makes
					// the graph keep span owners.
					earlier := tc.delegate
					earlier.trace, earlier.parent = 9, 0
					batches = [][]call{{earlier}, {orders}, {tc.delegate}}
				case "same batch":
					batches = [][]call{{tc.delegate, orders}}
				case "same batch, caller first":
					batches = [][]call{{orders, tc.delegate}}
				}
				snap := runBatches(t, batches...)
				assert.Equal(t, tc.entities, entityIDs(snap), order)
				assert.Equal(t, tc.edges, sortedEdges(snap), order)
			}
		})
	}
}

// TestOnBehalfNeedsNoServer: a real service whose name happens to match
// the host it calls (service "api" calling api.github.com) serves requests
// itself, so its client spans are its own calls.
func TestOnBehalfNeedsNoServer(t *testing.T) {
	snap := runBatches(t, []call{
		{svc: "api", kind: client, id: 2, parent: 1, attrs: map[string]any{"http.request.method": "GET", "url.full": "https://api.github.com/repos", "server.address": "api.github.com"}},
		{svc: "api", kind: serverK, id: 1, dur: 50, attrs: map[string]any{"http.request.method": "GET"}},
	})
	assert.Equal(t, []string{"service:/api", "service:/api.github.com"}, entityIDs(snap))
	assert.Equal(t, []string{"service:/api->service:/api.github.com#http"}, sortedEdges(snap))
	a, _ := snap.Entity("service:/api")
	assert.False(t, a.Virtual)

	// A job named after the API it polls: its own INTERNAL span makes it
	// an application.
	snap = runBatches(t, []call{
		{svc: "weather", kind: client, id: 2, parent: 1, attrs: map[string]any{"http.request.method": "GET", "url.full": "https://api.weather.example/v1/now", "server.address": "api.weather.example"}},
		{svc: "weather", kind: ptrace.SpanKindInternal, id: 1, dur: 50},
	})
	assert.Equal(t, []string{"service:/api.weather.example", "service:/weather"}, entityIDs(snap))
	assert.Equal(t, []string{"service:/weather->service:/api.weather.example#http"}, sortedEdges(snap))

	// Later batches of the same service carry only client spans.
	g := New(semconvSettings(), nil)
	g.ConsumeTraces(callTraces(call{svc: "api", kind: serverK, id: 1, dur: 50}), t0)
	g.ConsumeTraces(callTraces(call{svc: "api", kind: client, trace: 2, id: 2, parent: 1, attrs: map[string]any{"http.request.method": "GET", "server.address": "api.github.com"}}), t0.Add(time.Second))
	snap = g.Tick(t0.Add(time.Minute))
	assert.Equal(t, []string{"service:/api->service:/api.github.com#http"}, sortedEdges(snap))
}

// TestOnBehalfCriticalPath: the time of a span on behalf of a database is
// on its caller's critical path like the caller's own database call.
func TestOnBehalfCriticalPath(t *testing.T) {
	g := New(semconvSettings(), nil)
	g.ConsumeTraces(callTraces(
		call{svc: "postgres", kind: client, id: 2, parent: 1, dur: 40, attrs: map[string]any{"db.system.name": "postgresql", "server.address": "pg"}},
		call{svc: "orders", kind: serverK, id: 1, dur: 50},
	), t0)
	snap := g.Tick(t0.Add(time.Minute))
	require.Equal(t, []string{"service:/orders->database:postgresql/pg:5432/#db"}, sortedEdges(snap))
	orders, _ := snap.Entity("service:/orders")
	assert.InDelta(t, 1.0, orders.Features["critical_path.self_share"], 1e-9, "a database call's time is its caller's (as without the delegate resource)")
	assert.InDelta(t, 0.8, snap.Edges[0].Features["latency.share"], 1e-9)
}

// TestNoSelfEdge: a service that calls itself (through its own address,
// paired or not) draws no edge to itself.
func TestNoSelfEdge(t *testing.T) {
	for name, batches := range map[string][][]call{
		"paired": {{
			{svc: "cart", kind: serverK, id: 1},
			{svc: "cart", kind: client, id: 2, parent: 1, attrs: map[string]any{"http.request.method": "GET", "server.address": "cart"}},
			{svc: "cart", kind: serverK, id: 3, parent: 2},
		}},
		"unpaired, by peer.service": {{
			{svc: "cart", kind: serverK, id: 1},
			{svc: "cart", kind: client, id: 2, parent: 1, attrs: map[string]any{"http.request.method": "GET", "server.address": "10.0.0.1", "peer.service": "cart"}},
		}},
		"paired, the first batch holding only the client span": {
			{{svc: "cart", kind: client, id: 2, parent: 1, attrs: map[string]any{"http.request.method": "GET", "server.address": "cart", "server.port": 8080}}},
			{{svc: "cart", kind: serverK, id: 1}, {svc: "cart", kind: serverK, id: 3, parent: 2}},
		},
		"unpaired, by address, only client spans": {{
			{svc: "cart", kind: client, id: 2, attrs: map[string]any{"http.request.method": "GET", "server.address": "cart"}},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			snap := runBatches(t, batches...)
			assert.Equal(t, []string{}, sortedEdges(snap))
			assert.Equal(t, []string{"service:/cart"}, entityIDs(snap), "one node")
		})
	}
}

// TestServerSpanPairsIntoOneEdge: a client span that names its server by
// peer.service and a Kubernetes host pairs with the server's span into one
// edge, with no virtual node beside the real service.
func TestServerSpanPairsIntoOneEdge(t *testing.T) {
	batches := [][]call{
		{{svc: "frontend", kind: client, id: 2, attrs: map[string]any{"http.request.method": "GET", "url.full": "http://cart.shop.svc.cluster.local:8080/", "server.address": "cart.shop.svc.cluster.local", "server.port": 8080, "peer.service": "cart-api"}}},
		{{svc: "cart", kind: serverK, id: 3, parent: 2, attrs: map[string]any{"http.request.method": "GET"}}},
		{{svc: "frontend", kind: client, trace: 2, id: 2, attrs: map[string]any{"http.method": "GET", "http.url": "http://cart.shop.svc.cluster.local:8080/"}}},
		{{svc: "cart", kind: serverK, trace: 2, id: 3, parent: 2, attrs: map[string]any{"http.method": "GET"}}},
	}
	rate := func(batches [][]call) (float64, *entity.Snapshot) {
		g := New(semconvSettings(), nil)
		for i, b := range batches {
			g.ConsumeTraces(callTraces(b...), t0.Add(time.Duration(i)*time.Second))
		}
		snap := g.Tick(t0.Add(30 * time.Second))
		require.Equal(t, []string{"service:/frontend->service:/cart#http"}, sortedEdges(snap))
		return snap.Edges[0].Features["request.rate"], snap
	}
	two, snap := rate(batches)
	assert.Equal(t, []string{"service:/cart", "service:/frontend"}, entityIDs(snap), "no virtual node for peer.service or the host")
	one, _ := rate(batches[:2])
	assert.Greater(t, one, 0.0)
	assert.InDelta(t, 2*one, two, 1e-9, "both calls on the one edge")
}

// TestDefaultIdentityCoversConventions: the default lists name every
// attribute the tests above rely on, current name first.
func TestDefaultIdentityCoversConventions(t *testing.T) {
	id := DefaultIdentity()
	for _, tc := range []struct {
		key  string
		list []string
		want []string
	}{
		{"http_method", id.HTTPMethod, []string{"http.request.method", "http.method"}},
		{"server_address", id.ServerAddress, []string{"server.address", "net.peer.name"}},
		{"server_port", id.ServerPort, []string{"server.port", "net.peer.port"}},
		{"url", id.URL, []string{"url.full", "http.url"}},
		{"peer_address", id.PeerAddress, []string{"network.peer.address", "net.sock.peer.addr", "net.peer.ip"}},
		{"peer_port", id.PeerPort, []string{"network.peer.port", "net.sock.peer.port", "net.peer.port"}},
		{"db_system", id.DBSystem, []string{"db.system.name", "db.system"}},
		{"db_namespace", id.DBNamespace, []string{"db.namespace", "db.name"}},
		{"db_query", id.DBQuery, []string{"db.query.text", "db.statement"}},
		{"peer_service", id.PeerService, []string{"peer.service", "service.peer.name"}},
		{"rpc_system", id.RPCSystem, []string{"rpc.system.name", "rpc.system"}},
		{"rpc_service", id.RPCService, []string{"rpc.service"}},
		{"rpc_method", id.RPCMethod, []string{"rpc.method"}},
		{"stream_topic", id.StreamTopic, []string{"messaging.destination.name", "messaging.destination", "messaging.source.name"}},
		{"stream_group", id.StreamGroup, []string{"messaging.consumer.group.name", "messaging.kafka.consumer.group", "messaging.kafka.consumer_group"}},
		{"http_status", id.HTTPStatus, []string{"http.response.status_code", "http.status_code"}},
	} {
		require.GreaterOrEqual(t, len(tc.list), len(tc.want), tc.key)
		assert.Equal(t, tc.want, tc.list[:len(tc.want)], "identity::%s", tc.key)
	}
	assert.Len(t, id.ServerPort, len(id.ServerAddress), "server_port pairs with server_address by position")
	assert.Len(t, id.PeerPort, len(id.PeerAddress), "peer_port pairs with peer_address by position")
}

func TestURLServer(t *testing.T) {
	for u, want := range map[string]server{
		"https://api.example/v1":          {host: "api.example", port: -1},
		"http://u:p@host:8080/x?y#z":      {host: "host", port: 8080},
		"http://[::1]:9000/":              {host: "::1", port: 9000},
		"http://[fe80::1]/":               {host: "fe80::1", port: -1},
		"http://host:http/":               {host: "host", port: -1, portStr: "http"},
		"/relative/path":                  {port: -1},
		"https://api.example?q=http://x/": {host: "api.example", port: -1},
	} {
		assert.Equal(t, want, urlServer(u), u)
	}
}

func TestHasPort(t *testing.T) {
	for hp, want := range map[string]bool{"pg:5432": true, "pg": false, "[::1]:5432": true, "::1": false, "[::1]": false, "pg:": false, "pg:x": false} {
		assert.Equal(t, want, hasPort(hp), hp)
	}
}

// TestOnBehalfCallerBeforeAnyDelegate: the owners of spans are kept only
// while delegate spans are about (twice the pending TTL after the last
// one), so a caller's span consumed in an earlier batch, before any
// delegate span, is not found: the dependency is still one node, without
// its caller edge for those first calls.
func TestOnBehalfCallerBeforeAnyDelegate(t *testing.T) {
	snap := runBatches(t,
		[]call{{svc: "orders", kind: serverK, id: 1, dur: 50}},
		[]call{{svc: "postgres", kind: client, id: 2, parent: 1, attrs: map[string]any{"db.system.name": "postgresql", "server.address": "pg"}}},
	)
	assert.Equal(t, []string{"database:postgresql/pg:5432/", "service:/orders"}, entityIDs(snap))
	assert.Equal(t, []string{}, sortedEdges(snap))
}

// TestDelegatesOfOneParent: several calls on behalf of a dependency under
// one caller span all count on the caller's edge.
func TestDelegatesOfOneParent(t *testing.T) {
	db := func(id byte) call {
		return call{svc: "redis", kind: client, id: id, parent: 1, attrs: map[string]any{"db.system.name": "redis", "server.address": "cache"}}
	}
	g := New(semconvSettings(), nil)
	g.ConsumeTraces(callTraces(db(2), db(3), db(4)), t0)
	g.ConsumeTraces(callTraces(call{svc: "cart", kind: serverK, id: 1, dur: 50}), t0.Add(time.Second))
	snap := g.Tick(t0.Add(30 * time.Second))
	require.Equal(t, []string{"service:/cart->database:redis/cache:6379/#db"}, sortedEdges(snap))
	db1, _ := snap.Entity("database:redis/cache:6379/")
	assert.InDelta(t, db1.Features["request.rate"], snap.Edges[0].Features["request.rate"], 1e-9, "every call on the edge")
	assert.Greater(t, snap.Edges[0].Features["request.rate"], 0.0)
	assert.Empty(t, g.delegates.m)
}

// TestDelegateStoresBounded: the delegate spans waiting for their caller
// and the span owners are bounded by limits::max_pending_spans, and what
// they drop is counted.
func TestDelegateStoresBounded(t *testing.T) {
	s := semconvSettings()
	s.Limits.MaxPendingSpans = 10
	c := &countingCounters{}
	g := New(s, c)
	for i := 0; i < 50; i++ {
		g.ConsumeTraces(callTraces(
			call{svc: "postgres", kind: client, trace: byte(i + 1), id: 2, parent: 1, attrs: map[string]any{"db.system.name": "postgresql", "server.address": "pg"}},
			call{svc: "orders", kind: serverK, trace: byte(i + 1), id: 5},
		), t0)
	}
	assert.LessOrEqual(t, len(g.delegates.m), 10)
	assert.LessOrEqual(t, len(g.owners.m), 10)
	assert.Equal(t, int64(40), c.dropped[WhatPendingSpan], "delegate spans beyond the bound")
	assert.Positive(t, c.dropped[WhatSpanOwner], "span owners beyond the bound")
	g.Tick(t0.Add(time.Minute))
	assert.Empty(t, g.delegates.m, "expired")
	assert.Empty(t, g.owners.m, "expired")
}
