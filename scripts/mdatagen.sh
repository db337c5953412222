#!/usr/bin/env bash
# Runs mdatagen (the OpenTelemetry Collector's metadata generator, pinned in
# tools/mdatagen/go.mod) on the metadata.yaml of every Junction component
# under the tree given ($2, the repository root by default). For each it
# writes internal/metadata (generated_status.go, generated_telemetry.go: the
# component's own telemetry instruments), internal/metadatatest,
# documentation.md, generated_component_test.go and generated_package_test.go
# next to the metadata.yaml.
set -euo pipefail
mdatagen=$(realpath "$1")
root=${2:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
found=0
while IFS= read -r yml; do
	found=1
	"$mdatagen" "$yml" || {
		echo "mdatagen failed on $yml" >&2
		exit 1
	}
done < <(find processors exporters receivers -name metadata.yaml -not -path '*/testdata/*' | sort)
if [ "$found" = 0 ]; then
	echo "no metadata.yaml found under $root" >&2
	exit 1
fi
