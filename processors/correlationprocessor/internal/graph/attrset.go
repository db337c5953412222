package graph

import (
	"strconv"

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
	rPeerService
	rRPCSystem
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
	add(rPeerService, id.PeerService)
	add(rRPCSystem, id.RPCSystem)
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
}

func (g *Graph) extract(m pcommon.Map, a *attrSet) {
	a.prio = [numRoles]uint8{}
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
		if v.Type() == pcommon.ValueTypeStr && v.Str() == "" {
			return true
		}
		for _, r := range refs {
			if p := a.prio[r.r]; p == 0 || r.prio+1 < p {
				a.v[r.r] = v
				a.prio[r.r] = r.prio + 1
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
	v := a.v[r]
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return v.AsString()
}

// int returns the role's value as an integer; ok is false when absent or
// not an integer.
func (a *attrSet) int(r role) (int64, bool) {
	if a.prio[r] == 0 {
		return 0, false
	}
	v := a.v[r]
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// appendHostPort appends address[:port] of the server roles.
func (a *attrSet) appendHostPort(dst []byte) []byte {
	dst = append(dst, a.str(rServerAddress)...)
	if a.prio[rServerPort] != 0 {
		dst = append(dst, ':')
		if n, ok := a.int(rServerPort); ok {
			dst = strconv.AppendInt(dst, n, 10)
		} else {
			dst = append(dst, a.str(rServerPort)...)
		}
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
