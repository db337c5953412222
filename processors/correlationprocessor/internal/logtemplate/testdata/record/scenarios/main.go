// Command scenarios prints the log lines of the scenario simulator's default
// plan (every scenario), one per line: "L<TAB>service<TAB>code.function.name<TAB>body"
// for log records and "Q<TAB>db.query.text" for database client spans.
// record.sh samples and labels them into ../../scenarios.tsv.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/scenarios"
)

func main() {
	plan, err := scenarios.NewPlan()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	traces, metrics, logs := new(consumertest.TracesSink), new(consumertest.MetricsSink), new(consumertest.LogsSink)
	noWait := scenarios.ClockFunc(func(context.Context, time.Time) error { return nil })
	if _, err := scenarios.Run(context.Background(), plan, scenarios.Consumers{Traces: traces, Metrics: metrics, Logs: logs}, noWait); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for _, ld := range logs.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			svc := ""
			if v, ok := rls.At(i).Resource().Attributes().Get("service.name"); ok {
				svc = v.AsString()
			}
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					fn := ""
					if v, ok := lr.Attributes().Get("code.function.name"); ok {
						fn = v.AsString()
					}
					fmt.Fprintf(w, "L\t%s\t%s\t%s\n", svc, fn, lr.Body().AsString())
				}
			}
		}
	}
	for _, td := range traces.AllTraces() {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				sp := sss.At(j).Spans()
				for k := 0; k < sp.Len(); k++ {
					if s := sp.At(k); s.Kind() == ptrace.SpanKindClient {
						if q, ok := s.Attributes().Get("db.query.text"); ok {
							fmt.Fprintf(w, "Q\t%s\n", q.AsString())
						}
					}
				}
			}
		}
	}
}
