// Package packs holds Junction's rule packs, embedded in the binary so that
// the default config can use them on a machine without the source tree.
// Rule configs name them "builtin:packs" (every pack) or
// "builtin:packs/surge.yaml" (one pack).
package packs

import "embed"

// FS holds the pack files, *.yaml at its root.
//
//go:embed *.yaml
var FS embed.FS
