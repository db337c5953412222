package logtemplate

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The corpus in testdata: one line per log record, "stream<TAB>label<TAB>line".
// The stream is the entity whose templates the line joins (a miner per
// stream); the label is the line's true template, assigned by hand from the
// call site that printed it (testdata/README.md).
var corpora = []string{"scenarios", "nginx_access", "nginx_access_json", "nginx_error", "postgresql"}

type corpusLine struct{ stream, label, line string }

// header matches the line prefix NGINX's error log and PostgreSQL (with
// Debian's log_line_prefix '%m [%p] %q%u@%d ') write before the message.
var header = regexp.MustCompile(`^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: (\*\d+ )?|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[\d+\] (\S+@\S+ )?)`)

// messageOnly returns the lines without their header, as a filelog
// receiver with a regex_parser that keeps only the message would send them.
func messageOnly(lines []corpusLine) []corpusLine {
	out := make([]corpusLine, len(lines))
	for i, l := range lines {
		l.line = header.ReplaceAllString(l.line, "")
		out[i] = l
	}
	return out
}

func readCorpus(tb testing.TB, name string) []corpusLine {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".tsv"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []corpusLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		p := strings.SplitN(sc.Text(), "\t", 3)
		if len(p) != 3 || p[0] == "" || p[1] == "" {
			tb.Fatalf("%s.tsv:%d: want stream<TAB>label<TAB>line", name, n)
		}
		out = append(out, corpusLine{p[0], p[1], p[2]})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(out) == 0 {
		tb.Fatalf("%s.tsv is empty", name)
	}
	return out
}

// A lineMiner assigns each line of one stream a template key.
type lineMiner interface{ key(line string) string }

type maskMiner struct{}

func (maskMiner) key(line string) string { return Of(line) }

type drainMiner struct{ m *Miner }

func (d drainMiner) key(line string) string { return strconv.FormatUint(d.m.Add(line).ID, 10) }

func newDrain(tb testing.TB, cfg DrainConfig) func() lineMiner {
	return func() lineMiner {
		m, err := NewMiner(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		return drainMiner{m}
	}
}

func defaultDrain(max int) DrainConfig {
	return DrainConfig{MaxTemplates: max, Depth: DefaultDepth, Similarity: DefaultSimilarity, MaxChildren: DefaultMaxChildren}
}

// quality compares a miner's grouping of the corpus with the true templates.
type quality struct {
	lines, truth, found int
	// correct: lines whose template holds exactly the lines of their true
	// template (grouping accuracy, Zhu et al., ICSE-SEIP 2019, is
	// correct/lines). merged: found templates holding lines of more than
	// one true template. split: true templates spread over more than one
	// found template.
	correct, merged, split int
}

func (q quality) accuracy() float64 { return float64(q.correct) / float64(q.lines) }

func measure(lines []corpusLine, newMiner func() lineMiner) quality {
	type key struct{ stream, k string }
	miners := map[string]lineMiner{}
	pred := make([]key, len(lines))
	for i, l := range lines {
		m := miners[l.stream]
		if m == nil {
			m = newMiner()
			miners[l.stream] = m
		}
		pred[i] = key{l.stream, m.key(l.line)}
	}
	labelsOf := map[key]map[string]int{} // found template -> true label -> lines
	keysOf := map[key]map[key]bool{}     // true template -> found templates
	size := map[key]int{}                // true template -> lines
	for i, l := range lines {
		t := key{l.stream, l.label}
		if labelsOf[pred[i]] == nil {
			labelsOf[pred[i]] = map[string]int{}
		}
		labelsOf[pred[i]][l.label]++
		if keysOf[t] == nil {
			keysOf[t] = map[key]bool{}
		}
		keysOf[t][pred[i]] = true
		size[t]++
	}
	q := quality{lines: len(lines), truth: len(size), found: len(labelsOf)}
	for p, labels := range labelsOf {
		if len(labels) > 1 {
			q.merged++
			continue
		}
		for label, n := range labels {
			if n == size[key{p.stream, label}] {
				q.correct += n
			}
		}
	}
	for _, ks := range keysOf {
		if len(ks) > 1 {
			q.split++
		}
	}
	return q
}

func (q quality) String() string {
	return fmt.Sprintf("%d lines, %d true templates, %d found, %d merged, %d split, grouping accuracy %.3f",
		q.lines, q.truth, q.found, q.merged, q.split, q.accuracy())
}
