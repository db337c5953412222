package graph

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestSampleHashIsLastEightBytes(t *testing.T) {
	id := pcommon.TraceID{0, 1, 2, 3, 4, 5, 6, 7, 0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0xff}
	if got := sampleHash(id); got != 0x80112233445566ff {
		t.Fatalf("sampleHash = %#x", got)
	}
}

// TestExtractKeepsValues checks that the attribute set reads back each
// role as pcommon.Value.AsString writes the winning key's value, whatever
// its type, and ports of every type as the server needs them.
func TestExtractKeepsValues(t *testing.T) {
	g := New(defaultSettings(), nil)
	m := pcommon.NewMap()
	m.PutStr("server.address", "pg-main")
	m.PutInt("server.port", 5432)
	m.PutInt("http.response.status_code", 503)
	m.PutDouble("db.namespace", 1.5)
	m.PutBool("rpc.service", true)
	m.PutStr("db.name", "lower-priority") // db.namespace wins
	m.PutStr("network.peer.address", "10.0.0.7")
	m.PutStr("network.peer.port", "x1")
	m.PutStr("net.sock.peer.port", "9090")
	m.PutStr("peer.service", "")        // empty: absent
	m.PutStr("service.peer.name", "pg") // the next key of the role
	var a attrSet
	g.extract(m, &a)
	for r, want := range map[role]string{
		rServerAddress: "pg-main", rServerPort: "5432", rHTTPStatus: "503",
		rDBNamespace: "1.5", rRPCService: "true", rPeerAddress: "10.0.0.7",
		rPeerService: "pg", rDBSystem: "",
	} {
		if got := a.str(r); got != want {
			t.Errorf("role %d: %q, want %q", r, got, want)
		}
	}
	if n, s := a.port(0, 0); n != 5432 || s != "" {
		t.Errorf("server port = %d %q", n, s)
	}
	if n, s := a.port(1, 0); n != -1 || s != "x1" {
		t.Errorf("peer port 0 = %d %q", n, s)
	}
	if n, s := a.port(1, 1); n != 9090 || s != "" {
		t.Errorf("peer port 1 = %d %q", n, s)
	}
	// The set is reused: a second span's values replace the first's.
	m2 := pcommon.NewMap()
	m2.PutStr("server.port", "8080")
	m2.PutStr("db.namespace", "shop")
	g.extract(m2, &a)
	if got := a.str(rDBNamespace); got != "shop" {
		t.Errorf("reused set: db.namespace %q", got)
	}
	if n, s := a.port(0, 0); n != 8080 || s != "" {
		t.Errorf("reused set: server port = %d %q", n, s)
	}
	if a.has(rServerAddress) {
		t.Error("reused set: server.address of the first span still present")
	}
}
