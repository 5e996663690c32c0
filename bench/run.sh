#!/usr/bin/env bash
# bench/run.sh — builds herald and herald_bench (release preset), then for each scenario and each run starts a fresh
# herald on a free loopback port, measures it with herald_bench, stops it with SIGTERM and prints the medians.
#
#   bench/run.sh                 # 3 runs of idle, fanout and fanout-paced
#   RUNS=1 bench/run.sh idle     # one scenario, one run
#
# Environment: RUNS (3), LOAD_MAX (1.0: wait before each run until the 1-minute load average is below it, polling
# every 30 s; 0 disables), LOAD_WAIT_MAX_S (900: total waiting budget, then measure anyway and say so),
# RESULTS_DIR (a new directory under /tmp), BUILD (1; 0 uses the existing build/release binaries).
# Everything is bounded: herald_bench stops itself (--timeout), and each step has a hard `timeout` around it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
LOAD_MAX=${LOAD_MAX:-1.0}
LOAD_WAIT_MAX_S=${LOAD_WAIT_MAX_S:-900}
BUILD=${BUILD:-1}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/herald-bench.XXXXXX)}
SCENARIOS=("$@")
[[ ${#SCENARIOS[@]} -gt 0 ]] || SCENARIOS=(idle fanout fanout-paced)

# Flags shared by every run: room for 10 000 clients, no heartbeat traffic during a run, and an outbound limit
# that holds a whole fan-out run (20 000 x ~160 B frames) so a subscriber is never closed for being slow; the
# publisher sends far more than the default --client-rate, so that limit is off.
HERALD_FLAGS=(--listen 127.0.0.1:0 --log-level info --max-connections 20000 --heartbeat 60
              --outbound-limit 8MiB --drain-timeout 5 --close-timeout 1 --client-rate 0)

scenario_args() {
    case "$1" in
        idle)         echo "idle --connections 10000 --channels 100 --connect-rate 20000 --handshake-window 256 --settle 2 --timeout 60" ;;
        fanout)       echo "fanout --subscribers 1000 --messages 20000 --payload 100 --window 64 --timeout 90" ;;
        fanout-paced) echo "fanout --subscribers 1000 --messages 1000 --payload 100 --window 64 --publish-rate 100 --timeout 60" ;;
        *) echo "unknown scenario '$1' (idle, fanout, fanout-paced)" >&2; return 1 ;;
    esac
}

HERALD_PID=""
cleanup() {
    if [[ -n "$HERALD_PID" ]] && kill -0 "$HERALD_PID" 2>/dev/null; then
        kill -KILL "$HERALD_PID" 2>/dev/null || true
        wait "$HERALD_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ "$BUILD" == 1 ]]; then
    log "building herald and herald_bench (release preset)"
    (cd "$ROOT" && cmake --preset release >/dev/null &&
        timeout 1800 cmake --build --preset release -j2 --target herald herald_bench >/dev/null)
fi
# Copies: other builds in the same tree may relink the binaries while we measure.
mkdir -p "$RESULTS_DIR/bin"
cp "$ROOT/build/release/herald" "$ROOT/build/release/bench/herald_bench" "$RESULTS_DIR/bin/"
HERALD="$RESULTS_DIR/bin/herald"
BENCH="$RESULTS_DIR/bin/herald_bench"

load_waited_s=0
wait_for_quiet_machine() {
    [[ "$LOAD_MAX" != 0 ]] || return 0
    while awk -v max="$LOAD_MAX" '{ exit !($1 >= max) }' /proc/loadavg; do
        if (( load_waited_s >= LOAD_WAIT_MAX_S )); then
            log "load $(cut -d' ' -f1 /proc/loadavg) still >= $LOAD_MAX after ${load_waited_s}s of waiting: measuring anyway"
            return 0
        fi
        log "load $(cut -d' ' -f1 /proc/loadavg) >= $LOAD_MAX, waiting 30 s"
        sleep 30
        load_waited_s=$((load_waited_s + 30))
    done
}

start_herald() {
    local log_file=$1
    "$HERALD" "${HERALD_FLAGS[@]}" 2>"$log_file" &
    HERALD_PID=$!
    for _ in $(seq 100); do
        HERALD_PORT=$(grep -o 'event=listening addr=127\.0\.0\.1:[0-9]*' "$log_file" | head -1 | sed 's/.*://') || true
        [[ -n "$HERALD_PORT" ]] && return 0
        kill -0 "$HERALD_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "herald did not report a listening address; its log:"; cat "$log_file" >&2
    return 1
}

# Sets HERALD_EXIT to herald's exit status (SIGTERM → drain → 0 expected; 124 = did not stop in time, killed).
stop_herald() {
    local status=0
    kill -TERM "$HERALD_PID" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "$HERALD_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$HERALD_PID" 2>/dev/null; then
        kill -KILL "$HERALD_PID" 2>/dev/null || true
        wait "$HERALD_PID" 2>/dev/null || true
        status=124
    else
        wait "$HERALD_PID" 2>/dev/null || status=$?
    fi
    HERALD_PID=""
    HERALD_EXIT=$status
}

for scenario in "${SCENARIOS[@]}"; do scenario_args "$scenario" >/dev/null; done
log "results in $RESULTS_DIR"
for scenario in "${SCENARIOS[@]}"; do
    read -r -a args <<<"$(scenario_args "$scenario")"
    for run in $(seq "$RUNS"); do
        wait_for_quiet_machine
        load=$(cut -d' ' -f1 /proc/loadavg)
        out="$RESULTS_DIR/$scenario.$run.out"
        start_herald "$RESULTS_DIR/$scenario.$run.herald.log"
        log "$scenario run $run/$RUNS: herald pid $HERALD_PID port $HERALD_PORT, load $load"
        bench_status=0
        timeout 150 "$BENCH" "${args[@]}" --port "$HERALD_PORT" --server-pid "$HERALD_PID" \
            --label "$scenario run=$run load=$load" >"$out" || bench_status=$?
        stop_herald
        herald_status=$HERALD_EXIT
        grep -v '^{' "$out" | sed "s/^/  /" >&2 || true
        # The result line, plus what the harness saw around it.
        json=$(grep '^{' "$out" | tail -1)
        [[ -n "$json" ]] || json='{}'
        jq -c --arg s "$scenario" --argjson run "$run" --argjson load "$load" \
            --argjson bench_status "$bench_status" --argjson herald_status "$herald_status" \
            '. + {name: $s, run: $run, loadavg1: $load, bench_status: $bench_status, herald_exit: $herald_status}' \
            <<<"$json" >>"$RESULTS_DIR/results.jsonl"
        if [[ "$herald_status" != 0 ]]; then
            log "PROBLEM: herald exited with status $herald_status after $scenario run $run (log: $RESULTS_DIR/$scenario.$run.herald.log)"
        fi
        if [[ "$bench_status" != 0 ]]; then
            log "PROBLEM: herald_bench exited with status $bench_status ($out)"
        fi
    done
done

# Medians over the runs of each scenario.
jq -rs '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length/2|floor]
                     else (.[length/2 - 1] + .[length/2]) / 2 end;
  def r(n): if . == null then "-" else (. * pow(10; n) | round) / pow(10; n) | tostring end;
  group_by(.name)[] as $g | $g[0].name as $n |
  if $n == "idle" then
    "idle (median of \($g|length)): \([$g[].rss_per_connection_kib]|median|r(2)) KiB RSS per subscribed connection, " +
    "\([$g[].establish_per_s]|median|r(0)) connections/s established, failures \([$g[] | .setup_failed + .closed_after_ready]|add), " +
    "herald exits \([$g[].herald_exit])"
  else
    "\($n) (median of \($g|length)): \([$g[].publishes_per_s]|median|r(0)) publishes/s, \([$g[].deliveries_per_s]|median|r(0)) deliveries/s, " +
    "\([$g[].server_cpu_us_per_delivery]|median|r(3)) server CPU us/delivery, latency us p50 \([$g[].latency_us.p50]|median) " +
    "p90 \([$g[].latency_us.p90]|median) p99 \([$g[].latency_us.p99]|median) max \([$g[].latency_us.max]|median); " +
    "gaps \([$g[].gaps]|add), duplicates \([$g[].duplicates]|add), missing \([$g[].deliveries_missing]|add), " +
    "closes \([$g[].closed_after_ready]|add), herald exits \([$g[].herald_exit])"
  end' "$RESULTS_DIR/results.jsonl"
log "per-run results: $RESULTS_DIR/results.jsonl"
