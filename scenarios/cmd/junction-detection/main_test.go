package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/junction-sre/junction/scenarios/e2e"
)

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-seed", "x"}, {"extra"}, {"-nope"}} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, &out, &errb); err == nil {
			t.Errorf("%q: no error", args)
		}
		if out.Len() != 0 {
			t.Errorf("%q: printed %q", args, out.String())
		}
	}
}

func TestCanceledRunFails(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	err := run(ctx, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("got %v, want a canceled run", err)
	}
	if out.Len() != 0 {
		t.Errorf("a canceled run printed %d bytes", out.Len())
	}
}

// TestWriteKeepsRealAppSection: -w rewrites the simulator part of the file
// and keeps the real-app section from its marker on, byte for byte, and
// the part it writes is what stdout mode prints.
func TestWriteKeepsRealAppSection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every scenario")
	}
	path := filepath.Join(t.TempDir(), "detection.md")
	realApp := e2e.RealAppMarker + "\n\n## Real application\n\n| fault | blamed |\n| --- | --- |\n| pool | db |\n"
	if err := os.WriteFile(path, []byte("# stale\n\nold table\n\n"+realApp), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-w", path}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	if out.Len() != 0 {
		t.Errorf("-w printed %d bytes on stdout", out.Len())
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "old table") || !strings.HasPrefix(string(got), "# Detection results\n") {
		t.Errorf("the simulator part was not rewritten:\n%s", got)
	}
	if !strings.HasSuffix(string(got), "\n\n"+realApp) {
		t.Errorf("the real-app section was not kept as it was:\n%s", got)
	}
	out.Reset()
	if err := run(context.Background(), nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimRight(out.String(), "\n") + "\n\n" + realApp; string(got) != want {
		t.Error("-w and stdout mode disagree on the simulator part")
	}
}

func TestWriteRefusesSummary(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-w", filepath.Join(t.TempDir(), "x.md"), "-summary"}, &out, &errb); err == nil {
		t.Error("-w with -summary ran")
	}
}
