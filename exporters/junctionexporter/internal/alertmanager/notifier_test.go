package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

// The tests run in a synctest bubble: the resend ticker, POST timeouts and
// Stop's bound run on its fake clock, and synctest.Wait lets the
// notifier's goroutines finish what they can do before the test looks.

const (
	resend  = time.Minute
	timeout = 5 * time.Second
)

// testAlert is a pool alert of entity id that became active at base.
func testAlert(base time.Time, id string, state alert.State) alert.Alert {
	a := alert.Alert{ID: id, Group: "db", Rule: "PoolSaturated", Kind: "bottleneck", Severity: "critical", State: state,
		Entity: entity.Ref{Type: entity.Service, ID: "service:shop/" + id, Name: id},
		Blame:  entity.Ref{Type: entity.Database, ID: "database:pg/orders"},
		Labels: map[string]string{"team.name": "payments"}, Annotations: map[string]string{"summary": "pool saturated"},
		ActiveAt: base, FiredAt: base.Add(time.Minute), EvaluatedAt: base.Add(time.Minute)}
	if state == alert.StateResolved {
		a.ResolvedAt = base.Add(10 * time.Minute)
	}
	return a
}

type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// fakeAM is an in-memory Alertmanager: it fails the first `failures`
// POSTs with 503, never answers while `hang` is set (until the request's
// context ends, as an Alertmanager behind a dead network), and records
// the batches it accepts.
type fakeAM struct {
	mu       sync.Mutex
	failures int
	hang     bool
	delay    time.Duration // before answering, unless the request ends first
	batches  [][]amAlert
}

func (f *fakeAM) do(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	hang := f.hang
	f.mu.Unlock()
	if hang {
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	if f.delay > 0 {
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(f.delay):
		}
	}
	rec := httptest.NewRecorder()
	f.serve(rec, req)
	return rec.Result(), nil
}

func (f *fakeAM) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/alerts" {
		http.Error(w, "wrong endpoint "+r.URL.Path, http.StatusNotFound)
		return
	}
	if f.failures > 0 {
		f.failures--
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var b []amAlert
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sort.Slice(b, func(i, j int) bool { return b[i].Labels["entity"] < b[j].Labels["entity"] })
	f.batches = append(f.batches, b)
}

func (f *fakeAM) got() [][]amAlert {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]amAlert(nil), f.batches...)
}

// start starts a notifier on the given Alertmanagers (endpoint -> fake)
// and stops it when the test ends.
func start(t *testing.T, queue int, ams map[string]*fakeAM, order ...string) *Notifier {
	t.Helper()
	n, err := New(Options{
		Endpoints: order, ResendInterval: resend, Timeout: timeout, QueueSize: queue,
		GeneratorURL: "http://127.0.0.1:8480/api/v1/alerts",
		Do: func(req *http.Request) (*http.Response, error) {
			for ep, am := range ams {
				if ep+"/api/v2/alerts" == req.URL.String() {
					return am.do(req)
				}
			}
			return nil, errors.New("no Alertmanager at " + req.URL.String())
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	t.Cleanup(func() { n.Stop(context.Background()) })
	return n
}

const amA, amB = "http://am-a:9093", "http://am-b:9093"

func TestFiringResolvedAndResend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := time.Now()
		am := &fakeAM{}
		n := start(t, 100, map[string]*fakeAM{amA: am}, amA)
		n.Notify([]alert.Alert{testAlert(base, "a", alert.StatePending), testAlert(base, "a", alert.StateFiring), testAlert(base, "b", alert.StateFiring)})
		synctest.Wait()
		got := am.got()
		if len(got) != 1 || len(got[0]) != 2 {
			t.Fatalf("batches = %+v, want one batch of the two firing alerts (pending is not sent)", got)
		}
		a := got[0][0]
		if a.Labels["alertname"] != "PoolSaturated" || a.Labels["team_name"] != "payments" || a.Labels["blame"] != "database:pg/orders" ||
			a.Labels["entity"] != "service:shop/a" || !a.StartsAt.Equal(base.Add(time.Minute)) ||
			!a.EndsAt.Equal(base.Add(time.Minute+4*resend)) || a.Annotations["summary"] != "pool saturated" {
			t.Errorf("firing alert = %+v", a)
		}
		if st := n.Stats(); st.Sent != 2 || st.Failures != 0 || st.Queue != 0 || st.Dropped != 0 {
			t.Errorf("stats = %+v", st)
		}

		time.Sleep(20 * time.Minute) // past the resolution time of testAlert, 6 resends of a and b later
		synctest.Wait()
		if got := am.got(); len(got) != 21 || len(got[20]) != 2 {
			t.Fatalf("%d batches after 20 resend intervals (last %+v), want 21 of both alerts", len(got), got[len(got)-1])
		}
		n.Notify([]alert.Alert{testAlert(base, "a", alert.StateResolved)})
		synctest.Wait()
		got = am.got()
		if r := got[len(got)-1]; len(r) != 1 || r[0].Labels["entity"] != "service:shop/a" || !r[0].EndsAt.Equal(base.Add(10*time.Minute)) {
			t.Errorf("resolved alert = %+v, want endsAt %s", r, base.Add(10*time.Minute))
		}
		// The next resend sends b, still firing, and a's resolution again.
		time.Sleep(resend)
		synctest.Wait()
		got = am.got()
		if r := got[len(got)-1]; len(r) != 2 || r[0].Labels["entity"] != "service:shop/a" || !r[0].EndsAt.Equal(base.Add(10*time.Minute)) ||
			r[1].Labels["entity"] != "service:shop/b" || !r[1].EndsAt.Equal(time.Now().Add(4*resend)) {
			t.Errorf("resend = %+v", r)
		}
		// 15 minutes after it resolved, a is no longer resent.
		time.Sleep(resolvedResendFor - 10*time.Minute)
		synctest.Wait()
		got = am.got()
		if r := got[len(got)-1]; len(r) != 1 || r[0].Labels["entity"] != "service:shop/b" {
			t.Errorf("resend 15m after the resolution = %+v, want b only", r)
		}
	})
}

// TestFailedSendIsMadeGoodByResend: the library drops a batch that failed
// (counted); the resend delivers the firing alert and the resolution once
// Alertmanager is back.
func TestFailedSendIsMadeGoodByResend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := time.Now()
		am := &fakeAM{failures: 2}
		n := start(t, 100, map[string]*fakeAM{amA: am}, amA)
		n.Notify([]alert.Alert{testAlert(base, "a", alert.StateFiring), testAlert(base.Add(-10*time.Minute), "b", alert.StateResolved)})
		synctest.Wait()
		if st := n.Stats(); st.Failures != 1 || st.Dropped != 2 || st.Sent != 0 || st.Queue != 0 {
			t.Fatalf("after a failed POST: stats = %+v, want 1 failure, 2 dropped", st)
		}
		time.Sleep(resend)
		synctest.Wait()
		if st := n.Stats(); st.Failures != 2 || st.Dropped != 4 || st.Sent != 0 {
			t.Fatalf("after a failed resend: stats = %+v", st)
		}
		time.Sleep(resend)
		synctest.Wait()
		got := am.got()
		if len(got) != 1 || len(got[0]) != 2 || got[0][0].Labels["entity"] != "service:shop/a" ||
			got[0][1].Labels["entity"] != "service:shop/b" || !got[0][1].EndsAt.Equal(base) {
			t.Fatalf("batches = %+v, want a firing and b resolved at %s", got, base)
		}
		if st := n.Stats(); st.Sent != 2 || st.Failures != 2 {
			t.Errorf("stats = %+v", st)
		}
	})
}

func TestQueueBoundDropsOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := time.Now()
		am := &fakeAM{}
		n := start(t, 2, map[string]*fakeAM{amA: am}, amA)
		n.Notify([]alert.Alert{testAlert(base, "a", alert.StateFiring), testAlert(base, "b", alert.StateFiring), testAlert(base, "c", alert.StateResolved)})
		synctest.Wait()
		got := am.got()
		if len(got) != 1 || len(got[0]) != 2 || got[0][0].Labels["entity"] != "service:shop/b" || got[0][1].Labels["entity"] != "service:shop/c" {
			t.Errorf("sent %+v, want b and c", got)
		}
		// a and b are remembered (queue_size 2), c is not.
		if st := n.Stats(); st.Dropped != 1 || st.Sent != 2 || st.NotResent != 1 {
			t.Errorf("stats = %+v, want 1 dropped from the queue, 1 not resent", st)
		}
		time.Sleep(resend)
		synctest.Wait()
		got = am.got()
		if r := got[len(got)-1]; len(r) != 2 || r[0].Labels["entity"] != "service:shop/a" || r[1].Labels["entity"] != "service:shop/b" {
			t.Errorf("resend = %+v, want a and b", r)
		}
	})
}

// TestOneOfTwoAlertmanagersDown: every alert reaches the live
// Alertmanager at once; the one that does not answer costs a timeout per
// POST, is counted, and blocks neither Notify nor Stop.
func TestOneOfTwoAlertmanagersDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := time.Now()
		up, down := &fakeAM{}, &fakeAM{hang: true}
		n := start(t, 1000, map[string]*fakeAM{amA: up, amB: down}, amA, amB)
		began := time.Now()
		n.Notify([]alert.Alert{testAlert(base, "a", alert.StateFiring), testAlert(base, "b", alert.StateFiring)})
		if d := time.Since(began); d != 0 {
			t.Errorf("Notify took %s with an Alertmanager down", d)
		}
		synctest.Wait()
		if got := up.got(); len(got) != 1 || len(got[0]) != 2 {
			t.Fatalf("live Alertmanager got %+v, want both alerts", got)
		}
		time.Sleep(timeout)
		synctest.Wait()
		st := n.Stats()
		if len(st.Endpoints) != 2 || st.Endpoints[0].Endpoint != amA || st.Endpoints[1].Endpoint != amB {
			t.Fatalf("endpoints = %+v", st.Endpoints)
		}
		if e := st.Endpoints[0]; e.Sent != 2 || e.Failures != 0 || e.Dropped != 0 {
			t.Errorf("live Alertmanager: %+v", e)
		}
		if e := st.Endpoints[1]; e.Sent != 0 || e.Failures != 1 || e.Dropped != 2 || e.Queue != 0 {
			t.Errorf("down Alertmanager after one timeout: %+v, want 1 failure, 2 dropped", e)
		}
		// The resend reaches the live one again and retries the down one.
		time.Sleep(resend - timeout)
		synctest.Wait()
		if got := up.got(); len(got) != 2 {
			t.Errorf("live Alertmanager got %d batches after a resend, want 2", len(got))
		}
		// Stop while a POST to the down one hangs and several batches
		// more wait for it: each would cost a timeout.
		var more []alert.Alert
		for i := range 3 * maxBatch {
			more = append(more, testAlert(base, fmt.Sprintf("c%03d", i), alert.StateFiring))
		}
		n.Notify(more)
		synctest.Wait()
		began = time.Now()
		n.Stop(context.Background())
		if d := time.Since(began); d > timeout {
			t.Errorf("Stop took %s with an Alertmanager down, want at most alertmanager.timeout %s", d, timeout)
		}
		got := up.got()
		if c := countAlerts(got[2:]); c != len(more) {
			t.Errorf("live Alertmanager got %d of the %d alerts notified before Stop", c, len(more))
		}
		n.Stop(context.Background()) // idempotent
		n.Notify([]alert.Alert{testAlert(base, "d", alert.StateFiring)})
		n.Resend()
		synctest.Wait()
		if after := up.got(); len(after) != len(got) {
			t.Errorf("sent after Stop: %+v", after[len(got):])
		}
	})
}

// TestStopWaitsForAnInFlightPOST: a POST under way when Stop is called
// is answered, not cut off, when it takes less than the timeout.
func TestStopWaitsForAnInFlightPOST(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		am := &fakeAM{delay: timeout / 2}
		n := start(t, 10, map[string]*fakeAM{amA: am}, amA)
		n.Notify([]alert.Alert{testAlert(time.Now(), "a", alert.StateResolved)})
		synctest.Wait() // the POST waits for its answer
		n.Stop(context.Background())
		if got := am.got(); len(got) != 1 {
			t.Errorf("Alertmanager got %+v, want the resolution sent before Stop", got)
		}
		if st := n.Stats(); st.Failures != 0 {
			t.Errorf("stats = %+v", st)
		}
	})
}

func TestStopBeforeStart(t *testing.T) {
	n, err := New(Options{Endpoints: []string{amA}, ResendInterval: resend, Timeout: timeout, QueueSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	n.Stop(context.Background())
	n.Stop(context.Background())
	n.Notify([]alert.Alert{testAlert(time.Now(), "a", alert.StateFiring)})
}

func TestPathPrefixAndBadEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var paths []string
		var mu sync.Mutex
		n, err := New(Options{
			Endpoints: []string{"https://am.example:9443/prefix/"}, ResendInterval: resend, Timeout: timeout, QueueSize: 10,
			Do: func(req *http.Request) (*http.Response, error) {
				mu.Lock()
				paths = append(paths, req.URL.String())
				mu.Unlock()
				return httptest.NewRecorder().Result(), nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		n.Start()
		n.Notify([]alert.Alert{testAlert(time.Now(), "a", alert.StateFiring)})
		synctest.Wait()
		n.Stop(context.Background())
		if len(paths) != 1 || paths[0] != "https://am.example:9443/prefix/api/v2/alerts" {
			t.Errorf("posted to %v", paths)
		}
		if st := n.Stats(); st.Sent != 1 || st.Endpoints[0].Endpoint != "https://am.example:9443/prefix/" {
			t.Errorf("stats after Stop = %+v", st)
		}
	})
	if _, err := New(Options{Endpoints: []string{"ftp:/nowhere"}, QueueSize: 1}); err == nil {
		t.Error("New accepted ftp:/nowhere")
	}
}

func countAlerts(batches [][]amAlert) int {
	c := 0
	for _, b := range batches {
		c += len(b)
	}
	return c
}

// TestNoGlobalFlagsOrMetrics: inside the collector the notifier must add
// no flags to Go's global flag set (the collector's command line is
// cobra's) and keep its metrics off Prometheus' global registry. (The
// HTTP client of prometheus/common imports go-conntrack, whose init
// registers net_conntrack_dialer_* there; every collector component built
// on prometheus/common does the same, and the collector does not expose
// that registry.)
func TestNoGlobalFlagsOrMetrics(t *testing.T) {
	n, err := New(Options{Endpoints: []string{amA}, ResendInterval: resend, Timeout: timeout, QueueSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	n.Notify([]alert.Alert{testAlert(time.Now(), "a", alert.StateFiring)})
	n.Stop(context.Background())
	flag.CommandLine.VisitAll(func(f *flag.Flag) {
		if !strings.HasPrefix(f.Name, "test.") {
			t.Errorf("global flag -%s registered", f.Name)
		}
	})
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "prometheus_notifications") {
			t.Errorf("metric %s registered globally", f.GetName())
		}
	}
	if fams, _ := n.reg.Gather(); len(fams) == 0 {
		t.Error("the notifier's own registry is empty: its metrics went elsewhere")
	}
}
