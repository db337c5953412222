// Package series keeps the recent samples of metric series joined onto an
// entity, and answers last values, increases and changes over trailing
// windows, summed over the series of one input.
package series

import "time"

// MinSpacing is the minimum time between two kept samples of a series: a
// newer sample within MinSpacing of the last kept one replaces it, so that
// a ring of Samples samples covers at least Samples*MinSpacing.
const MinSpacing = 10 * time.Second

// Samples is the ring length per series: with MinSpacing it covers the
// 5-minute window with room to spare.
const Samples = 40

type sample struct {
	t int64
	v float64
}

// Series is the recent history of one series.
type Series struct {
	ring [Samples]sample
	n    int // samples stored
	head int // index of the newest sample
}

// Add records v at t. Samples older than the newest are ignored.
func (s *Series) Add(t time.Time, v float64) {
	n := t.UnixNano()
	if s.n > 0 {
		last := &s.ring[s.head]
		if n < last.t {
			return
		}
		if s.n > 1 {
			prev := &s.ring[(s.head+Samples-1)%Samples]
			if time.Duration(n-prev.t) < MinSpacing {
				*last = sample{n, v}
				return
			}
		}
	}
	s.head = (s.head + 1) % Samples
	s.ring[s.head] = sample{n, v}
	if s.n < Samples {
		s.n++
	}
}

// Last returns the newest value and its time.
func (s *Series) Last() (float64, time.Time, bool) {
	if s.n == 0 {
		return 0, time.Time{}, false
	}
	l := s.ring[s.head]
	return l.v, time.Unix(0, l.t), true
}

// Increase returns the increase of a cumulative counter over the window of
// length d ending at at, counting a decrease as a reset (as Prometheus
// increase does), and the seconds the samples span. ok is false with fewer
// than two samples in the window.
func (s *Series) Increase(at time.Time, d time.Duration) (inc, secs float64, ok bool) {
	end, start := at.UnixNano(), at.Add(-d).UnixNano()
	var newer *sample
	var first, last int64
	pairs := 0
	for i := 0; i < s.n; i++ {
		c := &s.ring[(s.head+Samples-i)%Samples]
		if c.t > end {
			continue
		}
		if newer != nil {
			if newer.v >= c.v {
				inc += newer.v - c.v
			} else {
				inc += newer.v
			}
			first = c.t
			pairs++
		} else {
			last = c.t
		}
		newer = c
		if c.t <= start {
			break
		}
	}
	if pairs == 0 {
		return 0, 0, false
	}
	return inc, time.Duration(last - first).Seconds(), true
}

// Change returns newest - oldest value of a gauge over the window and the
// seconds between them. ok is false with fewer than two samples.
func (s *Series) Change(at time.Time, d time.Duration) (delta, secs float64, ok bool) {
	end, start := at.UnixNano(), at.Add(-d).UnixNano()
	var newest, oldest *sample
	for i := 0; i < s.n; i++ {
		c := &s.ring[(s.head+Samples-i)%Samples]
		if c.t > end {
			continue
		}
		if newest == nil {
			newest = c
		}
		oldest = c
		if c.t <= start {
			break
		}
	}
	if newest == nil || oldest == newest {
		return 0, 0, false
	}
	return newest.v - oldest.v, time.Duration(newest.t - oldest.t).Seconds(), true
}
