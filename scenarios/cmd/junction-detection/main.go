// Command junction-detection plays every scenario unpaced into a
// correlation processor in process, with the built-in rule packs, scores
// the alerts against the scenarios' ground truth and prints
// docs/detection.md:
//
//	go run ./scenarios/cmd/junction-detection > docs/detection.md
//
// The same seed gives the same document.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
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
	_, err = io.WriteString(stdout, e2e.Document(res))
	return err
}
