package rules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/junction-sre/junction/entity"
)

// benchRuleTemplates are rule shapes like the packs': thresholds,
// baselines, presence tests and edge filters. %d varies the threshold.
var benchRuleTemplates = []string{
	`service.latency.p99_ms > 1.5 * service.baseline.latency.p99_ms && service.latency.p99_ms > %d.0`,
	`service.error.ratio > 0.0%d && service.request.rate > 1.0`,
	`has(service.cpu.throttling_ratio) && service.cpu.throttling_ratio > 0.%d`,
	`service.downstream.exists(e, e.latency.share > 0.%d && e.server.error.ratio > 0.05)`,
	`(service.slo.burn_rate_5m > 1%d.0 && service.slo.burn_rate_1h > 14.4) || (service.slo.burn_rate_30m > 6.0 && service.slo.burn_rate_6h > 6.0)`,
}

func writeBenchRules(b *testing.B, n int) string {
	var sb strings.Builder
	sb.WriteString("groups:\n  - name: bench\n    rules:\n")
	for i := range n {
		fmt.Fprintf(&sb, "      - alert: R%d\n        kind: bottleneck\n        for_each: service\n        for: 1m\n        expr: %q\n",
			i, fmt.Sprintf(benchRuleTemplates[i%len(benchRuleTemplates)], 1+i/len(benchRuleTemplates)))
		if i%5 == 0 {
			sb.WriteString("        annotations:\n          summary: \"{{ service.name }} p99 {{ service.latency.p99_ms }}ms\"\n")
		}
	}
	p := filepath.Join(b.TempDir(), "bench.yaml")
	if err := os.WriteFile(p, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

// benchSnapshot has n services, each with the RED, resource and SLO
// features, baselines, and two downstream edges.
func benchSnapshot(n int) *entity.Snapshot {
	s := &entity.Snapshot{Time: t0}
	for i := range n {
		// One service in a hundred is unhealthy, as in a real fleet.
		f := 0.05
		if i%100 == 0 {
			f = 0.99
		}
		e := svc(fmt.Sprintf("svc-%05d", i), map[string]float64{
			"request.rate": 50 + 100*f, "error.ratio": f / 10, "latency.p50_ms": 20 + 10*f,
			"latency.p90_ms": 60 + 50*f, "latency.p99_ms": 100 + 400*f, "cpu.throttling_ratio": f / 2,
			"cpu.request_utilization": f, "slo.burn_rate_5m": 20 * f, "slo.burn_rate_1h": 16 * f,
			"slo.burn_rate_30m": 7 * f, "slo.burn_rate_6h": 6.5 * f, "cost.per_1k_requests": 1 + f,
		})
		e.Baseline = map[string]float64{"latency.p99_ms": 150, "error.ratio": 0.01, "request.rate": 80}
		s.Entities = append(s.Entities, e)
	}
	for i := range n {
		for _, d := range []int{1, 7} {
			s.Edges = append(s.Edges, entity.Edge{
				Source: s.Entities[i].ID, Target: s.Entities[(i+d)%n].ID, Type: entity.EdgeHTTP,
				Features: map[string]float64{"latency.share": float64((i+d)%10) / 10, "latency.p99_ms": 80},
			})
		}
	}
	s.Sort()
	return s
}

// BenchmarkEval evaluates 50 rules over 10,000 services (500,000 rule
// evaluations per op) with the CEL cost limit off, on, and on with every
// expression tracked at run time (no static-estimate shortcut).
//
//	go test ./rules -run '^$' -bench BenchmarkEval -benchmem -count 6
func BenchmarkEval(b *testing.B) {
	snap := benchSnapshot(10_000)
	for _, bc := range []struct {
		name     string
		limit    uint64
		trackAll bool
	}{{"costlimit=off", 0, false}, {"costlimit=on", DefaultCostLimit, false}, {"costlimit=on-trackall", DefaultCostLimit, true}} {
		b.Run(bc.name, func(b *testing.B) {
			alwaysTrackCost = bc.trackAll
			defer func() { alwaysTrackCost = false }()
			m, err := NewManager(Config{Files: []string{writeBenchRules(b, 50)}, CostLimit: bc.limit}, Settings{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			alerts, status := m.Eval(ctx, snap, t0)
			for _, s := range status {
				if s.Health != "ok" {
					b.Fatalf("%s: %s", s.Rule, s.LastError)
				}
			}
			if len(alerts) == 0 {
				b.Fatal("no rule fired; the benchmark would not exercise alert bookkeeping")
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			i := 0
			for b.Loop() {
				i++
				m.Eval(ctx, snap, t0.Add(time.Duration(i)*15*time.Second))
			}
			// CPU time (user + system, all threads including GC) per
			// evaluation: on a shared machine wall time also counts time
			// spent waiting for a core.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(i), "cpu-ns/op")
			b.ReportMetric(float64(len(alerts)), "alerts/op")
		})
	}
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
