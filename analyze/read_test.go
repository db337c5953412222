package analyze

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func testTraces(spans int, at time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range spans {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(pcommon.TraceID{1, byte(i)})
		s.SetSpanID(pcommon.SpanID{2, byte(i)})
		s.SetName("GET /cart")
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-time.Duration(i+1) * time.Millisecond)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at))
	}
	return td
}

func testMetrics(points int, at time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("db.client.connection.max")
	g := m.SetEmptyGauge()
	for i := range points {
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.SetIntValue(int64(10 + i))
	}
	return md
}

func testLogs(records int, at time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	sl := rl.ScopeLogs().AppendEmpty()
	for range records {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
		lr.SetSeverityNumber(plog.SeverityNumberError)
		lr.Body().SetStr("payment declined")
	}
	return ld
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b []byte
	var err error
	switch x := v.(type) {
	case ptrace.Traces:
		b, err = (&ptrace.JSONMarshaler{}).MarshalTraces(x)
	case pmetric.Metrics:
		b, err = (&pmetric.JSONMarshaler{}).MarshalMetrics(x)
	case plog.Logs:
		b, err = (&plog.JSONMarshaler{}).MarshalLogs(x)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustProto(t *testing.T, v any) []byte {
	t.Helper()
	var b []byte
	var err error
	switch x := v.(type) {
	case ptrace.Traces:
		b, err = (&ptrace.ProtoMarshaler{}).MarshalTraces(x)
	case pmetric.Metrics:
		b, err = (&pmetric.ProtoMarshaler{}).MarshalMetrics(x)
	case plog.Logs:
		b, err = (&plog.ProtoMarshaler{}).MarshalLogs(x)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonLines is what the file exporter writes with format json.
func jsonLines(t *testing.T, batches ...any) []byte {
	var buf bytes.Buffer
	for _, b := range batches {
		buf.Write(mustJSON(t, b))
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// framed is what the file exporter writes with format proto: each message
// preceded by its length, 4 bytes big-endian (exportMessageAsBuffer).
func framed(msgs ...[]byte) []byte {
	var buf bytes.Buffer
	for _, m := range msgs {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(m)))
		buf.Write(n[:])
		buf.Write(m)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdEncode(t *testing.T, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// readAll reads every record of data, returning the good ones' signals and
// item counts, the bad ones' errors and the final error (nil at EOF).
type readResult struct {
	format, compression string
	signals             []Signal
	items               []int
	positions           []int
	bad                 []string
	skipped             []string
	end                 error
}

func readAll(t *testing.T, data []byte) (*readResult, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "recording")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	res := &readResult{format: r.Format, compression: r.Compression}
	for {
		rec, err := r.Next()
		var re *RecordError
		switch {
		case err == nil:
			res.signals = append(res.signals, rec.Signal)
			res.items = append(res.items, rec.Items())
			res.positions = append(res.positions, rec.Pos)
			if rec.Latest != t0.UnixNano() {
				t.Errorf("record %d: latest %d, want %d", rec.Pos, rec.Latest, t0.UnixNano())
			}
			continue
		case errors.As(err, &re) && (errors.Is(err, errEmptyRequest) || errors.Is(err, errProfiles)):
			res.skipped = append(res.skipped, strings.TrimPrefix(err.Error(), path))
			continue
		case errors.As(err, &re):
			res.bad = append(res.bad, strings.TrimPrefix(err.Error(), path))
			continue
		case errors.Is(err, io.EOF):
		default:
			res.end = err
		}
		return res, nil
	}
}

func TestReaders(t *testing.T) {
	tr, me, lo := testTraces(3, t0), testMetrics(2, t0), testLogs(4, t0)
	mixed := jsonLines(t, tr, me, lo)
	badMiddle := append(append(jsonLines(t, tr), []byte("{\"resourceSpans\": [ this is not json\n")...), jsonLines(t, lo)...)
	all := []Signal{SignalTraces, SignalMetrics, SignalLogs}
	tests := []struct {
		name         string
		data         []byte
		format       string
		compression  string
		signals      []Signal
		items        []int
		positions    []int
		bad          []string // substrings of each bad record's error, in order
		skipped      []string // the same of records skipped without being bad
		openErr, end string   // substring of the error opening or ending the file
	}{
		{name: "json lines, mixed signals", data: mixed, format: FormatJSON, compression: CompressionNone,
			signals: all, items: []int{3, 2, 4}, positions: []int{1, 2, 3}},
		{name: "json lines, blank lines and CRLF", data: append([]byte("\n\r\n"), bytes.ReplaceAll(mixed, []byte("\n"), []byte("\r\n\n"))...),
			format: FormatJSON, compression: CompressionNone, signals: all, items: []int{3, 2, 4}, positions: []int{3, 5, 7}},
		{name: "json lines without a final newline", data: bytes.TrimSuffix(mixed, []byte("\n")), format: FormatJSON,
			compression: CompressionNone, signals: all, items: []int{3, 2, 4}, positions: []int{1, 2, 3}},
		{name: "gzip, told from its bytes", data: gzipped(t, mixed), format: FormatJSON, compression: CompressionGzip,
			signals: all, items: []int{3, 2, 4}, positions: []int{1, 2, 3}},
		{name: "concatenated gzip members", data: append(gzipped(t, jsonLines(t, tr)), gzipped(t, jsonLines(t, me, lo))...),
			format: FormatJSON, compression: CompressionGzip, signals: all, items: []int{3, 2, 4}, positions: []int{1, 2, 3}},
		{name: "zstd stream of json lines (nativeCompression)", data: zstdEncode(t, mixed), format: FormatJSON, compression: CompressionZstd,
			signals: all, items: []int{3, 2, 4}, positions: []int{1, 2, 3}},
		{name: "proto, mixed signals in one file", data: framed(mustProto(t, lo), mustProto(t, tr), mustProto(t, me)),
			format: FormatProto, compression: CompressionNone,
			signals: []Signal{SignalLogs, SignalTraces, SignalMetrics}, items: []int{4, 3, 2}, positions: []int{1, 2, 3}},
		{name: "proto, gzip", data: gzipped(t, framed(mustProto(t, tr), mustProto(t, me))), format: FormatProto,
			compression: CompressionGzip, signals: []Signal{SignalTraces, SignalMetrics}, items: []int{3, 2}, positions: []int{1, 2}},
		{name: "proto, each message zstd (compression: zstd)", data: framed(zstdEncode(t, mustProto(t, me)), zstdEncode(t, mustProto(t, tr))),
			format: FormatProto, compression: CompressionNone,
			signals: []Signal{SignalMetrics, SignalTraces}, items: []int{2, 3}, positions: []int{1, 2}},
		{name: "framed json, each message zstd (format json, compression: zstd)", data: framed(zstdEncode(t, mustJSON(t, lo))),
			format: FormatProto, compression: CompressionNone, signals: []Signal{SignalLogs}, items: []int{4}, positions: []int{1}},
		{name: "a bad line in the middle", data: badMiddle, format: FormatJSON, compression: CompressionNone,
			signals: []Signal{SignalTraces, SignalLogs}, items: []int{3, 4}, positions: []int{1, 3}, bad: []string{":2: OTLP JSON traces"}},
		{name: "a line that is no export request", data: append(jsonLines(t, me), []byte(`{"name": "x"}`+"\n")...), format: FormatJSON,
			compression: CompressionNone, signals: []Signal{SignalMetrics}, items: []int{2}, positions: []int{1},
			bad: []string{`:2: not an OTLP traces, metrics or logs export request: first key "name"`}},
		{name: "empty requests and profiles are skipped, not bad", data: append([]byte("{}\n{\"resourceSpans\":[]}\n{\"resourceProfiles\":[]}\n"), jsonLines(t, lo)...),
			format: FormatJSON, compression: CompressionNone, signals: []Signal{SignalLogs}, items: []int{4}, positions: []int{4},
			skipped: []string{"empty export request", "empty export request", "profiles export request"}},
		{name: "a line that is not an object", data: append([]byte("[1,2]\n"), jsonLines(t, lo)...), openErr: "neither OTLP JSON lines"},
		{name: "a corrupt proto message between good ones", data: framed(mustProto(t, tr), []byte{0x0a, 0xff, 0xff, 0x01}, mustProto(t, lo)),
			format: FormatProto, compression: CompressionNone, signals: []Signal{SignalTraces, SignalLogs}, items: []int{3, 4},
			positions: []int{1, 3}, bad: []string{"message 2 (byte"}},
		{name: "proto cut short", data: framed(mustProto(t, tr), mustProto(t, lo))[:len(framed(mustProto(t, tr)))+10], format: FormatProto,
			compression: CompressionNone, signals: []Signal{SignalTraces}, items: []int{3}, positions: []int{1}, end: "message 2"},
		{name: "gzip cut short", data: gzipped(t, mixed)[:len(gzipped(t, mixed))-12], format: FormatJSON, compression: CompressionGzip,
			signals: all, items: []int{3, 2, 4}, positions: []int{1, 2, 3}, end: "unexpected EOF"},
		{name: "empty file", data: nil, format: FormatEmpty, compression: CompressionNone},
		{name: "empty gzip", data: gzipped(t, nil), format: FormatEmpty, compression: CompressionGzip},
		{name: "unknown file type", data: []byte("hello, this is a text file\n"), openErr: "neither OTLP JSON lines"},
		{name: "unknown binary", data: []byte{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a}, openErr: "neither OTLP JSON lines"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := readAll(t, tc.data)
			if tc.openErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.openErr) {
					t.Fatalf("open error %v, want one containing %q", err, tc.openErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if res.format != tc.format || res.compression != tc.compression {
				t.Errorf("format %s/%s, want %s/%s", res.format, res.compression, tc.format, tc.compression)
			}
			if !equal(res.signals, tc.signals) || !equal(res.items, tc.items) || !equal(res.positions, tc.positions) {
				t.Errorf("read %v %v at %v, want %v %v at %v", res.signals, res.items, res.positions, tc.signals, tc.items, tc.positions)
			}
			if len(res.bad) != len(tc.bad) {
				t.Errorf("bad records %q, want %d matching %q", res.bad, len(tc.bad), tc.bad)
			} else {
				for i := range tc.bad {
					if !strings.Contains(res.bad[i], tc.bad[i]) {
						t.Errorf("bad record %d: %q, want it to contain %q", i, res.bad[i], tc.bad[i])
					}
				}
			}
			if len(res.skipped) != len(tc.skipped) {
				t.Errorf("skipped %q, want %d matching %q", res.skipped, len(tc.skipped), tc.skipped)
			} else {
				for i := range tc.skipped {
					if !strings.Contains(res.skipped[i], tc.skipped[i]) {
						t.Errorf("skipped record %d: %q, want it to contain %q", i, res.skipped[i], tc.skipped[i])
					}
				}
			}
			switch {
			case tc.end == "" && res.end != nil:
				t.Errorf("file ended with %v, want EOF", res.end)
			case tc.end != "" && (res.end == nil || !strings.Contains(res.end.Error(), tc.end)):
				t.Errorf("file ended with %v, want an error containing %q", res.end, tc.end)
			}
		})
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRecordBound: a line beyond the bound on one record is one bad
// record and the next line reads; a framed length beyond it ends the file.
func TestRecordBound(t *testing.T) {
	defer func(old int) { maxRecordBytes = old }(maxRecordBytes)
	maxRecordBytes = 2048
	long := append([]byte(`{"resourceSpans":[],"x":"`), bytes.Repeat([]byte("a"), 5000)...)
	long = append(long, []byte("\"}\n")...)
	res, err := readAll(t, append(append(jsonLines(t, testLogs(1, t0)), long...), jsonLines(t, testTraces(1, t0))...))
	if err != nil {
		t.Fatal(err)
	}
	if !equal(res.positions, []int{1, 3}) || len(res.bad) != 1 || !strings.Contains(res.bad[0], ":2: line longer than 2048 bytes") || res.end != nil {
		t.Errorf("read %v at %v, bad %q, end %v; want lines 1 and 3, line 2 too long", res.signals, res.positions, res.bad, res.end)
	}
	var big [4]byte
	binary.BigEndian.PutUint32(big[:], 4096)
	data := append(framed(mustProto(t, testLogs(1, t0))), big[:]...)
	data = append(data, bytes.Repeat([]byte{0x0a}, 4096)...)
	res, err = readAll(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(res.positions, []int{1}) || res.end == nil || !strings.Contains(res.end.Error(), "message 2") || !strings.Contains(res.end.Error(), "exceeds 2048 bytes") {
		t.Errorf("read %v, end %v; want message 1, then the file ended at message 2", res.positions, res.end)
	}
}

// TestProtoSignalOfEmptyLeaves: the signal of a framed message is told
// from the first span, metric or log record that shows it.
func TestProtoSignalOfEmptyLeaves(t *testing.T) {
	// A span with no timestamps, kind or parent still reads as a trace
	// when another span in the batch has them; a batch of metrics with
	// only a gauge reads as metrics.
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	ss.Spans().AppendEmpty().SetName("bare")
	full := ss.Spans().AppendEmpty()
	full.SetEndTimestamp(pcommon.NewTimestampFromTime(t0))
	for _, tc := range []struct {
		name string
		msg  []byte
		want Signal
	}{
		{"trace with a bare first span", mustProto(t, td), SignalTraces},
		{"gauge", mustProto(t, testMetrics(1, t0)), SignalMetrics},
		{"log", mustProto(t, testLogs(1, t0)), SignalLogs},
	} {
		got, err := protoSignal(tc.msg)
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := protoSignal(mustProto(t, ptrace.NewTraces())); !errors.Is(err, errEmptyRequest) {
		t.Errorf("empty request: %v, want errEmptyRequest", err)
	}
}
