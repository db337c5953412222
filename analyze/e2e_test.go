package analyze

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/scenarios"
)

// fileExporterSink writes batches as the collector's file exporter does
// with format json: one OTLP JSON export request per line. Traces go to
// one writer, metrics and logs to another, as two file exporters would.
type fileExporterSink struct {
	traces, other io.Writer
}

func (s *fileExporterSink) line(w io.Writer, b []byte, err error) error {
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func (s *fileExporterSink) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	return s.line(s.traces, b, err)
}

func (s *fileExporterSink) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	b, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
	return s.line(s.other, b, err)
}

func (s *fileExporterSink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	return s.line(s.other, b, err)
}

// record plays plan and writes it to dir as traces.jsonl and, gzip-
// compressed under a name that does not say so, other.jsonl.
func record(t testing.TB, plan *scenarios.Plan, dir string) (files []string, stats scenarios.Stats) {
	t.Helper()
	tp, op := filepath.Join(dir, "traces.jsonl"), filepath.Join(dir, "other.jsonl")
	tf, err := os.Create(tp)
	if err != nil {
		t.Fatal(err)
	}
	of, err := os.Create(op)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(of)
	stats, err = scenarios.Run(context.Background(), plan, &fileExporterSink{traces: tf, other: zw}, scenarios.Unpaced)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []io.Closer{zw, of, tf} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return []string{tp, op}, stats
}

// TestAnalyzeBottleneckRecording records the bottleneck scenario in the
// file exporter's format, analyzes it and checks the report against the
// scenario's ground truth: the simulated system's call edges are in the
// graph, and an expected alert fired blaming the expected entity.
func TestAnalyzeBottleneckRecording(t *testing.T) {
	plan, err := scenarios.NewPlan(scenarios.Bottleneck)
	if err != nil {
		t.Fatal(err)
	}
	files, stats := record(t, plan, t.TempDir())
	checkBottleneckAnalysis(t, plan, stats, files, []string{CompressionNone, CompressionGzip})
}

// checkBottleneckAnalysis analyzes the files of a bottleneck recording
// (compression: what each file must be told to be) and checks the report
// against the scenario's ground truth.
func checkBottleneckAnalysis(t *testing.T, plan *scenarios.Plan, stats scenarios.Stats, files, compression []string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), Options{Format: "json"}, files, &out, &errOut); err != nil {
		t.Fatalf("analyze: %v\nstderr:\n%s", err, errOut.String())
	}
	if errOut.Len() > 0 {
		t.Errorf("stderr not empty:\n%s", errOut.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Schema != SchemaVersion {
		t.Errorf("schema %q, want %q", rep.Schema, SchemaVersion)
	}
	if rep.Input.Spans != stats.Spans || rep.Input.Points != stats.Points || rep.Input.LogRecords != stats.Records {
		t.Errorf("read %d spans, %d points, %d log records; the simulator wrote %d, %d, %d",
			rep.Input.Spans, rep.Input.Points, rep.Input.LogRecords, stats.Spans, stats.Points, stats.Records)
	}
	if rep.Input.Bad != 0 {
		t.Errorf("%d bad records: %v", rep.Input.Bad, rep.Input.Errors)
	}
	for i, want := range compression {
		if i >= len(rep.Input.Files) {
			t.Errorf("report lists %d files, want %d", len(rep.Input.Files), len(files))
			break
		}
		if got := rep.Input.Files[i].Compression; got != want {
			t.Errorf("%s: compression %q, want %s (told from its bytes)", files[i], got, want)
		}
	}

	// The simulated shop's calls (docs/scenarios.md, "The system").
	proxySvc := entity.ID(entity.Service, scenarios.IngressNS, scenarios.ProxyService)
	wantEdges := []struct{ src, dst string }{
		{proxySvc, scenarios.FrontendID},
		{scenarios.FrontendID, scenarios.CatalogID},
		{scenarios.FrontendID, scenarios.CheckoutID},
		{scenarios.FrontendID, scenarios.RecommendID},
		{scenarios.CatalogID, scenarios.DatabaseID},
		{scenarios.CheckoutID, scenarios.InventoryID},
		{scenarios.CheckoutID, scenarios.OrdersID},
		{scenarios.OrdersID, scenarios.DatabaseID},
		{scenarios.OrdersID, scenarios.StreamID},
		{scenarios.StreamID, scenarios.DashboardID},
	}
	have := map[string]Edge{}
	for _, e := range rep.Graph.Edges {
		have[e.Source+" -> "+e.Target] = e
	}
	for _, w := range wantEdges {
		e, ok := have[w.src+" -> "+w.dst]
		if !ok {
			t.Errorf("edge %s -> %s missing; graph edges: %v", w.src, w.dst, keys(have))
			continue
		}
		if e.RequestRate == nil || *e.RequestRate <= 0 {
			t.Errorf("edge %s -> %s has no request rate", w.src, w.dst)
		}
		if e.P99Ms == nil {
			t.Errorf("edge %s -> %s has no p99", w.src, w.dst)
		}
	}

	truth := plan.Truth()[0]
	for _, exp := range truth.Expect {
		found := false
		var seen []string
		for _, ep := range rep.Alerts.Episodes {
			if ep.FiredAt.IsZero() {
				continue
			}
			seen = append(seen, ep.Rule+"→"+ep.Blame.ID)
			for _, r := range exp.Rules {
				if ep.Rule == r && ep.Blame.ID == exp.Blame && !ep.FiredAt.Before(truth.FaultStart) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no %v alert fired blaming %s after the fault started at %s; fired: %v", exp.Rules, exp.Blame, truth.FaultStart, seen)
		}
	}
	for _, ep := range rep.Alerts.Episodes {
		if !ep.FiredAt.IsZero() && ep.FiredAt.Before(truth.FaultStart) {
			t.Errorf("%s on %s fired at %s, in the healthy phase", ep.Rule, ep.Entity.ID, ep.FiredAt)
		}
		if ep.Rule == scenarios.RuleHopOwnsLatency && ep.Blame.ID == scenarios.InventoryID && !ep.FiredAt.IsZero() {
			if ep.AtFiring == nil || ep.AtFiring.Call == nil || ep.AtFiring.Call.CallShare == nil {
				t.Errorf("%s: no call share into the blamed entity at firing: %+v", ep.ID, ep.AtFiring)
			} else if ep.AtFiring.Call.Source != scenarios.CheckoutID {
				t.Errorf("%s: dominant call into %s from %s, want %s", ep.ID, scenarios.InventoryID, ep.AtFiring.Call.Source, scenarios.CheckoutID)
			}
			if len(ep.Evidence.Exemplars) == 0 {
				t.Errorf("%s: no exemplar traces in its evidence", ep.ID)
			}
		}
	}
	if len(rep.CriticalPaths) == 0 || rep.CriticalPaths[0].Entry != proxySvc || len(rep.CriticalPaths[0].Hops) == 0 ||
		rep.CriticalPaths[0].Hops[0].Target != scenarios.FrontendID {
		t.Errorf("critical paths %+v: want the first from the edge proxy's service, the entry point, through the frontend", rep.CriticalPaths)
	}

	// The text form names the same edges and the blamed entity.
	out.Reset()
	if err := Run(context.Background(), Options{}, files, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, w := range wantEdges {
		if !containsLine(text, w.src, "->", w.dst) {
			t.Errorf("text report has no line with edge %s -> %s:\n%s", w.src, w.dst, text)
		}
	}
	if !containsLine(text, scenarios.RuleHopOwnsLatency, "blamed "+scenarios.InventoryID) &&
		!containsLine(text, scenarios.RuleCPUThrottlingBehindLatency, "blamed "+scenarios.InventoryID) {
		t.Errorf("text report names no alert blaming %s:\n%s", scenarios.InventoryID, text)
	}
	t.Logf("text report:\n%s", text)
}

func containsLine(text string, parts ...string) bool {
	for _, l := range strings.Split(text, "\n") {
		ok := true
		rest := l
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string { return sortedKeys(m) }

// encodingSink writes every batch into one file with enc, as one file
// exporter shared by the three pipelines does.
type encodingSink struct {
	w   io.Writer
	enc func(b []byte) []byte // framing (and compression) of one message
	pb  bool                  // protobuf, else JSON
}

func (s *encodingSink) put(b []byte, err error) error {
	if err != nil {
		return err
	}
	_, err = s.w.Write(s.enc(b))
	return err
}

func (s *encodingSink) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	if s.pb {
		return s.put((&ptrace.ProtoMarshaler{}).MarshalTraces(td))
	}
	return s.put((&ptrace.JSONMarshaler{}).MarshalTraces(td))
}

func (s *encodingSink) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	if s.pb {
		return s.put((&pmetric.ProtoMarshaler{}).MarshalMetrics(md))
	}
	return s.put((&pmetric.JSONMarshaler{}).MarshalMetrics(md))
}

func (s *encodingSink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	if s.pb {
		return s.put((&plog.ProtoMarshaler{}).MarshalLogs(ld))
	}
	return s.put((&plog.JSONMarshaler{}).MarshalLogs(ld))
}

// TestFormatsAgree: the same recording written in each of the file
// exporter's encodings (JSON lines, gzip-ed JSON lines, framed protobuf,
// framed protobuf with each message zstd-compressed) gives the same graph,
// critical paths and alerts.
func TestFormatsAgree(t *testing.T) {
	plan, err := scenarios.NewPlan(scenarios.Bottleneck)
	if err != nil {
		t.Fatal(err)
	}
	plan.Healthy, plan.Fault, plan.Recover = 2*time.Minute, 2*time.Minute, time.Minute
	line := func(b []byte) []byte { return append(b, '\n') }
	frame := func(b []byte) []byte { return framed(b) }
	zframe := func(b []byte) []byte { return framed(zstdEncode(t, b)) }
	dir := t.TempDir()
	var want []byte
	for _, tc := range []struct {
		name string
		enc  func([]byte) []byte
		pb   bool
		gz   bool
	}{
		{"json", line, false, false},
		{"json.gz", line, false, true},
		{"pb", frame, true, false},
		{"pb.zstd-messages", zframe, true, false},
	} {
		var buf bytes.Buffer
		if _, err := scenarios.Run(context.Background(), plan, &encodingSink{w: &buf, enc: tc.enc, pb: tc.pb}, scenarios.Unpaced); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		if tc.gz {
			data = gzipped(t, data)
		}
		p := filepath.Join(dir, "recording."+tc.name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rep, err := Analyze(context.Background(), Options{}, []string{p}, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if rep.Input.Bad != 0 || rep.Input.Spans == 0 {
			t.Fatalf("%s: %d bad records, %d spans", tc.name, rep.Input.Bad, rep.Input.Spans)
		}
		got, err := json.Marshal(struct {
			Graph         Graph
			CriticalPaths []CriticalPath
			Alerts        Alerts
			Spans, Points int
		}{rep.Graph, rep.CriticalPaths, rep.Alerts, rep.Input.Spans, rep.Input.Points})
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = got
			if len(rep.Alerts.Episodes) == 0 || len(rep.Graph.Edges) == 0 {
				t.Fatalf("%s: %d edges, %d alert episodes: nothing to compare", tc.name, len(rep.Graph.Edges), len(rep.Alerts.Episodes))
			}
			continue
		}
		// The processor sums critical-path shares over sampled traces in
		// map order, so the last bits of a sum may differ between runs.
		if d := jsonDiff(t, want, got); d != "" {
			t.Errorf("%s: report differs from the JSON lines' at %s", tc.name, d)
		}
	}
}

// jsonDiff is the path of the first difference between two JSON documents,
// numbers equal within a relative 1e-9; "" when they agree.
func jsonDiff(t *testing.T, a, b []byte) string {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, x, y any) string
	walk = func(path string, x, y any) string {
		switch xv := x.(type) {
		case map[string]any:
			yv, ok := y.(map[string]any)
			if !ok || len(xv) != len(yv) {
				return path
			}
			for _, k := range sortedKeys(xv) {
				if d := walk(path+"."+k, xv[k], yv[k]); d != "" {
					return d
				}
			}
		case []any:
			yv, ok := y.([]any)
			if !ok || len(xv) != len(yv) {
				return path
			}
			for i := range xv {
				if d := walk(fmt.Sprintf("%s[%d]", path, i), xv[i], yv[i]); d != "" {
					return d
				}
			}
		case float64:
			yv, ok := y.(float64)
			if !ok || math.Abs(xv-yv) > 1e-9*math.Max(math.Abs(xv), math.Abs(yv)) {
				return fmt.Sprintf("%s (%v != %v)", path, x, y)
			}
		default:
			if x != y {
				return fmt.Sprintf("%s (%v != %v)", path, x, y)
			}
		}
		return ""
	}
	return walk("", x, y)
}
