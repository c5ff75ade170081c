#!/usr/bin/env bash
# bench/core.sh: NATS core pub/sub throughput of stanzad against Debian's nats-server.
#
# usage: bench/core.sh [BUILD_DIR]        (BUILD_DIR defaults to ./build)
#
# Starts both servers on free loopback ports, runs `stanza bench core` RUNS times against each,
# alternating which server goes first in each round so that machine noise (thermal throttling,
# a neighbour's cron job) is spread over both, then prints a markdown table with the medians and
# the stanzad/nats-server ratio. Both servers are stopped by PID however the script exits.
#
# Environment overrides:
#   STANZAD=PATH        server under test (default BUILD_DIR/stanzad). Pointing it at a
#                       nats-server binary works too, for trying the script out.
#   STANZAD_ARGS=ARGS   extra arguments for it (default "--store MEMORY"; none for nats-server)
#   NATS_SERVER=PATH    reference server (default /usr/sbin/nats-server)
#   STANZA=PATH         CLI (default BUILD_DIR/stanza)
#   RUNS=N MSGS=N SIZE=BYTES   runs per server (5), messages per run (1000000), payload (128)
#   KEEP_LOGS=1         keep the server logs (they are kept anyway when something fails)
set -euo pipefail

BUILD=${1:-./build}
STANZAD=${STANZAD:-$BUILD/stanzad}
STANZA=${STANZA:-$BUILD/stanza}
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
RUNS=${RUNS:-5}
MSGS=${MSGS:-1000000}
SIZE=${SIZE:-128}
if [[ -z ${STANZAD_ARGS+set} ]]; then
    # nats-server does not know --store; everything else is shared.
    if [[ $(basename "$STANZAD") == nats-server* ]]; then STANZAD_ARGS=""; else STANZAD_ARGS="--store MEMORY"; fi
fi
PORT_WAIT_SECS=10
STOP_WAIT_SECS=5

die() {
    echo "core.sh: $*" >&2
    exit 1
}

for v in RUNS MSGS SIZE; do
    min=1
    [[ $v == SIZE ]] && min=0
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} < min)); then
        echo "core.sh: $v must be a whole number >= $min, got '${!v}'" >&2
        exit 2
    fi
done
for bin in "$STANZAD" "$STANZA" "$NATS_SERVER"; do
    [[ -x $bin ]] || { echo "core.sh: $bin is not an executable (build first, or see the overrides at the top of $0)" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stanza-bench-core.XXXXXX")
PIDS=()
BENCH_PID=
FAILED=1 # cleared at the very end; decides whether the logs are worth keeping

stop_pid() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || return 0
    for ((i = 0; i < STOP_WAIT_SECS * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    echo "core.sh: PID $pid ignored SIGTERM for ${STOP_WAIT_SECS}s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    [[ -n $BENCH_PID ]] && stop_pid "$BENCH_PID"
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ $FAILED == 1 || ${KEEP_LOGS:-0} == 1 ]]; then
        echo "core.sh: logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A random unprivileged port nobody is listening on. Another process could still take it before
# our server binds it; start_server then fails loudly rather than measuring the wrong thing.
free_port() {
    local p i
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 40000))
        port_open "$p" || { echo "$p"; return 0; }
    done
    die "no free port found"
}

# start_server NAME PORT LOG CMD... : starts CMD in the background, records its PID and waits
# until PORT accepts connections. Sets SERVER_PID.
start_server() {
    local name=$1 port=$2 log=$3 i
    shift 3
    "$@" >"$log.out" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for ((i = 0; i < PORT_WAIT_SECS * 20; i++)); do
        port_open "$port" && return 0
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n 20 "$log.out" "$log" 2>/dev/null >&2 || true
            die "$name exited before listening on port $port (command: $*)"
        fi
        sleep 0.05
    done
    die "$name did not listen on port $port within ${PORT_WAIT_SECS}s (command: $*)"
}

# bench_once NAME PORT : one `stanza bench core` run; sets RATE (msgs/s) and TOTAL (seconds).
# The client runs in the background and we `wait` for it, so a SIGINT/SIGTERM to this script is
# handled at once (bash defers traps while a foreground child runs) and cleanup can stop it.
bench_once() {
    local name=$1 port=$2 rc=0 line
    "$STANZA" -s "nats://127.0.0.1:$port" bench core --msgs "$MSGS" --size "$SIZE" \
        >"$WORK/bench.out" 2>"$WORK/bench.err" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=
    if ((rc != 0)); then
        cat "$WORK/bench.out" "$WORK/bench.err" >&2
        die "bench against $name failed (exit $rc)"
    fi
    line=$(grep '^RESULT core ' "$WORK/bench.out") || die "no RESULT line from bench against $name"
    RATE=$(sed -n 's/.* msgs_per_sec=\([0-9.]*\).*/\1/p' <<<"$line")
    TOTAL=$(sed -n 's/.* total_secs=\([0-9.]*\).*/\1/p' <<<"$line")
    [[ -n $RATE && -n $TOTAL ]] || die "cannot parse: $line"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

STANZAD_PORT=$(free_port)
NATS_PORT=$(free_port)
while [[ $NATS_PORT == "$STANZAD_PORT" ]]; do NATS_PORT=$(free_port); done

# shellcheck disable=SC2086 # STANZAD_ARGS is a list of words
start_server stanzad "$STANZAD_PORT" "$WORK/stanzad.log" \
    "$STANZAD" -a 127.0.0.1 -p "$STANZAD_PORT" -l "$WORK/stanzad.log" $STANZAD_ARGS
start_server nats-server "$NATS_PORT" "$WORK/nats-server.log" \
    "$NATS_SERVER" -a 127.0.0.1 -p "$NATS_PORT" -l "$WORK/nats-server.log"

echo "core.sh: stanzad on :$STANZAD_PORT, nats-server on :$NATS_PORT;" \
    "$RUNS runs each of $MSGS msgs x $SIZE B" >&2

S_RATES=() S_TOTALS=() N_RATES=() N_TOTALS=()
run_one() {
    local which=$1 round=$2
    if [[ $which == stanzad ]]; then
        bench_once stanzad "$STANZAD_PORT"
        S_RATES+=("$RATE") S_TOTALS+=("$TOTAL")
    else
        bench_once nats-server "$NATS_PORT"
        N_RATES+=("$RATE") N_TOTALS+=("$TOTAL")
    fi
    printf 'core.sh: run %d/%d %-11s %12s msgs/s  %s s\n' "$round" "$RUNS" "$which" "$RATE" "$TOTAL" >&2
}
for ((round = 1; round <= RUNS; round++)); do
    if ((round % 2)); then
        run_one stanzad "$round"
        run_one nats-server "$round"
    else
        run_one nats-server "$round"
        run_one stanzad "$round"
    fi
done

S_MED=$(median "${S_RATES[@]}")
N_MED=$(median "${N_RATES[@]}")
S_TMED=$(median "${S_TOTALS[@]}")
N_TMED=$(median "${N_TOTALS[@]}")
RATIO=$(awk -v s="$S_MED" -v n="$N_MED" 'BEGIN { printf "%.3f", (n > 0 ? s / n : 0) }')

CPU=$(grep -m1 -E '^(model name|Model|cpu model)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
NATS_VERSION=$("$NATS_SERVER" --version 2>/dev/null | head -n1 || true)
join() {
    local IFS=,
    local s="$*"
    echo "${s//,/, }"
}
fmt_int() { printf '%.0f' "$1"; }

cat <<EOF
### stanza bench core: stanzad vs nats-server

- Machine: $(nproc) CPUs, ${CPU:-unknown CPU}, $(uname -sr)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Workload: $MSGS messages x $SIZE B, one publisher and one subscriber connection over loopback;
  $RUNS runs per server, alternating which server goes first
- stanzad: \`$STANZAD${STANZAD_ARGS:+ $STANZAD_ARGS}\`; reference: ${NATS_VERSION:-$NATS_SERVER}

| server | median msgs/s | median total s | runs (msgs/s) |
|---|---:|---:|---|
| stanzad | $(fmt_int "$S_MED") | $S_TMED | $(join "${S_RATES[@]}") |
| nats-server | $(fmt_int "$N_MED") | $N_TMED | $(join "${N_RATES[@]}") |

Ratio stanzad / nats-server (median msgs/s): **$RATIO**
EOF
FAILED=0
