package mergedgraph_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/mergedgraph"
)

var update = flag.Bool("update", false, "regenerate the generated blocks of docs/deploy.md")

var deployDoc = filepath.Join("..", "..", "docs", "deploy.md")

func describeMerge(m mergedgraph.Merge) string {
	switch m.Kind {
	case mergedgraph.Sum:
		return "sum"
	case mergedgraph.Weighted:
		if m.Numerator != "" {
			return "mean weighted by the denominator (`" + m.Numerator + "` / value): Σ usage / Σ limit or request"
		}
		w := "`" + m.Weight + "`"
		if m.WeightBaseline {
			w = "the baseline of " + w
		}
		return "mean weighted by " + w
	case mergedgraph.Quantile:
		return "quantile of the summed latency sketch bins (1 m and 5 m windows); baseline: mean weighted by `" + m.Weight + "`"
	default:
		return "max"
	}
}

// genMerge lists every schema feature with its merge rule.
func genMerge() string {
	types := map[string][]string{}
	for typ, fs := range entity.Schema {
		for _, f := range fs {
			types[f.Name] = append(types[f.Name], string(typ))
		}
	}
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("| feature | entity types | replicas merge by |\n| --- | --- | --- |\n")
	for _, n := range names {
		ts := types[n]
		sort.Strings(ts)
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", n, strings.Join(ts, ", "), describeMerge(mergedgraph.MergeOf(n)))
	}
	b.WriteString("\n| edge feature | replicas merge by |\n| --- | --- |\n")
	for _, f := range entity.EdgeSchema {
		m := describeMerge(mergedgraph.EdgeMergeOf(f.Name))
		if mergedgraph.EdgeMergeOf(f.Name).Kind == mergedgraph.Quantile {
			m = "quantile of the summed latency sketch bins"
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", f.Name, m)
	}
	return b.String()
}

// TestDeployDocInSync keeps the merge table of docs/deploy.md in step with
// the merge rules. Regenerate: go test ./internal/mergedgraph -run TestDeployDocInSync -update
func TestDeployDocInSync(t *testing.T) {
	doc, err := os.ReadFile(deployDoc)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)(<!-- BEGIN GENERATED merge -->\n).*?(<!-- END GENERATED merge -->)`)
	if !re.Match(doc) {
		t.Fatal("docs/deploy.md has no generated merge block")
	}
	out := re.ReplaceAllLiteralString(string(doc), "<!-- BEGIN GENERATED merge -->\n"+genMerge()+"<!-- END GENERATED merge -->")
	if *update {
		if err := os.WriteFile(deployDoc, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out != string(doc) {
		t.Fatal("docs/deploy.md is out of date: go test ./internal/mergedgraph -run TestDeployDocInSync -update")
	}
}
