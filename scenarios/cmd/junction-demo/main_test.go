package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/testbin"
	"github.com/junction-sre/junction/scenarios/internal/otlptest"
)

var fixedNow = func() time.Time { return time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC) }

var (
	circuit = alert.Alert{
		ID: "surge/ProxyCircuitOpen@proxy:edge-proxy/frontend", Group: "surge", Rule: "ProxyCircuitOpen",
		Severity: "critical", State: alert.StateFiring,
		Entity:      entity.Ref{Type: "proxy", ID: "proxy:edge-proxy/frontend", Name: "edge-proxy/frontend"},
		Blame:       entity.Ref{Type: "proxy", ID: "proxy:edge-proxy/frontend", Name: "edge-proxy/frontend"},
		Annotations: map[string]string{"summary": "circuit breaker open on edge-proxy/frontend"},
		ActiveAt:    fixedNow(), FiredAt: fixedNow(),
	}
	hop = alert.Alert{
		ID: "bottleneck/HopOwnsLatency@service:shop/frontend", Group: "bottleneck", Rule: "HopOwnsLatency",
		Severity: "warning", State: alert.StateFiring,
		Entity:   entity.Ref{Type: "service", ID: "service:shop/frontend", Name: "frontend"},
		Blame:    entity.Ref{Type: "service", ID: "service:shop/inventory", Name: "inventory"},
		ActiveAt: fixedNow(), FiredAt: fixedNow().Add(time.Minute),
	}
)

// fakeAPI serves /api/v1/alerts (the circuit breaker firing),
// /api/v1/alerts/{id} with evidence, and a stream that resolves the
// circuit breaker and fires the hop alert, then stays open.
func fakeAPI(t *testing.T) *httptest.Server {
	return fakeAPIWith(t, false, new(atomic.Int64))
}

// fakeAPIWith is fakeAPI; with closeStream the stream ends after its
// events (as a server write timeout ends it); streams counts the streams
// opened.
func fakeAPIWith(t *testing.T, closeStream bool, streams *atomic.Int64) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("state"); got != "pending,firing" {
			http.Error(w, `{"error": "want state=pending,firing"}`, http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"alerts": []alert.Alert{circuit}})
	})
	mux.HandleFunc("GET /api/v1/alerts/{id...}", func(w http.ResponseWriter, r *http.Request) {
		a := circuit
		if r.PathValue("id") == hop.ID {
			a = hop
			a.Evidence.Exemplars = []entity.Exemplar{{TraceID: "aa", Reason: "slow", Value: 120}, {TraceID: "bb", Reason: "slow", Value: 812}}
			a.Evidence.LogSamples = []entity.LogSample{{Body: "slow request: method=Reserve took 412ms", Count: 42}}
			a.Evidence.Values = map[string]float64{"service:shop/frontend latency.p99_ms": 930}
		}
		json.NewEncoder(w).Encode(map[string]any{"alert": a, "history": []any{}})
	})
	mux.HandleFunc("GET /api/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		resolved := circuit
		resolved.State, resolved.ResolvedAt = alert.StateResolved, fixedNow().Add(4*time.Minute)
		fmt.Fprint(w, ": stream\n\n")
		for _, a := range []alert.Alert{circuit, hop, resolved} {
			b, _ := json.Marshal(a)
			fmt.Fprintf(w, "event: alert\ndata: %s\n\n", b)
		}
		fmt.Fprint(w, ": keepalive\n\nevent: other\ndata: {}\n\n")
		w.(http.Flusher).Flush()
		streams.Add(1)
		if closeStream {
			return
		}
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestViewFollowsAPI: the active alert is shown once, the stream's
// changes as they come, with the blamed entity and the evidence summary.
func TestViewFollowsAPI(t *testing.T) {
	srv := fakeAPI(t)
	var out testbin.Logs
	v := newView(&out, srv.URL+"/", fixedNow)
	stop := watching(v)
	waitFor(t, &out, "▼ resolved  ProxyCircuitOpen")
	stop()
	got := out.String()
	for _, want := range []string{
		"▲ FIRING    ProxyCircuitOpen            proxy:edge-proxy/frontend [critical]",
		"circuit breaker open on edge-proxy/frontend",
		"▲ FIRING    HopOwnsLatency              service:shop/frontend → blames service:shop/inventory [warning]",
		`evidence: 2 trace(s), slowest 812ms (trace bb); log ×42 "slow request: method=Reserve took 412ms"; service:shop/frontend latency.p99_ms=930`,
		"▼ resolved  ProxyCircuitOpen            proxy:edge-proxy/frontend after firing 4m0s",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if n := strings.Count(got, "FIRING    ProxyCircuitOpen"); n != 1 {
		t.Errorf("the circuit breaker firing was shown %d times, want once (list and stream repeat it):\n%s", n, got)
	}
	if f, r := v.counts(); f != 2 || r != 1 {
		t.Errorf("counted %d fired, %d resolved; want 2, 1", f, r)
	}
}

// TestViewAPIDown: without an API the view says so once and keeps
// retrying; it attaches when the API comes up.
func TestViewAPIDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var out testbin.Logs
	v := newView(&out, "http://"+addr, fixedNow)
	v.retry = 10 * time.Millisecond
	stop := watching(v)
	waitFor(t, &out, "Retrying every")

	// The API comes up on the same address.
	api := fakeAPI(t)
	api.Close()
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address %s taken again: %v", addr, err)
	}
	srv := &http.Server{Handler: api.Config.Handler}
	go srv.Serve(l2)
	t.Cleanup(func() { srv.Close() })
	waitFor(t, &out, "is answering")
	waitFor(t, &out, "▼ resolved")
	stop()
	if n := strings.Count(out.String(), "is not answering"); n != 1 {
		t.Errorf("the API-down message was printed %d times, want once:\n%s", n, out.String())
	}
}

// TestViewReopensEndedStream: a stream the server ends is reopened
// without calling the API down, and nothing already shown is repeated.
func TestViewReopensEndedStream(t *testing.T) {
	streams := new(atomic.Int64)
	srv := fakeAPIWith(t, true, streams)
	var out testbin.Logs
	v := newView(&out, srv.URL, fixedNow)
	v.retry = time.Millisecond
	stop := watching(v)
	for streams.Load() < 3 {
		select {
		case <-t.Context().Done():
			t.Fatal("the stream was not reopened")
		case <-time.After(time.Millisecond):
		}
	}
	stop()
	got := out.String()
	if strings.Contains(got, "not answering") {
		t.Errorf("an ended stream was reported as the API down:\n%s", got)
	}
	if n := strings.Count(got, "FIRING    HopOwnsLatency"); n != 1 {
		t.Errorf("HopOwnsLatency firing shown %d times over %d streams, want once:\n%s", n, streams.Load(), got)
	}
}

// TestViewClearsPendingThatNeverFired: an instance resolved without firing
// is shown as cleared, not counted as resolved.
func TestViewClearsPendingThatNeverFired(t *testing.T) {
	var out testbin.Logs
	v := newView(&out, "http://127.0.0.1:1", fixedNow)
	v.showPending = true
	a := hop
	a.State, a.FiredAt = alert.StatePending, time.Time{}
	v.show(context.Background(), a)
	a.State, a.ResolvedAt = alert.StateResolved, fixedNow().Add(time.Minute)
	v.show(context.Background(), a)
	got := out.String()
	if !strings.Contains(got, "  pending   HopOwnsLatency") || !strings.Contains(got, "  cleared   HopOwnsLatency              service:shop/frontend → blames service:shop/inventory (never fired)") {
		t.Errorf("got:\n%s", got)
	}
	if f, r := v.counts(); f != 0 || r != 0 {
		t.Errorf("counted %d fired, %d resolved; want none", f, r)
	}
}

// TestViewQuietAboutPendingByDefault: without -pending only firing and
// resolved alerts are shown; alerts active before the demo are marked.
func TestViewQuietAboutPendingByDefault(t *testing.T) {
	var out testbin.Logs
	v := newView(&out, "http://127.0.0.1:1", fixedNow)
	v.since = fixedNow().Add(time.Minute)
	a := hop
	a.State, a.FiredAt = alert.StatePending, time.Time{}
	v.show(context.Background(), a)
	a.State, a.ResolvedAt = alert.StateResolved, fixedNow().Add(time.Minute)
	v.show(context.Background(), a)
	if got := out.String(); got != "" {
		t.Errorf("pending and cleared shown without -pending:\n%s", got)
	}
	old := circuit
	old.ID = "old"
	v.show(context.Background(), old)
	if got := out.String(); !strings.Contains(got, "proxy:edge-proxy/frontend (active before this demo started) [critical]") {
		t.Errorf("an alert from before the demo is not marked:\n%s", got)
	}
}

// TestViewReportsAPIErrors: a non-200 answer is reported with the API's
// error text.
func TestViewReportsAPIErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error": "storage is read-only"}`)
	}))
	defer srv.Close()
	v := newView(new(testbin.Logs), srv.URL, fixedNow)
	connected, err := v.follow(context.Background())
	if connected {
		t.Error("follow reports a stream it never opened")
	}
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "storage is read-only") {
		t.Fatalf("got %v", err)
	}
}

// TestRunAgainstReceiver plays three scenarios (sped up) into a real OTLP
// receiver with the fake API: phases and alerts are shown, the run ends
// and is scored. The plan is stamped to end at the real instant the run
// ends (demoEnd), so it starts at fixedNow, where the fake alerts fire:
// in surge's healthy phase: two false positives.
func TestRunAgainstReceiver(t *testing.T) {
	demoEnd := func() time.Time { return fixedNow().Add(45 * time.Minute) }
	rcv := otlptest.Start(t)
	addr, spans := rcv.Addr, rcv.Traces
	ctx := context.Background()
	api := fakeAPI(t)
	var out testbin.Logs
	if err := run(ctx, []string{"-endpoint", addr, "-api", api.URL, "-speed", "1000000", "-scenarios", "surge,bottleneck,database"}, &out, &out, demoEnd); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"junction-demo: 3 scenarios, 45m0s at 1e+06x speed",
		"── [1/3] surge: healthy until",
		"── [2/3] bottleneck: fault until",
		"expect [ConnectionPoolSaturated] → database:postgresql/postgres.shop.svc:5432/shop",
		"── [3/3] database: recover until",
		"scenarios done: 270 steps",
		"score against the ground truth: recall 0%",
		"  surge      recall 0%, latency 0s, resolved false, healthy false positives 2",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if spans.SpanCount() == 0 {
		t.Error("no span reached the receiver")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-speed", "0"}, {"extra"}, {"-nope"}, {"-scenarios", "bogus"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out, &out, fixedNow); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

// waitFor waits until out contains want; the test's deadline bounds it.
func waitFor(t *testing.T, out *testbin.Logs, want string) {
	t.Helper()
	for !strings.Contains(out.String(), want) {
		select {
		case <-t.Context().Done():
			t.Fatalf("never printed %q:\n%s", want, out.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestViewCatchesUpOnResolutionsBetweenStreams: an alert that resolves
// while no stream is open (the server ended one, the view has not reopened
// it yet) is no longer active and the next stream does not carry it; the
// view asks for it and shows it resolved.
func TestViewCatchesUpOnResolutionsBetweenStreams(t *testing.T) {
	var streams atomic.Int64
	resolved := hop
	resolved.State, resolved.ResolvedAt = alert.StateResolved, fixedNow().Add(5*time.Minute)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"alerts": []alert.Alert{}})
	})
	mux.HandleFunc("GET /api/v1/alerts/{id...}", func(w http.ResponseWriter, r *http.Request) {
		a := hop
		if streams.Load() > 0 {
			a = resolved
		}
		json.NewEncoder(w).Encode(map[string]any{"alert": a})
	})
	mux.HandleFunc("GET /api/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if streams.Load() == 0 {
			b, _ := json.Marshal(hop)
			fmt.Fprintf(w, "event: alert\ndata: %s\n\n", b)
		}
		w.(http.Flusher).Flush()
		if streams.Add(1) == 1 {
			return // the first stream ends after the firing
		}
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	var out testbin.Logs
	v := newView(&out, srv.URL, fixedNow)
	v.retry = time.Millisecond
	stop := watching(v)
	waitFor(t, &out, "▼ resolved  HopOwnsLatency")
	stop()
	if fired, res := v.counts(); fired != 1 || res != 1 {
		t.Errorf("counted %d fired, %d resolved, want 1 and 1:\n%s", fired, res, out.String())
	}
}

// watching runs v.watch until the returned stop is called; stop returns
// once watch has.
func watching(v *view) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); v.watch(ctx) }()
	return func() { cancel(); <-done }
}
