package rules

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/junction-sre/junction/rules/packs"
)

// BuiltinPrefix marks rule paths that name the packs embedded in the binary:
// "builtin:packs" is every pack, "builtin:packs/surge.yaml" one of them.
const BuiltinPrefix = "builtin:"

const builtinPacks = BuiltinPrefix + "packs"

// expandBuiltin returns the built-in rule files that p names.
func expandBuiltin(p string) ([]string, error) {
	if p == builtinPacks || p == builtinPacks+"/" {
		names, err := fs.Glob(packs.FS, "*.yaml")
		if err != nil {
			return nil, err
		}
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = builtinPacks + "/" + n
		}
		return out, nil
	}
	if _, err := fs.Stat(packs.FS, strings.TrimPrefix(p, builtinPacks+"/")); err != nil || !strings.HasPrefix(p, builtinPacks+"/") {
		names, _ := fs.Glob(packs.FS, "*.yaml")
		return nil, fmt.Errorf("rule files: %q is not a built-in pack; built-in: %s, or one of %s/{%s}",
			p, builtinPacks, builtinPacks, strings.Join(names, ","))
	}
	return []string{path.Clean(p)}, nil
}

// isBuiltin reports whether the rule path names an embedded pack.
func isBuiltin(p string) bool { return strings.HasPrefix(p, BuiltinPrefix) }

// readRuleFile reads a rule file from disk or from the embedded packs.
func readRuleFile(p string) ([]byte, error) {
	if isBuiltin(p) {
		return fs.ReadFile(packs.FS, strings.TrimPrefix(p, builtinPacks+"/"))
	}
	return os.ReadFile(p)
}
