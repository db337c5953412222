package api

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/exporters/junctionexporter/internal/store"
)

func TestHubBoundsAndFilters(t *testing.T) {
	h := NewHub(2)
	firing, ok := h.subscribe(store.AlertFilter{States: []alert.State{alert.StateFiring}})
	if !ok {
		t.Fatal("first stream refused")
	}
	all, _ := h.subscribe(store.AlertFilter{})
	if _, ok := h.subscribe(store.AlertFilter{}); ok {
		t.Fatal("third stream accepted beyond the bound of 2")
	}
	var batch []alert.Alert
	for i := 0; i < subscriberBuffer+10; i++ {
		batch = append(batch, alert.Alert{ID: fmt.Sprint(i), State: alert.StateFiring, Evidence: alert.Evidence{Values: map[string]float64{"x": 1}}})
	}
	batch = append(batch, alert.Alert{ID: "p", State: alert.StatePending})
	h.Publish(batch)
	// Both streams are full after subscriberBuffer changes; the rest is
	// dropped and counted: 10 firing for each, and the pending one for "all".
	if got, want := h.Dropped(), int64(10+11); got != want {
		t.Fatalf("dropped %d, want %d", got, want)
	}
	if len(firing.ch) != subscriberBuffer || len(all.ch) != subscriberBuffer {
		t.Fatalf("buffers hold %d and %d", len(firing.ch), len(all.ch))
	}
	if a := <-firing.ch; a.ID != "0" || a.Evidence.Values != nil {
		t.Fatalf("first change = %+v, want alert 0 without evidence", a)
	}
	h.unsubscribe(firing)
	if _, ok := h.subscribe(store.AlertFilter{}); !ok || h.Subscribers() != 2 {
		t.Fatal("a closed stream's slot was not freed")
	}
}

// TestStreamOutlivesTheWriteTimeout: the write timeout bounds ordinary
// answers, not the stream of alert changes, even behind middleware whose
// response writer does not unwrap (as the collector's HTTP server wraps
// every handler): the server is built as the exporter builds it.
func TestStreamOutlivesTheWriteTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	inner := NewHandler(nil, NewHub(1), Options{Now: time.Now, Keepalive: 10 * time.Millisecond})
	opaque := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(opaqueWriter{w}, r)
	})
	srv := httptest.NewUnstartedServer(WriteDeadlines(opaque, timeout))
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	keepalives := 0
	for keepalives < 30 && sc.Scan() { // 30 × 10 ms: three write timeouts
		if sc.Text() == ": keepalive" {
			keepalives++
		}
	}
	if keepalives < 30 {
		t.Fatalf("stream ended after %d keepalives: %v", keepalives, sc.Err())
	}
}

// opaqueWriter hides the connection's writer as middleware does: it
// flushes but does not unwrap, so http.ResponseController cannot reach the
// connection through it.
type opaqueWriter struct{ w http.ResponseWriter }

func (o opaqueWriter) Header() http.Header         { return o.w.Header() }
func (o opaqueWriter) Write(b []byte) (int, error) { return o.w.Write(b) }
func (o opaqueWriter) WriteHeader(code int)        { o.w.WriteHeader(code) }
func (o opaqueWriter) Flush()                      { o.w.(http.Flusher).Flush() }
