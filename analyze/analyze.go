// Package analyze is `junction analyze`: offline triage of recorded
// telemetry. It reads OTLP recordings as the collector's file exporter
// writes them (JSON lines or length-prefixed protobuf, plain, gzip or
// zstd), replays them in time order into a correlation processor running on
// the recording's own clock (clock::source telemetry) with the rule packs,
// and reports the entity graph, the critical path from the slowest entry
// points and the alerts with their blamed entity and evidence.
// docs/analyze.md describes the command and its JSON schema.
package analyze

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor"
	"github.com/junction-sre/junction/rules"
)

// DefaultRules are the rule files evaluated unless Options.Rules names
// others: the packs built into the binary, as in Junction's default config.
var DefaultRules = []string{rules.BuiltinPrefix + "packs"}

// Defaults of Options.
const (
	DefaultTop              = 3
	DefaultProgressInterval = 500 * time.Millisecond
	// maxPrintedErrors bounds the bad-record errors printed to stderr; the
	// rest are counted.
	maxPrintedErrors = 20
	// maxEpisodes bounds the alert episodes kept; later ones are counted
	// in Report.Alerts.Dropped.
	maxEpisodes = 10000
)

// Options tune an analysis.
type Options struct {
	// Rules are rule files, directories or globs (builtin:packs for the
	// built-in packs); DefaultRules when empty.
	Rules []string
	// Format is "text" (the default) or "json".
	Format string
	// Until, when set, stops the replay at the first record (in replay
	// order) newer than it, and reports the graph as of Until.
	Until time.Time
	// Top is how many entry points the critical path section walks from;
	// DefaultTop when 0.
	Top int
	// Progress writes progress lines to stderr while reading, at most
	// every ProgressInterval (DefaultProgressInterval when 0).
	Progress         bool
	ProgressInterval time.Duration
	// SnapshotOut, when set, is a file the graph's full entity snapshot is
	// written to as JSON: the input of `junction rules eval --snapshot`.
	SnapshotOut string
	// Config is the correlation processor's configuration; its defaults
	// when nil. Its clock and rules sections are set by the analysis.
	Config *correlationprocessor.Config
}

// ExitError is returned when the analysis could not be done; Code is the
// process exit code (docs/analyze.md "Exit status").
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit codes.
const (
	ExitOK = 0
	// ExitFailed: nothing could be read from any file, or the command line
	// or the rule files are wrong.
	ExitFailed = 1
)

func usageErr(format string, args ...any) error {
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf(format, args...)}
}

// Run analyzes the recordings and writes the report to stdout in
// opts.Format; bad records and progress go to stderr. It returns an
// *ExitError when nothing could be read or the options are wrong; bad
// records alone are not an error.
func Run(ctx context.Context, opts Options, files []string, stdout, stderr io.Writer) error {
	switch opts.Format {
	case "", "text", "json":
	default:
		return usageErr("--format %q: want text or json", opts.Format)
	}
	rep, err := Analyze(ctx, opts, files, stderr)
	if err != nil {
		return err
	}
	if opts.Format == "json" {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteText(stdout)
}

// Analyze replays the recordings and returns the report.
func Analyze(ctx context.Context, opts Options, files []string, stderr io.Writer) (*Report, error) {
	if len(files) == 0 {
		return nil, usageErr("no recording files given")
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if opts.Top <= 0 {
		opts.Top = DefaultTop
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	cfg := correlationprocessor.DefaultConfig()
	if opts.Config != nil {
		c := *opts.Config // the caller's config is not changed
		cfg = &c
	}
	cfg.Clock.Source = correlationprocessor.ClockTelemetry
	cfg.Rules.Files = opts.Rules
	if len(cfg.Rules.Files) == 0 {
		cfg.Rules.Files = DefaultRules
	}
	cfg.Rules.ReloadInterval = 0
	cfg.Rules.StateFile = ""

	rep := &Report{Schema: SchemaVersion, Rules: cfg.Rules.Files}
	sink := newAlertSink(maxEpisodes)
	p, err := correlationprocessor.NewEmbedded(ctx, correlationprocessor.EmbeddedSettings{
		Config:    cfg,
		Logs:      sink,
		Telemetry: telemetry(stderr),
	})
	if err != nil {
		return nil, &ExitError{Code: ExitFailed, Err: fmt.Errorf("starting the correlation processor: %w", err)}
	}
	sink.src = p
	rp := &replay{opts: opts, stderr: stderr, rep: rep, maxStep: int64(cfg.Clock.MaxStep)}
	err = rp.run(ctx, files, p)
	err = errors.Join(err, p.Shutdown(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, err
	}
	if rep.Input.Records == 0 {
		return nil, &ExitError{Code: ExitFailed, Err: fmt.Errorf("no telemetry could be read from %d file(s): %s", len(files), rp.why())}
	}
	at := rp.clock
	if !opts.Until.IsZero() {
		at = opts.Until.UnixNano()
	}
	rep.Time = time.Unix(0, at).UTC()
	snap, err := p.Snapshot(ctx, rep.Time)
	if err != nil {
		return nil, err
	}
	if opts.SnapshotOut != "" {
		if err := writeSnapshot(opts.SnapshotOut, snap); err != nil {
			return nil, &ExitError{Code: ExitFailed, Err: err}
		}
	}
	rep.Graph = graphOf(snap)
	rep.CriticalPaths = criticalPaths(snap, opts.Top)
	rep.Alerts = sink.report()
	return rep, nil
}

// telemetry is the processor's own telemetry: its warnings (a clock jump,
// a rule failing to evaluate) go to stderr.
func telemetry(stderr io.Writer) component.TelemetrySettings {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.TimeKey = ""
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(stderr), zapcore.WarnLevel)
	return component.TelemetrySettings{
		Logger:         zap.New(core),
		MeterProvider:  metricnoop.NewMeterProvider(),
		TracerProvider: tracenoop.NewTracerProvider(),
		Resource:       pcommon.NewResource(),
	}
}

// source is one open file in the replay's merge.
type source struct {
	r     *FileReader
	stats *FileStats
	head  *Record
	key   int64 // head's timestamp, or the previous record's when it has none
}

// replay merges the files' records by timestamp and feeds them to the
// processor.
type replay struct {
	opts    Options
	stderr  io.Writer
	rep     *Report
	maxStep int64

	// clock is the telemetry clock as the processor keeps it
	// (correlationprocessor's telemetryClock); pending the timestamp of a
	// record beyond clock::max_step from it.
	clock, pending int64
	printed        int
	// progress
	lastProgress time.Time
	progressed   bool
	total        int64
	srcs         []*source
}

// feeder is what the replay feeds: the correlation processor.
type feeder interface {
	ConsumeTraces(ctx context.Context, td ptrace.Traces) error
	ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error
	ConsumeLogs(ctx context.Context, ld plog.Logs) error
}

func (rp *replay) run(ctx context.Context, files []string, p feeder) error {
	in := &rp.rep.Input
	for _, path := range files {
		st := &FileStats{Path: path}
		in.Files = append(in.Files, st)
		var r *FileReader
		var err error
		if path == "-" {
			st.Path = "stdin"
			r, err = NewReader(st.Path, os.Stdin, 0)
		} else {
			r, err = OpenFile(path)
		}
		if err != nil {
			st.Error = err.Error()
			rp.printErr(err)
			continue
		}
		st.Format, st.Compression, st.Bytes = r.Format, r.Compression, r.Size
		rp.total += r.Size
		s := &source{r: r, stats: st}
		rp.srcs = append(rp.srcs, s)
		rp.advance(s)
	}
	defer func() {
		for _, s := range rp.srcs {
			s.r.Close()
		}
	}()
	for n := 0; ; n++ {
		if n%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rp.progress(false)
		s := rp.next()
		if s == nil {
			break
		}
		rec := s.head
		if !rp.opts.Until.IsZero() && s.key > rp.opts.Until.UnixNano() {
			in.AfterUntil++
			break
		}
		rp.advance(s)
		rp.observe(s.stats, rec)
		var err error
		switch rec.Signal {
		case SignalTraces:
			err = p.ConsumeTraces(ctx, rec.Traces)
		case SignalMetrics:
			err = p.ConsumeMetrics(ctx, rec.Metrics)
		case SignalLogs:
			err = p.ConsumeLogs(ctx, rec.Logs)
		}
		if err != nil {
			return fmt.Errorf("replaying %s record %d: %w", s.stats.Path, rec.Pos, err)
		}
	}
	rp.progress(true)
	for _, s := range rp.srcs {
		// Per-message compression is seen only in the messages.
		s.stats.Compression = s.r.Compression
	}
	for _, st := range in.Files {
		in.Bad += st.Bad
		if st.Error != "" && st.Records == 0 {
			in.Unreadable++
		}
	}
	return nil
}

// next is the source whose head is oldest (the first file on a tie), nil
// when every file is done.
func (rp *replay) next() *source {
	var best *source
	for _, s := range rp.srcs {
		if s.head != nil && (best == nil || s.key < best.key) {
			best = s
		}
	}
	return best
}

// advance reads s's next good record into s.head, counting and reporting
// the bad ones on the way.
func (rp *replay) advance(s *source) {
	s.head = nil
	for {
		rec, err := s.r.Next()
		if err == nil {
			s.head = rec
			if rec.Latest > 0 {
				s.key = rec.Latest
			}
			return
		}
		var re *RecordError
		switch {
		case errors.As(err, &re) && errors.Is(re.Err, errEmptyRequest):
			s.stats.Empty++
			continue
		case errors.As(err, &re) && errors.Is(re.Err, errProfiles):
			s.stats.Profiles++
			continue
		case errors.As(err, &re):
			s.stats.Bad++
			if len(rp.rep.Input.Errors) < maxPrintedErrors {
				rp.rep.Input.Errors = append(rp.rep.Input.Errors, recordErrorOf(re))
			}
			rp.printErr(err)
			continue
		case errors.Is(err, io.EOF):
			return
		default:
			// The rest of the file cannot be read.
			s.stats.Bad++
			s.stats.Error = err.Error()
			if len(rp.rep.Input.Errors) < maxPrintedErrors {
				rp.rep.Input.Errors = append(rp.rep.Input.Errors, RecordErrorReport{File: s.stats.Path, Error: err.Error()})
			}
			rp.printErr(err)
			return
		}
	}
}

func (rp *replay) printErr(err error) {
	rp.progressBreak()
	rp.printed++
	switch {
	case rp.printed <= maxPrintedErrors:
		fmt.Fprintln(rp.stderr, "junction analyze:", err)
	case rp.printed == maxPrintedErrors+1:
		fmt.Fprintln(rp.stderr, "junction analyze: more bad records; only counted from here on")
	}
}

// observe counts rec and moves the clock the way the processor's telemetry
// clock moves (clock.go): forward to a record's newest timestamp when it
// lies within clock::max_step of the clock.
func (rp *replay) observe(s *FileStats, rec *Record) {
	in := &rp.rep.Input
	in.Records++
	s.Records++
	n := rec.Items()
	switch rec.Signal {
	case SignalTraces:
		in.Spans += n
		s.Spans += n
	case SignalMetrics:
		in.Points += n
		s.Points += n
	case SignalLogs:
		in.LogRecords += n
		s.LogRecords += n
	}
	if t := rec.Latest; t > 0 {
		switch {
		case rp.clock == 0, t > rp.clock && t-rp.clock <= rp.maxStep:
			rp.clock, rp.pending = t, 0
		case t <= rp.clock && rp.clock-t <= rp.maxStep:
			rp.pending = 0
		case rp.pending != 0 && abs(t-rp.pending) <= rp.maxStep:
			// Two records in a row agree on a time far from the clock:
			// the processor's clock jumps there.
			rp.clock, rp.pending = t, 0
		default:
			rp.pending = t
		}
		if in.First.IsZero() || t < in.First.UnixNano() {
			in.First = time.Unix(0, t).UTC()
		}
		if t > in.Last.UnixNano() {
			in.Last = time.Unix(0, t).UTC()
		}
	}
}

func (rp *replay) why() string {
	for _, st := range rp.rep.Input.Files {
		if st.Error != "" {
			return st.Error
		}
	}
	if rp.rep.Input.Bad > 0 {
		return fmt.Sprintf("%d bad record(s), no good one", rp.rep.Input.Bad)
	}
	return "the files hold no export requests"
}

// progress writes "read X of Y MB, N records, M spans" at most every
// ProgressInterval; final ends the line.
func (rp *replay) progress(final bool) {
	if !rp.opts.Progress {
		return
	}
	now := time.Now()
	if !final && now.Sub(rp.lastProgress) < rp.opts.ProgressInterval {
		return
	}
	if final && !rp.progressed {
		return
	}
	rp.lastProgress = now
	var read int64
	for _, s := range rp.srcs {
		read += s.r.Read()
	}
	in := &rp.rep.Input
	fmt.Fprintf(rp.stderr, "\rjunction analyze: read %.1f of %.1f MB, %d records, %d spans, %d points, %d log records, %d bad",
		float64(read)/1e6, float64(rp.total)/1e6, in.Records, in.Spans, in.Points, in.LogRecords, rp.badSoFar())
	rp.progressed = true
	if final {
		fmt.Fprintln(rp.stderr)
		rp.progressed = false
	}
}

// progressBreak ends a progress line before an error line.
func (rp *replay) progressBreak() {
	if rp.progressed {
		fmt.Fprintln(rp.stderr)
		rp.progressed = false
	}
}

func (rp *replay) badSoFar() int {
	n := 0
	for _, st := range rp.rep.Input.Files {
		n += st.Bad
	}
	return n
}

func writeSnapshot(path string, snap *entity.Snapshot) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--snapshot-out: %w", err)
	}
	if err := writeIndentedJSON(f, snap); err != nil {
		f.Close()
		return fmt.Errorf("--snapshot-out %s: %w", path, err)
	}
	return f.Close()
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
