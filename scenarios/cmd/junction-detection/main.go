// Command junction-detection plays every scenario unpaced into a
// correlation processor in process, with the built-in rule packs, scores
// the alerts against the scenarios' ground truth and writes the simulator
// part of docs/detection.md:
//
//	go run ./scenarios/cmd/junction-detection -w docs/detection.md
//
// -w FILE rewrites FILE in place up to the line "<!-- real-app -->" and
// keeps that line and everything after it (the real-app results, which
// another command writes); without -w the simulator part is printed on
// stdout. The same seed gives the same document.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/junction-sre/junction/scenarios"
	"github.com/junction-sre/junction/scenarios/e2e"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "junction-detection:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("junction-detection", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Uint64("seed", scenarios.DefaultSeed, "simulator seed")
	summary := fs.Bool("summary", false, "print only the one-line summary")
	write := fs.String("w", "", "rewrite this file (docs/detection.md) in place, keeping it from the line "+e2e.RealAppMarker+" on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *write != "" && *summary {
		return errors.New("-w and -summary: choose one")
	}
	var old []byte
	if *write != "" {
		// Read it first: a file that cannot be read is not overwritten.
		var err error
		if old, err = os.ReadFile(*write); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", *write, err)
		}
	}
	plan, err := e2e.DocPlan(*seed)
	if err != nil {
		return err
	}
	res, err := e2e.Run(ctx, plan)
	if err != nil {
		return err
	}
	if *summary {
		rep := res.Score(e2e.ScoreOptions())
		_, err = fmt.Fprintln(stdout, rep.Summary())
		return err
	}
	doc := e2e.Document(res)
	if *write == "" {
		_, err = io.WriteString(stdout, doc)
		return err
	}
	if err := writeFile(*write, []byte(e2e.SpliceDocument(doc, old))); err != nil {
		return err
	}
	rep := res.Score(e2e.ScoreOptions())
	fmt.Fprintf(stderr, "junction-detection: wrote %s (%s)\n", *write, rep.Summary())
	return nil
}

// writeFile replaces path through a temporary file in its directory, so an
// interrupted write leaves the old file whole.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
