package realapp

import (
	"fmt"
	"hash/fnv"
	"net"
	"sort"

	"github.com/junction-sre/junction/entity"
)

// Fault is one way the application goes wrong.
type Fault string

// The faults. FaultNone is the application with every fault fixed.
const (
	FaultNone Fault = "none"
	// FaultDBPool: inventory's pgxpool holds one connection and its query
	// sleeps 70 ms (pg_sleep), so callers queue for the connection.
	FaultDBPool Fault = "db-pool"
	// FaultWorkerPool: orders has one worker, held 70 ms per request, so
	// requests wait for it inside orders.
	FaultWorkerPool Fault = "worker-pool"
	// FaultSlowDependency: the untraced pricing service answers in 400 ms.
	FaultSlowDependency Fault = "slow-dependency"
)

// Faults are the faults the end-to-end test and junction-realapp run.
var Faults = []Fault{FaultDBPool, FaultWorkerPool, FaultSlowDependency}

// Describe says what the fault is in a user's words.
func (f Fault) Describe() string {
	switch f {
	case FaultDBPool:
		return "pgxpool of 1 connection to PostgreSQL, query with pg_sleep(0.07)"
	case FaultWorkerPool:
		return "orders: worker pool of 1, 70 ms of work per request"
	case FaultSlowDependency:
		return "untraced pricing service answers in 400 ms"
	case FaultNone:
		return "every fault fixed"
	}
	return string(f)
}

// seed is the fault's load seed: each instance has its own arrivals.
func (f Fault) seed() uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(f))
	return h.Sum64()
}

// Edge is one call edge of the application as Junction names it.
type Edge struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Type   string `json:"type"`
}

func (e Edge) String() string { return e.Source + " -> " + e.Target + " #" + e.Type }

// Truth is what an instance of the application really is: its entities,
// its call edges and, for a fault, the entity that owns the latency.
type Truth struct {
	Fault     Fault  `json:"fault"`
	Namespace string `json:"namespace"`
	// Entities are the ids of the instance's entities: its three traced
	// services, its database and the untraced pricing service (a virtual
	// service named by address, as its callers' client spans name it).
	Entities []string `json:"entities"`
	// Edges are the calls the application makes.
	Edges []Edge `json:"edges"`
	// Blame is the id of the entity that causes the fault; empty for
	// FaultNone.
	Blame string `json:"blame,omitempty"`
}

// Owns reports whether id is one of the instance's entities.
func (t Truth) Owns(id string) bool {
	for _, e := range t.Entities {
		if e == id {
			return true
		}
	}
	return false
}

// Truth returns the instance's ground truth for fault f.
func (a *App) Truth(f Fault) Truth {
	ns := a.cfg.Namespace
	fe := entity.ID(entity.Service, ns, ServiceFrontend)
	ord := entity.ID(entity.Service, ns, ServiceOrders)
	inv := entity.ID(entity.Service, ns, ServiceInventory)
	db := entity.ID(entity.Database, "postgresql", a.cfg.Postgres.Addr(), a.database)
	// otelhttp's client spans name the server by server.address and
	// server.port: the virtual service is host:port, without namespace.
	host, port, _ := net.SplitHostPort(a.pricingAddr)
	pricing := entity.ID(entity.Service, "", net.JoinHostPort(host, port))
	t := Truth{
		Fault:     f,
		Namespace: ns,
		Entities:  []string{fe, ord, inv, db, pricing},
		Edges: []Edge{
			{fe, ord, string(entity.EdgeHTTP)},
			{ord, inv, string(entity.EdgeGRPC)},
			{ord, pricing, string(entity.EdgeHTTP)},
			{inv, db, string(entity.EdgeDB)},
		},
	}
	sort.Strings(t.Entities)
	sortEdges(t.Edges)
	switch f {
	case FaultDBPool:
		t.Blame = db
	case FaultWorkerPool:
		t.Blame = ord
	case FaultSlowDependency:
		t.Blame = pricing
	}
	return t
}

// ParseFault returns the fault named s.
func ParseFault(s string) (Fault, error) {
	for _, f := range append([]Fault{FaultNone}, Faults...) {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown fault %q: want one of none, %s, %s, %s", s, FaultDBPool, FaultWorkerPool, FaultSlowDependency)
}

func sortEdges(es []Edge) {
	sort.Slice(es, func(i, j int) bool { return es[i].String() < es[j].String() })
}
