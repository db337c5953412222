#!/usr/bin/env bash
# make demo: starts Junction (bin/junction) on its default config, plays
# the six scenarios into it (3 hours of simulated time at DEMO_SPEED, 15x
# by default: 12 minutes) and shows the alerts as they fire and resolve.
# Played faster than real time, the telemetry carries simulated timestamps,
# up to 3 hours in the past, so Junction runs with three changes to its
# defaults: it keeps time from the telemetry's timestamps (clock::source
# telemetry); its store forgets entities 4 hours after their last sample
# instead of 1 (entity_ttl); and its data lives in ./data/demo, emptied at
# every start, so that two demos never mix their simulated hours. When the scenarios are over Junction keeps running for
# Grafana; Ctrl-C stops everything this script started.
#
#   DEMO_SPEED=1 make demo                     # real time (3 hours)
#   DEMO_SCENARIOS=surge,bottleneck make demo  # a subset
#   DEMO_DATA=/tmp/demo make demo              # Junction's data elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${JUNCTION_BIN:-bin/junction}
OTLP=127.0.0.1:4317
API=http://127.0.0.1:8480
DATA=${DEMO_DATA:-data/demo}
LOG=$DATA/junction.log
SPEED=${DEMO_SPEED:-15}
SCENARIOS=${DEMO_SCENARIOS:-}

if [[ ! -x $BIN ]]; then
	echo "demo: $BIN is missing; run \`make demo\` (it builds it) or \`make build\`" >&2
	exit 1
fi
for port in 4317 13133; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "demo: something already listens on 127.0.0.1:$port (another Junction?); stop it first" >&2
		exit 1
	fi
done

# healthy asks the health_check extension for its status line.
healthy() {
	local status
	status=$( (exec 3<>/dev/tcp/127.0.0.1/13133 && printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && head -n 1 <&3) 2>/dev/null) || return 1
	[[ $status == *" 200"* ]]
}

rm -rf "$DATA"
mkdir -p "$DATA"
pids=()
cleanup() {
	trap - INT TERM EXIT
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 130' INT TERM

echo "demo: building the live view"
go build -o "$DATA/junction-demo" ./scenarios/cmd/junction-demo

echo "demo: starting $BIN (default config on the telemetry clock, data under $DATA, log in $LOG)"
"$BIN" \
	--set processors::correlation::clock::source=telemetry \
	--set processors::correlation::rules::state_file="$DATA/rules/state.json" \
	--set exporters::junction::storage::directory="$DATA/store" \
	--set exporters::junction::entity_ttl=4h \
	>"$LOG" 2>&1 &
pids+=($!)

echo -n "demo: waiting for Junction's health check on 127.0.0.1:13133 "
for i in $(seq 1 120); do
	if ! kill -0 "${pids[0]}" 2>/dev/null; then
		echo
		echo "demo: Junction exited; the end of $LOG:" >&2
		tail -n 20 "$LOG" >&2
		exit 1
	fi
	if healthy; then
		echo "up"
		break
	fi
	if [[ $i == 120 ]]; then
		echo
		echo "demo: Junction did not become healthy in 60 s; see $LOG" >&2
		exit 1
	fi
	echo -n "."
	sleep 0.5
done

"$DATA/junction-demo" -endpoint "$OTLP" -api "$API" -speed "$SPEED" ${SCENARIOS:+-scenarios "$SCENARIOS"} &
pids+=($!)
wait "${pids[1]}"

cat <<EOM

demo: the scenarios are over; Junction keeps running (Ctrl-C stops it).
  Alerts:      curl -s $API/api/v1/alerts
  Grafana:     install the Junction data source plugin (docs/grafana.md), then add a
               "Junction" data source with URL $API
  Junction's log: $LOG
EOM
wait "${pids[0]}"
