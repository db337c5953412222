package cli

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

func TestPackTests(t *testing.T) {
	files, err := filepath.Glob("../packs/tests/*_test.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no pack tests: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out bytes.Buffer
			if err := RunTests(&out, []string{f}); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
		})
	}
}

func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return -1
	}
	return 0
}
