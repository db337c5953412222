#!/bin/bash
# Idle cost of bin/junction: CPU and voluntary context switches (summed over
# /proc/<pid>/task/*/status) over 60 s with no load, for the OTLP
# passthrough config, the embedded default, and the default with one part
# taken out at a time (the junction exporter swapped for nop; the
# correlation processor removed), one after the other on ports of their own
# (docs/benchmarks.md). CPU is the threads' se.sum_exec_runtime from
# /proc/<pid>/task/*/sched (nanoseconds), or utime+stime from
# /proc/<pid>/stat (10 ms clock ticks) where the kernel has no sched files.
#   scripts/idle-cpu.sh [seconds]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/bin/junction
secs=${1:-60}
cpu_ms() {
  local pid=$1
  if [ -r "/proc/$pid/task/$pid/sched" ]; then
    cat /proc/"$pid"/task/*/sched 2>/dev/null | awk '/^se.sum_exec_runtime/{s+=$3} END{printf "%.3f\n", s}'
  else
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f\n", ($14+$15)*1000/hz}' /proc/"$pid"/stat
  fi
}
switches() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/{s+=$2} END{print s}'; }
measure() {
  local name=$1; shift
  local dir; dir=$(mktemp -d)
  (cd "$dir" && exec "$bin" "$@" >collector.log 2>&1) &
  local pid=$!
  sleep 10
  local t0 c0 t1 c1
  t0=$(cpu_ms $pid); c0=$(switches $pid)
  sleep "$secs"
  t1=$(cpu_ms $pid); c1=$(switches $pid)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  awk -v n="$name" -v t0="$t0" -v t1="$t1" -v c=$((c1-c0)) -v s="$secs" \
    'BEGIN{printf "%-26s %5.2f CPU-ms/s %6.0f context switches/s\n", n, (t1-t0)/s, c/s}'
}
telemetry() { echo "--set=service::telemetry::metrics::readers=[{pull: {exporter: {prometheus: {host: 127.0.0.1, port: $1}}}}]"; }
default=(--set=receivers::otlp::protocols::grpc::endpoint=127.0.0.1:34317
  --set=receivers::otlp::protocols::http::endpoint=127.0.0.1:34318
  --set=extensions::health_check::endpoint=127.0.0.1:33133
  --set=exporters::junction::api::endpoint=127.0.0.1:38480 "$(telemetry 38888)")
measure passthrough --config="$root/scripts/testdata/passthrough.yaml" \
  --set=receivers::otlp::protocols::grpc::endpoint=127.0.0.1:24317 "$(telemetry 28888)"
measure default "${default[@]}"
measure "default, nop for junction" "${default[@]}" \
  '--set=service::pipelines::metrics::exporters=[nop]' '--set=service::pipelines::logs::exporters=[nop]'
measure "default, no correlation" "${default[@]}" \
  '--set=service::pipelines::traces::processors=[memory_limiter, batch]' \
  '--set=service::pipelines::metrics::processors=[memory_limiter]' \
  '--set=service::pipelines::logs::processors=[memory_limiter]'
