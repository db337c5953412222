#!/usr/bin/env bash
# Fails when a generated file is out of date:
# - collector/components.go against what the builder ($1) generates from
#   builder-config.yaml;
# - each component's mdatagen output (internal/metadata, internal/metadatatest,
#   documentation.md, generated_*.go) against what mdatagen ($2) generates
#   from its metadata.yaml. mdatagen runs on a copy of the work tree (the
#   files git tracks or would track) with those outputs removed first, so a
#   stale, missing or extra generated file is found and the tree is left as
#   it is.
set -euo pipefail
builder=$1 mdatagen=$(realpath "$2")
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

"$root/scripts/generate.sh" "$builder" "$tmp/builder"
if ! diff -u "$root/collector/components.go" "$tmp/builder/components.go"; then
	echo "collector/components.go is out of date with builder-config.yaml: run 'make generate' and commit the result" >&2
	fail=1
else
	echo "collector/components.go matches builder-config.yaml"
fi

# generated lists the mdatagen outputs of the component directory $1 under
# the tree $2, one path a line, relative to the tree.
generated() {
	(cd "$2" && find "$1" -maxdepth 1 -type f \( -name documentation.md -o -name 'generated_*.go' \) &&
		find "$1/internal/metadata" "$1/internal/metadatatest" -type f 2>/dev/null || true) | sort
}

copy=$tmp/tree
mkdir -p "$copy"
(cd "$root" && git ls-files -z -co --exclude-standard -- . ':!grafana-plugin' |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -cf - -T -) | tar -xf - -C "$copy"
dirs=$(cd "$copy" && find processors exporters receivers -name metadata.yaml -not -path '*/testdata/*' -exec dirname {} \; | sort)
for d in $dirs; do
	generated "$d" "$copy" | (cd "$copy" && xargs -r rm -f)
done
"$root/scripts/mdatagen.sh" "$mdatagen" "$copy"
for d in $dirs; do
	stale=0
	for f in $( (generated "$d" "$root"; generated "$d" "$copy") | sort -u); do
		if [ ! -e "$copy/$f" ]; then
			echo "$f: mdatagen does not generate it (any more)" >&2
			stale=1
		elif [ ! -e "$root/$f" ]; then
			echo "$f: missing" >&2
			stale=1
		elif ! diff -u "$root/$f" "$copy/$f" >"$tmp/diff"; then
			sed -e "s#$copy/##" -e "s#$root/##" "$tmp/diff"
			stale=1
		fi
	done
	if [ "$stale" = 1 ]; then
		echo "$d: the files mdatagen generates are out of date with $d/metadata.yaml: run 'make generate' and commit the result" >&2
		fail=1
	else
		echo "$d: generated files match metadata.yaml"
	fi
done
exit "$fail"
