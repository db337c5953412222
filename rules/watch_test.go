package rules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/junction-sre/junction/alert"
)

// The watcher tests run Manager.Run on real files with file-system
// notifications and no reload_interval, so a rule set changes only when
// the watcher saw the change. They wait for the watcher's event, not for
// a timer: each step polls the running rule names until they change or
// watchWait passes.
const watchWait = 10 * time.Second

func watchedRule(name string) string {
	return "groups:\n  - name: g\n    interval: 1h\n    rules:\n      - alert: " + name + "\n        kind: k\n        for_each: service\n        expr: service.error.ratio > 0.5\n"
}

// brokenRule has a type error (the feature does not exist), which the
// compiler reports and a reload must refuse.
func brokenRule(name string) string {
	return strings.Replace(watchedRule(name), "error.ratio", "eror.ratio", 1)
}

func ruleNames(m *Manager) string {
	var names []string
	for _, s := range m.Status() {
		names = append(names, s.Rule)
	}
	return strings.Join(names, ",")
}

// runWatched starts m.Run with file-system notifications on and no
// reload interval, returns once Run has evaluated (its watcher is set up
// by then), and stops it at the end of the test.
func runWatched(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	evaluated := make(chan struct{})
	var once sync.Once
	go func() {
		done <- m.Run(ctx, &fakeSource{snap: snapOf()}, func(context.Context, time.Time, []alert.Alert, []alert.RuleStatus) {
			once.Do(func() { close(evaluated) })
		})
	}()
	select {
	case <-evaluated:
	case <-time.After(watchWait):
		t.Fatal("Run did not evaluate")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// waitRules waits until the running rule names are want.
func waitRules(t *testing.T, m *Manager, want, step string) {
	t.Helper()
	deadline := time.Now().Add(watchWait)
	for {
		got := ruleNames(m)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: running rules %q after %s, want %q", step, got, watchWait, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReloadFailures waits until n reloads have failed, the sign that the
// watcher saw a broken edit (which must leave the rules as they were).
func waitReloadFailures(t *testing.T, reader *sdkmetric.ManualReader, n int64, step string) {
	t.Helper()
	deadline := time.Now().Add(watchWait)
	for {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		if got := counterValue(rm, metricReloadFailures); got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the watcher never tried the broken rules (%s < %d)", step, metricReloadFailures, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchPicksUpEdits: the rule files' watcher reloads on the three ways
// rule files change in practice, and a broken edit keeps the last good
// rules until it is fixed.
func TestWatchPicksUpEdits(t *testing.T) {
	cases := []struct {
		name string
		// setup writes the first rules and returns the path to configure
		// (a file or a directory).
		setup func(t *testing.T, dir string) string
		// change replaces the rules with body the way the case does.
		change func(t *testing.T, dir string, n int, body string)
	}{
		{
			// An editor or `cp`: the file is truncated and written again.
			name: "write in place",
			setup: func(t *testing.T, dir string) string {
				return writeRules(t, dir, watchedRule("V0"))
			},
			change: func(t *testing.T, dir string, _ int, body string) {
				writeRules(t, dir, body)
			},
		},
		{
			// Git checkouts and most config tools: a new file renamed over
			// the old one (the watched file's inode changes).
			name: "rename into place",
			setup: func(t *testing.T, dir string) string {
				return writeRules(t, dir, watchedRule("V0"))
			},
			change: func(t *testing.T, dir string, n int, body string) {
				tmp := filepath.Join(dir, fmt.Sprintf(".rules.yaml.%d.tmp", n))
				if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, filepath.Join(dir, "rules.yaml")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			// A Kubernetes ConfigMap volume: the files are symlinks through
			// ..data, a symlink to a timestamped directory; an update
			// writes a new directory and swaps ..data by renaming a new
			// symlink over it. The configured path is the mount directory.
			name: "configmap symlink swap",
			setup: func(t *testing.T, dir string) string {
				configMapWrite(t, dir, 0, watchedRule("V0"))
				if err := os.Symlink(filepath.Join("..data", "rules.yaml"), filepath.Join(dir, "rules.yaml")); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			change: func(t *testing.T, dir string, n int, body string) {
				configMapWrite(t, dir, n, body)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tc.setup(t, dir)
			m, reader := newTestManager(t, Config{Files: []string{path}})
			runWatched(t, m)
			waitRules(t, m, "V0", "start")

			tc.change(t, dir, 1, watchedRule("V1"))
			waitRules(t, m, "V1", "first edit")

			tc.change(t, dir, 2, brokenRule("V2"))
			waitReloadFailures(t, reader, 1, "broken edit")
			if got := ruleNames(m); got != "V1" {
				t.Fatalf("after a broken edit the running rules are %q, want the last good V1", got)
			}

			tc.change(t, dir, 3, watchedRule("V3"))
			waitRules(t, m, "V3", "fixed edit")
		})
	}
}

// configMapWrite does what the kubelet does to a ConfigMap volume: the
// data goes into a new timestamped directory, a new symlink to it is
// renamed over ..data, and the old directory is removed.
func configMapWrite(t *testing.T, dir string, n int, body string) {
	t.Helper()
	ts := fmt.Sprintf("..2026_12_04_00_00_%02d.%d", n, n)
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ts, "rules.yaml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}
