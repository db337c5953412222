//go:build linux

package realapp_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/junction-sre/junction/analyze"
	"github.com/junction-sre/junction/internal/testbin"
	"github.com/junction-sre/junction/scenarios/realapp"

	"github.com/junction-sre/junction/internal/pgtest"
)

// RecordDirEnv names the directory the test writes its recordings to
// (<fault>.jsonl, <fault>.jsonl.gz, <fault>.truth.json); a temporary
// directory when unset.
const RecordDirEnv = "REALAPP_RECORD_DIR"

// TestRealApp runs every fault of the real application concurrently into
// bin/junction (built-in rule packs) and fails on any wrong edge, missing
// or extra node, missing or wrong blame, firing that is not the fault's,
// or alert that does not resolve once the fault is fixed.
func TestRealApp(t *testing.T) {
	pgBin, err := pgtest.BinDir()
	if errors.Is(err, pgtest.ErrNotInstalled) {
		t.Skipf("%v; .ci/run installs it", err)
	}
	bin := testbin.Junction(t)
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	pg, err := pgtest.Start(ctx, pgBin, pgtest.Options{Name: "realapp"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- postgres log (tail):\n%s", pg.LogTail(4000))
		}
		if err := pg.Stop(); err != nil {
			t.Error(err)
		}
	})
	dir := os.Getenv(RecordDirEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	start := time.Now()
	rep, err := realapp.Run(ctx, realapp.Config{
		Junction:  bin,
		Postgres:  pg,
		Faults:    realapp.Faults,
		RecordDir: dir,
		Logf:      t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run took %v; the alert stream was reopened %d times",
		time.Since(start).Round(time.Second), rep.StreamReconnects)
	var md bytes.Buffer
	if err := realapp.WriteMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("results:\n%s", md.String())

	for _, r := range rep.Results {
		t.Run(string(r.Fault), func(t *testing.T) {
			t.Logf("requests %d (failed %d); fault %s, fix %s", r.Requests, r.Failed,
				r.FaultAt.Format(time.TimeOnly), r.FixAt.Format(time.TimeOnly))
			for _, e := range r.Edges {
				t.Logf("edge %s", e)
			}
			for _, f := range r.Firings {
				t.Logf("firing %s blame %s pending %s fired %s resolved %s expected %v path %q blames %v",
					f.Alert, f.Blame, f.Pending.Format(time.TimeOnly), f.Fired.Format(time.TimeOnly),
					f.Resolved.Format(time.TimeOnly), f.Expected, f.Path, f.Blames)
			}
			for _, n := range r.Notes() {
				t.Logf("note: %s", n)
			}
			for _, p := range r.Problems() {
				t.Error(p)
			}
			if r.Precision != 1 || r.Recall != 1 {
				t.Errorf("edges precision %.2f, recall %.2f; want 1, 1", r.Precision, r.Recall)
			}
			if r.Blamed != r.Truth.Blame {
				t.Errorf("blamed %q, want %q", r.Blamed, r.Truth.Blame)
			}
			if r.Blamed != "" && r.ShareOf == "" {
				t.Errorf("no critical-path share of the blamed hop %s was reported", r.Blamed)
			}
			if r.Failed > r.Requests/100 {
				t.Errorf("%d of %d requests failed: the application itself broke", r.Failed, r.Requests)
			}
			if r.Recording == nil {
				t.Fatal("no recording")
			}
			checkRecording(t, r.Recording)
			checkAnalyze(t, bin, r.Recording)
		})
	}
	for _, p := range rep.Problems() {
		t.Error(p)
	}
	if t.Failed() {
		t.Logf("--- junction output (tail):\n%s", rep.JunctionOutput)
	}
}

// checkRecording reads both files back: every line is one OTLP JSON trace
// export request, the gzipped file holds the same lines, and they hold
// the spans the recorder counted.
func checkRecording(t *testing.T, rec *realapp.Recording) {
	t.Helper()
	plain, err := os.ReadFile(rec.JSONL)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(rec.JSONLGz)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	unz, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, unz) {
		t.Errorf("%s and %s differ (%d and %d bytes)", rec.JSONL, rec.JSONLGz, len(plain), len(unz))
	}
	sc := bufio.NewScanner(bytes.NewReader(plain))
	sc.Buffer(nil, 64<<20)
	lines, spans := 0, 0
	services := map[string]bool{}
	for sc.Scan() {
		lines++
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(sc.Bytes())
		if err != nil {
			t.Fatalf("%s:%d: %v", rec.JSONL, lines, err)
		}
		spans += td.SpanCount()
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			if v, ok := td.ResourceSpans().At(i).Resource().Attributes().Get("service.name"); ok {
				services[v.Str()] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines != rec.Lines || spans != rec.Spans || spans == 0 {
		t.Errorf("%s: %d lines, %d spans; the recorder wrote %d, %d", rec.JSONL, lines, spans, rec.Lines, rec.Spans)
	}
	want := []string{realapp.ServiceFrontend, realapp.ServiceInventory, realapp.ServiceOrders}
	for _, s := range want {
		if !services[s] {
			t.Errorf("%s: no spans of %s (services %v)", rec.JSONL, s, strings.Join(keys(services), ","))
		}
	}
	t.Logf("recording %s: %d lines, %d spans", rec.JSONLGz, lines, spans)
}

// checkAnalyze runs `junction analyze --format json` on the gzipped
// recording, as a user triaging it offline would, and fails unless the
// graph's edges of the instance are exactly its real calls and every alert
// that fired blames the true bottleneck (at least one fires).
func checkAnalyze(t *testing.T, bin string, rec *realapp.Recording) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "analyze", "--format", "json", rec.JSONLGz)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("junction analyze %s: %v\n%s", rec.JSONLGz, err, stderr.String())
	}
	took := time.Since(start)
	var rep analyze.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("junction analyze --format json: %v", err)
	}
	truth := rec.Truth
	ns := "service:" + truth.Namespace + "/"
	mine := func(id string) bool { return slices.Contains(truth.Entities, id) || strings.HasPrefix(id, ns) }
	var got []string
	for _, e := range rep.Graph.Edges {
		if mine(e.Source) || mine(e.Target) {
			got = append(got, realapp.Edge{Source: e.Source, Target: e.Target, Type: e.Type}.String())
		}
	}
	var want []string
	for _, e := range truth.Edges {
		want = append(want, e.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("analyze: edges\n  %s\nwant the real calls\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	fired := 0
	for _, ep := range rep.Alerts.Episodes {
		if ep.FiredAt.IsZero() {
			continue
		}
		fired++
		if ep.Blame.ID != truth.Blame {
			t.Errorf("analyze: %s on %s fired blaming %s, want %s", ep.Rule, ep.Entity.ID, ep.Blame.ID, truth.Blame)
		}
	}
	if fired == 0 {
		t.Errorf("analyze: no alert fired on the recording; want one blaming %s", truth.Blame)
	}
	t.Logf("analyze: %d spans in %v, %d edges, %d firings", rep.Input.Spans, took.Round(time.Millisecond), len(got), fired)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
