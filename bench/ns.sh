#!/usr/bin/env bash
# bench/ns.sh: NATS Streaming over an external NATS server (`stanzad -ns`) next to embedded mode
# (stanzad's own NATS listener), in the same run (issue 10: -ns >= 0.7 x embedded).
#
# usage: bench/ns.sh [BUILD_DIR]        (BUILD_DIR defaults to ./build)
#
# Each of RUNS rounds starts, afresh and on free loopback ports, alternating which goes first:
#   embedded  stanzad -a 127.0.0.1 -p P --store FILE --dir DIR --file_sync=$FILE_SYNC;
#             `stanza bench stan` connects to P
#   -ns       nats-server -a 127.0.0.1 -p Q, then stanzad -ns nats://127.0.0.1:Q -m M --store FILE
#             --dir DIR --file_sync=$FILE_SYNC (no client port of its own; its monitoring port M
#             opens once the engine is ready on NATS, so that is what we wait for);
#             `stanza bench stan` connects to Q: the STAN clients and the engine are all clients
#             of the nats-server
# and runs the benchmark one phase per invocation, on a fresh store dir each round:
#   pub      MSGS messages published asynchronously (at most WINDOW acks outstanding)
#   drain    the MSGS messages read back by SUBS subscribers (DeliverAllAvailable)
#   latency  LAT_MSGS synchronous publishes: p50/p90/p99 publish-to-ack
# Around the pub and drain invocations it reads utime+stime of stanzad and (in -ns mode) of the
# nats-server from /proc/PID/stat, giving each one's CPU time per message published and per
# message delivered, and their sum. It prints a markdown table with both modes' medians and the
# ratio -ns / embedded. Servers are stopped by PID however the script exits.
#
# Environment overrides:
#   STANZAD=PATH        stanzad (default BUILD_DIR/stanzad)
#   STANZA=PATH         CLI (default BUILD_DIR/stanza)
#   NATS_SERVER=PATH    the external NATS (default /usr/sbin/nats-server)
#   STANZAD_ARGS=ARGS   extra stanzad arguments, both modes (default none)
#   FILE_SYNC=true|false  stanzad's --file_sync, both modes (default true)
#   RUNS=N MSGS=N SIZE=BYTES SUBS=K WINDOW=W LAT_MSGS=M
#                       rounds (5), messages (100000), payload (128), drain subscribers (1),
#                       async publish window (16384), synchronous publishes (1000)
#   DATA_PARENT=DIR     where the per-run store dirs go (default: the work dir under $TMPDIR)
#   KEEP_LOGS=1         keep the server logs (they are kept anyway when something fails)
set -euo pipefail

BUILD=${1:-./build}
STANZAD=${STANZAD:-$BUILD/stanzad}
STANZA=${STANZA:-$BUILD/stanza}
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
STANZAD_ARGS=${STANZAD_ARGS:-}
FILE_SYNC=${FILE_SYNC:-true}
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
[[ $FILE_SYNC == true || $FILE_SYNC == false ]] || { echo "$ME: FILE_SYNC must be true or false" >&2; exit 2; }
require_executables "$STANZAD" "$STANZA" "$NATS_SERVER"
CLK_TCK=$(getconf CLK_TCK)

bench_workdir ns
DATA_PARENT=${DATA_PARENT:-$WORK}
DATA_GLOB="stanza-bench-ns-data.$$.*"

# bench_phase PHASE PORT CHANNEL : one `stanza bench stan --phase PHASE`; sets LINE to its
# RESULT line.
bench_phase() {
    local phase=$1 port=$2 channel=$3
    run_stanza "$WORK/bench.out" "$WORK/bench.err" "bench stan --phase $phase" \
        -s "nats://127.0.0.1:$port" bench stan --phase "$phase" --channel "$channel" \
        --subs "$SUBS" --msgs "$MSGS" --size "$SIZE" --async-window "$WINDOW" \
        --latency-msgs "$LAT_MSGS"
    LINE=$(grep '^RESULT stan ' "$WORK/bench.out") || die "no RESULT line from bench stan --phase $phase"
}

# ticks PID... : the processes' CPU ticks, space-separated.
ticks() {
    local pid out=()
    for pid in "$@"; do out+=("$(cpu_ticks "$pid")"); done
    echo "${out[*]}"
}

# Results by mode (0 embedded, 1 -ns), each a space-separated list of run values. CPU: S_ is
# stanzad's, N_ the nats-server's (-ns only), T_ their sum.
NAMES=(embedded -ns)
PUB=("" "") DRAIN=("" "") P50=("" "") P90=("" "") P99=("" "")
S_PUB=("" "") N_PUB=("" "") T_PUB=("" "") S_DRAIN=("" "") N_DRAIN=("" "") T_DRAIN=("" "")

last() { awk '{ print $NF }' <<<"$1"; }

# start_mode MODE RUN : starts the servers of MODE; sets PORT (where the clients connect) and
# CPU_PIDS (stanzad first, then the nats-server in -ns mode).
start_mode() {
    local i=$1 run=$2 data log mport nlog
    data="$DATA_PARENT/stanza-bench-ns-data.$$.$run.$i"
    rm -rf "$data"
    log="$WORK/stanzad.$run.$i.log"
    PORT=$(free_port)
    if ((i == 0)); then
        # shellcheck disable=SC2086 # STANZAD_ARGS is a list of words
        start_server stanzad "$PORT" "$log" "$STANZAD" -a 127.0.0.1 -p "$PORT" -l "$log" \
            --store FILE --dir "$data" --file_sync="$FILE_SYNC" $STANZAD_ARGS
        CPU_PIDS=("$SERVER_PID")
        return 0
    fi
    nlog="$WORK/nats-server.$run.log"
    start_server nats-server "$PORT" "$nlog" "$NATS_SERVER" -a 127.0.0.1 -p "$PORT" -l "$nlog"
    local npid=$SERVER_PID
    mport=$(free_port)
    while [[ $mport == "$PORT" ]]; do mport=$(free_port); done
    # shellcheck disable=SC2086 # STANZAD_ARGS is a list of words
    start_server "stanzad -ns" "$mport" "$log" "$STANZAD" -ns "nats://127.0.0.1:$PORT" \
        -m "$mport" -l "$log" --store FILE --dir "$data" --file_sync="$FILE_SYNC" $STANZAD_ARGS
    CPU_PIDS=("$SERVER_PID" "$npid")
}

# add_cpu MODE PHASE T0 T1 N : records the CPU per message of each process between the tick
# lists T0 and T1 (as `ticks` prints them) over N messages.
add_cpu() {
    local i=$1 phase=$2 n=$5 s n_us="" tot
    local -a a b
    read -ra a <<<"$3"
    read -ra b <<<"$4"
    s=$(us_per_msg $((b[0] - a[0])) "$n")
    tot=$((b[0] - a[0]))
    if ((${#a[@]} > 1)); then
        n_us=$(us_per_msg $((b[1] - a[1])) "$n")
        tot=$((tot + b[1] - a[1]))
    fi
    if [[ $phase == pub ]]; then
        S_PUB[i]+=" $s" T_PUB[i]+=" $(us_per_msg "$tot" "$n")"
        [[ -z $n_us ]] || N_PUB[i]+=" $n_us"
    else
        S_DRAIN[i]+=" $s" T_DRAIN[i]+=" $(us_per_msg "$tot" "$n")"
        [[ -z $n_us ]] || N_DRAIN[i]+=" $n_us"
    fi
}

# run_one MODE RUN : the three phases on freshly started servers of MODE.
run_one() {
    local i=$1 run=$2 t0 t1 t2
    local channel="bench.ns.$run"
    start_mode "$i" "$run"
    t0=$(ticks "${CPU_PIDS[@]}")
    bench_phase pub "$PORT" "$channel"
    PUB[i]+=" $(field pub_msgs_per_sec)"
    t1=$(ticks "${CPU_PIDS[@]}")
    bench_phase drain "$PORT" "$channel"
    DRAIN[i]+=" $(field drain_msgs_per_sec)"
    t2=$(ticks "${CPU_PIDS[@]}")
    bench_phase latency "$PORT" "$channel"
    P50[i]+=" $(field sync_p50_us)" P90[i]+=" $(field sync_p90_us)" P99[i]+=" $(field sync_p99_us)"
    add_cpu "$i" pub "$t0" "$t1" "$MSGS"
    add_cpu "$i" drain "$t1" "$t2" $((MSGS * SUBS))
    # stanzad first (in -ns mode it is a client of the nats-server), then the nats-server.
    local pid
    for pid in "${CPU_PIDS[@]}"; do SERVER_PID=$pid; stop_server; done
    rm -rf "$DATA_PARENT/stanza-bench-ns-data.$$.$run.$i"
    printf 'ns.sh: run %d/%d %-8s pub %8s msgs/s  drain %8s msgs/s  sync p50/p90/p99 %s/%s/%s us  CPU us/msg pub %s drain %s\n' \
        "$run" "$RUNS" "${NAMES[i]}" "$(last "${PUB[i]}")" "$(last "${DRAIN[i]}")" \
        "$(last "${P50[i]}")" "$(last "${P90[i]}")" "$(last "${P99[i]}")" \
        "$(last "${T_PUB[i]}")" "$(last "${T_DRAIN[i]}")" >&2
}

echo "ns.sh: $RUNS rounds of $MSGS msgs x $SIZE B, window $WINDOW, $SUBS subscriber(s)," \
    "$LAT_MSGS sync publishes, --file_sync=$FILE_SYNC; store dirs under $DATA_PARENT" >&2

for ((run = 1; run <= RUNS; run++)); do
    # Alternate which mode goes first, so that neither always meets the same machine state.
    if ((run % 2)); then order=(0 1); else order=(1 0); fi
    for i in "${order[@]}"; do run_one "$i" "$run"; done
done

# ratio A B : A / B to 2 decimals, or "-".
ratio() {
    [[ -n $1 && -n $2 ]] || { echo -; return 0; }
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}
# med_of ARRAY INDEX FMT : the formatted median of ARRAY[INDEX]'s runs, or nothing.
med_of() {
    local -n arr_=$1
    local -a v
    read -ra v <<<"${arr_[$2]}"
    ((${#v[@]} > 0)) || return 0
    # shellcheck disable=SC2059 # the format is ours
    printf "$3" "$(median "${v[@]}")"
}
# runs_of ARRAY INDEX : the runs, comma-separated, or "-".
runs_of() {
    local -n arr_=$1
    local -a v
    read -ra v <<<"${arr_[$2]}"
    if ((${#v[@]} > 0)); then join "${v[@]}"; else echo -; fi
}
# row LABEL ARRAY FORMAT : both modes' medians, the ratio -ns / embedded, and the runs.
row() {
    local label=$1 arr=$2 fmt=$3 m0 m1
    m0=$(med_of "$arr" 0 "$fmt")
    m1=$(med_of "$arr" 1 "$fmt")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "${m0:--}" "${m1:--}" \
        "$(ratio "$m1" "$m0")" "$(runs_of "$arr" 0)" "$(runs_of "$arr" 1)"
}

CPU=$(cpu_model)
NS_VERSION=$("$NATS_SERVER" --version 2>&1 | head -n1)
cat <<EOF
### stanza bench stan: stanzad -ns (over nats-server) and embedded, same run

- Machine: $(nproc) CPUs, ${CPU:-unknown CPU}, $(uname -sr)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Workload: $MSGS messages x $SIZE B published async (window $WINDOW acks), drained by $SUBS
  subscriber(s) (DeliverAllAvailable, MaxInflight 1024, auto-ack), then $LAT_MSGS synchronous
  publishes; $RUNS rounds, servers started afresh each round on a fresh store dir, alternating
  which mode goes first
- embedded: \`$STANZAD --store FILE --dir DIR --file_sync=$FILE_SYNC${STANZAD_ARGS:+ $STANZAD_ARGS}\`
- -ns: \`$NATS_SERVER -p Q\` ($NS_VERSION) and
  \`$STANZAD -ns nats://127.0.0.1:Q -m M --store FILE --dir DIR --file_sync=$FILE_SYNC${STANZAD_ARGS:+ $STANZAD_ARGS}\`;
  the bench connects to the nats-server
- CPU: utime+stime from /proc/PID/stat around each phase, per message published / delivered
  (clock tick $((1000 / CLK_TCK)) ms); ratios are -ns / embedded (for latency and CPU, higher
  is worse for -ns); in embedded mode stanzad is all the server work, so "both" is stanzad

| metric | embedded | -ns | -ns / embedded | embedded runs | -ns runs |
|---|---:|---:|---:|---|---|
$(row "publish, msgs/s (acked)" PUB "%.0f")
$(row "drain, msgs/s (delivered)" DRAIN "%.0f")
$(row "sync publish p50, µs" P50 "%.0f")
$(row "sync publish p90, µs" P90 "%.0f")
$(row "sync publish p99, µs" P99 "%.0f")
$(row "stanzad CPU per published msg, µs" S_PUB "%.3f")
$(row "nats-server CPU per published msg, µs" N_PUB "%.3f")
$(row "server CPU per published msg (both), µs" T_PUB "%.3f")
$(row "stanzad CPU per delivered msg, µs" S_DRAIN "%.3f")
$(row "nats-server CPU per delivered msg, µs" N_DRAIN "%.3f")
$(row "server CPU per delivered msg (both), µs" T_DRAIN "%.3f")
EOF
FAILED=0
