package realapp

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// WriteMarkdown writes the report as the real-application table of
// docs/detection.md: per fault, the graph's edge precision and recall,
// the entity blamed (and whether it is the true one), the rules that
// fired, the blamed hop's critical-path share, the time from the fault to
// the first right firing and from the fix to the last resolution, and
// every firing that was not expected.
func WriteMarkdown(w io.Writer, rep *Report) error {
	var b strings.Builder
	b.WriteString("| fault | edges precision | edges recall | blamed entity | true bottleneck | rules fired | hop share | fault → firing | fix → resolved | other firings |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rep.Results {
		blamed := "none"
		if r.Blamed != "" {
			blamed = "`" + r.Blamed + "`"
		}
		verdict := "no"
		if r.Blamed != "" && r.Blamed == r.Truth.Blame {
			verdict = "yes"
		}
		rules := map[string]int{}
		other := 0
		for _, f := range r.Firings {
			if f.Expected {
				rules[f.Rule]++
			} else {
				other++
			}
		}
		var rs []string
		for k, n := range rules {
			rs = append(rs, fmt.Sprintf("%s ×%d", k, n))
		}
		sort.Strings(rs)
		share := "-"
		if r.ShareOf != "" {
			share = fmt.Sprintf("%.2f", r.Share)
		}
		fired, resolved := "-", "-"
		if r.Blamed != "" {
			fired = r.FiredAfter.Round(time.Second).String()
			if r.PendingBefore > 0 {
				fired += fmt.Sprintf(" (pending %v before the fault)", r.PendingBefore.Round(time.Second))
			}
		}
		if r.ResolvedAfter > 0 && len(r.Unresolved) == 0 {
			resolved = r.ResolvedAfter.Round(time.Second).String()
		} else if len(r.Unresolved) > 0 {
			resolved = fmt.Sprintf("%d unresolved", len(r.Unresolved))
		}
		fmt.Fprintf(&b, "| %s: %s | %.2f | %.2f | %s | %s | %s | %s | %s | %s | %d |\n",
			r.Fault, r.Fault.Describe(), r.Precision, r.Recall, blamed, verdict,
			orDash(strings.Join(rs, ", ")), share, fired, resolved, other)
	}
	if ps := rep.problems(); len(ps) > 0 {
		b.WriteString("\nWhat Junction got wrong:\n\n")
		for _, p := range ps {
			b.WriteString("- " + p + "\n")
		}
	}
	var notes []string
	for i := range rep.Results {
		for _, n := range rep.Results[i].Notes() {
			notes = append(notes, string(rep.Results[i].Fault)+": "+n)
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNot wrong, but shown:\n\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (rep *Report) problems() []string {
	var ps []string
	for i := range rep.Results {
		for _, p := range rep.Results[i].Problems() {
			ps = append(ps, string(rep.Results[i].Fault)+": "+p)
		}
	}
	return append(ps, rep.Problems()...)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
