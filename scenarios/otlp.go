package scenarios

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// OTLPSink sends batches to an OTLP/gRPC endpoint (a collector's otlp
// receiver).
type OTLPSink struct {
	conn    *grpc.ClientConn
	traces  ptraceotlp.GRPCClient
	metrics pmetricotlp.GRPCClient
	logs    plogotlp.GRPCClient
	// Timeout bounds each export, including the wait for the endpoint to
	// become reachable.
	Timeout time.Duration
}

// DialOTLP returns a sink for the plaintext OTLP/gRPC endpoint host:port.
// Nothing is sent until the first batch; exports wait for the endpoint to
// come up, up to Timeout each.
func DialOTLP(endpoint string) (*OTLPSink, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("otlp endpoint %q: %w", endpoint, err)
	}
	return &OTLPSink{
		conn:    conn,
		traces:  ptraceotlp.NewGRPCClient(conn),
		metrics: pmetricotlp.NewGRPCClient(conn),
		logs:    plogotlp.NewGRPCClient(conn),
		Timeout: 30 * time.Second,
	}, nil
}

// Close closes the connection.
func (s *OTLPSink) Close() error { return s.conn.Close() }

func (s *OTLPSink) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.Timeout)
}

// ConsumeTraces implements Sink.
func (s *OTLPSink) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	resp, err := s.traces.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td), grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("export %d spans: %w", td.SpanCount(), err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedSpans() > 0 {
		return fmt.Errorf("endpoint rejected %d of %d spans: %s", ps.RejectedSpans(), td.SpanCount(), ps.ErrorMessage())
	}
	return nil
}

// ConsumeMetrics implements Sink.
func (s *OTLPSink) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	resp, err := s.metrics.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md), grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("export %d data points: %w", md.DataPointCount(), err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedDataPoints() > 0 {
		return fmt.Errorf("endpoint rejected %d of %d data points: %s", ps.RejectedDataPoints(), md.DataPointCount(), ps.ErrorMessage())
	}
	return nil
}

// ConsumeLogs implements Sink.
func (s *OTLPSink) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	resp, err := s.logs.Export(ctx, plogotlp.NewExportRequestFromLogs(ld), grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("export %d log records: %w", ld.LogRecordCount(), err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedLogRecords() > 0 {
		return fmt.Errorf("endpoint rejected %d of %d log records: %s", ps.RejectedLogRecords(), ld.LogRecordCount(), ps.ErrorMessage())
	}
	return nil
}
