package api

import (
	"sync"
	"sync/atomic"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/exporters/junctionexporter/internal/store"
)

// subscriberBuffer is how many alert changes a slow stream client may fall
// behind before changes are dropped for it.
const subscriberBuffer = 256

// Hub fans alert changes out to the live streams. It is bounded: at most
// maxSubscribers streams, each with a buffer of subscriberBuffer changes;
// what a full buffer cannot take is dropped and counted.
type Hub struct {
	mu             sync.Mutex
	subs           map[*subscriber]struct{}
	maxSubscribers int
	dropped        atomic.Int64
}

type subscriber struct {
	filter store.AlertFilter
	ch     chan alert.Alert
}

// NewHub returns a hub for at most maxSubscribers streams.
func NewHub(maxSubscribers int) *Hub {
	return &Hub{subs: make(map[*subscriber]struct{}), maxSubscribers: maxSubscribers}
}

// Publish sends alert changes to every stream whose filter they pass.
func (h *Hub) Publish(alerts []alert.Alert) {
	if len(alerts) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		for i := range alerts {
			if !s.filter.MatchRecord(&alerts[i]) {
				continue
			}
			a := alerts[i]
			a.Evidence = alert.Evidence{}
			select {
			case s.ch <- a:
			default:
				h.dropped.Add(1)
			}
		}
	}
}

// Dropped returns how many changes were dropped for slow streams.
func (h *Hub) Dropped() int64 { return h.dropped.Load() }

// Subscribers returns the number of open streams.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func (h *Hub) subscribe(f store.AlertFilter) (*subscriber, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= h.maxSubscribers {
		return nil, false
	}
	s := &subscriber{filter: f, ch: make(chan alert.Alert, subscriberBuffer)}
	h.subs[s] = struct{}{}
	return s, true
}

func (h *Hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}
