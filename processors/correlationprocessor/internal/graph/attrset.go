package graph

import (
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// role is what a span attribute means to the graph.
type role uint8

const (
	rProxyRoute role = iota
	rDBSystem
	rDBNamespace
	rDBQuery
	rServerAddress
	rServerPort
	rPeerAddress
	rPeerPort
	rURL
	rHTTPMethod
	rPeerService
	rRPCSystem
	rRPCService
	rRPCMethod
	rMessagingSystem
	rXChainMessage
	rSourceChain
	rDestinationChain
	rStreamTopic
	rStreamGroup
	rHTTPStatus
	numRoles
)

type roleKey struct {
	key  string
	refs []roleRef
}

type roleRef struct {
	r    role
	prio uint8 // position of the key in its identity list
}

// spanRoles maps every attribute key named by the identity lists to its
// roles, so one pass over a span's attributes finds them all.
func spanRoles(id *Identity) map[string][]roleRef {
	m := map[string][]roleRef{}
	add := func(r role, keys []string) {
		for i, k := range keys {
			if i > 250 {
				break
			}
			m[k] = append(m[k], roleRef{r, uint8(i)})
		}
	}
	add(rProxyRoute, id.ProxyRoute)
	add(rDBSystem, id.DBSystem)
	add(rDBNamespace, id.DBNamespace)
	add(rDBQuery, id.DBQuery)
	add(rServerAddress, id.ServerAddress)
	add(rServerPort, id.ServerPort)
	add(rPeerAddress, id.PeerAddress)
	add(rPeerPort, id.PeerPort)
	add(rURL, id.URL)
	add(rHTTPMethod, id.HTTPMethod)
	add(rPeerService, id.PeerService)
	add(rRPCSystem, id.RPCSystem)
	add(rRPCService, id.RPCService)
	add(rRPCMethod, id.RPCMethod)
	add(rMessagingSystem, id.MessagingSystem)
	add(rXChainMessage, id.XChainMessage)
	add(rSourceChain, id.SourceChain)
	add(rDestinationChain, id.DestinationChain)
	add(rStreamTopic, id.StreamTopic)
	add(rStreamGroup, id.StreamGroup)
	add(rHTTPStatus, id.HTTPStatus)
	return m
}

// attrSet holds, per role, the attribute value of the highest-priority key
// present (with a non-empty value). The values alias pdata memory.
type attrSet struct {
	v    [numRoles]pcommon.Value
	prio [numRoles]uint8 // 0: absent; else key position + 1
	// s holds the value of a role whose value is a string (bit r of isStr):
	// read once here instead of through the value's type switch at every
	// str.
	s     [numRoles]string
	isStr uint32
	// ports[0] holds the server_port values, ports[1] the peer_port
	// values, by their key's position: the port of an address is the one
	// at the address key's position (portSet has bit i when ports[.][i]
	// is set).
	ports   [2][maxPortKeys]pcommon.Value
	portSet [2]uint8
}

// attrSet.isStr has a bit per role.
const _ uint32 = 1 << (numRoles - 1)

// maxPortKeys bounds the positions of identity::server_port and
// identity::peer_port that pair with an address.
const maxPortKeys = 8

func (g *Graph) extract(m pcommon.Map, a *attrSet) {
	a.prio = [numRoles]uint8{}
	a.portSet = [2]uint8{}
	if m.Len() == 0 {
		return
	}
	m.Range(func(k string, v pcommon.Value) bool {
		// Role keys by length, filtered by their last byte: comparing a few
		// strings is cheaper than hashing every attribute key.
		l := len(k)
		if l == 0 || l >= len(g.roleKeys) || !g.roleLast[k[l-1]] {
			return true
		}
		var refs []roleRef
		for i := range g.roleKeys[l] {
			if g.roleKeys[l][i].key == k {
				refs = g.roleKeys[l][i].refs
				break
			}
		}
		if refs == nil {
			return true
		}
		var str string
		isStr := v.Type() == pcommon.ValueTypeStr
		if isStr {
			if str = v.Str(); str == "" {
				return true
			}
		}
		for _, r := range refs {
			if p := a.prio[r.r]; p == 0 || r.prio+1 < p {
				a.v[r.r] = v
				a.prio[r.r] = r.prio + 1
				if isStr {
					a.s[r.r] = str
					a.isStr |= 1 << r.r
				} else {
					a.isStr &^= 1 << r.r
				}
			}
			if (r.r == rServerPort || r.r == rPeerPort) && r.prio < maxPortKeys {
				i := 0
				if r.r == rPeerPort {
					i = 1
				}
				a.ports[i][r.prio] = v
				a.portSet[i] |= 1 << r.prio
			}
		}
		return true
	})
}

func (a *attrSet) has(r role) bool { return a.prio[r] != 0 }

// str returns the role's value as a string ("" when absent).
func (a *attrSet) str(r role) string {
	if a.prio[r] == 0 {
		return ""
	}
	if a.isStr&(1<<r) != 0 {
		return a.s[r]
	}
	return a.v[r].AsString()
}

// server is the host and port a client span names its server by; host
// aliases pdata memory.
type server struct {
	host string
	port int64 // -1: none
	// portStr is a port that is not an integer, kept as written.
	portStr string
}

// port returns the port at position i of the port role (0: server_port,
// 1: peer_port).
func (a *attrSet) port(kind, i int) (int64, string) {
	if i >= maxPortKeys || a.portSet[kind]&(1<<i) == 0 {
		return -1, ""
	}
	v := a.ports[kind][i]
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), ""
	case pcommon.ValueTypeStr:
		if n, err := strconv.ParseInt(v.Str(), 10, 64); err == nil {
			return n, ""
		}
		return -1, v.Str()
	}
	return -1, v.AsString()
}

// server returns the server a client span calls: its logical address
// (identity::server_address with the identity::server_port at the same
// position), else for an HTTP span the host[:port] of its URL, else its
// socket peer (identity::peer_address with identity::peer_port). HTTP's
// default ports (80, 443) are left out: HTTP instrumentation leaves them
// out of server.port and net.peer.port, so a caller that writes them
// names the same server as one that does not.
func (a *attrSet) server(http bool) server {
	var s server
	switch {
	case a.has(rServerAddress):
		s.host = a.str(rServerAddress)
		s.port, s.portStr = a.port(0, int(a.prio[rServerAddress]-1))
	case http && a.has(rURL):
		s = urlServer(a.str(rURL))
	case a.has(rPeerAddress):
		s.host = a.str(rPeerAddress)
		s.port, s.portStr = a.port(1, int(a.prio[rPeerAddress]-1))
	default:
		s.port = -1
	}
	if http && (s.port == 80 || s.port == 443) {
		s.port = -1
	}
	return s
}

// urlServer returns the host and port of an absolute URL
// (scheme://[userinfo@]host[:port]/...), without allocating; a URL
// without "://" names no host.
func urlServer(u string) server {
	s := server{port: -1}
	i := strings.Index(u, "://")
	if i < 0 {
		return s
	}
	rest := u[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	if j := strings.LastIndexByte(rest, '@'); j >= 0 {
		rest = rest[j+1:]
	}
	host, port := rest, ""
	if j := strings.LastIndexByte(rest, ':'); j >= 0 && strings.IndexByte(rest[j:], ']') < 0 {
		host, port = rest[:j], rest[j+1:]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	s.host = host
	if port != "" {
		if n, err := strconv.ParseInt(port, 10, 64); err == nil {
			s.port = n
		} else {
			s.portStr = port
		}
	}
	return s
}

// appendHostPort appends host[:port].
func (s server) appendHostPort(dst []byte) []byte {
	dst = append(dst, s.host...)
	switch {
	case s.port >= 0:
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, s.port, 10)
	case s.portStr != "":
		dst = append(dst, ':')
		dst = append(dst, s.portStr...)
	}
	return dst
}

// intern returns a string equal to b, allocating only the first time; the
// table is cleared when it reaches maxInterned entries.
func (g *Graph) intern(b []byte) string {
	if s, ok := g.interned[string(b)]; ok {
		return s
	}
	if len(g.interned) >= maxInterned {
		clear(g.interned)
	}
	s := string(b)
	g.interned[s] = s
	return s
}

const maxInterned = 10000

type dbKey struct {
	system, addr string
	port         int64
	ns           string
}

// dbCached is a database of the span cache with its key, whose strings do
// not alias pdata.
type dbCached struct {
	e   *entityState
	key dbKey
}

// maxPeersPerEntity bounds the per-caller cache of virtual peer names.
const maxPeersPerEntity = 8

// peerName returns a string equal to b, from the caller's few recent peer
// names when possible, else interned.
func (e *entityState) peerName(g *Graph, b []byte) string {
	for _, p := range e.peers {
		if p == string(b) {
			return p
		}
	}
	s := g.intern(b)
	if len(e.peers) < maxPeersPerEntity {
		e.peers = append(e.peers, s)
	} else {
		e.peers[int(b[0])%maxPeersPerEntity] = s
	}
	return s
}
