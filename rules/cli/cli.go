// Package cli is the `junction rules` command: check rule files, run rule
// unit tests and evaluate rules against a recorded entity snapshot.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/rules"
)

// ExitError is returned by the rules subcommands when they fail after
// printing why; Code is the process exit code.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// NewCommand returns the `rules` command with its check, test and eval
// subcommands.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Check, test and evaluate Junction rule files",
	}
	cmd.AddCommand(newCheckCommand(), newTestCommand(), newEvalCommand())
	return cmd
}

func newCheckCommand() *cobra.Command {
	var costLimit uint64
	cmd := &cobra.Command{
		Use:   "check <paths...>",
		Short: "Load and type-check rule files, directories or globs; print every error",
		Long: "Loads every rule file like the collector does and type-checks every expression\n" +
			"against the entity schema. Prints each error as file:line:col and exits 1 when\n" +
			"there is any.",
		Args:         cobra.MinimumNArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, costLimit)
		},
	}
	cmd.Flags().Uint64Var(&costLimit, "cost-limit", rules.DefaultCostLimit, "CEL cost limit per evaluation (0: none)")
	return cmd
}

func runCheck(stdout, stderr io.Writer, paths []string, costLimit uint64) error {
	groups, nrules, errs := rules.Check(paths, costLimit)
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stderr, e.Error())
		}
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%d error(s) in rule files", len(errs))}
	}
	fmt.Fprintf(stdout, "SUCCESS: %d group(s), %d rule(s)\n", groups, nrules)
	return nil
}

func newTestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test <test files...>",
		Short: "Run rule unit tests: feature series over time and the alerts expected at evaluation times",
		Long: "Each test file names its rule files and gives, per test, entity feature series in\n" +
			"expanding notation (100+10x5, 0x10 5x5, _ for no value) and the alerts expected at\n" +
			"evaluation times. A failed expectation prints a diff (- expected, + got); exits 1\n" +
			"when any test fails.",
		Args:         cobra.MinimumNArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return RunTests(cmd.OutOrStdout(), args)
		},
	}
	return cmd
}

func newEvalCommand() *cobra.Command {
	var snapshotFile, at string
	var costLimit uint64
	cmd := &cobra.Command{
		Use:   "eval --snapshot <file.json> <rule paths...>",
		Short: "Evaluate rules once against a recorded entity snapshot and print what would fire and why",
		Long: "Evaluates every rule once on the snapshot (JSON of entity.Snapshot, as the query API\n" +
			"and the correlation processor record it). Rules with a `for` duration show as\n" +
			"pending, since one evaluation cannot hold a condition for a while.",
		Args:         cobra.MinimumNArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEval(cmd.OutOrStdout(), cmd.ErrOrStderr(), snapshotFile, at, costLimit, args)
		},
	}
	cmd.Flags().StringVar(&snapshotFile, "snapshot", "", "entity snapshot JSON file (required)")
	cmd.Flags().StringVar(&at, "time", "", "evaluation time (RFC 3339); the snapshot's time by default")
	cmd.Flags().Uint64Var(&costLimit, "cost-limit", rules.DefaultCostLimit, "CEL cost limit per evaluation (0: none)")
	_ = cmd.MarkFlagRequired("snapshot")
	return cmd
}

// ReadSnapshot reads an entity snapshot JSON file.
func ReadSnapshot(path string) (*entity.Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	var snap entity.Snapshot
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(data, int(se.Offset))
			return nil, fmt.Errorf("snapshot %s:%d:%d: %w", path, line, col, err)
		}
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	snap.Sort()
	return &snap, nil
}

func lineCol(data []byte, off int) (int, int) {
	line, col := 1, 1
	for i := 0; i < off && i < len(data); i++ {
		if data[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

func runEval(stdout, stderr io.Writer, snapshotFile, at string, costLimit uint64, paths []string) error {
	snap, err := ReadSnapshot(snapshotFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return &ExitError{Code: 1, Msg: err.Error()}
	}
	now := snap.Time
	if at != "" {
		if now, err = time.Parse(time.RFC3339, at); err != nil {
			fmt.Fprintf(stderr, "--time: %v\n", err)
			return &ExitError{Code: 1, Msg: err.Error()}
		}
	}
	m, err := rules.NewManager(rules.Config{Files: paths, CostLimit: costLimit}, rules.Settings{})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return &ExitError{Code: 1, Msg: "rule files have errors"}
	}
	alerts, status := m.Eval(context.Background(), snap, now)
	printAlerts(stdout, alerts)
	unhealthy := 0
	for _, s := range status {
		if s.Health == alert.HealthErr {
			unhealthy++
			fmt.Fprintf(stdout, "RULE ERROR %s/%s: %s\n", s.Group, s.Rule, s.LastError)
		}
	}
	fmt.Fprintf(stdout, "%d alert(s) from %d rule(s) on %d entities at %s\n", len(alerts), len(status), len(snap.Entities), now.UTC().Format(time.RFC3339))
	if unhealthy > 0 {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%d rule(s) failed to evaluate", unhealthy)}
	}
	return nil
}

func printAlerts(w io.Writer, alerts []alert.Alert) {
	for _, a := range alerts {
		fmt.Fprintf(w, "%s %s/%s entity=%s blame=%s severity=%s\n", strings.ToUpper(string(a.State)), a.Group, a.Rule, a.Entity.ID, a.Blame.ID, a.Severity)
		for _, k := range sortedKeys(a.Annotations) {
			fmt.Fprintf(w, "  %s: %s\n", k, a.Annotations[k])
		}
		for _, k := range sortedKeys(a.Labels) {
			fmt.Fprintf(w, "  label %s=%s\n", k, a.Labels[k])
		}
		keys := make([]string, 0, len(a.Evidence.Values))
		for k := range a.Evidence.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  value %s = %g\n", k, a.Evidence.Values[k])
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
