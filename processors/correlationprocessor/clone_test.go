package correlationprocessor

import (
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func cloneTracesResource(td ptrace.Traces, i int) ptrace.Traces {
	out := ptrace.NewTraces()
	td.ResourceSpans().At(i).CopyTo(out.ResourceSpans().AppendEmpty())
	return out
}

func cloneMetricsResource(md pmetric.Metrics, i int) pmetric.Metrics {
	out := pmetric.NewMetrics()
	md.ResourceMetrics().At(i).CopyTo(out.ResourceMetrics().AppendEmpty())
	return out
}

func cloneLogsResource(ld plog.Logs, i int) plog.Logs {
	out := plog.NewLogs()
	ld.ResourceLogs().At(i).CopyTo(out.ResourceLogs().AppendEmpty())
	return out
}
