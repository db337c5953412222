package logtemplate

import (
	"fmt"
	"testing"
)

// TestQuality measures the masker (the miner Junction runs) and the Drain
// reference miner against the hand-labelled corpus; the figures are the
// ones docs/benchmarks.md shows, so a change to either miner that changes
// its grouping fails here until the docs say so.
func TestQuality(t *testing.T) {
	want := map[string][2]quality{ // corpus -> {mask, drain}
		"scenarios": {
			{lines: 448, truth: 16, found: 23, correct: 339, merged: 0, split: 2},
			{lines: 448, truth: 16, found: 16, correct: 448, merged: 0, split: 0},
		},
		"nginx_access": {
			{lines: 277, truth: 1, found: 1, correct: 277},
			{lines: 277, truth: 1, found: 1, correct: 277},
		},
		"nginx_access_json": {
			{lines: 120, truth: 1, found: 1, correct: 120},
			{lines: 120, truth: 1, found: 1, correct: 120},
		},
		"nginx_error": {
			{lines: 184, truth: 17, found: 23, correct: 20, merged: 0, split: 5},
			{lines: 184, truth: 17, found: 16, correct: 5, merged: 4, split: 5},
		},
		"postgresql": {
			{lines: 392, truth: 53, found: 74, correct: 272, merged: 0, split: 6},
			{lines: 392, truth: 53, found: 57, correct: 266, merged: 6, split: 3},
		},
		// Without the header (Drain's intended input) Drain merges nothing.
		"nginx_error/message": {
			{lines: 184, truth: 17, found: 23, correct: 20, merged: 0, split: 5},
			{lines: 184, truth: 17, found: 23, correct: 20, merged: 0, split: 5},
		},
		"postgresql/message": {
			{lines: 392, truth: 53, found: 74, correct: 272, merged: 0, split: 6},
			{lines: 392, truth: 53, found: 67, correct: 316, merged: 0, split: 3},
		},
	}
	type run struct {
		name  string
		lines []corpusLine
	}
	var runs []run
	for _, name := range corpora {
		runs = append(runs, run{name, readCorpus(t, name)})
	}
	for _, name := range []string{"nginx_error", "postgresql"} {
		runs = append(runs, run{name + "/message", messageOnly(readCorpus(t, name))})
	}
	for _, r := range runs {
		name, lines := r.name, r.lines
		got := [2]quality{
			measure(lines, func() lineMiner { return maskMiner{} }),
			measure(lines, newDrain(t, defaultDrain(50))),
		}
		for i, miner := range []string{"mask", "drain"} {
			t.Logf("%-17s %-5s %v", name, miner, got[i])
			if got[i] != want[name][i] {
				t.Errorf("%s, %s: %v\nwant %v", name, miner, got[i], want[name][i])
			}
		}
	}
}

// The masker never puts lines of two true templates into one template on
// the corpus: a template a user sees holds one kind of line.
func TestMaskerNeverMerges(t *testing.T) {
	for _, name := range corpora {
		if q := measure(readCorpus(t, name), func() lineMiner { return maskMiner{} }); q.merged != 0 {
			t.Errorf("%s: %d templates hold lines of more than one true template", name, q.merged)
		}
	}
}

func TestDrainGeneralises(t *testing.T) {
	m := mustMiner(t, defaultDrain(10))
	a := m.Add("login failed for alice from office")
	b := m.Add("login failed for bob from office")
	if !a.New || b.New || b.ID != a.ID || !b.Changed || b.Template != "login failed for <*> from office" {
		t.Fatalf("first %+v, second %+v", a, b)
	}
	if c := m.Add("disk full on /var"); c.ID == a.ID || !c.New {
		t.Fatalf("unrelated line joined the template: %+v", c)
	}
}

func TestDrainBounded(t *testing.T) {
	m := mustMiner(t, defaultDrain(3))
	var evicted []uint64
	for i := range 10 {
		r := m.Add(fmt.Sprintf("event%c happened", 'a'+i)) // distinct first words: distinct templates
		if r.Evicted != 0 {
			evicted = append(evicted, r.Evicted)
		}
	}
	if m.Len() != 3 || m.Evicted() != 7 || len(evicted) != 7 || evicted[0] != 1 {
		t.Fatalf("len %d, evicted %d %v; want 3 kept, 7 evicted oldest first", m.Len(), m.Evicted(), evicted)
	}
	// The tree keeps no node of an evicted template.
	nodes := 0
	var walk func(n *node)
	walk = func(n *node) {
		for _, c := range n.children {
			nodes++
			walk(c)
		}
	}
	walk(m.root)
	if nodes > 3*(DefaultDepth-1) {
		t.Fatalf("%d tree nodes for 3 templates", nodes)
	}
	if _, err := NewMiner(DrainConfig{MaxTemplates: 0, Depth: 4, Similarity: 0.5, MaxChildren: 100}); err == nil {
		t.Fatal("max templates 0 accepted")
	}
}

// Other similarity thresholds do not remove Drain's wrong templates on the
// real logs without losing its gain on the scenarios (docs/benchmarks.md).
func TestDrainThresholds(t *testing.T) {
	tests := []struct {
		corpus            string
		similarity        float64
		wantMerged, split int
	}{
		{"postgresql", 0.6, 3, 3},
		{"nginx_error", 0.6, 1, 5},
		{"postgresql", 0.7, 1, 4},
		{"scenarios", 0.6, 0, 0},
		{"scenarios", 0.7, 0, 2},
	}
	for _, tt := range tests {
		cfg := defaultDrain(50)
		cfg.Similarity = tt.similarity
		q := measure(readCorpus(t, tt.corpus), newDrain(t, cfg))
		if q.merged != tt.wantMerged || q.split != tt.split {
			t.Errorf("%s at %.1f: %v; want %d merged, %d split", tt.corpus, tt.similarity, q, tt.wantMerged, tt.split)
		}
	}
}
