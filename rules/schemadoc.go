package rules

import (
	"fmt"
	"strings"

	"github.com/junction-sre/junction/entity"
)

//go:generate go test -run TestSchemaDocInSync -update .

// Markers around the generated schema section of docs/rules.md.
const (
	SchemaDocBegin = "<!-- schema:begin (generated from entity.Schema by `go generate ./rules`; do not edit) -->"
	SchemaDocEnd   = "<!-- schema:end -->"
)

// SchemaMarkdown renders the typed schema rules see: the fields of every
// entity type, the edge, and every feature with its CEL path, unit and
// description.
func SchemaMarkdown() string {
	var b strings.Builder
	b.WriteString("### Fields of every entity\n\n")
	b.WriteString("| field | CEL type | meaning |\n| --- | --- | --- |\n")
	for _, r := range [][3]string{
		{"id", "string", "entity id, e.g. `service:shop/checkout`"},
		{"name", "string", "display name"},
		{"type", "string", "entity type (`service`, `pod`, ...)"},
		{"virtual", "bool", "known only from its callers' client spans"},
		{"attributes", "map(string, string)", "identity and descriptive attributes"},
		{"metrics", "map(string, double)", "last raw value of every metric joined onto the entity"},
		{"downstream", "list(junction.Edge)", "edges where the entity is the client"},
		{"upstream", "list(junction.Edge)", "edges where the entity is the server"},
		{"w5m.<feature>", "double", "the feature over the 5-minute window"},
		{"baseline.<feature>", "double", "the feature's baseline (features marked B)"},
	} {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r[0], r[1], r[2])
	}
	b.WriteString("\n### Edge (`junction.Edge`)\n\n")
	b.WriteString("| field | CEL type | unit | meaning |\n| --- | --- | --- | --- |\n")
	b.WriteString("| `type` | string | | `http`, `grpc`, `db`, `messaging` or `xchain` |\n")
	b.WriteString("| `client` | junction.Entity | | the calling entity |\n")
	b.WriteString("| `server` | junction.Entity | | the called entity |\n")
	for _, f := range entity.EdgeSchema {
		fmt.Fprintf(&b, "| `%s` | double | %s | %s |\n", f.Name, f.Unit, f.Description)
	}
	for _, t := range entity.Types {
		fmt.Fprintf(&b, "\n### `%s` (`%s`)\n\n", t, celTypeName(t))
		b.WriteString("| feature | CEL path | unit | B | meaning |\n| --- | --- | --- | --- | --- |\n")
		for _, f := range entity.Schema[t] {
			base := ""
			if f.Baseline {
				base = "B"
			}
			fmt.Fprintf(&b, "| `%s` | `%s.%s` | %s | %s | %s |\n", f.Name, t, f.Name, f.Unit, base, f.Description)
		}
	}
	b.WriteString("\n`junction.Entity` (an edge's `client` and `server`, and what `dominant_hop` and\n" +
		"`as_entity` return) has the fields of every entity and the features of all entity\n" +
		"types; a feature its type does not have reads as absent.\n")
	return b.String()
}
