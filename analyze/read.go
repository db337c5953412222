package analyze

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Signal is the kind of telemetry one record holds.
type Signal string

// Signals.
const (
	SignalTraces  Signal = "traces"
	SignalMetrics Signal = "metrics"
	SignalLogs    Signal = "logs"
)

// Formats and compressions of a recording, as Report.Files names them.
const (
	FormatJSON  = "json"  // one OTLP JSON export request per line
	FormatProto = "proto" // 4-byte big-endian length, then the message
	FormatEmpty = "empty" // nothing but whitespace

	CompressionNone = "none"
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
)

// maxRecordBytes bounds one line or one framed message, so that a corrupt
// length or a file without newlines cannot take all memory. The collector's
// own receivers take 4 MiB per request by default; the file exporter writes
// a batch per record. A variable so that tests can lower it.
var maxRecordBytes = 256 << 20

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Record is one decoded export request of a recording.
type Record struct {
	Signal  Signal
	Traces  ptrace.Traces
	Metrics pmetric.Metrics
	Logs    plog.Logs
	// Latest is the newest timestamp in the record (span end, data point,
	// log record time), in Unix nanoseconds; 0 when it has none. It is the
	// timestamp the correlation processor's telemetry clock moves to.
	Latest int64
	// Pos is where the record is in its file: the line number for JSON
	// lines, the message number (from 1) for framed protobuf.
	Pos int
}

// Items counts the spans, data points or log records of r.
func (r *Record) Items() int {
	switch r.Signal {
	case SignalTraces:
		return r.Traces.SpanCount()
	case SignalMetrics:
		return r.Metrics.DataPointCount()
	default:
		return r.Logs.LogRecordCount()
	}
}

func (r *Record) resources() int {
	switch r.Signal {
	case SignalTraces:
		return r.Traces.ResourceSpans().Len()
	case SignalMetrics:
		return r.Metrics.ResourceMetrics().Len()
	default:
		return r.Logs.ResourceLogs().Len()
	}
}

// RecordError is a record that could not be decoded: the reader skips it
// and goes on with the next one.
type RecordError struct {
	File string
	// Line is the JSON line number, or the framed message number for
	// protobuf (Message is then true).
	Line    int
	Message bool
	// Offset is the byte offset of the record in the uncompressed stream.
	Offset int64
	Err    error
}

func (e *RecordError) Error() string {
	if e.Message {
		return fmt.Sprintf("%s: message %d (byte %d): %v", e.File, e.Line, e.Offset, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// FileReader reads the records of one recording file: OTLP JSON lines or
// length-prefixed OTLP protobuf, as the collector's file exporter writes
// them, plain, gzip- or zstd-compressed. Compression and format are told
// from the file's first bytes, not its name.
type FileReader struct {
	Path   string
	Format string
	// Compression is the whole file's, told from its first bytes, or zstd
	// once a message compressed on its own (the file exporter's
	// compression: zstd) has been read.
	Compression string
	// Size is the file's size on disk; Read the bytes read from it so far
	// (compressed bytes when compressed).
	Size int64

	raw    *countingReader
	closer io.Closer
	zr     *zstd.Decoder // the stream decoder of a zstd file
	msgZ   *zstd.Decoder // per-message zstd (file exporter compression: zstd)
	br     *bufio.Reader
	pos    int   // last line or message number
	off    int64 // bytes consumed from the uncompressed stream
	done   bool
	buf    []byte
}

// Read returns the number of bytes read from the file on disk so far.
func (r *FileReader) Read() int64 { return r.raw.n }

// OpenFile opens a recording and tells its compression and format. An
// unreadable file or one that is neither JSON lines nor framed protobuf is
// an error.
func OpenFile(path string) (*FileReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory, not a recording file", path)
	}
	r, err := newFileReader(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader reads a recording from rd (size is what progress reports
// count against; 0 when unknown).
func NewReader(name string, rd io.Reader, size int64) (*FileReader, error) {
	return newFileReader(name, rd, size)
}

func newFileReader(path string, rd io.Reader, size int64) (*FileReader, error) {
	r := &FileReader{Path: path, Size: size, raw: &countingReader{r: rd}, Compression: CompressionNone}
	br := bufio.NewReaderSize(r.raw, 1<<20)
	head, _ := br.Peek(4)
	var stream io.Reader = br
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", path, err)
		}
		stream, r.Compression = zr, CompressionGzip
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxRecordBytes)*4))
		if err != nil {
			return nil, fmt.Errorf("%s: zstd: %w", path, err)
		}
		stream, r.Compression, r.zr = zr, CompressionZstd, zr
	}
	if stream != io.Reader(br) {
		br = bufio.NewReaderSize(stream, 1<<20)
	}
	r.br = br
	// Skip leading whitespace and tell JSON from framed protobuf.
	for {
		b, err := br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				r.Format, r.done = FormatEmpty, true
				return r, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if isSpace(b[0]) {
			if b[0] == '\n' {
				r.pos++
			}
			br.Discard(1)
			r.off++
			continue
		}
		if b[0] == '{' {
			r.Format = FormatJSON
			return r, nil
		}
		break
	}
	head, err := br.Peek(5)
	if err != nil && len(head) < 4 {
		return nil, fmt.Errorf("%s: neither OTLP JSON lines nor length-prefixed OTLP protobuf (%d bytes)", path, len(head))
	}
	n := binary.BigEndian.Uint32(head)
	if int64(n) > int64(maxRecordBytes) || (n > 0 && len(head) == 5 && !plausiblePayload(br, n)) {
		return nil, fmt.Errorf("%s: neither OTLP JSON lines (it does not start with '{') nor length-prefixed OTLP protobuf (first length %d)", path, n)
	}
	r.Format = FormatProto
	return r, nil
}

// plausiblePayload reports whether the first framed message, of n bytes,
// starts as an OTLP export request (field 1, length-delimited), a zstd
// frame (the file exporter's per-message compression) or a JSON object.
func plausiblePayload(br *bufio.Reader, n uint32) bool {
	want := 4 + int(min(n, 4))
	head, _ := br.Peek(want)
	if len(head) < want {
		return false
	}
	p := head[4:]
	switch {
	case p[0] == 0x0a:
		return true
	case p[0] == '{':
		return true
	case len(p) == 4 && bytes.Equal(p, zstdMagic):
		return true
	}
	return false
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

// Close closes the file.
func (r *FileReader) Close() error {
	if r.zr != nil {
		r.zr.Close()
	}
	if r.msgZ != nil {
		r.msgZ.Close()
	}
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Next returns the next record. A *RecordError is a record skipped: call
// Next again. io.EOF ends the file; any other error also ends it (the rest
// of the file cannot be read: a truncated compressed stream, a framing
// length beyond the file), after the records before it.
func (r *FileReader) Next() (*Record, error) {
	if r.done {
		return nil, io.EOF
	}
	switch r.Format {
	case FormatJSON:
		return r.nextLine()
	default:
		return r.nextMessage()
	}
}

func (r *FileReader) nextLine() (*Record, error) {
	for {
		line, start, err := r.readLine()
		if err != nil {
			r.done = true
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("%s:%d: %w", r.Path, r.pos, err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(line) > maxRecordBytes {
			return nil, &RecordError{File: r.Path, Line: r.pos, Offset: start, Err: fmt.Errorf("line longer than %d bytes", maxRecordBytes)}
		}
		rec, err := decodeJSON(line)
		if err != nil {
			return nil, &RecordError{File: r.Path, Line: r.pos, Offset: start, Err: err}
		}
		rec.Pos = r.pos
		return rec, nil
	}
}

// readLine reads the next line (without its newline). A line longer than
// maxRecordBytes is consumed to its end and returned truncated to
// maxRecordBytes+1 bytes, which the caller reports.
func (r *FileReader) readLine() ([]byte, int64, error) {
	start := r.off
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.off += int64(len(chunk))
		if len(r.buf) <= maxRecordBytes {
			keep := chunk
			if room := maxRecordBytes + 1 - len(r.buf); len(keep) > room {
				keep = keep[:room]
			}
			r.buf = append(r.buf, keep...)
		}
		switch {
		case err == nil:
			r.pos++
			return r.buf, start, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(r.buf) > 0 {
				r.pos++
				return r.buf, start, nil
			}
			return nil, start, io.EOF
		default:
			if len(r.buf) > 0 {
				r.pos++
			}
			return nil, start, err
		}
	}
}

func (r *FileReader) nextMessage() (*Record, error) {
	var hdr [4]byte
	start := r.off
	n, err := io.ReadFull(r.br, hdr[:])
	r.off += int64(n)
	if err != nil {
		r.done = true
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%s: message %d (byte %d): truncated length prefix: %w", r.Path, r.pos+1, start, err)
	}
	r.pos++
	size := binary.BigEndian.Uint32(hdr[:])
	if int64(size) > int64(maxRecordBytes) {
		r.done = true
		return nil, fmt.Errorf("%s: message %d (byte %d): length %d exceeds %d bytes; the rest of the file cannot be framed", r.Path, r.pos, start, size, maxRecordBytes)
	}
	if cap(r.buf) < int(size) {
		r.buf = make([]byte, size)
	}
	buf := r.buf[:size]
	n, err = io.ReadFull(r.br, buf)
	r.off += int64(n)
	if err != nil {
		r.done = true
		return nil, fmt.Errorf("%s: message %d (byte %d): %d of %d bytes: %w", r.Path, r.pos, start, n, size, err)
	}
	if bytes.HasPrefix(buf, zstdMagic) {
		// The file exporter's compression: zstd compresses each message
		// on its own inside plain framing.
		r.Compression = CompressionZstd
		if r.msgZ == nil {
			if r.msgZ, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxRecordBytes))); err != nil {
				return nil, &RecordError{File: r.Path, Line: r.pos, Message: true, Offset: start, Err: err}
			}
		}
		out, err := r.msgZ.DecodeAll(buf, nil)
		if err != nil {
			return nil, &RecordError{File: r.Path, Line: r.pos, Message: true, Offset: start, Err: fmt.Errorf("zstd: %w", err)}
		}
		buf = out
	}
	var rec *Record
	if t := bytes.TrimLeft(buf, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		rec, err = decodeJSON(t)
	} else {
		rec, err = decodeProto(buf)
	}
	if err != nil {
		return nil, &RecordError{File: r.Path, Line: r.pos, Message: true, Offset: start, Err: err}
	}
	rec.Pos = r.pos
	return rec, nil
}

// decodeJSON decodes one OTLP JSON export request, telling the signal from
// its first key (resourceSpans, resourceMetrics, resourceLogs, or their
// snake_case forms, which pdata also reads).
func decodeJSON(line []byte) (*Record, error) {
	key, err := firstKey(line)
	if err != nil {
		return nil, err
	}
	rec := &Record{}
	switch key {
	case "resourceSpans", "resource_spans":
		rec.Signal = SignalTraces
		rec.Traces, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(line)
	case "resourceMetrics", "resource_metrics":
		rec.Signal = SignalMetrics
		rec.Metrics, err = (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(line)
	case "resourceLogs", "resource_logs":
		rec.Signal = SignalLogs
		rec.Logs, err = (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
	case "":
		return nil, errEmptyRequest
	case "resourceProfiles", "resource_profiles":
		return nil, errProfiles
	default:
		return nil, fmt.Errorf("not an OTLP traces, metrics or logs export request: first key %q", key)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP JSON %s: %w", rec.Signal, err)
	}
	if rec.resources() == 0 {
		return nil, errEmptyRequest
	}
	rec.Latest = latest(rec)
	return rec, nil
}

// errEmptyRequest is an export request without any resource: nothing to
// replay, not an error worth a line number.
var errEmptyRequest = errors.New("empty export request")

// errProfiles is a profiles export request: Junction does not analyze
// profiles; they are counted and skipped.
var errProfiles = errors.New("profiles export request")

// firstKey is the first key of the JSON object in b ("" for {}).
func firstKey(b []byte) (string, error) {
	i := 0
	skip := func() {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
	}
	skip()
	if i >= len(b) || b[i] != '{' {
		return "", errors.New("not a JSON object")
	}
	i++
	skip()
	if i < len(b) && b[i] == '}' {
		return "", nil
	}
	if i >= len(b) || b[i] != '"' {
		return "", errors.New("not a JSON object: expected a key")
	}
	i++
	start := i
	for i < len(b) && b[i] != '"' {
		if b[i] == '\\' {
			i++
		}
		i++
	}
	if i >= len(b) {
		return "", errors.New("truncated JSON object")
	}
	return string(b[start:i]), nil
}

// decodeProto decodes one OTLP protobuf export request. The file exporter
// writes traces, metrics and logs of a shared file with the same framing
// and no type tag, so the signal is told from the first span, metric or
// log record (protoSignal).
func decodeProto(b []byte) (*Record, error) {
	sig, err := protoSignal(b)
	if err != nil {
		return nil, err
	}
	rec := &Record{Signal: sig}
	switch sig {
	case SignalTraces:
		rec.Traces, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
	case SignalMetrics:
		rec.Metrics, err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(b)
	default:
		rec.Logs, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP protobuf %s: %w", sig, err)
	}
	rec.Latest = latest(rec)
	return rec, nil
}

// protoSignal tells traces, metrics and logs apart in an export request:
// all three are field 1 (resource_spans/metrics/logs) holding field 2
// (scope_*) holding field 2 (the span, metric or log record), so the first
// leaf's fields decide. A span has its start or end time (fields 7, 8) as
// fixed64, or a kind (6) or status (15); a log record its time or observed
// time (1, 11) as fixed64 or a severity number (2) as varint; a metric
// (the rest) has its data in field 5, 7, 9, 10 or 11, length-delimited.
func protoSignal(b []byte) (Signal, error) {
	empty := true
	var found Signal
	var err error
	eachField(b, 1, &err, func(rs []byte) bool {
		return eachField(rs, 2, &err, func(scope []byte) bool {
			return eachField(scope, 2, &err, func(leaf []byte) bool {
				empty = false
				found = leafSignal(leaf)
				return found == ""
			})
		})
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("not an OTLP protobuf export request: %w", err)
	case found != "":
		return found, nil
	case empty:
		return "", errEmptyRequest
	}
	return "", errors.New("OTLP protobuf: cannot tell traces, metrics and logs apart: no span, metric or log record field seen")
}

// eachField calls fn with the bytes of every length-delimited field num of
// the message b until fn returns false, and reports whether to go on. A
// malformed message sets *errp and stops.
func eachField(b []byte, num protowire.Number, errp *error, fn func([]byte) bool) bool {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			*errp = protowire.ParseError(l)
			return false
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				*errp = protowire.ParseError(l)
				return false
			}
			b = b[l:]
			if !fn(v) {
				return false
			}
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			*errp = protowire.ParseError(l)
			return false
		}
		b = b[l:]
	}
	return true
}

func leafSignal(leaf []byte) Signal {
	metricLike := false
	for len(leaf) > 0 {
		n, typ, l := protowire.ConsumeTag(leaf)
		if l < 0 {
			return ""
		}
		leaf = leaf[l:]
		switch {
		case (n == 7 || n == 8) && typ == protowire.Fixed64Type, n == 6 && typ == protowire.VarintType,
			n == 15 && typ == protowire.BytesType, n == 4 && typ == protowire.BytesType:
			return SignalTraces
		case (n == 1 || n == 11) && typ == protowire.Fixed64Type, n == 2 && typ == protowire.VarintType:
			return SignalLogs
		case (n == 5 || n == 7 || n == 9 || n == 10 || n == 11) && typ == protowire.BytesType:
			metricLike = true
		}
		l = protowire.ConsumeFieldValue(n, typ, leaf)
		if l < 0 {
			return ""
		}
		leaf = leaf[l:]
	}
	if metricLike {
		return SignalMetrics
	}
	return ""
}

// latest is the newest timestamp of the record, as the correlation
// processor's telemetry clock reads it: span end (else start), data point
// time, log record time (else observed time).
func latest(r *Record) int64 {
	var t pcommon.Timestamp
	switch r.Signal {
	case SignalTraces:
		for _, rs := range r.Traces.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					t = max(t, s.EndTimestamp(), s.StartTimestamp())
				}
			}
		}
	case SignalMetrics:
		for _, rm := range r.Metrics.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					t = max(t, latestPoint(m))
				}
			}
		}
	case SignalLogs:
		for _, rl := range r.Logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					ts := lr.Timestamp()
					if ts == 0 {
						ts = lr.ObservedTimestamp()
					}
					t = max(t, ts)
				}
			}
		}
	}
	return int64(t)
}

func latestPoint(m pmetric.Metric) pcommon.Timestamp {
	var t pcommon.Timestamp
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for _, dp := range m.Gauge().DataPoints().All() {
			t = max(t, dp.Timestamp())
		}
	case pmetric.MetricTypeSum:
		for _, dp := range m.Sum().DataPoints().All() {
			t = max(t, dp.Timestamp())
		}
	case pmetric.MetricTypeHistogram:
		for _, dp := range m.Histogram().DataPoints().All() {
			t = max(t, dp.Timestamp())
		}
	case pmetric.MetricTypeExponentialHistogram:
		for _, dp := range m.ExponentialHistogram().DataPoints().All() {
			t = max(t, dp.Timestamp())
		}
	case pmetric.MetricTypeSummary:
		for _, dp := range m.Summary().DataPoints().All() {
			t = max(t, dp.Timestamp())
		}
	}
	return t
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
