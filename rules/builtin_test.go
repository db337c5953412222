package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuiltinPacksMatchTheFiles(t *testing.T) {
	files, err := ExpandPaths([]string{"builtin:packs"})
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := filepath.Glob("packs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(onDisk) || len(files) == 0 {
		t.Fatalf("builtin:packs = %v, packs/ has %v", files, onDisk)
	}
	for _, f := range files {
		embedded, err := readRuleFile(f)
		if err != nil {
			t.Fatal(err)
		}
		disk, err := os.ReadFile(filepath.Join("packs", filepath.Base(f)))
		if err != nil {
			t.Fatal(err)
		}
		if string(embedded) != string(disk) {
			t.Errorf("%s differs from packs/%s", f, filepath.Base(f))
		}
	}
	groups, rules, errs := Check([]string{"builtin:packs"}, DefaultCostLimit)
	if len(errs) > 0 || groups == 0 || rules == 0 {
		t.Fatalf("builtin packs: %d groups, %d rules, errors: %v", groups, rules, errs)
	}
	one, err := ExpandPaths([]string{"builtin:packs/surge.yaml"})
	if err != nil || len(one) != 1 {
		t.Fatalf("builtin:packs/surge.yaml = %v, %v", one, err)
	}
}

func TestUnknownBuiltinPackIsNamed(t *testing.T) {
	_, err := ExpandPaths([]string{"builtin:packs/surg.yaml"})
	if err == nil || !strings.Contains(err.Error(), "builtin:packs/surg.yaml") || !strings.Contains(err.Error(), "surge.yaml") {
		t.Fatalf("error %v should name the bad pack and list the built-in ones", err)
	}
}

// TestBuiltinPacksDoNotReload: the embedded packs never change under a
// running manager, so a reload check finds nothing to do and no directory
// needs watching.
func TestBuiltinPacksDoNotReload(t *testing.T) {
	m, err := NewManager(Config{Files: []string{"builtin:packs"}, CostLimit: DefaultCostLimit}, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if tried, err := m.ReloadIfChanged(); tried || err != nil {
		t.Errorf("ReloadIfChanged = %v, %v; want no reload", tried, err)
	}
	w, err := m.Watch()
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Close()
	if n := len(w.WatchList()); n != 0 {
		t.Errorf("watching %d directories for built-in packs", n)
	}
}
