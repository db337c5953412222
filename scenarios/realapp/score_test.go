package realapp

import (
	"strings"
	"testing"
	"time"
)

// TestResultProblems: a result is clean only when the edges match, the
// right entity is blamed and nothing else fired or stayed active.
func TestResultProblems(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	truth := Truth{
		Fault:     FaultWorkerPool,
		Namespace: "ns",
		Entities:  []string{"service:ns/a", "service:ns/b"},
		Edges:     []Edge{{"service:ns/a", "service:ns/b", "http"}},
		Blame:     "service:ns/b",
	}
	right := Firing{Alert: "bottleneck/HopOwnsLatency@service:ns/a", Blame: "service:ns/b",
		Pending: t0.Add(10 * time.Second), Fired: t0.Add(70 * time.Second), Expected: true}
	clean := func() Result {
		return Result{Fault: FaultWorkerPool, Truth: truth, Edges: truth.Edges, Precision: 1, Recall: 1,
			Firings: []Firing{right}, Blamed: truth.Blame, FaultAt: t0, FixAt: t0.Add(80 * time.Second)}
	}
	for _, tc := range []struct {
		name   string
		change func(*Result)
		want   string
	}{
		{"clean", func(*Result) {}, ""},
		{"wrong blame", func(r *Result) {
			r.Blamed = ""
			r.Firings[0].Blame, r.Firings[0].Expected = "service:ns/a", false
		}, "no alert fired blaming service:ns/b"},
		{"other firing", func(r *Result) {
			r.Firings = append(r.Firings, Firing{Alert: "cost/X@service:ns/a", Blame: "service:ns/a"})
		}, "unexpected firing cost/X@service:ns/a"},
		{"missing edge", func(r *Result) { r.Missing = truth.Edges }, "missing edge service:ns/a -> service:ns/b #http"},
		{"duplicate node", func(r *Result) { r.ExtraNodes = []string{"service:/127.0.0.1:1"} }, "extra node service:/127.0.0.1:1"},
		{"unresolved", func(r *Result) { r.Unresolved = []string{right.Alert} }, "not resolved after the fix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := clean()
			tc.change(&r)
			got := strings.Join(r.Problems(), "\n")
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("problems %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDiffEdges(t *testing.T) {
	a, b, c := Edge{"x", "y", "http"}, Edge{"y", "z", "grpc"}, Edge{"y", "z", "http"}
	missing, extra := diffEdges([]Edge{a, b}, []Edge{a, c})
	if len(missing) != 1 || missing[0] != b || len(extra) != 1 || extra[0] != c {
		t.Errorf("missing %v extra %v", missing, extra)
	}
}

func TestParseFault(t *testing.T) {
	for _, f := range append([]Fault{FaultNone}, Faults...) {
		if got, err := ParseFault(string(f)); err != nil || got != f {
			t.Errorf("ParseFault(%q) = %q, %v", f, got, err)
		}
	}
	if _, err := ParseFault("slow"); err == nil || !strings.Contains(err.Error(), "db-pool") {
		t.Errorf("ParseFault(slow): %v, want an error listing the faults", err)
	}
}
