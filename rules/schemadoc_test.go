package rules

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "regenerate the schema section of docs/rules.md")

const rulesDoc = "../docs/rules.md"

// TestSchemaDocInSync checks that docs/rules.md shows the current schema;
// `go generate ./rules` (or this test with -update) rewrites it.
func TestSchemaDocInSync(t *testing.T) {
	data, err := os.ReadFile(rulesDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, SchemaDocBegin), strings.Index(doc, SchemaDocEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the schema markers", rulesDoc)
	}
	want := doc[:i+len(SchemaDocBegin)] + "\n\n" + SchemaMarkdown() + "\n" + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(rulesDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is out of date with entity.Schema: run go generate ./rules", rulesDoc)
}
