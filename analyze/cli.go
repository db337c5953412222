package analyze

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// NewCommand returns the `analyze` command.
func NewCommand() *cobra.Command {
	var (
		opts     Options
		until    string
		progress bool
	)
	cmd := &cobra.Command{
		Use:   "analyze [flags] FILE...",
		Short: "Offline triage of recorded OTLP telemetry: entity graph, critical path and alerts",
		Long: `Reads OTLP recordings as the collector's file exporter writes them (one JSON
export request per line, or length-prefixed protobuf; plain, gzip or zstd,
told from the content), replays them in time order into Junction's
correlation processor on the recording's own clock, evaluates the rule packs,
and prints the entity graph (nodes and edges with request rate, error ratio,
p50/p99), the critical path from the slowest entry points with each hop's
share, and the alerts with their blamed entity and evidence.

Records are merged across files by timestamp; within a file they are
replayed in the order written. "-" reads standard input. A record that does not decode is reported
with its file and line (or message number) and skipped. Progress goes to
stderr when it is a terminal, or with --progress.

Exit status: 0 when the recording was analyzed (bad records are counted, not
fatal; alerts do not change it); 1 when nothing could be read from any file,
or on a usage error (flags, unreadable rule files).

Examples:
  junction analyze recording.jsonl.gz
  junction analyze --format json traces.json metrics.json > report.json
  junction analyze --rules ./rules --until 2026-01-05T09:10:00Z rec.pb`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return report(cmd, usageErr("no recording files given; usage: %s", cmd.UseLine()))
			}
			if until != "" {
				t, err := time.Parse(time.RFC3339Nano, until)
				if err != nil {
					return report(cmd, usageErr("--until %q: want an RFC 3339 time, e.g. 2026-01-05T09:10:00Z", until))
				}
				opts.Until = t
			}
			opts.Progress = progress || (!cmd.Flags().Changed("progress") && isTerminal(os.Stderr))
			return report(cmd, Run(cmd.Context(), opts, args, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	// With SilenceErrors the collector's main prints nothing: say what is
	// wrong with a flag here.
	cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return report(cmd, usageErr("%w; see junction analyze --help", err))
	})
	f := cmd.Flags()
	f.StringVar(&opts.Format, "format", "text", "output format: text or json (docs/analyze.md documents the JSON schema)")
	f.StringSliceVar(&opts.Rules, "rules", nil, "rule files, directories or globs to evaluate (default: the built-in packs, builtin:packs)")
	f.StringVar(&until, "until", "", "replay only up to this RFC 3339 time and report the graph as of it")
	f.IntVar(&opts.Top, "top", DefaultTop, "number of slowest entry points to walk critical paths from")
	f.BoolVar(&progress, "progress", false, "report progress on stderr (default: when stderr is a terminal)")
	f.StringVar(&opts.SnapshotOut, "snapshot-out", "", "also write the full entity snapshot as JSON to `file`, the input of junction rules eval --snapshot")
	return cmd
}

// report prints err on the command's stderr and returns it, so that the
// process exits non-zero.
func report(cmd *cobra.Command, err error) error {
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "junction analyze:", err)
	}
	return err
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
