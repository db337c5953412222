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
	}
	for _, tc := range tests {
		var out bytes.Buffer
		err := run(context.Background(), tc.args, &out, &out, fixedNow)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %v = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
