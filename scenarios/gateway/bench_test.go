package gateway

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKafkaPath moves the short bottleneck plan's traces (about
// 13 000 spans) per op through the agent's kafka exporter, the in-process
// broker and one gateway replica's kafka receiver into its correlation
// processor. Everything runs in this process, the broker included, so the
// CPU per span is an upper bound of what the gateway's consume path costs.
func BenchmarkKafkaPath(b *testing.B) {
	batches, sent := recordTraces(b, shortPlan(b))
	broker := startBroker(b)
	brokers := broker.ListenAddrs()
	r := startReplica(b, "r0", brokers)
	waitGroupStable(b, broker, membersPerReplica)
	te, me, le := agentExporter(b, brokers)
	b.Cleanup(func() {
		for _, c := range []interface{ Shutdown(context.Context) error }{te, me, le} {
			_ = c.Shutdown(context.Background())
		}
	})
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		_, before := r.seen.snapshot()
		for _, td := range batches {
			if err := te.ConsumeTraces(context.Background(), td); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, "the replica to take the batch", time.Minute, func() (bool, string) {
			_, n := r.seen.snapshot()
			return n-before >= sent, fmt.Sprintf("%d of %d spans", n-before, sent)
		})
	}
	b.StopTimer()
	spans := float64(sent * b.N)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, "ns/span")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/spans, "cpu-ns/span")
}
