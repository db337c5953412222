// Package testbin gives tests the path of one built junction binary, so that
// tests across packages share it instead of each building the distribution.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Env names the variable that holds the path of a built junction binary;
// `make test` sets it after `make build`.
const Env = "JUNCTION_BIN"

var (
	once sync.Once
	path string
	bErr error
	bOut []byte
)

// Junction returns the path of the junction binary: $JUNCTION_BIN when set,
// otherwise it builds ./collector once per test process (slow when the build
// cache is cold: run the tests through `make test`).
func Junction(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(Env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v (run `make build`)", Env, p, err)
		}
		return p
	}
	once.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			bErr = err
			return
		}
		dir, err := os.MkdirTemp("", "junction-bin-")
		if err != nil {
			bErr = err
			return
		}
		path = filepath.Join(dir, "junction")
		cmd := exec.Command("go", "build", "-o", path, "./collector")
		cmd.Dir = root
		bOut, bErr = cmd.CombinedOutput()
	})
	if bErr != nil {
		t.Fatalf("building junction: %v\n%s", bErr, bOut)
	}
	return path
}

// ModuleRoot returns the directory of the root go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}
