#!/usr/bin/env bash
# bench/route.sh: NATS core pub/sub across a route: publisher on node A, subscriber on node B, for
# two routed stanzads next to two routed nats-servers, in the same run (issue 10: stanzad routed
# >= 0.8 x the nats-server pair).
#
# usage: bench/route.sh [BUILD_DIR]        (BUILD_DIR defaults to ./build)
#
# Each of RUNS rounds starts each pair afresh on free loopback ports, alternating which pair goes
# first:
#   nats-server  A: -a 127.0.0.1 -p PA --cluster nats://127.0.0.1:CA
#                B: -a 127.0.0.1 -p PB --cluster nats://127.0.0.1:CB --routes nats://127.0.0.1:CA
#   stanzad      A: -a 127.0.0.1 -p PA --cluster nats://127.0.0.1:CA -cid a $STANZAD_ARGS
#                B: -a 127.0.0.1 -p PB --cluster nats://127.0.0.1:CB --routes nats://127.0.0.1:CA
#                   -cid b $STANZAD_ARGS
# then runs `stanza -s nats://127.0.0.1:PA bench core --sub-url nats://127.0.0.1:PB`: the
# subscriber connects to B, the publisher to A; before its clock starts the bench publishes
# probes on A until one reaches the subscriber on B, so the route is up and carries the
# subscriber's interest. The clock runs from the first publish until the subscriber has all MSGS.
# Around it, both servers' utime+stime are read from /proc/PID/stat (CPU per message, A + B).
# Prints a markdown table with both pairs' medians and the ratio stanzad / nats-server. Servers
# are stopped by PID however the script exits.
#
# Environment overrides:
#   STANZAD=PATH        server under test (default BUILD_DIR/stanzad; "none": only the
#                       nats-server pair, e.g. while stanzad's routes are not there yet)
#   STANZAD_ARGS=ARGS   extra arguments for both stanzads (default "--store MEMORY")
#   NATS_SERVER=PATH    reference server (default /usr/sbin/nats-server)
#   STANZA=PATH         CLI (default BUILD_DIR/stanza)
#   RUNS=N MSGS=N SIZE=BYTES   rounds (5), messages per run (500000: with 1000000 a busy
#                       machine let the subscriber fall 64 MB behind, and nats-server B closed
#                       it as a slow consumer), payload (128)
#   KEEP_LOGS=1         keep the server logs (they are kept anyway when something fails)
set -euo pipefail

BUILD=${1:-./build}
STANZAD=${STANZAD:-$BUILD/stanzad}
STANZA=${STANZA:-$BUILD/stanza}
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
STANZAD_ARGS=${STANZAD_ARGS---store MEMORY}
RUNS=${RUNS:-5}
MSGS=${MSGS:-500000}
SIZE=${SIZE:-128}
PORT_WAIT_SECS=10
STOP_WAIT_SECS=5

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

check_counts RUNS MSGS SIZE
BINS=("$STANZA" "$NATS_SERVER")
[[ $STANZAD == none ]] || BINS+=("$STANZAD")
require_executables "${BINS[@]}"
CLK_TCK=$(getconf CLK_TCK)

bench_workdir route

# distinct_ports N : N free ports, all different, in PORTS.
distinct_ports() {
    local p q dup
    PORTS=()
    while ((${#PORTS[@]} < $1)); do
        p=$(free_port) dup=0
        for q in "${PORTS[@]+"${PORTS[@]}"}"; do [[ $p == "$q" ]] && dup=1; done
        ((dup)) || PORTS+=("$p")
    done
}

# start_pair MODE RUN : starts node A then node B of MODE (0 nats-server, 1 stanzad); sets PA,
# PB (client ports) and PAIR (their PIDs).
start_pair() {
    local i=$1 run=$2 ca cb loga logb
    distinct_ports 4
    PA=${PORTS[0]} PB=${PORTS[1]} ca=${PORTS[2]} cb=${PORTS[3]}
    loga="$WORK/${NAMES[i]}.$run.a.log" logb="$WORK/${NAMES[i]}.$run.b.log"
    if ((i == 0)); then
        start_server "nats-server A" "$PA" "$loga" "$NATS_SERVER" -a 127.0.0.1 -p "$PA" \
            --cluster "nats://127.0.0.1:$ca" -l "$loga"
        PAIR=("$SERVER_PID")
        start_server "nats-server B" "$PB" "$logb" "$NATS_SERVER" -a 127.0.0.1 -p "$PB" \
            --cluster "nats://127.0.0.1:$cb" --routes "nats://127.0.0.1:$ca" -l "$logb"
    else
        # shellcheck disable=SC2086 # STANZAD_ARGS is a list of words
        start_server "stanzad A" "$PA" "$loga" "$STANZAD" -a 127.0.0.1 -p "$PA" \
            --cluster "nats://127.0.0.1:$ca" -cid a -l "$loga" $STANZAD_ARGS
        PAIR=("$SERVER_PID")
        # shellcheck disable=SC2086
        start_server "stanzad B" "$PB" "$logb" "$STANZAD" -a 127.0.0.1 -p "$PB" \
            --cluster "nats://127.0.0.1:$cb" --routes "nats://127.0.0.1:$ca" -cid b -l "$logb" \
            $STANZAD_ARGS
    fi
    PAIR+=("$SERVER_PID")
}

NAMES=(nats-server stanzad)
RATES=("" "") TOTALS=("" "") CPUS=("" "")

last() { awk '{ print $NF }' <<<"$1"; }

# run_one MODE RUN : one bench core across the route of a fresh pair.
run_one() {
    local i=$1 run=$2 a0 b0 a1 b1 pid
    start_pair "$i" "$run"
    a0=$(cpu_ticks "${PAIR[0]}") b0=$(cpu_ticks "${PAIR[1]}")
    run_stanza "$WORK/bench.out" "$WORK/bench.err" "bench core across ${NAMES[i]}s" \
        -s "nats://127.0.0.1:$PA" bench core --sub-url "nats://127.0.0.1:$PB" \
        --msgs "$MSGS" --size "$SIZE"
    a1=$(cpu_ticks "${PAIR[0]}") b1=$(cpu_ticks "${PAIR[1]}")
    LINE=$(grep '^RESULT core ' "$WORK/bench.out") || die "no RESULT line from bench core"
    RATES[i]+=" $(field msgs_per_sec)" TOTALS[i]+=" $(field total_secs)"
    # The warm-up's few probes and the connects are in this too; they are tiny next to MSGS.
    CPUS[i]+=" $(us_per_msg $((a1 - a0 + b1 - b0)) "$MSGS")"
    for pid in "${PAIR[1]}" "${PAIR[0]}"; do SERVER_PID=$pid; stop_server; done
    printf 'route.sh: run %d/%d %-11s %10s msgs/s  %s s  A+B CPU %s us/msg\n' "$run" "$RUNS" \
        "${NAMES[i]}" "$(last "${RATES[i]}")" "$(last "${TOTALS[i]}")" "$(last "${CPUS[i]}")" >&2
}

echo "route.sh: $RUNS rounds of $MSGS msgs x $SIZE B, publisher on A, subscriber on B" >&2
MODES=(0)
[[ $STANZAD == none ]] || MODES=(0 1)
for ((run = 1; run <= RUNS; run++)); do
    # Alternate which pair goes first, so that neither always meets the same machine state.
    order=("${MODES[@]}")
    if ((run % 2 == 0 && ${#MODES[@]} == 2)); then order=(1 0); fi
    for i in "${order[@]}"; do run_one "$i" "$run"; done
done

# cell ARRAY INDEX FMT : the formatted median of the runs, or "-".
cell() {
    local -n arr_=$1
    local -a v
    read -ra v <<<"${arr_[$2]}"
    ((${#v[@]} > 0)) || { echo -; return 0; }
    # shellcheck disable=SC2059 # the format is ours
    printf "$3" "$(median "${v[@]}")"
}
runs_of() {
    local -a v
    read -ra v <<<"${RATES[$1]}"
    if ((${#v[@]} > 0)); then join "${v[@]}"; else echo -; fi
}
N_MED=$(cell RATES 0 %.0f) S_MED=$(cell RATES 1 %.0f)
RATIO=$(awk -v s="$S_MED" -v n="$N_MED" 'BEGIN { if (s != "-" && n > 0) printf "%.3f", s / n; else print "-" }')

CPU=$(cpu_model)
NATS_VERSION=$("$NATS_SERVER" --version 2>/dev/null | head -n1 || true)
cat <<EOF
### stanza bench core across a route: two routed stanzads vs two routed nats-servers

- Machine: $(nproc) CPUs, ${CPU:-unknown CPU}, $(uname -sr)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Workload: $MSGS messages x $SIZE B, one publisher connection on node A, one subscriber
  connection on node B, the route between them over loopback; $RUNS rounds, each pair started
  afresh, alternating which pair goes first
- stanzad: \`$STANZAD --cluster ... [--routes ...] -cid a|b${STANZAD_ARGS:+ $STANZAD_ARGS}\`;
  reference: ${NATS_VERSION:-$NATS_SERVER}
- CPU: utime+stime of both nodes from /proc/PID/stat around the bench, per message

| pair | median msgs/s | median total s | median CPU A+B, µs/msg | runs (msgs/s) |
|---|---:|---:|---:|---|
| stanzad | $S_MED | $(cell TOTALS 1 %.6f) | $(cell CPUS 1 %.3f) | $(runs_of 1) |
| nats-server | $N_MED | $(cell TOTALS 0 %.6f) | $(cell CPUS 0 %.3f) | $(runs_of 0) |

Ratio stanzad / nats-server (median msgs/s): **$RATIO**
EOF
FAILED=0
