package series

import (
	"testing"
	"time"
)

var t0 = time.Unix(1767225600, 0)

func TestIncreaseCountsResets(t *testing.T) {
	var s Series
	for i, v := range []float64{100, 130, 160, 10, 40} { // a restart after 160
		s.Add(t0.Add(time.Duration(i)*15*time.Second), v)
	}
	at := t0.Add(60 * time.Second)
	inc, secs, ok := s.Increase(at, 5*time.Minute)
	if !ok || inc != 30+30+10+30 || secs != 60 {
		t.Errorf("Increase = %v over %vs (ok %v), want 100 over 60s", inc, secs, ok)
	}
	// The 30 s window: samples at 30 s, 45 s, 60 s.
	inc, secs, ok = s.Increase(at, 30*time.Second)
	if !ok || inc != 40 || secs != 30 {
		t.Errorf("Increase(30s) = %v over %vs (ok %v), want 40 over 30s", inc, secs, ok)
	}
	if _, _, ok := s.Increase(t0, time.Minute); ok {
		t.Error("one sample has no increase")
	}
}

func TestChangeAndLast(t *testing.T) {
	var s Series
	s.Add(t0, 100)
	s.Add(t0.Add(30*time.Second), 400)
	d, secs, ok := s.Change(t0.Add(30*time.Second), time.Minute)
	if !ok || d != 300 || secs != 30 {
		t.Errorf("Change = %v over %vs, want 300 over 30s", d, secs)
	}
	v, at, ok := s.Last()
	if !ok || v != 400 || !at.Equal(t0.Add(30*time.Second)) {
		t.Errorf("Last = %v at %v", v, at)
	}
}

func TestSamplesCloserThanMinSpacingReplaceTheLast(t *testing.T) {
	var s Series
	s.Add(t0, 1)
	s.Add(t0.Add(20*time.Second), 2)
	for i := 1; i <= 50; i++ { // a 100 ms scrape interval for 5 s
		s.Add(t0.Add(20*time.Second+time.Duration(i)*100*time.Millisecond), float64(2+i))
	}
	if s.n != 3 {
		t.Errorf("kept %d samples, want 3 (the last one replaced)", s.n)
	}
	if v, _, _ := s.Last(); v != 52 {
		t.Errorf("last = %v, want 52", v)
	}
	// The ring holds Samples samples and forgets the oldest.
	for i := 0; i < 2*Samples; i++ {
		s.Add(t0.Add(time.Minute+time.Duration(i)*MinSpacing), float64(i))
	}
	if s.n != Samples {
		t.Errorf("kept %d samples, want %d", s.n, Samples)
	}
	// Out-of-order samples are ignored.
	s.Add(t0, -1)
	if v, _, _ := s.Last(); v != float64(2*Samples-1) {
		t.Errorf("an old sample replaced the newest: last = %v", v)
	}
}
