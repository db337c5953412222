package logtemplate

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkMine is one log line through each miner, cycling over a corpus
// of testdata. The Drain miner is trained on the corpus first, so the
// figure is its steady state (matching, not creating, templates).
// cpu-ns/op is the process's CPU time per line: on a shared machine wall
// time also counts waiting for a core. drain-B/template is the heap the Drain miner holds per template after
// learning the corpus (tree, tokens, text); the masker keeps no state, the
// entity's template table holds its text.
func BenchmarkMine(b *testing.B) {
	for _, name := range corpora {
		lines := readCorpus(b, name)
		b.Run("corpus="+name+"/miner=mask", func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			cpu0, i := cpuTime(), 0
			for ; b.Loop(); i++ {
				buf = Append(buf[:0], lines[i%len(lines)].line)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(i), "cpu-ns/op")
		})
		b.Run("corpus="+name+"/miner=drain", func(b *testing.B) {
			perStream := map[string]*Miner{}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&before)
			for _, l := range lines {
				m := perStream[l.stream]
				if m == nil {
					m = mustMiner(b, defaultDrain(1000))
					perStream[l.stream] = m
				}
				m.Add(l.line)
			}
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&after)
			n := 0
			for _, m := range perStream {
				n += m.Len()
			}
			ms := make([]*Miner, len(lines))
			for i, l := range lines {
				ms[i] = perStream[l.stream]
			}
			b.ReportAllocs()
			cpu0, i := cpuTime(), 0
			for ; b.Loop(); i++ {
				j := i % len(lines)
				ms[j].Add(lines[j].line)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(i), "cpu-ns/op")
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "drain-B/template")
			runtime.KeepAlive(perStream)
		})
	}
}

func mustMiner(tb testing.TB, cfg DrainConfig) *Miner {
	tb.Helper()
	m, err := NewMiner(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
