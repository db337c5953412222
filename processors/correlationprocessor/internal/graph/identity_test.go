package graph

import (
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/entity"
)

// defaultSettings are the test settings with the processor's default
// identity lists.
func defaultSettings() *Settings {
	s := settings()
	s.Identity = DefaultIdentity()
	return s
}

// res is a resource's attributes.
type res map[string]any

// oneSpan is a trace of one span of kind kind under resource r.
func oneSpan(r res, kind ptrace.SpanKind, attrs map[string]any) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	_ = rs.Resource().Attributes().FromRaw(r)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{9, 9})
	sp.SetSpanID(pcommon.SpanID{2})
	sp.SetParentSpanID(pcommon.SpanID{1})
	sp.SetKind(kind)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(5 * time.Millisecond)))
	_ = sp.Attributes().FromRaw(attrs)
	return td
}

// gauge is one data point of metric name with attributes attrs under
// resource r.
func gauge(r res, name string, v float64, attrs map[string]any) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	_ = rm.Resource().Attributes().FromRaw(r)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(v)
	_ = dp.Attributes().FromRaw(attrs)
	return md
}

type entityView struct {
	ID, Name string
	Virtual  bool
}

func views(s *entity.Snapshot) []entityView {
	var out []entityView
	for _, e := range s.Entities {
		out = append(out, entityView{e.ID, e.Name, e.Virtual})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TestEntityIdentityFromSpans: the entities (id, name, virtual) and edges
// one span of each kind and type makes, after the pending TTL.
func TestEntityIdentityFromSpans(t *testing.T) {
	shop := res{"service.name": "checkout", "service.namespace": "shop", "k8s.namespace.name": "shop", "k8s.pod.name": "checkout-7f9c"}
	checkout := entityView{"service:shop/checkout", "checkout", false}
	for _, tc := range []struct {
		name  string
		r     res
		kind  ptrace.SpanKind
		attrs map[string]any
		want  []entityView
		edges []string
	}{
		{
			name: "server span: its service and the resource's pod",
			r:    shop, kind: ptrace.SpanKindServer,
			want: []entityView{{"pod:shop/checkout-7f9c", "checkout-7f9c", false}, checkout},
		},
		{
			name: "server span without a namespace",
			r:    res{"service.name": "api"}, kind: ptrace.SpanKindServer,
			want: []entityView{{"service:/api", "api", false}},
		},
		{
			name: "server span of a proxy route: the proxy and its service",
			r:    res{"service.name": "edge", "service.namespace": "ingress"}, kind: ptrace.SpanKindServer,
			attrs: map[string]any{"upstream_cluster": "frontend"},
			want:  []entityView{{"proxy:edge/frontend", "edge frontend", false}, {"service:ingress/edge", "edge", false}},
		},
		{
			name: "database client span: a virtual database with the system's default port",
			r:    shop, kind: ptrace.SpanKindClient,
			attrs: map[string]any{"db.system.name": "postgresql", "server.address": "pg.shop.svc", "db.namespace": "orders"},
			want: []entityView{
				{"database:postgresql/pg.shop.svc:5432/orders", "orders@pg.shop.svc:5432", true},
				{"pod:shop/checkout-7f9c", "checkout-7f9c", false}, checkout,
			},
			edges: []string{"service:shop/checkout->database:postgresql/pg.shop.svc:5432/orders#db"},
		},
		{
			name: "old-convention database span: the same database",
			r:    shop, kind: ptrace.SpanKindClient,
			attrs: map[string]any{"db.system": "postgresql", "net.peer.name": "pg.shop.svc", "net.peer.port": 5432, "db.name": "orders"},
			want: []entityView{
				{"database:postgresql/pg.shop.svc:5432/orders", "orders@pg.shop.svc:5432", true},
				{"pod:shop/checkout-7f9c", "checkout-7f9c", false}, checkout,
			},
			edges: []string{"service:shop/checkout->database:postgresql/pg.shop.svc:5432/orders#db"},
		},
		{
			name: "unpaired HTTP client span with peer.service: a virtual service of that name",
			r:    shop, kind: ptrace.SpanKindClient,
			attrs: map[string]any{"http.request.method": "POST", "server.address": "payments.example", "peer.service": "payments"},
			want:  []entityView{{"pod:shop/checkout-7f9c", "checkout-7f9c", false}, {"service:/payments", "payments", true}, checkout},
			edges: []string{"service:shop/checkout->service:/payments#http"},
		},
		{
			name: "unpaired gRPC client span: a virtual service named by its rpc service",
			r:    shop, kind: ptrace.SpanKindClient,
			attrs: map[string]any{"rpc.system.name": "grpc", "rpc.method": "shop.Inventory/Reserve", "network.peer.address": "10.0.0.7", "network.peer.port": 50051},
			want:  []entityView{{"pod:shop/checkout-7f9c", "checkout-7f9c", false}, {"service:/shop.Inventory", "shop.Inventory", true}, checkout},
			edges: []string{"service:shop/checkout->service:/shop.Inventory#grpc"},
		},
		{
			name: "unpaired producer span: a virtual stream of its topic",
			r:    shop, kind: ptrace.SpanKindProducer,
			attrs: map[string]any{"messaging.system": "kafka", "messaging.destination.name": "orders"},
			want:  []entityView{{"pod:shop/checkout-7f9c", "checkout-7f9c", false}, checkout, {"stream:orders/", "orders", true}},
			edges: []string{"service:shop/checkout->stream:orders/#messaging"},
		},
		{
			name: "consumer span: the stream of its topic and group, and its service",
			r:    res{"service.name": "billing", "service.namespace": "shop"}, kind: ptrace.SpanKindConsumer,
			attrs: map[string]any{"messaging.system": "kafka", "messaging.destination.name": "orders", "messaging.consumer.group.name": "billing"},
			want:  []entityView{{"service:shop/billing", "billing", false}, {"stream:orders/billing", "orders billing", false}},
			edges: []string{"stream:orders/billing->service:shop/billing#messaging"},
		},
		{
			name: "unpaired cross-chain client span: a virtual relayer of its route",
			r:    res{"service.name": "bridge-api"}, kind: ptrace.SpanKindClient,
			attrs: map[string]any{"xchain.message.id": "m-1", "xchain.source.chain": "osmosis-1", "xchain.destination.chain": "noble-1", "peer.service": "hermes"},
			want:  []entityView{{"relayer:hermes/osmosis-1/noble-1", "hermes osmosis-1->noble-1", true}, {"service:/bridge-api", "bridge-api", false}},
			edges: []string{"service:/bridge-api->relayer:hermes/osmosis-1/noble-1#xchain"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(defaultSettings(), nil)
			g.ConsumeTraces(oneSpan(tc.r, tc.kind, tc.attrs), t0)
			snap := g.Tick(t0.Add(11 * time.Second)) // past the pending TTL
			assert.Equal(t, tc.want, views(snap))
			assert.Equal(t, tc.edges, edgeKeys(snap))
		})
	}
}

// TestEntityIdentityFromMetrics: the entity a mapped metric joins, by its
// resource and data point attributes.
func TestEntityIdentityFromMetrics(t *testing.T) {
	pg := map[string]string{"db.system.name": "postgresql"}
	mappings := map[string]MetricMapping{
		"k8s.pod.cpu.usage":                        {Entity: entity.Pod, Input: InCPUUsage},
		"db.client.connection.max":                 {Entity: entity.Service, Input: InPoolMax},
		"pg_stat_database_numbackends":             {Entity: entity.Database, Input: InConnActive, Attributes: pg, ServerFrom: []string{"server"}},
		"envoy_cluster_upstream_rq_pending_active": {Entity: entity.Proxy, Input: InPendingActive},
		"backlog_size":                             {Entity: entity.Relayer, Input: InBacklogSize},
		"kafka_consumergroup_lag_sum":              {Entity: entity.Stream, Input: InLagSum},
	}
	for _, tc := range []struct {
		name   string
		r      res
		metric string
		attrs  map[string]any
		want   entityView
		// feature is the feature the value shows in.
		feature string
	}{
		{"kubeletstats pod", res{"k8s.namespace.name": "shop", "k8s.pod.name": "cart-0"}, "k8s.pod.cpu.usage", nil,
			entityView{"pod:shop/cart-0", "cart-0", false}, "cpu.usage_cores"},
		{"pool metric of a service", res{"service.name": "orders", "service.namespace": "shop"}, "db.client.connection.max", nil,
			entityView{"service:shop/orders", "orders", false}, ""},
		{"postgres_exporter: the database its server label names, with the default system", res{"service.name": "postgres-exporter"},
			"pg_stat_database_numbackends", map[string]any{"server": "pg.shop.svc:5432", "datname": "orders"},
			entityView{"database:postgresql/pg.shop.svc:5432/orders", "orders@pg.shop.svc:5432", false}, ""},
		{"envoy stat: the proxy of its cluster", res{"service.name": "edge"}, "envoy_cluster_upstream_rq_pending_active",
			map[string]any{"envoy_cluster_name": "frontend"}, entityView{"proxy:edge/frontend", "edge frontend", false}, "pending.active"},
		{"hermes backlog: the relayer of its route", res{"service.name": "hermes"}, "backlog_size",
			map[string]any{"chain": "osmosis-1", "counterparty_chain": "noble-1"},
			entityView{"relayer:hermes/osmosis-1/noble-1", "hermes osmosis-1->noble-1", false}, "backlog.size"},
		{"kafka_exporter lag: the stream of its topic and group", res{"service.name": "kafka-exporter"}, "kafka_consumergroup_lag_sum",
			map[string]any{"topic": "orders", "consumergroup": "billing"}, entityView{"stream:orders/billing", "orders billing", false}, "lag.messages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := defaultSettings()
			s.Metrics = mappings
			g := New(s, nil)
			g.ConsumeMetrics(gauge(tc.r, tc.metric, 7, tc.attrs), t0)
			snap := g.Snapshot(t0.Add(time.Second))
			require.Equal(t, []entityView{tc.want}, views(snap), "no other entity: unmapped resources name none")
			e := snap.Entities[0]
			assert.Equal(t, 7.0, e.Metrics[tc.metric], "the raw value")
			if tc.feature != "" {
				assert.Equal(t, 7.0, e.Features[tc.feature])
			}
		})
	}
}
