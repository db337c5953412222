package analyze

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestJSONSchemaDocumented: every field of the JSON report is named in
// docs/analyze.md, so the documented schema is the one written.
func TestJSONSchemaDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/analyze.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ.PkgPath() != reflect.TypeOf(Report{}).PkgPath() || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			full := strings.TrimPrefix(path+"."+name, "report.")
			documented := false
			for _, form := range []string{name, name + "[]", full, full + "[]"} {
				documented = documented || strings.Contains(string(doc), "`"+form+"`")
			}
			if !documented {
				t.Errorf("JSON field %s.%s (`%s`) is not in docs/analyze.md", path, f.Name, name)
			}
			walk(path+"."+name, f.Type)
		}
	}
	walk("report", reflect.TypeOf(Report{}))
	if len(seen) < 8 {
		t.Fatalf("walked %d types, want the report's (Report, Input, FileStats, ...)", len(seen))
	}
}
