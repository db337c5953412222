#!/bin/bash
# Idle cost of bin/junction: CPU (utime+stime from /proc/<pid>/stat) and
# voluntary context switches (summed over /proc/<pid>/task/*/status) over
# 60 s with no load, for the OTLP passthrough config and the embedded
# default, one after the other on ports of their own (docs/benchmarks.md).
#   scripts/idle-cpu.sh [seconds]
set -euo pipefail
bin=$(cd "$(dirname "$0")/.." && pwd)/bin/junction
secs=${1:-60}
measure() {
  local name=$1; shift
  local dir; dir=$(mktemp -d)
  (cd "$dir" && exec "$bin" "$@" >collector.log 2>&1) &
  local pid=$!
  sleep 10
  local t0 c0 t1 c1
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  c0=$(cat /proc/$pid/task/*/status | awk '/^voluntary_ctxt_switches/{s+=$2} END{print s}')
  sleep "$secs"
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  c1=$(cat /proc/$pid/task/*/status | awk '/^voluntary_ctxt_switches/{s+=$2} END{print s}')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  awk -v n="$name" -v t=$((t1-t0)) -v c=$((c1-c0)) -v s="$secs" -v hz="$(getconf CLK_TCK)" \
    'BEGIN{printf "%-11s %5.1f CPU-ms/s %6.0f context switches/s\n", n, t*1000/hz/s, c/s}'
}
telemetry() { echo "--set=service::telemetry::metrics::readers=[{pull: {exporter: {prometheus: {host: 127.0.0.1, port: $1}}}}]"; }
measure passthrough --config="$(dirname "$bin")/../scripts/testdata/passthrough.yaml" \
  --set=receivers::otlp::protocols::grpc::endpoint=127.0.0.1:24317 "$(telemetry 28888)"
measure default --set=receivers::otlp::protocols::grpc::endpoint=127.0.0.1:34317 \
  --set=receivers::otlp::protocols::http::endpoint=127.0.0.1:34318 \
  --set=extensions::health_check::endpoint=127.0.0.1:33133 \
  --set=exporters::junction::api::endpoint=127.0.0.1:38480 "$(telemetry 38888)"
