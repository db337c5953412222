package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/junction-sre/junction/scenarios/internal/otlptest"
)

var fixedNow = func() time.Time { return time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC) }

func TestPrintTruth(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-print-truth", "json", "-scenario", "database,surge", "-healthy", "1m", "-fault", "2m", "-recover", "30s"},
		&out, &out, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	var truth []struct {
		Scenario   string `json:"scenario"`
		Start      string `json:"start"`
		FaultStart string `json:"fault_start"`
		Expect     []struct {
			Rules []string `json:"rules"`
			Blame string   `json:"blame"`
		} `json:"expect"`
	}
	if err := json.Unmarshal(out.Bytes(), &truth); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(truth) != 2 || truth[0].Scenario != "database" || truth[1].Scenario != "surge" {
		t.Fatalf("truth = %+v", truth)
	}
	// -start now rounds down to the 10s step.
	if truth[0].Start != "2026-03-01T12:00:00Z" || truth[0].FaultStart != "2026-03-01T12:01:00Z" || truth[1].Start != "2026-03-01T12:03:30Z" {
		t.Errorf("times = %+v", truth)
	}
	if truth[0].Expect[0].Rules[0] != "ConnectionPoolSaturated" || truth[0].Expect[0].Blame != "database:postgresql/postgres.shop.svc:5432/shop" {
		t.Errorf("database expectation = %+v", truth[0].Expect)
	}
}

func TestTruthOutAndYAML(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-print-truth", "yaml", "-scenario", "cost", "-start", "2026-01-05T09:00:00Z"}, &out, &out, fixedNow); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "- CostCutBurnedBudget") || !strings.Contains(out.String(), "blame: service:shop/recommendations") {
		t.Errorf("yaml truth:\n%s", out.String())
	}
	path := filepath.Join(t.TempDir(), "truth.json")
	// An unreachable endpoint fails the run after the truth is written.
	err := run(context.Background(), []string{"-truth-out", path, "-scenario", "surge", "-speed", "0", "-timeout", "100ms",
		"-endpoint", "127.0.0.1:1", "-healthy", "10s", "-fault", "10s", "-recover", "10s", "-quiet"}, &out, &out, fixedNow)
	if err == nil {
		t.Error("a run against a closed port succeeded")
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), `"ProxyShedding"`) {
		t.Errorf("truth file: %v %s", err, b)
	}
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-scenario", "meteor"}, `-scenario: unknown scenario "meteor"`},
		{[]string{"-fault", "15s"}, "fault 15s: must be a multiple of the step 10s"},
		{[]string{"-speed", "-1"}, "-speed -1"},
		{[]string{"-start", "yesterday"}, "-start"},
		{[]string{"-print-truth", "xml"}, `format "xml"`},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-rate", "0"}, "edge rate 0"},
		{[]string{"-progress", "xml"}, `-progress "xml"`},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		err := run(context.Background(), tc.args, &out, &out, fixedNow)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %v = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// TestRunAgainstReceiver plays two short scenarios into a real otlp
// receiver, unpaced, with JSON progress.
func TestRunAgainstReceiver(t *testing.T) {
	rcv := otlptest.Start(t)
	addr, spans := rcv.Addr, rcv.Traces
	ctx := context.Background()

	var out bytes.Buffer
	err := run(ctx, []string{"-endpoint", addr, "-scenario", "surge,bottleneck", "-speed", "0", "-progress", "json",
		"-healthy", "20s", "-fault", "20s", "-recover", "10s", "-start", "2026-01-05T09:00:00Z"}, &out, &out, fixedNow)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var phases []string
	var done struct {
		Done  bool `json:"done"`
		Spans int  `json:"spans"`
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev phaseEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if ev.Scenario != "" {
			phases = append(phases, ev.Scenario+"/"+ev.Phase+"@"+ev.Time.Format("15:04:05"))
		} else if err := json.Unmarshal([]byte(line), &done); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"surge/healthy@09:00:00", "surge/fault@09:00:20", "surge/recover@09:00:40",
		"bottleneck/healthy@09:00:50", "bottleneck/fault@09:01:10", "bottleneck/recover@09:01:30"}
	if strings.Join(phases, " ") != strings.Join(want, " ") {
		t.Errorf("phases = %v\nwant %v", phases, want)
	}
	if !done.Done || done.Spans == 0 || done.Spans != spans.SpanCount() {
		t.Errorf("summary %+v, receiver got %d spans", done, spans.SpanCount())
	}
}
