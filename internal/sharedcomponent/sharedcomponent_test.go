package sharedcomponent

import (
	"errors"
	"testing"

	"go.opentelemetry.io/collector/component"
)

type inst struct{ n int }

func TestMap(t *testing.T) {
	var m Map[*inst]
	id := component.MustNewID("correlation")
	created := 0
	create := func() (*inst, error) { created++; return &inst{created}, nil }
	a, _ := m.Get(id, create)
	b, _ := m.Get(id, create)
	if a != b || created != 1 {
		t.Fatalf("two pipelines got %v and %v (%d created), want one shared instance", a, b, created)
	}
	other, _ := m.Get(component.MustNewIDWithName("correlation", "b"), create)
	if other == a {
		t.Fatal("another component id got the same instance")
	}
	m.Remove(id, &inst{}) // not the live instance: kept
	if c, _ := m.Get(id, create); c != a {
		t.Fatal("Remove of a stale instance dropped the live one")
	}
	m.Remove(id, a)
	if m.Has(id) {
		t.Fatal("Has after Remove")
	}
	if c, _ := m.Get(id, create); c == a {
		t.Fatal("after Remove the id still returns the removed instance")
	}
	failing := component.MustNewIDWithName("correlation", "bad")
	if _, err := m.Get(failing, func() (*inst, error) { return nil, errors.New("bad config") }); err == nil {
		t.Fatal("a failed create returned no error")
	}
	if c, _ := m.Get(failing, create); c == nil {
		t.Fatal("a failed create was stored")
	}
}
