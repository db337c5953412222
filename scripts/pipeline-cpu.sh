#!/usr/bin/env bash
# CPU per span of Junction's default pipeline against an OTLP passthrough
# config (scripts/testdata/passthrough.yaml), both fed the same telemetrygen
# load. Prints CPU-µs per accepted span for each and their ratio.
#   scripts/pipeline-cpu.sh [rate traces/s] [seconds]
# Needs bin/junction (make build) and telemetrygen in build/tools
# (GOBIN=$PWD/build/tools go install .../cmd/telemetrygen@v0.161.0).
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-500} secs=${2:-30}
tg=build/tools/telemetrygen
[[ -x $tg ]] || { echo "missing $tg" >&2; exit 1; }
tck=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
accepted() {
	curl -s http://127.0.0.1:8888/metrics | awk '/^otelcol_receiver_accepted_spans/ {s += $NF} END {print s + 0}'
}

measure() { # name, config args...
	local name=$1; shift
	local dir; dir=$(mktemp -d)
	(cd "$dir" && exec "$OLDPWD/bin/junction" "$@" >"$dir/log" 2>&1) &
	local pid=$!
	for _ in $(seq 100); do
		curl -sf http://127.0.0.1:8888/metrics >/dev/null && break
		sleep 0.2
	done
	# Warm up, then measure a steady run.
	"$tg" traces --otlp-insecure --otlp-endpoint 127.0.0.1:4317 --rate "$rate" --duration 5s --child-spans 4 --workers "${WORKERS:-2}" >/dev/null 2>&1
	sleep 2
	local c0 a0 c1 a1
	c0=$(cpu_ticks "$pid"); a0=$(accepted)
	"$tg" traces --otlp-insecure --otlp-endpoint 127.0.0.1:4317 --rate "$rate" --duration "${secs}s" --child-spans 4 --workers "${WORKERS:-2}" >/dev/null 2>&1
	sleep 2
	c1=$(cpu_ticks "$pid"); a1=$(accepted)
	kill "$pid"; wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
	awk -v n="$name" -v c=$((c1 - c0)) -v a=$((a1 - a0)) -v t="$tck" \
		'BEGIN { printf "%s: %d spans, %.2f CPU-s, %.2f CPU-µs/span\n", n, a, c / t, (c / t) * 1e6 / a }'
}

measure passthrough --config "$PWD/scripts/testdata/passthrough.yaml"
measure default
