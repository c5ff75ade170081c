#!/usr/bin/env bash
# bench/stan.sh: NATS Streaming throughput, latency and server CPU cost of stanzad on its
# persistent store, with every commit synced to disk.
#
# usage: bench/stan.sh [BUILD_DIR]        (BUILD_DIR defaults to ./build)
#
# Each of RUNS runs starts stanzad afresh (--store FILE, a new empty --dir, --file_sync=true) on a
# free loopback port and runs `stanza bench stan` one phase per invocation on one channel:
#   pub      MSGS messages published asynchronously (at most WINDOW acks outstanding)
#   drain    SUBS subscribers each read the MSGS messages back (DeliverAllAvailable)
#   latency  LAT_MSGS synchronous publishes: p50/p90/p99 publish-to-ack
# Around the pub and drain invocations it reads the server's utime+stime from /proc/PID/stat
# (fields 14 and 15, in clock ticks), giving the server's CPU time per message published and per
# message delivered (connection setup of the invocation included; it is tiny next to MSGS). Then
# it prints a markdown table with the medians. The server is stopped by PID however the script
# exits.
#
# Environment overrides:
#   STANZAD=PATH        server under test (default BUILD_DIR/stanzad)
#   STANZAD_ARGS=ARGS   extra server arguments (default none)
#   STANZA=PATH         CLI (default BUILD_DIR/stanza)
#   RUNS=N MSGS=N SIZE=BYTES SUBS=K WINDOW=W LAT_MSGS=M
#                       runs (5), messages (100000), payload (128), drain subscribers (1),
#                       async publish window (1024), synchronous publishes (1000)
#   DATA_PARENT=DIR     where the per-run store dirs go (default: the work dir under $TMPDIR);
#                       put it on the disk you want to measure
#   KEEP_LOGS=1         keep the server logs (they are kept anyway when something fails)
set -euo pipefail

BUILD=${1:-./build}
STANZAD=${STANZAD:-$BUILD/stanzad}
STANZA=${STANZA:-$BUILD/stanza}
STANZAD_ARGS=${STANZAD_ARGS:-}
RUNS=${RUNS:-5}
MSGS=${MSGS:-100000}
SIZE=${SIZE:-128}
SUBS=${SUBS:-1}
WINDOW=${WINDOW:-1024}
LAT_MSGS=${LAT_MSGS:-1000}
PORT_WAIT_SECS=10
STOP_WAIT_SECS=5

die() {
    echo "stan.sh: $*" >&2
    exit 1
}

for v in RUNS MSGS SIZE SUBS WINDOW LAT_MSGS; do
    min=1
    [[ $v == SIZE ]] && min=0
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} < min)); then
        echo "stan.sh: $v must be a whole number >= $min, got '${!v}'" >&2
        exit 2
    fi
done
for bin in "$STANZAD" "$STANZA"; do
    [[ -x $bin ]] || { echo "stan.sh: $bin is not an executable (build first, or see the overrides at the top of $0)" >&2; exit 2; }
done
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stanza-bench-stan.XXXXXX")
DATA_PARENT=${DATA_PARENT:-$WORK}
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
    echo "stan.sh: PID $pid ignored SIGTERM for ${STOP_WAIT_SECS}s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    [[ -n $BENCH_PID ]] && stop_pid "$BENCH_PID"
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ $FAILED == 1 || ${KEEP_LOGS:-0} == 1 ]]; then
        echo "stan.sh: logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    # Store dirs outside WORK are ours too (made by this script, one per run).
    [[ $DATA_PARENT == "$WORK" ]] || rm -rf "$DATA_PARENT"/stanza-bench-stan-data.$$.*
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

# stop_server: stops SERVER_PID and forgets it.
stop_server() {
    local pid keep=()
    stop_pid "$SERVER_PID"
    for pid in "${PIDS[@]}"; do [[ $pid == "$SERVER_PID" ]] || keep+=("$pid"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# Server CPU time so far (utime + stime) in clock ticks. The command name (field 2) may hold
# spaces, so fields are counted after its closing parenthesis: 14 and 15 become 12 and 13.
cpu_ticks() {
    local stat rest
    stat=$(<"/proc/$1/stat") || die "cannot read /proc/$1/stat (is the server still running?)"
    rest=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$rest"
}

# bench_phase PHASE PORT CHANNEL : one `stanza bench stan --phase PHASE`; sets LINE to its RESULT
# line. The client runs in the background and we `wait` for it, so a SIGINT/SIGTERM to this
# script is handled at once (bash defers traps while a foreground child runs).
bench_phase() {
    local phase=$1 port=$2 channel=$3 rc=0
    "$STANZA" -s "nats://127.0.0.1:$port" bench stan --phase "$phase" --channel "$channel" \
        --msgs "$MSGS" --size "$SIZE" --subs "$SUBS" --async-window "$WINDOW" \
        --latency-msgs "$LAT_MSGS" >"$WORK/bench.out" 2>"$WORK/bench.err" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=
    if ((rc != 0)); then
        cat "$WORK/bench.out" "$WORK/bench.err" >&2
        die "bench stan --phase $phase failed (exit $rc)"
    fi
    LINE=$(grep '^RESULT stan ' "$WORK/bench.out") || die "no RESULT line from --phase $phase"
}

# field NAME : the value of NAME=... in LINE.
field() {
    local v
    v=$(sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$LINE")
    [[ -n $v ]] || die "no $1 in: $LINE"
    echo "$v"
}

# us_per_msg TICKS MSGS : CPU microseconds per message.
us_per_msg() {
    awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }'
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "stan.sh: $RUNS runs of $MSGS msgs x $SIZE B, window $WINDOW, $SUBS subscriber(s)," \
    "$LAT_MSGS sync publishes; store dirs under $DATA_PARENT" >&2

PUB=() DRAIN=() P50=() P90=() P99=() CPU_PUB=() CPU_DRAIN=()
for ((run = 1; run <= RUNS; run++)); do
    port=$(free_port)
    data="$DATA_PARENT/stanza-bench-stan-data.$$.$run"
    rm -rf "$data"
    log="$WORK/stanzad.$run.log"
    # shellcheck disable=SC2086 # STANZAD_ARGS is a list of words
    start_server stanzad "$port" "$log" "$STANZAD" -a 127.0.0.1 -p "$port" -l "$log" \
        --store FILE --dir "$data" --file_sync=true $STANZAD_ARGS
    channel="bench.stan.$run"

    t0=$(cpu_ticks "$SERVER_PID")
    bench_phase pub "$port" "$channel"
    PUB+=("$(field pub_msgs_per_sec)")
    t1=$(cpu_ticks "$SERVER_PID")
    bench_phase drain "$port" "$channel"
    DRAIN+=("$(field drain_msgs_per_sec)")
    t2=$(cpu_ticks "$SERVER_PID")
    bench_phase latency "$port" "$channel"
    P50+=("$(field sync_p50_us)") P90+=("$(field sync_p90_us)") P99+=("$(field sync_p99_us)")

    CPU_PUB+=("$(us_per_msg $((t1 - t0)) "$MSGS")")
    CPU_DRAIN+=("$(us_per_msg $((t2 - t1)) $((MSGS * SUBS)))")
    stop_server
    rm -rf "$data"
    printf 'stan.sh: run %d/%d  pub %8s msgs/s  drain %8s msgs/s  sync p50/p90/p99 %s/%s/%s us  server CPU %s/%s us/msg\n' \
        "$run" "$RUNS" "${PUB[-1]}" "${DRAIN[-1]}" "${P50[-1]}" "${P90[-1]}" "${P99[-1]}" \
        "${CPU_PUB[-1]}" "${CPU_DRAIN[-1]}" >&2
done

CPU=$(grep -m1 -E '^(model name|Model|cpu model)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
FS=$(df -PT "$DATA_PARENT" 2>/dev/null | awk 'NR == 2 { print $2 " on " $1 }')
join() {
    local IFS=,
    local s="$*"
    echo "${s//,/, }"
}
fmt_int() { printf '%.0f' "$1"; }

cat <<EOF
### stanza bench stan: stanzad, file store, synced commits

- Machine: $(nproc) CPUs, ${CPU:-unknown CPU}, $(uname -sr); store on ${FS:-unknown fs}
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Workload: $MSGS messages x $SIZE B published async (window $WINDOW acks), drained by $SUBS
  subscriber(s) (DeliverAllAvailable, MaxInflight 1024, auto-ack), then $LAT_MSGS synchronous
  publishes; $RUNS runs, each on a fresh server and store dir
- stanzad: \`$STANZAD --store FILE --dir DIR --file_sync=true${STANZAD_ARGS:+ $STANZAD_ARGS}\`
- Server CPU: utime+stime from /proc/PID/stat around each phase, per message published / per
  message delivered (clock tick $((1000 / CLK_TCK)) ms)

| metric | median | runs |
|---|---:|---|
| publish, msgs/s (acked) | $(fmt_int "$(median "${PUB[@]}")") | $(join "${PUB[@]}") |
| drain, msgs/s (delivered) | $(fmt_int "$(median "${DRAIN[@]}")") | $(join "${DRAIN[@]}") |
| sync publish p50, µs | $(fmt_int "$(median "${P50[@]}")") | $(join "${P50[@]}") |
| sync publish p90, µs | $(fmt_int "$(median "${P90[@]}")") | $(join "${P90[@]}") |
| sync publish p99, µs | $(fmt_int "$(median "${P99[@]}")") | $(join "${P99[@]}") |
| server CPU per published msg, µs | $(median "${CPU_PUB[@]}") | $(join "${CPU_PUB[@]}") |
| server CPU per delivered msg, µs | $(median "${CPU_DRAIN[@]}") | $(join "${CPU_DRAIN[@]}") |
EOF
FAILED=0
