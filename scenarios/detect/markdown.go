package detect

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Markdown renders the report as the table of docs/detection.md: one row
// per scenario, then every firing with its verdict.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| scenario | expected alert → blamed entity | detected by | latency | resolved | healthy FP | other FP | recall | precision |\n")
	b.WriteString("| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |\n")
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		var exp, by, lat, res []string
		for _, e := range s.Expect {
			exp = append(exp, fmt.Sprintf("%s → `%s`", strings.Join(e.Rules, " or "), e.Blame))
			switch {
			case e.Detected:
				by = append(by, e.Rule)
				l := dur(e.Latency)
				if e.Late {
					l += " (late)"
				}
				lat = append(lat, l)
				res = append(res, yesNo(e.Resolved))
			case len(e.WrongBlame) > 0:
				by = append(by, "missed (blamed "+code(e.WrongBlame)+")")
				lat = append(lat, "–")
				res = append(res, "–")
			default:
				by = append(by, "missed")
				lat = append(lat, "–")
				res = append(res, "–")
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %d | %s | %s |\n",
			s.Scenario, strings.Join(exp, "<br>"), strings.Join(by, "<br>"), strings.Join(lat, "<br>"),
			strings.Join(res, "<br>"), s.HealthyFalsePositives, s.FalsePositives-s.HealthyFalsePositives,
			pct(s.Recall), pct(s.Precision))
	}
	fmt.Fprintf(&b, "| **all** | | | | | %d | %d | %s | %s |\n", r.healthyFP(), r.otherFP(), pct(r.Recall), pct(r.Precision))

	b.WriteString(r.FiringsMarkdown())
	return b.String()
}

// FiringsMarkdown renders every firing of the run, scenario by scenario,
// with its verdict: the expectation it detects, or why it is a false
// positive.
func (r *Report) FiringsMarkdown() string {
	var b strings.Builder
	b.WriteString("\nEvery alert that fired, with its verdict (times from the scenario's start):\n\n")
	b.WriteString("| scenario | rule | entity | blamed entity | fired | resolved | verdict |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	n := 0
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		for _, f := range s.Firings {
			n++
			res := "still firing"
			if !f.Resolved.IsZero() {
				at := f.Offset + f.Resolved.Sub(f.Fired)
				res = "+" + dur(at)
				if at > s.Length {
					res += " (after the scenario)"
				}
			}
			fmt.Fprintf(&b, "| %s | %s | `%s` | `%s` | +%s (%s) | %s | %s |\n",
				s.Scenario, f.Rule, f.Entity, f.Blame, dur(f.Offset), f.Phase, res, s.verdict(&f))
		}
	}
	for _, ep := range r.Outside {
		n++
		res := "still firing"
		if !ep.Resolved.IsZero() {
			res = ep.Resolved.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "| (outside every scenario) | %s | `%s` | `%s` | %s | %s | false positive: outside every scenario |\n",
			ep.Rule, ep.Entity, ep.Blame, ep.Fired.UTC().Format(time.RFC3339), res)
	}
	if n == 0 {
		b.WriteString("| – | | | | | | no alert fired |\n")
	}
	return b.String()
}

// verdict says why a firing counts as it does.
func (s *ScenarioResult) verdict(f *Firing) string {
	if f.Expected >= 0 {
		e := s.Expect[f.Expected]
		return "expected: " + strings.Join(e.Rules, " or ")
	}
	var blames []string
	for _, e := range s.Expect {
		if !slices.Contains(e.Rules, f.Rule) {
			continue
		}
		if e.Blame == f.Blame {
			return fmt.Sprintf("false positive: fired outside its window (+%s to +%s, plus grace)", dur(e.Window.Start), dur(e.Window.End))
		}
		blames = append(blames, e.Blame)
	}
	if len(blames) > 0 {
		return "false positive: wrong blame (expected " + code(blames) + ")"
	}
	return "false positive: not expected in this scenario (" + string(f.Phase) + " phase)"
}

func (r *Report) healthyFP() (n int) {
	for i := range r.Scenarios {
		n += r.Scenarios[i].HealthyFalsePositives
	}
	return n
}

func (r *Report) otherFP() (n int) {
	n = len(r.Outside)
	for i := range r.Scenarios {
		n += r.Scenarios[i].FalsePositives - r.Scenarios[i].HealthyFalsePositives
	}
	return n
}

func code(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = "`" + id + "`"
	}
	return strings.Join(q, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*v)
}

func dur(d time.Duration) string {
	if d < 0 {
		return "-" + d.Abs().Round(time.Second).String()
	}
	return d.Round(time.Second).String()
}
