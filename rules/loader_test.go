package rules

import (
	"strings"
	"testing"

	"github.com/junction-sre/junction/entity"
)

func TestSchemaBuilds(t *testing.T) {
	s, err := buildSchema(entity.Schema, entity.EdgeSchema)
	if err != nil {
		t.Fatal(err)
	}
	for _, et := range entity.Types {
		if s.entity[et] == nil {
			t.Errorf("no CEL type for entity type %s", et)
		}
	}
}

func TestBuildSchemaRejectsClashes(t *testing.T) {
	for name, fs := range map[string][]entity.Feature{
		"leaf and group": {{Name: "latency"}, {Name: "latency.p99_ms"}},
		"group and leaf": {{Name: "latency.p99_ms"}, {Name: "latency"}},
		"reserved":       {{Name: "name.x"}},
		"empty part":     {{Name: "a..b"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := buildSchema(map[entity.Type][]entity.Feature{entity.Service: fs}, nil); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}

// TestCheckReportsEveryError checks that one file's YAML errors and CEL
// errors are all reported, each at its file:line:col.
func TestCheckReportsEveryError(t *testing.T) {
	_, _, errs := Check([]string{"testdata/errors.yaml"}, DefaultCostLimit)
	want := []string{
		"testdata/errors.yaml:3:15: interval: \"soon\" is not a duration",
		"testdata/errors.yaml:8:54: expr: undefined field 'latncy'",
		"testdata/errors.yaml:12:9: unknown key \"expresion\"",
		"testdata/errors.yaml:9:9: rule \"BadKey\": expr is required",
		"testdata/errors.yaml:16:15: expr: must be a bool, is double",
		"testdata/errors.yaml:17:14: for: \"5 minutes\" is not a duration",
		"testdata/errors.yaml:22:16: blame: must yield an entity, yields string",
		"testdata/errors.yaml:24:32: annotations.summary: undefined field 'nam'",
		"testdata/errors.yaml:27:19: for_each: unknown entity type \"queue\"",
		"testdata/errors.yaml:34:24: expr: undefined field 'prise'",
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("missing error %q", w)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(errs), len(want), all)
	}
	// The offending text is shown under the message.
	if !strings.Contains(all, " |         expr: service.latency.p99_ms > 100 && service.latncy.p50_ms > 10\n | .....................................................^") {
		t.Errorf("no snippet with caret for the misspelt feature:\n%s", all)
	}
}

func TestCheckGood(t *testing.T) {
	groups, rules, errs := Check([]string{"testdata/good.yaml"}, DefaultCostLimit)
	if len(errs) > 0 || groups != 1 || rules != 2 {
		t.Fatalf("groups %d rules %d errors %v", groups, rules, errs)
	}
}

func TestYAMLSyntaxError(t *testing.T) {
	_, errs := compileSource("bad.yaml", []byte("groups:\n  - name: x\n   rules: [\n"), 0)
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "bad.yaml:1:1: YAML syntax: did not find expected") {
		t.Fatalf("got %v", errs)
	}
}

func TestExpressionPositions(t *testing.T) {
	for name, tc := range map[string]struct {
		src  string
		want string
	}{
		"plain": {
			src:  "groups:\n- name: g\n  rules:\n  - alert: A\n    kind: k\n    for_each: stream\n    expr: stream.lag.secnds > 1.0\n",
			want: "x.yaml:7:21:",
		},
		"double quoted": {
			src:  "groups:\n- name: g\n  rules:\n  - alert: A\n    kind: k\n    for_each: stream\n    expr: \"stream.lag.secnds > 1.0\"\n",
			want: "x.yaml:7:22:",
		},
		"folded": {
			src:  "groups:\n- name: g\n  rules:\n  - alert: A\n    kind: k\n    for_each: stream\n    expr: >-\n      stream.lag.seconds > 1.0 &&\n      stream.lag.mesages > 1.0\n",
			want: "x.yaml:9:17:",
		},
		"variable": {
			src:  "groups:\n- name: g\n  rules:\n  - alert: A\n    kind: k\n    for_each: stream\n    variables:\n    - name: v\n      expr: stream.nme\n    expr: v == 'x'\n",
			want: "x.yaml:9:19:",
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, errs := compileSource("x.yaml", []byte(tc.src), 0)
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), tc.want) {
				t.Fatalf("want one error at %s, got %v", tc.want, errs)
			}
		})
	}
}
