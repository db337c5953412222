package cli

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPackTests(t *testing.T) {
	files, err := filepath.Glob("../packs/tests/*_test.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no pack tests: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out bytes.Buffer
			if err := RunTests(&out, []string{f}); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
		})
	}
}

func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return -1
	}
	return 0
}

func run(args ...string) (string, error) {
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestCheckCommand(t *testing.T) {
	out, err := run("check", "../packs")
	if exitCode(err) != 0 || !strings.Contains(out, "SUCCESS: 6 group(s), 24 rule(s)") {
		t.Fatalf("check ../packs: exit %d\n%s", exitCode(err), out)
	}
	out, err = run("check", "../testdata/errors.yaml", "../testdata/good.yaml")
	if exitCode(err) != 1 {
		t.Fatalf("exit %d, want 1\n%s", exitCode(err), out)
	}
	// The misspelt feature (CEL) and the bad duration (YAML) are both
	// reported, with file:line:col and the offending text.
	for _, want := range []string{
		"../testdata/errors.yaml:8:54: expr: undefined field 'latncy'\n |         expr: service.latency.p99_ms > 100 && service.latncy.p50_ms > 10\n",
		"../testdata/errors.yaml:3:15: interval: \"soon\" is not a duration",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "good.yaml") {
		t.Errorf("good.yaml reported:\n%s", out)
	}
}

// TestTestCommandFailsWithDiff changes one expectation of a pack test and
// checks that `rules test` fails and shows what differs.
func TestTestCommandFailsWithDiff(t *testing.T) {
	data, err := os.ReadFile("../packs/tests/database_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs("../packs/database.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(data), "rule_files: [../database.yaml]", "rule_files: ["+abs+"]", 1)
	changed := strings.Replace(src, "summary: orders uses 97 of 100 connections", "summary: orders uses 98 of 100 connections", 1)
	if changed == src {
		t.Fatal("expectation to change not found")
	}
	p := filepath.Join(t.TempDir(), "changed_test.yaml")
	if err := os.WriteFile(p, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run("test", p)
	if exitCode(err) != 1 {
		t.Fatalf("exit %d, want 1\n%s", exitCode(err), out)
	}
	for _, want := range []string{
		"eval_time 2m0s, alertname DatabaseConnectionLimit: alerts differ (-expected +got):",
		"    -     summary: orders uses 98 of 100 connections",
		"    +     summary: orders uses 97 of 100 connections",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// An expectation for a rule that does not exist is an error, not a
	// test that passes because nothing fires.
	typo := strings.Replace(src, "alertname: LockWaits", "alertname: LockWait", 1)
	if err := os.WriteFile(p, []byte(typo), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run("test", p); exitCode(err) != 1 || !strings.Contains(out, `alertname "LockWait" is not a rule of the rule files`) {
		t.Fatalf("unknown alertname: exit %d\n%s", exitCode(err), out)
	}
	// The unchanged file passes.
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run("test", p); exitCode(err) != 0 {
		t.Fatalf("unchanged test: exit %d\n%s", exitCode(err), out)
	}
}

func TestEvalCommand(t *testing.T) {
	out, err := run("eval", "--snapshot", "testdata/snapshot.json", "../packs")
	if exitCode(err) != 0 {
		t.Fatalf("exit %d\n%s", exitCode(err), out)
	}
	for _, want := range []string{
		"PENDING database/ConnectionPoolSaturated entity=service:shop/checkout blame=database:postgresql/orders-db:5432/orders severity=critical",
		"  summary: checkout: connection pool to orders saturated",
		"PENDING database/DatabaseConnectionLimit entity=database:postgresql/orders-db:5432/orders",
		"  value service:shop/checkout pool.utilization = 1",
		"PENDING bottleneck/HopOwnsLatency entity=service:shop/checkout blame=database:postgresql/orders-db:5432/orders",
		"at 2026-01-01T12:00:00Z",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := run("eval", "--snapshot", "testdata/missing.json", "../packs"); exitCode(err) != 1 {
		t.Errorf("missing snapshot: exit %d, want 1", exitCode(err))
	}
}

func TestParseSeries(t *testing.T) {
	nan := math.NaN()
	for in, want := range map[string][]float64{
		"100+10x3":      {100, 110, 120, 130},
		"0x2 5x1":       {0, 0, 0, 5, 5},
		"1 _ 3":         {1, nan, 3},
		"_x2 7":         {nan, nan, 7},
		"10-2x2":        {10, 8, 6},
		"-1+1x2":        {-1, 0, 1},
		"1e3x1":         {1000, 1000},
		"1.5e-1+1e-1x1": {0.15, 0.25},
		// promtool's own notation beyond the basics: stale ends a series,
		// a plain axN repeats, spaces separate.
		"1 stale 2":   {1, nan, 2},
		"3x0":         {3},
		"  4   5  ":   {4, 5},
		"1+1x1 _x1 2": {1, 2, nan, 2},
	} {
		got, err := parseSeries(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%q: got %v, want %v", in, got, want)
			continue
		}
		for i := range want {
			if !(got[i] == want[i] || math.IsNaN(got[i]) && math.IsNaN(want[i]) || math.Abs(got[i]-want[i]) < 1e-12) {
				t.Errorf("%q: got %v, want %v", in, got, want)
				break
			}
		}
	}
	for _, bad := range []string{"abc", "1x", "1x-2", "a+bx2", "1 {a=\"b\"}"} {
		_, err := parseSeries(bad)
		if err == nil {
			t.Errorf("%q: expected an error", bad)
			continue
		}
		// The error names the series as written, not the metric name
		// the parser needs before it.
		if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", bad)) {
			t.Errorf("%q: error %q does not quote the series", bad, msg)
		}
	}
	if _, err := parseSeries("1 2 zz"); err == nil || !strings.Contains(err.Error(), "column 5:") {
		t.Errorf(`"1 2 zz": error %v, want it at column 5`, err)
	}
}

// TestUsageErrorsAreSaid: a subcommand called wrongly says why on stderr
// (the collector's main prints nothing itself), and a failure ends with a
// one-line summary.
func TestUsageErrorsAreSaid(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check"}, "requires at least 1 arg"},
		{[]string{"test"}, "requires at least 1 arg"},
		{[]string{"eval", "../packs"}, `required flag(s) "snapshot" not set`},
		{[]string{"check", "--no-such-flag", "../packs"}, "unknown flag: --no-such-flag"},
		{[]string{"check", "../testdata/errors.yaml"}, "error(s) in rule files"},
	} {
		out, err := run(tc.args...)
		if err == nil {
			t.Errorf("%v: no error", tc.args)
			continue
		}
		if !strings.Contains(out, "Error: ") || !strings.Contains(out, tc.want) {
			t.Errorf("%v: output %q does not say %q", tc.args, out, tc.want)
		}
	}
}
