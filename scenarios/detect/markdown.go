package detect

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Markdown renders the report as the table of docs/detection.md: one row
// per scenario, then the false positives.
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

	var fps []string
	for i := range r.Scenarios {
		for _, f := range r.Scenarios[i].False {
			fps = append(fps, fmt.Sprintf("- %s, %s phase, +%s: %s on `%s` (blamed `%s`)",
				r.Scenarios[i].Scenario, f.Phase, dur(f.Offset), f.Rule, f.Entity, f.Blame))
		}
	}
	if len(fps) > 0 {
		b.WriteString("\nFalse positives:\n\n")
		b.WriteString(strings.Join(fps, "\n"))
		b.WriteString("\n")
	}
	if r.Outside > 0 {
		fmt.Fprintf(&b, "\n%d alert(s) fired outside every scenario.\n", r.Outside)
	}
	return b.String()
}

func (r *Report) healthyFP() (n int) {
	for i := range r.Scenarios {
		n += r.Scenarios[i].HealthyFalsePositives
	}
	return n
}

func (r *Report) otherFP() (n int) {
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
