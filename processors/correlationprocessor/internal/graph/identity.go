package graph

import (
	"time"

	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/junction-sre/junction/entity"
)

// lookup returns the first non-empty value of keys, searching each map in
// order (the most specific first). The returned string may alias pdata
// memory: clone it before keeping it beyond the batch.
func lookup(keys []string, maps ...pcommon.Map) string {
	for _, m := range maps {
		if m.Len() == 0 {
			continue
		}
		for _, k := range keys {
			if v, ok := m.Get(k); ok {
				var s string
				if v.Type() == pcommon.ValueTypeStr {
					s = v.Str()
				} else {
					s = v.AsString()
				}
				if s != "" {
					return s
				}
			}
		}
	}
	return ""
}

func lookupDefault(keys []string, defaults map[string]string, maps ...pcommon.Map) string {
	if s := lookup(keys, maps...); s != "" {
		return s
	}
	for _, k := range keys {
		if s := defaults[k]; s != "" {
			return s
		}
	}
	return ""
}

func (g *Graph) serviceEntity(now time.Time, ns, name string, virtual bool) *entityState {
	g.idBuf = entity.AppendID(g.idBuf[:0], entity.Service, ns, name)
	return g.entityByID(now, entity.Service, g.idBuf, name, virtual, func() map[string]string {
		m := map[string]string{"service.name": strings.Clone(name)}
		if ns != "" {
			m["service.namespace"] = strings.Clone(ns)
		}
		if virtual {
			m["peer.service"] = m["service.name"]
		}
		return m
	})
}

// serviceFromResource returns the service of a resource, or nil when it
// names none. create=false only finds an existing service.
func (g *Graph) serviceFromResource(now time.Time, res pcommon.Map, create bool) *entityState {
	name := lookup(g.s.Identity.ServiceName, res)
	if name == "" {
		return nil
	}
	ns := lookup(g.s.Identity.ServiceNamespace, res)
	if !create {
		return g.entities[entity.ID(entity.Service, ns, name)]
	}
	return g.serviceEntity(now, ns, name, false)
}

func (g *Graph) podEntity(now time.Time, maps ...pcommon.Map) *entityState {
	name := lookup(g.s.Identity.PodName, maps...)
	if name == "" {
		return nil
	}
	ns := lookup(g.s.Identity.PodNamespace, maps...)
	g.idBuf = entity.AppendID(g.idBuf[:0], entity.Pod, ns, name)
	return g.entityByID(now, entity.Pod, g.idBuf, name, false, func() map[string]string {
		return map[string]string{"k8s.namespace.name": strings.Clone(ns), "k8s.pod.name": strings.Clone(name)}
	})
}

func hostPort(addr, port string) string {
	if port == "" {
		return addr
	}
	return addr + ":" + port
}

func (g *Graph) databaseEntity(now time.Time, virtual bool, defaults map[string]string, maps ...pcommon.Map) *entityState {
	id := &g.s.Identity
	system := lookupDefault(id.DBSystem, defaults, maps...)
	addr := lookupDefault(id.ServerAddress, defaults, maps...)
	if system == "" && addr == "" {
		return nil
	}
	server := hostPort(addr, lookupDefault(id.ServerPort, defaults, maps...))
	return g.databaseByParts(now, virtual, system, server, lookupDefault(id.DBNamespace, defaults, maps...))
}

func (g *Graph) databaseByParts(now time.Time, virtual bool, system, server, ns string) *entityState {
	system = dbSystemName(system)
	if p := dbDefaultPort(system); p != "" && server != "" && server[0] != '/' && !hasPort(server) {
		server = server + ":" + p
	}
	name := server
	if ns != "" {
		name = ns + "@" + server
	}
	eid := entity.ID(entity.Database, system, server, ns)
	return g.entity(now, entity.Database, eid, name, virtual, func() map[string]string {
		m := map[string]string{"db.system.name": strings.Clone(system), "server.address": strings.Clone(server)}
		if ns != "" {
			m["db.namespace"] = strings.Clone(ns)
		}
		return m
	})
}

func (g *Graph) proxyEntity(now time.Time, svc, route string) *entityState {
	if svc == "" {
		return nil
	}
	name := svc
	if route != "" {
		name = svc + " " + route
	}
	id := entity.ID(entity.Proxy, svc, route)
	return g.entity(now, entity.Proxy, id, name, false, func() map[string]string {
		return map[string]string{"service.name": strings.Clone(svc), "proxy.route": strings.Clone(route)}
	})
}

func (g *Graph) relayerEntity(now time.Time, virtual bool, svc, src, dst string) *entityState {
	if svc == "" {
		return nil
	}
	id := entity.ID(entity.Relayer, svc, src, dst)
	name := svc + " " + src + "->" + dst
	return g.entity(now, entity.Relayer, id, name, virtual, func() map[string]string {
		return map[string]string{"service.name": strings.Clone(svc), "xchain.source.chain": strings.Clone(src), "xchain.destination.chain": strings.Clone(dst)}
	})
}

func (g *Graph) streamEntity(now time.Time, virtual bool, topic, group string) *entityState {
	if topic == "" {
		return nil
	}
	id := entity.ID(entity.Stream, topic, group)
	name := topic
	if group != "" {
		name = topic + " " + group
	}
	return g.entity(now, entity.Stream, id, name, virtual, func() map[string]string {
		m := map[string]string{"messaging.destination.name": strings.Clone(topic)}
		if group != "" {
			m["messaging.consumer.group.name"] = strings.Clone(group)
		}
		return m
	})
}

// dbSystemName returns the db.system.name value of a db.system value that
// semantic conventions v1.30 renamed (mssql is microsoft.sql_server), so
// old and new instrumentation of one database name one entity; other values
// are returned as they are.
func dbSystemName(s string) string {
	switch s {
	case "mssql":
		return "microsoft.sql_server"
	case "oracle":
		return "oracle.db"
	case "db2":
		return "ibm.db2"
	case "redshift":
		return "aws.redshift"
	case "dynamodb":
		return "aws.dynamodb"
	case "cosmosdb":
		return "azure.cosmosdb"
	case "spanner":
		return "gcp.spanner"
	case "hanadb":
		return "sap.hana"
	case "maxdb":
		return "sap.maxdb"
	case "informix":
		return "ibm.informix"
	case "netezza":
		return "ibm.netezza"
	case "adabas":
		return "softwareag.adabas"
	case "ingres":
		return "actian.ingres"
	case "cache", "intersystems_cache":
		return "intersystems.cache"
	case "firebird":
		return "firebirdsql"
	}
	return s
}

// dbDefaultPort is the port a database system listens on by default.
// Instrumentation may leave it out (server.port is required only when it
// is not the default, and the OTel Java JDBC instrumentation leaves it
// out) while other callers and the database's server metrics
// (postgres_exporter's server="host:port") write it: a database address
// without a port gets its system's default, so all of them name one
// entity.
func dbDefaultPort(system string) string {
	switch system {
	case "postgresql":
		return "5432"
	case "cockroachdb":
		return "26257"
	case "mysql", "mariadb":
		return "3306"
	case "redis":
		return "6379"
	case "mongodb":
		return "27017"
	case "microsoft.sql_server":
		return "1433"
	case "oracle.db":
		return "1521"
	case "cassandra":
		return "9042"
	case "memcached":
		return "11211"
	case "elasticsearch", "opensearch":
		return "9200"
	case "clickhouse":
		return "9000"
	}
	return ""
}

// hasPort reports whether host[:port] ends in a numeric port ("[::1]:5432"
// has one, "::1" and "pg" do not).
func hasPort(hp string) bool {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 || i == len(hp)-1 || strings.IndexByte(hp[i:], ']') >= 0 {
		return false
	}
	if strings.IndexByte(hp[:i], ':') >= 0 && !strings.HasPrefix(hp, "[") {
		return false // a bare IPv6 address
	}
	for _, c := range hp[i+1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
