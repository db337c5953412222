package api

import (
	"fmt"
	"testing"

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
