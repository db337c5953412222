package realapp

import (
	"strings"
	"testing"
	"time"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
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

// TestFirings: the stream's state changes become firings with the blame
// of their firing record; an activation that never fired is listed apart.
func TestFirings(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	rec := func(state alert.State, blame string, active, fired, resolved time.Duration) alert.Alert {
		a := alert.Alert{ID: "g/R@service:ns/a", Rule: "R", State: state,
			Entity: entity.Ref{ID: "service:ns/a"}, Blame: entity.Ref{ID: blame}, ActiveAt: t0.Add(active)}
		if fired > 0 {
			a.FiredAt = t0.Add(fired)
		}
		if resolved > 0 {
			a.ResolvedAt = t0.Add(resolved)
		}
		return a
	}
	fs, pendingOnly := firings([]alert.Alert{
		rec(alert.StatePending, "service:ns/b", 10*time.Second, 0, 0),
		rec(alert.StateFiring, "service:ns/b", 10*time.Second, 70*time.Second, 0),
		rec(alert.StateResolved, "service:ns/a", 10*time.Second, 70*time.Second, 130*time.Second),
		rec(alert.StatePending, "service:ns/a", 200*time.Second, 0, 0),
		rec(alert.StateResolved, "service:ns/a", 200*time.Second, 0, 230*time.Second),
	})
	if len(fs) != 1 || fs[0].Blame != "service:ns/b" || !fs[0].Fired.Equal(t0.Add(70*time.Second)) ||
		!fs[0].Resolved.Equal(t0.Add(130*time.Second)) || fs[0].ResolvedBlame != "service:ns/a" {
		t.Errorf("firings %+v", fs)
	}
	if len(pendingOnly) != 1 || !strings.Contains(pendingOnly[0], "pending 01:03:20") {
		t.Errorf("pending only %q", pendingOnly)
	}
}

// TestBlameMovedWhileFaultOn: an expected firing whose blame moves to
// another entity while the fault is on is wrong; after the fix it is a
// note.
func TestBlameMovedWhileFaultOn(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	f := Firing{Alert: "g/R@service:ns/a", Blame: "service:ns/b", Pending: t0.Add(10 * time.Second),
		Fired: t0.Add(70 * time.Second), Expected: true,
		Blames: []BlameSeen{{t0.Add(72 * time.Second), "service:ns/b"}, {t0.Add(76 * time.Second), "service:ns/c"}}}
	r := Result{Truth: Truth{Blame: "service:ns/b"}, Blamed: "service:ns/b", Firings: []Firing{f},
		FaultAt: t0, FixAt: t0.Add(80 * time.Second)}
	if got := strings.Join(r.Problems(), "\n"); !strings.Contains(got, "blamed service:ns/c at 01:01:16 while the fault was on") {
		t.Errorf("problems %q", got)
	}
	r.FixAt = t0.Add(75 * time.Second)
	if got := r.Problems(); len(got) != 0 {
		t.Errorf("problems %q after the fix, want none", got)
	}
	if got := strings.Join(r.Notes(), "\n"); !strings.Contains(got, "after the fix") {
		t.Errorf("notes %q", got)
	}
}

// TestExpects: only a firing that blames the true bottleneck while the
// fault is on is expected.
func TestExpects(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	r := Result{Truth: Truth{Blame: "database:postgresql/pg:5432/shop"}, FaultAt: t0, FixAt: t0.Add(2 * time.Minute)}
	for _, tc := range []struct {
		name  string
		blame string
		fired time.Duration
		want  bool
	}{
		{"right, during the fault", "database:postgresql/pg:5432/shop", 75 * time.Second, true},
		{"wrong blame", "service:shop/inventory", 75 * time.Second, false},
		{"before the fault", "database:postgresql/pg:5432/shop", -5 * time.Second, false},
		{"after the fix", "database:postgresql/pg:5432/shop", 2*time.Minute + time.Second, false},
	} {
		f := Firing{Blame: tc.blame, Pending: t0.Add(-10 * time.Second), Fired: t0.Add(tc.fired)}
		if got := r.expects(f); got != tc.want {
			t.Errorf("%s: expects = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestWriteMarkdown: the table row says what was measured, and what went
// wrong is listed under it.
func TestWriteMarkdown(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	ok := Result{Fault: FaultDBPool, Truth: Truth{Blame: "database:postgresql/pg:5432/shop"},
		Precision: 1, Recall: 1, Blamed: "database:postgresql/pg:5432/shop", Share: 0.97, ShareOf: "latency.share of x -> y",
		Firings: []Firing{{Rule: "HopOwnsLatency", Expected: true}},
		FaultAt: t0, FixAt: t0.Add(2 * time.Minute), FiredAfter: 44 * time.Second, PendingBefore: 16 * time.Second,
		ResolvedAfter: time.Minute}
	bad := Result{Fault: FaultWorkerPool, Truth: Truth{Blame: "service:ns/orders"}, Precision: 0.75, Recall: 0.75,
		Missing: []Edge{{"service:ns/orders", "service:ns/inventory", "grpc"}}, FaultAt: t0, FixAt: t0.Add(time.Minute)}
	var b strings.Builder
	if err := WriteMarkdown(&b, &Report{Results: []Result{ok, bad}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| db-pool: " + FaultDBPool.Describe() + " | 1.00 | 1.00 | `database:postgresql/pg:5432/shop` | yes | HopOwnsLatency ×1 | 0.97 | 44s (pending 16s before the fault) | 1m0s | 0 |",
		"| worker-pool: " + FaultWorkerPool.Describe() + " | 0.75 | 0.75 | none | no | - | - | - | - | 0 |",
		"- worker-pool: missing edge service:ns/orders -> service:ns/inventory #grpc",
		"- worker-pool: no alert fired blaming service:ns/orders",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
}
