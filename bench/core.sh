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

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

check_counts RUNS MSGS SIZE
require_executables "$STANZAD" "$STANZA" "$NATS_SERVER"

bench_workdir core

# bench_once NAME PORT : one `stanza bench core` run; sets RATE (msgs/s) and TOTAL (seconds).
bench_once() {
    local name=$1 port=$2 line
    run_stanza "$WORK/bench.out" "$WORK/bench.err" "bench against $name" \
        -s "nats://127.0.0.1:$port" bench core --msgs "$MSGS" --size "$SIZE"
    line=$(grep '^RESULT core ' "$WORK/bench.out") || die "no RESULT line from bench against $name"
    RATE=$(sed -n 's/.* msgs_per_sec=\([0-9.]*\).*/\1/p' <<<"$line")
    TOTAL=$(sed -n 's/.* total_secs=\([0-9.]*\).*/\1/p' <<<"$line")
    [[ -n $RATE && -n $TOTAL ]] || die "cannot parse: $line"
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

CPU=$(cpu_model)
NATS_VERSION=$("$NATS_SERVER" --version 2>/dev/null | head -n1 || true)
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
