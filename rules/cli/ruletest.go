package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/rules"
)

// testFile is a rule unit test file (docs/rules.md, "Testing rules").
type testFile struct {
	RuleFiles          []string   `yaml:"rule_files"`
	EvaluationInterval duration   `yaml:"evaluation_interval"`
	Tests              []testCase `yaml:"tests"`
}

type testCase struct {
	Name          string          `yaml:"name"`
	Interval      duration        `yaml:"interval"`
	Entities      []testEntity    `yaml:"entities"`
	Edges         []testEdge      `yaml:"edges"`
	AlertRuleTest []alertTestCase `yaml:"alert_rule_test"`
}

type testEntity struct {
	ID         string            `yaml:"id"`
	Type       string            `yaml:"type"`
	Name       string            `yaml:"name"`
	Virtual    bool              `yaml:"virtual"`
	Attributes map[string]string `yaml:"attributes"`
	Features   map[string]string `yaml:"features"`
	Features5m map[string]string `yaml:"features_5m"`
	Baseline   map[string]string `yaml:"baseline"`
	Metrics    map[string]string `yaml:"metrics"`
}

type testEdge struct {
	Source   string            `yaml:"source"`
	Target   string            `yaml:"target"`
	Type     string            `yaml:"type"`
	Features map[string]string `yaml:"features"`
}

type alertTestCase struct {
	EvalTime  duration   `yaml:"eval_time"`
	Alertname string     `yaml:"alertname"`
	ExpAlerts []expAlert `yaml:"exp_alerts"`
}

// expAlert is one expected alert. Entity is required; State defaults to
// firing; Blame, Labels and Annotations are compared only when given.
type expAlert struct {
	Entity      string            `yaml:"entity"`
	State       string            `yaml:"state,omitempty"`
	Blame       string            `yaml:"blame,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 15s, 5m)", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// RunTests runs rule test files, printing each failure with a diff to w.
// It returns an *ExitError when any test fails or a file is broken.
func RunTests(w io.Writer, files []string) error {
	failed := 0
	for _, f := range files {
		n, err := runTestFile(w, f)
		failed += n
		if err != nil {
			fmt.Fprintf(w, "FAILED %s:\n%v\n", f, err)
			failed++
		}
	}
	if failed > 0 {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%d rule test(s) failed", failed)}
	}
	fmt.Fprintln(w, "SUCCESS")
	return nil
}

func runTestFile(w io.Writer, path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var tf testFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if len(tf.RuleFiles) == 0 {
		return 0, fmt.Errorf("%s: rule_files: at least one rule file is required", path)
	}
	var ruleFiles []string
	for _, rf := range tf.RuleFiles {
		if !filepath.IsAbs(rf) {
			rf = filepath.Join(filepath.Dir(path), rf)
		}
		ruleFiles = append(ruleFiles, rf)
	}
	interval := time.Duration(tf.EvaluationInterval)
	if interval == 0 {
		interval = rules.DefaultGroupInterval
	}
	failed := 0
	for i := range tf.Tests {
		tc := &tf.Tests[i]
		// Each test starts from fresh alert state.
		m, err := rules.NewManager(rules.Config{Files: ruleFiles, CostLimit: rules.DefaultCostLimit}, rules.Settings{})
		if err != nil {
			return failed, err
		}
		problems, err := runTestCase(m, tc, interval)
		if err != nil {
			return failed, fmt.Errorf("test %q: %w", tc.Name, err)
		}
		if len(problems) > 0 {
			failed++
			fmt.Fprintf(w, "FAILED %s: test %q:\n", path, tc.Name)
			for _, p := range problems {
				fmt.Fprintln(w, p)
			}
		}
	}
	return failed, nil
}

// series is a parsed value series; NaN marks a step without a value.
type series []float64

var absent = math.NaN()

// seriesParser reads series in promtool's notation.
var seriesParser = parser.NewParser(parser.Options{})

// parseSeries reads a value series exactly as promtool's rule tests do,
// with the PromQL parser's series notation (promql/parser.ParseSeriesDesc):
// "a+bxN" (N+1 values a, a+b, ... a+N*b), "a-bxN", "axN" (a, N+1 times),
// "_" (a step without a value), "_xN" (N such steps) and "stale" (the
// series ends: no value), separated by spaces. Steps without a value are
// NaN in the result.
func parseSeries(s string) (series, error) {
	// ParseSeriesDesc reads a metric name before the values.
	_, vals, err := seriesParser.ParseSeriesDesc(seriesMetric + " " + s)
	if err != nil {
		var perrs parser.ParseErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			// The position counted in the series as written.
			col := int(perrs[0].PositionRange.Start) - len(seriesMetric)
			return nil, fmt.Errorf("series %q: column %d: %w", s, max(col, 1), perrs[0].Err)
		}
		return nil, fmt.Errorf("series %q: %w", s, err)
	}
	out := make(series, len(vals))
	for i, v := range vals {
		switch {
		case v.Omitted, value.IsStaleNaN(v.Value):
			out[i] = absent
		case v.Histogram != nil:
			return nil, fmt.Errorf("series %q: histogram samples are not supported: features are numbers", s)
		default:
			out[i] = v.Value
		}
	}
	return out, nil
}

// seriesMetric is the metric name parseSeries puts before the values.
const seriesMetric = "series"

type parsedEntity struct {
	e                                   entity.Entity
	features, features5m, base, metrics map[string]series
}

type parsedEdge struct {
	e        entity.Edge
	features map[string]series
}

func parseSeriesMap(what string, m map[string]string) (map[string]series, error) {
	out := make(map[string]series, len(m))
	for k, v := range m {
		s, err := parseSeries(v)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, k, err)
		}
		out[k] = s
	}
	return out, nil
}

func valuesAt(m map[string]series, step int) map[string]float64 {
	var out map[string]float64
	for k, s := range m {
		if step < len(s) && !math.IsNaN(s[step]) {
			if out == nil {
				out = map[string]float64{}
			}
			out[k] = s[step]
		}
	}
	return out
}

// testStart is the wall-clock origin of every test; eval_time is relative
// to it.
var testStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func runTestCase(m *rules.Manager, tc *testCase, evalInterval time.Duration) ([]string, error) {
	step := time.Duration(tc.Interval)
	if step == 0 {
		step = evalInterval
	}
	var ents []parsedEntity
	for _, te := range tc.Entities {
		if te.ID == "" || te.Type == "" {
			return nil, fmt.Errorf("entities: id and type are required")
		}
		pe := parsedEntity{e: entity.Entity{
			Ref:     entity.Ref{Type: entity.Type(te.Type), ID: te.ID, Name: te.Name},
			Virtual: te.Virtual, Attributes: te.Attributes,
		}}
		if pe.e.Name == "" {
			pe.e.Name = te.ID
		}
		var err error
		if pe.features, err = parseSeriesMap(te.ID+" features", te.Features); err != nil {
			return nil, err
		}
		if pe.features5m, err = parseSeriesMap(te.ID+" features_5m", te.Features5m); err != nil {
			return nil, err
		}
		if pe.base, err = parseSeriesMap(te.ID+" baseline", te.Baseline); err != nil {
			return nil, err
		}
		if pe.metrics, err = parseSeriesMap(te.ID+" metrics", te.Metrics); err != nil {
			return nil, err
		}
		ents = append(ents, pe)
	}
	var edges []parsedEdge
	for _, te := range tc.Edges {
		fs, err := parseSeriesMap(te.Source+"->"+te.Target+" features", te.Features)
		if err != nil {
			return nil, err
		}
		edges = append(edges, parsedEdge{e: entity.Edge{Source: te.Source, Target: te.Target, Type: entity.EdgeType(te.Type)}, features: fs})
	}
	known := map[string]bool{}
	for _, s := range m.Status() {
		known[s.Rule] = true
	}
	// Expectations by evaluation step.
	byStep := map[int][]alertTestCase{}
	last := 0
	for _, at := range tc.AlertRuleTest {
		if at.Alertname != "" && !known[at.Alertname] {
			return nil, fmt.Errorf("alertname %q is not a rule of the rule files", at.Alertname)
		}
		for _, e := range at.ExpAlerts {
			if e.Entity == "" {
				return nil, fmt.Errorf("eval_time %v: exp_alerts: entity is required", time.Duration(at.EvalTime))
			}
			switch e.State {
			case "", string(alert.StatePending), string(alert.StateFiring):
			default:
				return nil, fmt.Errorf("eval_time %v: exp_alerts: state %q is not pending or firing", time.Duration(at.EvalTime), e.State)
			}
		}
		d := time.Duration(at.EvalTime)
		if d%evalInterval != 0 {
			return nil, fmt.Errorf("eval_time %v is not a multiple of evaluation_interval %v", d, evalInterval)
		}
		n := int(d / evalInterval)
		byStep[n] = append(byStep[n], at)
		last = max(last, n)
	}
	var problems []string
	for n := 0; n <= last; n++ {
		t := time.Duration(n) * evalInterval
		idx := int(t / step)
		snap := &entity.Snapshot{Time: testStart.Add(t)}
		for _, pe := range ents {
			e := pe.e
			e.Features = valuesAt(pe.features, idx)
			e.Features5m = valuesAt(pe.features5m, idx)
			e.Baseline = valuesAt(pe.base, idx)
			e.Metrics = valuesAt(pe.metrics, idx)
			snap.Entities = append(snap.Entities, e)
		}
		for _, pe := range edges {
			e := pe.e
			e.Features = valuesAt(pe.features, idx)
			snap.Edges = append(snap.Edges, e)
		}
		snap.Sort()
		alerts, status := m.Eval(context.Background(), snap, snap.Time)
		for _, s := range status {
			if s.Health == alert.HealthErr {
				problems = append(problems, fmt.Sprintf("  at %v: rule %s/%s failed: %s", t, s.Group, s.Rule, s.LastError))
			}
		}
		for _, at := range byStep[n] {
			if d := compareAlerts(at, alerts); d != "" {
				problems = append(problems, fmt.Sprintf("  eval_time %v, alertname %s: alerts differ (-expected +got):\n%s", t, at.Alertname, d))
			}
		}
	}
	return problems, nil
}

// compareAlerts compares the pending and firing alerts of at.Alertname
// (all rules when empty) with the expectations and returns a diff, or ""
// when they agree.
func compareAlerts(at alertTestCase, alerts []alert.Alert) string {
	exp := make([]expAlert, len(at.ExpAlerts))
	want := map[string]expAlert{}
	for i, e := range at.ExpAlerts {
		if e.State == "" {
			e.State = string(alert.StateFiring)
		}
		exp[i] = e
		want[e.Entity] = e
	}
	var got []expAlert
	for _, a := range alerts {
		if at.Alertname != "" && a.Rule != at.Alertname {
			continue
		}
		if a.State != alert.StatePending && a.State != alert.StateFiring {
			continue
		}
		g := expAlert{Entity: a.Entity.ID, State: string(a.State), Blame: a.Blame.ID, Labels: a.Labels, Annotations: a.Annotations}
		// Compare only what the expectation gives.
		w, ok := want[g.Entity]
		if !ok || w.Blame == "" {
			g.Blame = ""
		}
		if !ok || w.Labels == nil {
			g.Labels = nil
		}
		if !ok || w.Annotations == nil {
			g.Annotations = nil
		}
		got = append(got, g)
	}
	sortExp := func(s []expAlert) {
		sort.Slice(s, func(i, j int) bool { return s[i].Entity < s[j].Entity })
	}
	sortExp(exp)
	sortExp(got)
	if len(exp) == 0 && len(got) == 0 {
		return ""
	}
	return diffYAML(exp, got)
}

// diffYAML renders both sides as YAML and returns a line diff, or "" when
// they are equal.
func diffYAML(exp, got []expAlert) string {
	render := func(v []expAlert) []string {
		if len(v) == 0 {
			return []string{"[]"}
		}
		b, _ := yaml.Marshal(v)
		return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	}
	a, b := render(exp), render(got)
	if cmp.Equal(a, b) {
		return ""
	}
	return lineDiff(a, b)
}

// lineDiff is a longest-common-subsequence line diff.
func lineDiff(a, b []string) string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			sb.WriteString("      " + a[i] + "\n")
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			sb.WriteString("    + " + b[j] + "\n")
			j++
		default:
			sb.WriteString("    - " + a[i] + "\n")
			i++
		}
	}
	return strings.TrimRight(sb.String(), "\n")
}
