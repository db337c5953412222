package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
