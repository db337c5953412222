package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	rulescli "github.com/junction-sre/junction/rules/cli"
)

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fedRecorder records what the replay feeds, in order.
type fedRecorder struct{ fed []string }

func (f *fedRecorder) add(sig string, latest int64) {
	at := "none"
	if latest > 0 {
		at = time.Unix(0, latest).UTC().Sub(t0).String()
	}
	f.fed = append(f.fed, sig+"@"+at)
}

func (f *fedRecorder) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	f.add("traces", latest(&Record{Signal: SignalTraces, Traces: td}))
	return nil
}

func (f *fedRecorder) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	f.add("metrics", latest(&Record{Signal: SignalMetrics, Metrics: md}))
	return nil
}

func (f *fedRecorder) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	f.add("logs", latest(&Record{Signal: SignalLogs, Logs: ld}))
	return nil
}

// TestReplayMergesFilesByTime: records of several files are replayed in
// timestamp order across files and in written order within one; a record
// without timestamps keeps its place in its file.
func TestReplayMergesFilesByTime(t *testing.T) {
	dir := t.TempDir()
	s := func(d time.Duration) time.Time { return t0.Add(d) }
	noTime := pmetric.NewMetrics()
	m := noTime.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("no.timestamp")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
	a := writeFile(t, dir, "traces.jsonl", jsonLines(t, testTraces(1, s(0)), testTraces(1, s(20*time.Second)), testTraces(1, s(40*time.Second))))
	b := writeFile(t, dir, "metrics.pb", framed(mustProto(t, testMetrics(1, s(10*time.Second))), mustProto(t, noTime),
		mustProto(t, testMetrics(1, s(30*time.Second))), mustProto(t, testMetrics(1, s(50*time.Second)))))
	c := writeFile(t, dir, "logs.jsonl.gz", gzipped(t, jsonLines(t, testLogs(1, s(5*time.Second)), testLogs(1, s(45*time.Second)))))
	rec := &fedRecorder{}
	rp := &replay{rep: &Report{}, stderr: &bytes.Buffer{}, maxStep: int64(time.Hour)}
	if err := rp.run(context.Background(), []string{a, b, c}, rec); err != nil {
		t.Fatal(err)
	}
	want := []string{"traces@0s", "logs@5s", "metrics@10s", "metrics@none", "traces@20s",
		"metrics@30s", "traces@40s", "logs@45s", "metrics@50s"}
	if strings.Join(rec.fed, " ") != strings.Join(want, " ") {
		t.Errorf("replayed\n %v\nwant\n %v", rec.fed, want)
	}
	if got := time.Unix(0, rp.clock).UTC(); !got.Equal(s(50 * time.Second)) {
		t.Errorf("clock %v at the end, want %v", got, s(50*time.Second))
	}
	if in := rp.rep.Input; in.Records != 9 || in.Spans != 3 || in.Points != 4 || in.LogRecords != 2 {
		t.Errorf("counted %d records, %d spans, %d points, %d log records; want 9, 3, 4, 2", in.Records, in.Spans, in.Points, in.LogRecords)
	}
}

// TestRunBadLinesCounted: a bad line in the middle is reported with its
// file and line number on stderr and in the report, counted, and the rest
// of the file is analyzed.
func TestRunBadLinesCounted(t *testing.T) {
	dir := t.TempDir()
	data := jsonLines(t, testTraces(5, t0))
	data = append(data, []byte("{\"resourceSpans\":[{]}\n")...)
	data = append(data, jsonLines(t, testTraces(5, t0.Add(15*time.Second)), testMetrics(2, t0.Add(20*time.Second)))...)
	p := writeFile(t, dir, "rec.jsonl", data)
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), Options{Format: "json"}, []string{p}, &out, &errOut); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(errOut.String(), p+":2: ") {
		t.Errorf("stderr does not name %s:2:\n%s", p, errOut.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Input.Bad != 1 || rep.Input.Records != 3 || rep.Input.Spans != 10 {
		t.Errorf("bad %d, records %d, spans %d; want 1, 3, 10", rep.Input.Bad, rep.Input.Records, rep.Input.Spans)
	}
	if len(rep.Input.Errors) != 1 || rep.Input.Errors[0].Line != 2 || rep.Input.Errors[0].File != p {
		t.Errorf("errors %+v, want one at %s line 2", rep.Input.Errors, p)
	}
	if len(rep.Graph.Nodes) == 0 {
		t.Error("no entity in the graph of the good lines")
	}
	out.Reset()
	if err := Run(context.Background(), Options{}, []string{p}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1 bad record(s)") || !strings.Contains(out.String(), "BAD RECORDS: 1") {
		t.Errorf("text report does not show the bad record:\n%s", out.String())
	}
}

// TestRunFailures: nothing readable and usage errors are ExitErrors with
// exit code 1 and a message that says why.
func TestRunFailures(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.jsonl", jsonLines(t, testTraces(1, t0)))
	empty := writeFile(t, dir, "empty.jsonl", nil)
	text := writeFile(t, dir, "notes.txt", []byte("not telemetry\n"))
	allBad := writeFile(t, dir, "bad.jsonl", []byte("{\"resourceSpans\": 1}\n{\"x\":2}\n"))
	badRules := writeFile(t, dir, "rules.yaml", []byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        for_each: service\n        expr: service.no_such_feature > 1\n"))
	tests := []struct {
		name  string
		opts  Options
		files []string
		want  string
	}{
		{"no files", Options{}, nil, "no recording files"},
		{"missing file", Options{}, []string{filepath.Join(dir, "missing.jsonl")}, "no such file"},
		{"empty file", Options{}, []string{empty}, "no telemetry could be read"},
		{"unknown file type", Options{}, []string{text}, "neither OTLP JSON lines"},
		{"only bad lines", Options{}, []string{allBad}, "2 bad record(s), no good one"},
		{"bad format", Options{Format: "yaml"}, []string{good}, `--format "yaml"`},
		{"rule files that do not load", Options{Rules: []string{badRules}}, []string{good}, "no_such_feature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Run(context.Background(), tc.opts, tc.files, &bytes.Buffer{}, &bytes.Buffer{})
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != ExitFailed {
				t.Fatalf("error %v, want an ExitError with code %d", err, ExitFailed)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	// One readable file among unreadable ones is enough.
	var errOut bytes.Buffer
	if err := Run(context.Background(), Options{}, []string{text, good, empty}, &bytes.Buffer{}, &errOut); err != nil {
		t.Errorf("one good file among bad ones: %v", err)
	}
	if !strings.Contains(errOut.String(), text+": neither") {
		t.Errorf("stderr does not say why %s was not read:\n%s", text, errOut.String())
	}
}

// TestUntil: the replay stops at --until and the graph is reported as of
// it; --snapshot-out writes a snapshot `junction rules eval` reads.
func TestUntil(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "rec.jsonl", jsonLines(t, testTraces(2, t0), testTraces(2, t0.Add(10*time.Second)), testTraces(2, t0.Add(20*time.Second))))
	snap := filepath.Join(dir, "snapshot.json")
	until := t0.Add(15 * time.Second)
	rep, err := Analyze(context.Background(), Options{Until: until, SnapshotOut: snap}, []string{p}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Input.Records != 2 || rep.Input.Spans != 4 || rep.Input.AfterUntil != 1 || !rep.Time.Equal(until) {
		t.Errorf("records %d, spans %d, stopped %d, time %v; want 2, 4, 1, %v", rep.Input.Records, rep.Input.Spans, rep.Input.AfterUntil, rep.Time, until)
	}
	s, err := rulescli.ReadSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Time.Equal(until) || len(s.Entities) == 0 {
		t.Errorf("snapshot at %v with %d entities, want %v and the checkout service", s.Time, len(s.Entities), until)
	}
}

// TestProgress: progress lines go to stderr only when asked for.
func TestProgress(t *testing.T) {
	p := writeFile(t, t.TempDir(), "rec.jsonl", jsonLines(t, testTraces(3, t0), testMetrics(2, t0)))
	for _, on := range []bool{false, true} {
		var errOut bytes.Buffer
		if _, err := Analyze(context.Background(), Options{Progress: on, ProgressInterval: time.Nanosecond}, []string{p}, &errOut); err != nil {
			t.Fatal(err)
		}
		got := errOut.String()
		if on && !strings.Contains(got, "2 records, 3 spans, 2 points") {
			t.Errorf("progress on: stderr %q, want the final counts", got)
		}
		if !on && got != "" {
			t.Errorf("progress off: stderr %q, want nothing", got)
		}
	}
}

// TestCommandHelp: `junction analyze --help` explains the usage, the
// formats and the exit status.
func TestCommandHelp(t *testing.T) {
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"analyze [flags] FILE...", "--format", "--rules", "--until", "--progress", "Exit status", "gzip"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	// Usage errors are printed by the command itself: the collector's
	// main only exits 1.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--until", "yesterday", "x.jsonl"}, "--until"},
		{nil, "no recording files given; usage: analyze [flags] FILE..."},
		{[]string{"--no-such-flag", "x.jsonl"}, "unknown flag: --no-such-flag"},
	} {
		cmd = NewCommand()
		var errOut bytes.Buffer
		cmd.SetErr(&errOut)
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err == nil || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%q: error %v, stderr %q, want it to contain %q", tc.args, err, errOut.String(), tc.want)
		}
	}
}

// TestReplayClock: the report's time follows the processor's telemetry
// clock: one record far ahead does not move it, two in a row make it jump.
func TestReplayClock(t *testing.T) {
	s := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tc := range []struct {
		name string
		at   []time.Duration
		want time.Duration
	}{
		{"in order", []time.Duration{0, 10 * time.Second, 20 * time.Second}, 20 * time.Second},
		{"late record", []time.Duration{0, 20 * time.Second, 10 * time.Second}, 20 * time.Second},
		{"one outlier", []time.Duration{0, 5 * time.Hour, 20 * time.Second}, 20 * time.Second},
		{"a jump", []time.Duration{0, 2 * time.Hour, 2*time.Hour + 10*time.Second}, 2*time.Hour + 10*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var batches []any
			for _, d := range tc.at {
				batches = append(batches, testTraces(1, s(d)))
			}
			p := writeFile(t, t.TempDir(), "rec.jsonl", jsonLines(t, batches...))
			rp := &replay{rep: &Report{}, stderr: &bytes.Buffer{}, maxStep: int64(time.Hour)}
			if err := rp.run(context.Background(), []string{p}, &fedRecorder{}); err != nil {
				t.Fatal(err)
			}
			if got := time.Unix(0, rp.clock).UTC().Sub(t0); got != tc.want {
				t.Errorf("clock at +%v, want +%v", got, tc.want)
			}
		})
	}
}

// TestStdin: "-" reads the recording from standard input, gzip-ed here.
func TestStdin(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func(old *os.File) { os.Stdin = old }(os.Stdin)
	os.Stdin = r
	data := gzipped(t, jsonLines(t, testTraces(3, t0), testLogs(2, t0)))
	go func() {
		w.Write(data)
		w.Close()
	}()
	rep, err := Analyze(context.Background(), Options{}, []string{"-"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Input.Files[0]; f.Path != "stdin" || f.Compression != CompressionGzip || f.Spans != 3 || f.LogRecords != 2 {
		t.Errorf("stdin read as %+v, want 3 spans and 2 log records, gzip", f)
	}
}
