// Command junction-realapp runs the real-application faults
// (scenarios/realapp) concurrently into a junction binary with its built-in
// rule packs, against a private PostgreSQL, and prints the markdown table
// of docs/detection.md's real-application section:
//
//	make build && go run ./scenarios/cmd/junction-realapp -junction bin/junction
//
// It takes about five minutes. With -record DIR it keeps each fault's
// recording (OTLP JSON lines, plain and gzipped) and its ground truth;
// with -json it prints the whole report as JSON instead; with -w FILE it
// rewrites FILE (docs/detection.md) from its line `<!-- real-app -->` on
// with the section and the table, keeping everything above it. It exits 1 when
// Junction got an edge, a blame or a resolution wrong, after printing the
// table.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/junction-sre/junction/scenarios/realapp"

	"github.com/junction-sre/junction/internal/pgtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, errWrong):
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "junction-realapp:", err)
		os.Exit(1)
	}
}

var errWrong = errors.New("junction got some faults wrong")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("junction-realapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("junction", "bin/junction", "path of the junction binary (make build)")
	faults := fs.String("faults", joinFaults(realapp.Faults), "comma list of faults to run: "+joinFaults(realapp.Faults))
	record := fs.String("record", "", "directory for the recordings (<fault>.jsonl, .jsonl.gz, .truth.json); none when empty")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of markdown")
	write := fs.String("w", "", "rewrite this file (docs/detection.md) from its `"+realapp.DetectionMarker+"` line on with the section, instead of printing the table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if _, err := os.Stat(*bin); err != nil {
		return fmt.Errorf("-junction %s: %w (run `make build`)", *bin, err)
	}
	if *write != "" {
		// Fail before the five-minute run, not after it.
		if _, err := os.ReadFile(*write); err != nil {
			return fmt.Errorf("-w: %w", err)
		}
	}
	var list []realapp.Fault
	for _, s := range strings.Split(*faults, ",") {
		f, err := realapp.ParseFault(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-faults: %w", err)
		}
		list = append(list, f)
	}
	pgBin, err := pgtest.BinDir()
	if err != nil {
		return err
	}
	pg, err := pgtest.Start(ctx, pgBin, pgtest.Options{Name: "realapp"})
	if err != nil {
		return err
	}
	defer pg.Stop()
	start := time.Now()
	rep, err := realapp.Run(ctx, realapp.Config{
		Junction:  *bin,
		Postgres:  pg,
		Faults:    list,
		RecordDir: *record,
		Logf: func(format string, a ...any) {
			fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Since(start).Round(time.Second)}, a...)...)
		},
	})
	if err != nil {
		return err
	}
	switch {
	case *write != "":
		if err := realapp.WriteDetectionSection(*write, rep); err != nil {
			return fmt.Errorf("-w: %w", err)
		}
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	default:
		if err := realapp.WriteMarkdown(stdout, rep); err != nil {
			return err
		}
	}
	wrong := len(rep.Problems())
	for _, r := range rep.Results {
		wrong += len(r.Problems())
	}
	if wrong > 0 {
		return errWrong
	}
	return nil
}

func joinFaults(fs []realapp.Fault) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ",")
}
