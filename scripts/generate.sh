#!/usr/bin/env bash
# Runs the OpenTelemetry Collector Builder on builder-config.yaml and copies
# the generated component list into the directory given ($2). The builder's
# main.go is not used: collector/main.go adds Junction's subcommands and the
# embedded default config.
set -euo pipefail
builder=$1 dest=$2
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sed "s#output_path: .*#output_path: $out#" "$root/builder-config.yaml" > "$out/builder-config.yaml"
"$builder" --config "$out/builder-config.yaml" --skip-compilation --skip-get-modules >"$out/builder.log" 2>&1 || {
	cat "$out/builder.log" >&2
	exit 1
}
mkdir -p "$dest"
cp "$out/components.go" "$dest/components.go"
