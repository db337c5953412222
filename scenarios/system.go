package scenarios

import (
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/junction-sre/junction/entity"
)

// Names of the simulated system. docs/scenarios.md describes it.
const (
	ShopNamespace   = "shop" // service.namespace and k8s.namespace.name of the shop
	IngressNS       = "ingress"
	BridgeNamespace = "bridge" // service.namespace and k8s.namespace.name of the relayer

	ProxyService    = "edge-proxy"
	ProxyCluster    = "frontend" // the upstream cluster (route) of the edge proxy
	ProxyJob        = ProxyService
	Frontend        = "frontend"
	Catalog         = "catalog"
	Checkout        = "checkout"
	Inventory       = "inventory"
	Orders          = "orders"
	Recommendations = "recommendations"
	DashboardFeed   = "dashboard-feed"
	Relayer         = "hermes"

	DBSystem    = "postgresql"
	DBHost      = "postgres.shop.svc"
	DBPort      = 5432
	DBName      = "shop"
	DBExporter  = "postgres-exporter"
	MaxBackends = 60

	Topic         = "order-events"
	ConsumerGroup = DashboardFeed
	Partitions    = 3

	SourceChain      = "osmosis-1"
	DestinationChain = "noble-1"
	SourceDenom      = "uosmo"
	DestDenom        = "uusdc"
	Channel          = "channel-750"
	CounterChannel   = "channel-1"
	Port             = "transfer"
)

// Entity ids of the simulated system, as entity.ID builds them.
var (
	ProxyID      = entity.ID(entity.Proxy, ProxyService, ProxyCluster)
	DatabaseID   = entity.ID(entity.Database, DBSystem, DBHost+":"+strconv.Itoa(DBPort), DBName)
	RelayerID    = entity.ID(entity.Relayer, Relayer, SourceChain, DestinationChain)
	StreamID     = entity.ID(entity.Stream, Topic, ConsumerGroup)
	InventoryID  = ServiceID(Inventory)
	CatalogID    = ServiceID(Catalog)
	RecommendID  = ServiceID(Recommendations)
	FrontendID   = ServiceID(Frontend)
	CheckoutID   = ServiceID(Checkout)
	OrdersID     = ServiceID(Orders)
	DashboardID  = ServiceID(DashboardFeed)
	RelayerSvcID = entity.ID(entity.Service, BridgeNamespace, Relayer)
)

// ServiceID is the entity id of a shop service.
func ServiceID(name string) string { return entity.ID(entity.Service, ShopNamespace, name) }

// PodID is the entity id of a pod.
func PodID(k8sNamespace, pod string) string { return entity.ID(entity.Pod, k8sNamespace, pod) }

// serviceSpec describes one deployment of the system.
type serviceSpec struct {
	name      string
	namespace string // service.namespace and k8s.namespace.name
	host      string // server.address its callers use
	port      int
	replicas  int
	// maxReplicas bounds the pods ever created (scale-ups).
	maxReplicas int
	cpuRequest  float64 // cores per container
	cpuLimit    float64
	memRequest  int64 // bytes per container
	memLimit    int64
	idleCPU     float64 // cores a pod uses with no traffic
	cpuPerReq   float64 // core-seconds per request served
	memBase     int64   // working set with no traffic
	latency     float64 // median self time in ms
	version     string
	node        int
}

const (
	mi = int64(1) << 20
	gi = int64(1) << 30
)

// specs is the system; the order is the order of resources in every batch.
var specs = []serviceSpec{
	{name: ProxyService, namespace: IngressNS, host: "edge-proxy.ingress.svc", port: 8080, replicas: 2, cpuRequest: 0.1, cpuLimit: 1, memRequest: 256 * mi, memLimit: 512 * mi, idleCPU: 0.02, cpuPerReq: 0.008, memBase: 150 * mi, latency: 0.4, version: "1.33.2", node: 0},
	{name: Frontend, namespace: ShopNamespace, host: "frontend.shop.svc", port: 8080, replicas: 3, cpuRequest: 0.25, cpuLimit: 1, memRequest: 256 * mi, memLimit: 512 * mi, idleCPU: 0.02, cpuPerReq: 0.033, memBase: 160 * mi, latency: 6, version: "2.14.0", node: 1},
	{name: Catalog, namespace: ShopNamespace, host: "catalog.shop.svc", port: 8080, replicas: 3, cpuRequest: 0.25, cpuLimit: 1, memRequest: 384 * mi, memLimit: 768 * mi, idleCPU: 0.02, cpuPerReq: 0.073, memBase: 240 * mi, latency: 8, version: "3.2.1", node: 1},
	{name: Checkout, namespace: ShopNamespace, host: "checkout.shop.svc", port: 8080, replicas: 2, cpuRequest: 0.25, cpuLimit: 1, memRequest: 256 * mi, memLimit: 512 * mi, idleCPU: 0.02, cpuPerReq: 0.088, memBase: 150 * mi, latency: 10, version: "1.9.4", node: 2},
	{name: Inventory, namespace: ShopNamespace, host: "inventory.shop.svc", port: 9090, replicas: 2, cpuRequest: 0.25, cpuLimit: 0.5, memRequest: 128 * mi, memLimit: 256 * mi, idleCPU: 0.02, cpuPerReq: 0.088, memBase: 80 * mi, latency: 12, version: "4.0.7", node: 2},
	{name: Orders, namespace: ShopNamespace, host: "orders.shop.svc", port: 9090, replicas: 3, cpuRequest: 0.25, cpuLimit: 1, memRequest: 256 * mi, memLimit: 512 * mi, idleCPU: 0.02, cpuPerReq: 0.13, memBase: 160 * mi, latency: 5, version: "2.6.0", node: 3},
	{name: Recommendations, namespace: ShopNamespace, host: "recommendations.shop.svc", port: 8080, replicas: 2, maxReplicas: 8, cpuRequest: 0.5, cpuLimit: 1, memRequest: 512 * mi, memLimit: gi, idleCPU: 0.03, cpuPerReq: 0.25, memBase: 320 * mi, latency: 25, version: "0.31.0", node: 3},
	{name: DashboardFeed, namespace: ShopNamespace, host: "dashboard-feed.shop.svc", port: 8080, replicas: 1, cpuRequest: 0.1, cpuLimit: 0.5, memRequest: 128 * mi, memLimit: 256 * mi, idleCPU: 0.01, cpuPerReq: 0.016, memBase: 80 * mi, latency: 3, version: "1.1.0", node: 0},
	{name: Relayer, namespace: BridgeNamespace, host: "hermes.bridge.svc", port: 3001, replicas: 1, cpuRequest: 0.25, cpuLimit: 1, memRequest: 256 * mi, memLimit: 512 * mi, idleCPU: 0.1, cpuPerReq: 0.1, memBase: 160 * mi, latency: 40, version: "1.13.1", node: 0},
}

// Indexes into specs.
const (
	sProxy = iota
	sFrontend
	sCatalog
	sCheckout
	sInventory
	sOrders
	sRecommendations
	sDashboard
	sRelayer
)

// pod is one pod of a deployment; its names are derived from the
// deployment's name so that they do not depend on the random stream.
type pod struct {
	svc  int
	name string
	uid  string
	ip   string
	node string
	// restarts is the container restart count.
	restarts int64
}

func stableHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

const podAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func suffix(h uint64, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = podAlphabet[h%uint64(len(podAlphabet))]
		h /= uint64(len(podAlphabet))
	}
	return string(b)
}

func makePods(si int) []pod {
	s := &specs[si]
	n := max(s.replicas, s.maxReplicas)
	rs := suffix(stableHash(s.name+"/rs"), 10)
	out := make([]pod, n)
	for i := range out {
		h := stableHash(fmt.Sprintf("%s/pod/%d", s.name, i))
		out[i] = pod{
			svc:  si,
			name: s.name + "-" + rs + "-" + suffix(h, 5),
			uid: fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", uint32(h), uint16(h>>32), uint16(h>>40)&0xfff,
				uint16(h>>48)&0xfff, h&0xffffffffffff),
			ip:   fmt.Sprintf("10.42.%d.%d", s.node, 10+si*12+i),
			node: fmt.Sprintf("node-%d", s.node+1),
		}
	}
	return out
}
