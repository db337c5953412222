#!/usr/bin/env bash
# CPU per span of Junction's default pipeline against the OTLP passthrough
# (scripts/testdata/passthrough.yaml) at one load: a short form of
# `make perf` (scripts/perf), which also runs the contrib spanmetrics
# pipeline, three loads and several rounds. Prints the same Markdown table.
#   scripts/pipeline-cpu.sh [spans/s] [seconds]
# The load is spans per second in all (telemetrygen's --rate is per worker
# and per span; scripts/perf divides it among the workers). ROUNDS=n runs n
# interleaved rounds. Needs bin/junction (make build) and telemetrygen
# (make build/tools/telemetrygen, or TELEMETRYGEN=path).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./scripts/perf -loads "${1:-500}" -secs "${2:-30}" -rounds "${ROUNDS:-1}" \
	-configs passthrough,default -profiles "" \
	-telemetrygen "${TELEMETRYGEN:-build/tools/telemetrygen}" \
	-command "scripts/pipeline-cpu.sh ${1:-500} ${2:-30}"
