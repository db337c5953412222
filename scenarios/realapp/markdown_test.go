package realapp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteDetectionSection: the section replaces everything from the
// marker line on and keeps what is above it (junction-detection's part),
// also when that part names the marker in its text; a file without the
// marker line gets it appended.
func TestWriteDetectionSection(t *testing.T) {
	rep := &Report{Start: time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 4, 2, 5, 0, 0, time.UTC)}
	head := "# Detection\n\nRegenerate above the line `" + DetectionMarker + "` with junction-detection.\n\nsimulator table\n\n"
	dir := t.TempDir()
	for name, in := range map[string]string{
		"with marker":    head + DetectionMarker + "\nold section\n| old | table |\n",
		"without marker": strings.TrimSuffix(head, "\n"),
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".md")
		if err := os.WriteFile(path, []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteDetectionSection(path, rep); err != nil {
			t.Fatal(err)
		}
		out, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got := string(out)
		if !strings.HasPrefix(got, head+DetectionMarker+"\n## On a real instrumented application\n") {
			t.Errorf("%s: the head or the marker line is not kept:\n%s", name, got)
		}
		if strings.Contains(got, "old section") || strings.Count(got, "\n"+DetectionMarker+"\n") != 1 {
			t.Errorf("%s: the old section is not replaced:\n%s", name, got)
		}
		if !strings.Contains(got, "| fault | edges precision |") || !strings.Contains(got, "took 5m0s") {
			t.Errorf("%s: no table or run time:\n%s", name, got)
		}
	}
}
