#!/usr/bin/env bash
# Fails when collector/components.go differs from what the builder generates
# from builder-config.yaml.
set -euo pipefail
builder=$1
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/generate.sh" "$builder" "$tmp"
if ! diff -u "$root/collector/components.go" "$tmp/components.go"; then
	echo "collector/components.go is out of date with builder-config.yaml: run 'make generate' and commit the result" >&2
	exit 1
fi
echo "collector/components.go matches builder-config.yaml"
