package alertmanager

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func testAlert(id string, state alert.State) alert.Alert {
	a := alert.Alert{ID: id, Group: "db", Rule: "PoolSaturated", Kind: "bottleneck", Severity: "critical", State: state,
		Entity: entity.Ref{Type: entity.Service, ID: "service:shop/" + id, Name: id},
		Blame:  entity.Ref{Type: entity.Database, ID: "database:pg/orders"},
		Labels: map[string]string{"team.name": "payments"}, Annotations: map[string]string{"summary": "pool saturated"},
		ActiveAt: t0, FiredAt: t0.Add(time.Minute), EvaluatedAt: t0.Add(time.Minute)}
	if state == alert.StateResolved {
		a.ResolvedAt = t0.Add(10 * time.Minute)
	}
	return a
}

// fakeAM fails the first `failures` POSTs with 503, then records batches.
type fakeAM struct {
	mu       sync.Mutex
	failures int
	batches  [][]Alert
}

func (f *fakeAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/alerts" {
		http.Error(w, "wrong endpoint", http.StatusNotFound)
		return
	}
	if f.failures > 0 {
		f.failures--
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var b []Alert
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.batches = append(f.batches, b)
}

func newTest(t *testing.T, am *fakeAM, queue int) (*Notifier, *[]time.Duration) {
	srv := httptest.NewServer(am)
	t.Cleanup(srv.Close)
	var waits []time.Duration
	n := New(Options{
		Endpoint: srv.URL, ResendInterval: time.Minute, Timeout: 5 * time.Second, QueueSize: queue,
		InitialBackoff: time.Second, MaxBackoff: 4 * time.Second,
		Now:  func() time.Time { return t0.Add(20 * time.Minute) },
		Wait: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil },
	})
	return n, &waits
}

func TestRetryWithBackoffLosesNothing(t *testing.T) {
	am := &fakeAM{failures: 4}
	n, waits := newTest(t, am, 100)
	n.Notify([]alert.Alert{testAlert("a", alert.StatePending), testAlert("a", alert.StateFiring), testAlert("b", alert.StateFiring)})
	if err := n.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	if len(*waits) != len(want) {
		t.Fatalf("waits = %v, want %v", *waits, want)
	}
	for i := range want {
		if (*waits)[i] != want[i] {
			t.Fatalf("waits = %v, want %v", *waits, want)
		}
	}
	if len(am.batches) != 1 || len(am.batches[0]) != 2 {
		t.Fatalf("batches = %+v, want one batch of the two firing alerts (pending is not sent)", am.batches)
	}
	got := am.batches[0][0]
	if got.Labels["alertname"] != "PoolSaturated" || got.Labels["team_name"] != "payments" || got.Labels["blame"] != "database:pg/orders" ||
		!got.StartsAt.Equal(t0.Add(time.Minute)) || !got.EndsAt.Equal(t0.Add(24*time.Minute)) || got.Annotations["summary"] != "pool saturated" {
		t.Errorf("firing alert = %+v", got)
	}
	if st := n.Stats(); st.Sent != 2 || st.Failures != 4 || st.Queue != 0 || st.Dropped != 0 {
		t.Errorf("stats = %+v", st)
	}

	n.Notify([]alert.Alert{testAlert("a", alert.StateResolved)})
	if err := n.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := am.batches[1][0]; !r.EndsAt.Equal(t0.Add(10*time.Minute)) || r.Labels["entity"] != "service:shop/a" {
		t.Errorf("resolved alert = %+v", r)
	}
	// Resend sends what is still firing: b only.
	n.Resend()
	if err := n.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := am.batches[2]; len(r) != 1 || r[0].Labels["entity"] != "service:shop/b" {
		t.Errorf("resend = %+v", r)
	}
}

func TestQueueBoundDropsOldest(t *testing.T) {
	am := &fakeAM{}
	n, _ := newTest(t, am, 2)
	n.Notify([]alert.Alert{testAlert("a", alert.StateFiring), testAlert("b", alert.StateFiring), testAlert("c", alert.StateResolved)})
	if st := n.Stats(); st.Dropped != 1 || st.Queue != 2 {
		t.Fatalf("stats = %+v", st)
	}
	if err := n.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(am.batches[0]) != 2 || am.batches[0][0].Labels["entity"] != "service:shop/b" {
		t.Errorf("sent %+v, want b and c", am.batches)
	}
}

func TestRejectedBatchIsDroppedNotRetried(t *testing.T) {
	am := &fakeAM{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "start time must be before end time", http.StatusBadRequest)
	}))
	defer srv.Close()
	n, waits := newTest(t, am, 10)
	n.opts.Endpoint = srv.URL
	n.Notify([]alert.Alert{testAlert("a", alert.StateFiring)})
	if err := n.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := n.Stats(); st.Dropped != 1 || st.Failures != 1 || st.Sent != 0 || st.Queue != 0 || len(*waits) != 0 {
		t.Fatalf("stats = %+v, waits %v", st, *waits)
	}
}

func TestDrainStopsWithContext(t *testing.T) {
	am := &fakeAM{failures: 1 << 30}
	n, _ := newTest(t, am, 10)
	ctx, cancel := context.WithCancel(context.Background())
	n.opts.Wait = func(ctx context.Context, _ time.Duration) error { cancel(); return ctx.Err() }
	n.Notify([]alert.Alert{testAlert("a", alert.StateFiring)})
	if err := n.Drain(ctx); err == nil {
		t.Fatal("Drain returned nil while Alertmanager was down and the context ended")
	}
	if st := n.Stats(); st.Queue != 1 {
		t.Fatalf("alert left the queue without being sent: %+v", st)
	}
}
