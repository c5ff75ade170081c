#!/usr/bin/env bash
# bench/stan.sh: NATS Streaming throughput, latency and server CPU cost of stanzad on its
# persistent store, with every commit synced to disk, next to NATS JetStream (Debian's
# nats-server -js) running the same workload in the same run.
#
# usage: bench/stan.sh [BUILD_DIR]        (BUILD_DIR defaults to ./build)
#
# Each of RUNS rounds starts each server afresh on a free loopback port with a new empty store
# dir, alternating which server goes first:
#   stanzad      --store FILE --dir DIR --file_sync=true, driven by `stanza bench stan`
#   nats-server  -js -sd DIR (JetStream's defaults: it does not fsync each message, see
#                docs/benchmarks.md), driven by `stanza bench js` on one file-storage stream
# and runs the benchmark one phase per invocation:
#   pub      MSGS messages published asynchronously (at most WINDOW acks outstanding)
#   drain    the MSGS messages read back (stanzad: SUBS subscribers, DeliverAllAvailable;
#            JetStream: one push consumer, DeliverAll, AckExplicit)
#   latency  LAT_MSGS synchronous publishes: p50/p90/p99 publish-to-ack
# Around the pub and drain invocations it reads the server's utime+stime from /proc/PID/stat
# (fields 14 and 15, in clock ticks), giving the server's CPU time per message published and per
# message delivered (connection setup of the invocation included; it is tiny next to MSGS). Then
# it prints a markdown table with both servers' medians and the ratios. Servers are stopped by
# PID however the script exits.
#
# Environment overrides:
#   STANZAD=PATH        server under test (default BUILD_DIR/stanzad)
#   STANZAD_ARGS=ARGS   extra stanzad arguments (default none)
#   STANZA=PATH         CLI (default BUILD_DIR/stanza)
#   NATS_SERVER=PATH    JetStream reference (default: nats-server from PATH; "none" skips it)
#   NATS_SERVER_ARGS=ARGS  extra nats-server arguments (default none)
#   RUNS=N MSGS=N SIZE=BYTES SUBS=K WINDOW=W LAT_MSGS=M
#                       rounds (5), messages (100000), payload (128), stanzad drain subscribers
#                       (1), async publish window (1024), synchronous publishes (1000)
#   DATA_PARENT=DIR     where the per-run store dirs go (default: the work dir under $TMPDIR);
#                       put it on the disk you want to measure
#   KEEP_LOGS=1         keep the server logs (they are kept anyway when something fails)
set -euo pipefail

BUILD=${1:-./build}
STANZAD=${STANZAD:-$BUILD/stanzad}
STANZA=${STANZA:-$BUILD/stanza}
STANZAD_ARGS=${STANZAD_ARGS:-}
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo none)}
NATS_SERVER_ARGS=${NATS_SERVER_ARGS:-}
RUNS=${RUNS:-5}
MSGS=${MSGS:-100000}
SIZE=${SIZE:-128}
SUBS=${SUBS:-1}
WINDOW=${WINDOW:-16384} # libnats's default MaxPubAcksInflight
LAT_MSGS=${LAT_MSGS:-1000}
PORT_WAIT_SECS=10
STOP_WAIT_SECS=5

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

check_counts RUNS MSGS SIZE SUBS WINDOW LAT_MSGS
BINS=("$STANZAD" "$STANZA")
[[ $NATS_SERVER == none ]] || BINS+=("$NATS_SERVER")
require_executables "${BINS[@]}"
CLK_TCK=$(getconf CLK_TCK)

bench_workdir stan
DATA_PARENT=${DATA_PARENT:-$WORK}
DATA_GLOB="stanza-bench-stan-data.$$.*"

# bench_phase KIND PHASE PORT NAME : one `stanza bench KIND --phase PHASE` (KIND stan: NAME is
# the channel; js: the stream, whose subject is its name); sets LINE to its RESULT line.
bench_phase() {
    local kind=$1 phase=$2 port=$3 name=$4 args
    if [[ $kind == stan ]]; then
        args=(--channel "$name" --subs "$SUBS")
    else
        args=(--stream "$name")
    fi
    run_stanza "$WORK/bench.out" "$WORK/bench.err" "bench $kind --phase $phase" \
        -s "nats://127.0.0.1:$port" bench "$kind" --phase "$phase" "${args[@]}" \
        --msgs "$MSGS" --size "$SIZE" --async-window "$WINDOW" --latency-msgs "$LAT_MSGS"
    LINE=$(grep "^RESULT $kind " "$WORK/bench.out") ||
        die "no RESULT line from bench $kind --phase $phase"
}

# Results by server index (0 stanzad, 1 nats-server), each a space-separated list of run values.
NAMES=(stanzad nats-server)
PUB=("" "") DRAIN=("" "") P50=("" "") P90=("" "") P99=("" "") CPU_PUB=("" "") CPU_DRAIN=("" "")

last() { awk '{ print $NF }' <<<"$1"; }

# run_one INDEX RUN : the three phases on a fresh server INDEX with a fresh store.
run_one() {
    local i=$1 run=$2 port data log kind name drained t0 t1 t2
    port=$(free_port)
    data="$DATA_PARENT/stanza-bench-stan-data.$$.$run.$i"
    rm -rf "$data"
    log="$WORK/${NAMES[i]}.$run.log"
    if ((i == 0)); then
        # shellcheck disable=SC2086 # STANZAD_ARGS is a list of words
        start_server stanzad "$port" "$log" "$STANZAD" -a 127.0.0.1 -p "$port" -l "$log" \
            --store FILE --dir "$data" --file_sync=true $STANZAD_ARGS
        kind=stan name="bench.stan.$run" drained=$((MSGS * SUBS))
    else
        # shellcheck disable=SC2086 # NATS_SERVER_ARGS is a list of words
        start_server nats-server "$port" "$log" "$NATS_SERVER" -js -sd "$data" -a 127.0.0.1 \
            -p "$port" -l "$log" $NATS_SERVER_ARGS
        kind=js name="bench_js_$run" drained=$MSGS
    fi

    t0=$(cpu_ticks "$SERVER_PID")
    bench_phase "$kind" pub "$port" "$name"
    PUB[i]+=" $(field pub_msgs_per_sec)"
    t1=$(cpu_ticks "$SERVER_PID")
    bench_phase "$kind" drain "$port" "$name"
    DRAIN[i]+=" $(field drain_msgs_per_sec)"
    t2=$(cpu_ticks "$SERVER_PID")
    bench_phase "$kind" latency "$port" "$name"
    P50[i]+=" $(field sync_p50_us)" P90[i]+=" $(field sync_p90_us)" P99[i]+=" $(field sync_p99_us)"
    CPU_PUB[i]+=" $(us_per_msg $((t1 - t0)) "$MSGS")"
    CPU_DRAIN[i]+=" $(us_per_msg $((t2 - t1)) "$drained")"
    stop_server
    rm -rf "$data"
    printf 'stan.sh: run %d/%d %-11s pub %8s msgs/s  drain %8s msgs/s  sync p50/p90/p99 %s/%s/%s us  server CPU %s/%s us/msg\n' \
        "$run" "$RUNS" "${NAMES[i]}" "$(last "${PUB[i]}")" "$(last "${DRAIN[i]}")" \
        "$(last "${P50[i]}")" "$(last "${P90[i]}")" "$(last "${P99[i]}")" \
        "$(last "${CPU_PUB[i]}")" "$(last "${CPU_DRAIN[i]}")" >&2
}

echo "stan.sh: $RUNS rounds of $MSGS msgs x $SIZE B, window $WINDOW, $SUBS subscriber(s)," \
    "$LAT_MSGS sync publishes; store dirs under $DATA_PARENT; reference: $NATS_SERVER" >&2

SERVERS=(0)
[[ $NATS_SERVER == none ]] || SERVERS=(0 1)
for ((run = 1; run <= RUNS; run++)); do
    # Alternate which server goes first, so that neither always meets the same machine state.
    order=("${SERVERS[@]}")
    if ((run % 2 == 0 && ${#SERVERS[@]} == 2)); then order=(1 0); fi
    for i in "${order[@]}"; do run_one "$i" "$run"; done
done

CPU=$(cpu_model)
FS=$(df -PT "$DATA_PARENT" 2>/dev/null | awk 'NR == 2 { print $2 " on " $1 }')
# ratio A B : A / B to 2 decimals, or "-" without B.
ratio() {
    [[ -n $2 ]] || { echo -; return 0; }
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}
# row LABEL ARRAY FORMAT : a table row: both servers' medians, their ratio, and the runs.
row() {
    local label=$1 fmt=$3 m0 m1="" f1=- runs1=-
    local -n arr=$2
    local -a v0 v1
    read -ra v0 <<<"${arr[0]}"
    read -ra v1 <<<"${arr[1]}"
    m0=$(median "${v0[@]}")
    if ((${#v1[@]} > 0)); then
        m1=$(median "${v1[@]}")
        # shellcheck disable=SC2059 # the format is ours
        f1=$(printf "$fmt" "$m1")
        runs1=$(join "${v1[@]}")
    fi
    # shellcheck disable=SC2059
    printf "| %s | $fmt | %s | %s | %s | %s |\n" "$label" "$m0" "$f1" "$(ratio "$m0" "$m1")" \
        "$(join "${v0[@]}")" "$runs1"
}

NS_VERSION=-
[[ $NATS_SERVER == none ]] || NS_VERSION=$("$NATS_SERVER" --version 2>&1 | head -n1)
cat <<EOF
### stanza bench stan / bench js: stanzad (synced commits) and nats-server JetStream, same run

- Machine: $(nproc) CPUs, ${CPU:-unknown CPU}, $(uname -sr); stores on ${FS:-unknown fs}
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Workload: $MSGS messages x $SIZE B published async (window $WINDOW acks), drained (stanzad:
  $SUBS subscriber(s), DeliverAllAvailable, MaxInflight 1024, auto-ack; JetStream: one push
  consumer, DeliverAll, AckExplicit, MaxAckPending 1024, each message acked), then $LAT_MSGS
  synchronous publishes; $RUNS rounds, each server on a fresh store dir, alternating which
  server goes first
- stanzad: \`$STANZAD --store FILE --dir DIR --file_sync=true${STANZAD_ARGS:+ $STANZAD_ARGS}\`
- reference: \`$NATS_SERVER -js -sd DIR${NATS_SERVER_ARGS:+ $NATS_SERVER_ARGS}\` ($NS_VERSION)
- Server CPU: utime+stime from /proc/PID/stat around each phase, per message published / per
  message delivered (clock tick $((1000 / CLK_TCK)) ms)

| metric | stanzad | JetStream | stanzad / JetStream | stanzad runs | JetStream runs |
|---|---:|---:|---:|---|---|
$(row "publish, msgs/s (acked)" PUB "%.0f")
$(row "drain, msgs/s (delivered)" DRAIN "%.0f")
$(row "sync publish p50, µs" P50 "%.0f")
$(row "sync publish p90, µs" P90 "%.0f")
$(row "sync publish p99, µs" P99 "%.0f")
$(row "server CPU per published msg, µs" CPU_PUB "%.3f")
$(row "server CPU per delivered msg, µs" CPU_DRAIN "%.3f")
EOF
FAILED=0
