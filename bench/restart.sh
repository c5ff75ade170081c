#!/usr/bin/env bash
# bench/restart.sh: how long stanzad takes, from spawn, to serve a streaming client over a store
# of N messages (N = 1M, 5M, 10M), next to nats-server JetStream over a stream of N; plus the
# disk bytes per message and stanzad's anonymous memory (RssAnon) after storing N and while one
# subscriber drains them.
#
# usage: bench/restart.sh [BUILD_DIR]     (BUILD_DIR defaults to ./build)
#
# For each N in NS:
#   1. fill: start stanzad on a fresh --dir with --file_sync=false (to save time: the fill is
#      not what is measured; the store is the same as with synced commits) and no channel
#      limits, publish N messages x SIZE B to one channel (`stanza bench stan --phase pub`,
#      window FILL_WINDOW); read RssAnon from /proc/PID/status right after the last ack and
#      2 s later (stanzad trims its heap about a second after a burst); stop it with SIGTERM;
#      fsync the store's files (else the first restart's first synced commit would write the
#      whole unsynced fill out); record du -b of data.mdb / N.
#   2. restart RESTARTS times: t0=$EPOCHREALTIME, spawn stanzad on the same dir (file_sync on,
#      as in production), and at once run `stanza bench ready --since t0`, which retries
#      connect + one synchronous publish until one succeeds and prints the ms since t0; stop
#      it with SIGTERM. The median is reported. The page cache is warm (the files were just
#      written or read); the floor (the same command against a server that is already up:
#      process start of the CLI, connect, one synced publish) is reported too.
#   3. if N == DRAIN_N: start stanzad once more and sample its RssAnon every 50 ms while
#      `stanza bench stan --phase drain` reads all N with one subscriber; report the maximum.
#   4. the same with nats-server -js -sd DIR (fill: `stanza bench js --phase pub`, JetStream's
#      default syncing; ready: `stanza bench ready --js`), unless NATS_SERVER=none.
#
# Environment overrides:
#   STANZAD=PATH STANZA=PATH NATS_SERVER=PATH ("none" skips JetStream)
#   NS="1000000 5000000 10000000"   store sizes
#   RESTARTS=5 SIZE=128 FILL_WINDOW=8192 DRAIN_N=1000000 (0: no drain sample)
#   DATA_PARENT=DIR     where the store dirs go (default: the work dir under $TMPDIR)
#   KEEP_LOGS=1         keep the server logs (they are kept anyway when something fails)
set -euo pipefail

BUILD=${1:-./build}
STANZAD=${STANZAD:-$BUILD/stanzad}
STANZA=${STANZA:-$BUILD/stanza}
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo none)}
NS=${NS:-1000000 5000000 10000000}
RESTARTS=${RESTARTS:-5}
SIZE=${SIZE:-128}
FILL_WINDOW=${FILL_WINDOW:-8192}
DRAIN_N=${DRAIN_N:-1000000}
PORT_WAIT_SECS=60
STOP_WAIT_SECS=60
READY_TIMEOUT_MS=60000
CHANNEL=bench.restart
STREAM=bench_restart

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

for v in RESTARTS SIZE FILL_WINDOW DRAIN_N; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]]; then
        echo "restart.sh: $v must be a whole number, got '${!v}'" >&2
        exit 2
    fi
done
read -ra NLIST <<<"$NS"
for n in "${NLIST[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "restart.sh: NS must hold whole numbers >= 1, got '$n'" >&2; exit 2; }
done
((RESTARTS >= 1)) || { echo "restart.sh: RESTARTS must be >= 1" >&2; exit 2; }
[[ -n ${EPOCHREALTIME:-} ]] || { echo "restart.sh: needs bash >= 5 (EPOCHREALTIME)" >&2; exit 2; }
BINS=("$STANZAD" "$STANZA")
[[ $NATS_SERVER == none ]] || BINS+=("$NATS_SERVER")
require_executables "${BINS[@]}"

bench_workdir restart
DATA_PARENT=${DATA_PARENT:-$WORK}
DATA_GLOB="stanza-bench-restart-data.$$.*"

# rss_anon PID : RssAnon in KiB.
rss_anon() {
    awk '/^RssAnon:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# run_cli OUT ARGS... : `stanza ARGS`, in the background so that signals are handled at once;
# its stdout goes to OUT. Dies if it fails.
run_cli() {
    local out=$1
    shift
    run_stanza "$out" "$out.err" "stanza $*" "$@"
}

# result_field FILE KIND NAME : NAME=... of the "RESULT KIND" line in FILE.
result_field() {
    local v
    v=$(sed -n "s/^RESULT $2 .*\b$3=\([0-9.]*\).*/\1/p" "$1")
    [[ -n $v ]] || die "no $3 in the RESULT $2 line of $1"
    echo "$v"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# server_cmd KIND PORT DATA LOG SYNC : the command line of server KIND (stanzad or js) into CMD.
server_cmd() {
    local kind=$1 port=$2 data=$3 log=$4 sync=$5
    if [[ $kind == stanzad ]]; then
        CMD=("$STANZAD" -a 127.0.0.1 -p "$port" -l "$log" --store FILE --dir "$data"
            "--file_sync=$sync" --max_msgs 0 --max_bytes 0)
    else
        CMD=("$NATS_SERVER" -js -sd "$data" -a 127.0.0.1 -p "$port" -l "$log")
    fi
}

# store_bytes KIND DATA : bytes on disk of the store (stanzad: data.mdb; JetStream: the dir).
store_bytes() {
    if [[ $1 == stanzad ]]; then
        du -b "$2/data.mdb" | awk '{ print $1 }'
    else
        du -sb "$2" | awk '{ print $1 }'
    fi
}

# measure KIND N : fills, restarts and samples one server kind over N messages; appends a row to
# ROWS and, for stanzad, to MEM_ROWS.
ROWS=() MEM_ROWS=()
measure() {
    local kind=$1 n=$2 port data log rss_fill rss_2s bytes r ms floor times=() rss_max rss_base
    local url ready_args fill_args
    data="$DATA_PARENT/stanza-bench-restart-data.$$.$kind.$n"
    rm -rf "$data"
    if [[ $kind == stanzad ]]; then
        fill_args=(bench stan --channel "$CHANNEL")
        ready_args=(bench ready --channel stanza.bench.ready)
    else
        fill_args=(bench js --stream "$STREAM")
        ready_args=(bench ready --js --subject "$STREAM")
    fi

    # 1. fill
    port=$(free_port)
    url="nats://127.0.0.1:$port"
    log="$WORK/$kind.$n.fill.log"
    server_cmd "$kind" "$port" "$data" "$log" false
    start_server "$kind" "$port" "$log" "${CMD[@]}"
    echo "restart.sh: $kind: filling with $n messages" >&2
    run_cli "$WORK/fill.out" -s "$url" "${fill_args[@]}" --phase pub --msgs "$n" --size "$SIZE" \
        --async-window "$FILL_WINDOW"
    rss_fill=$(rss_anon "$SERVER_PID")
    sleep 2
    rss_2s=$(rss_anon "$SERVER_PID")
    echo "restart.sh: $kind: filled at $(result_field "$WORK/fill.out" "${fill_args[1]}" pub_msgs_per_sec) msgs/s; RssAnon $rss_fill KiB, 2 s later $rss_2s KiB" >&2
    stop_server
    # Write the unsynced fill out now, or the first restart's first synced commit pays for it.
    find "$data" -type f -exec sync {} +
    bytes=$(store_bytes "$kind" "$data")

    # 2. restarts
    for ((r = 1; r <= RESTARTS; r++)); do
        port=$(free_port)
        url="nats://127.0.0.1:$port"
        log="$WORK/$kind.$n.restart.$r.log"
        server_cmd "$kind" "$port" "$data" "$log" true
        local t0=$EPOCHREALTIME
        spawn "$kind" "$log" "${CMD[@]}"
        run_cli "$WORK/ready.out" -s "$url" "${ready_args[@]}" --since "$t0" \
            --timeout-ms "$READY_TIMEOUT_MS"
        ms=$(result_field "$WORK/ready.out" ready ms)
        times+=("$ms")
        if ((r == RESTARTS)); then
            run_cli "$WORK/ready.out" -s "$url" "${ready_args[@]}" --timeout-ms "$READY_TIMEOUT_MS"
            floor=$(result_field "$WORK/ready.out" ready ms)
        fi
        stop_server
        echo "restart.sh: $kind N=$n restart $r/$RESTARTS: served after $ms ms" >&2
    done

    # 3. memory while one subscriber drains all N
    rss_max=- rss_base=-
    if ((n == DRAIN_N)); then
        port=$(free_port)
        url="nats://127.0.0.1:$port"
        log="$WORK/$kind.$n.drain.log"
        server_cmd "$kind" "$port" "$data" "$log" true
        start_server "$kind" "$port" "$log" "${CMD[@]}"
        rss_base=$(rss_anon "$SERVER_PID")
        rss_max=$rss_base
        "$STANZA" -s "$url" "${fill_args[@]}" --phase drain --msgs "$n" >"$WORK/drain.out" \
            2>"$WORK/drain.out.err" &
        BENCH_PID=$!
        while kill -0 "$BENCH_PID" 2>/dev/null; do
            local k
            k=$(rss_anon "$SERVER_PID")
            ((k > rss_max)) && rss_max=$k
            sleep 0.05
        done
        local rc=0
        wait "$BENCH_PID" || rc=$?
        BENCH_PID=
        ((rc == 0)) || { cat "$WORK/drain.out" "$WORK/drain.out.err" >&2; die "$kind drain of $n failed"; }
        echo "restart.sh: $kind: drain of $n at $(result_field "$WORK/drain.out" "${fill_args[1]}" drain_msgs_per_sec) msgs/s; RssAnon $rss_base KiB before, max $rss_max KiB" >&2
        stop_server
    fi
    rm -rf "$data"

    ROWS+=("| $kind | $n | **$(median_fmt %.3f "${times[@]}")** | $(join "${times[@]}") | $floor | $(awk -v b="$bytes" -v n="$n" 'BEGIN { printf "%.1f", b / n }') |")
    MEM_ROWS+=("| $kind | $n | $(mib "$rss_fill") | $(mib "$rss_2s") | $([[ $rss_max == - ]] && echo - || echo "$(mib "$rss_base") / $(mib "$rss_max")") |")
}

KINDS=(stanzad)
[[ $NATS_SERVER == none ]] || KINDS+=(js)
echo "restart.sh: N in $NS, $RESTARTS restarts each, $SIZE B messages; stores under $DATA_PARENT" >&2
for n in "${NLIST[@]}"; do
    for kind in "${KINDS[@]}"; do measure "$kind" "$n"; done
done

CPU=$(cpu_model)
FS=$(df -PT "$DATA_PARENT" 2>/dev/null | awk 'NR == 2 { print $2 " on " $1 }')
NS_VERSION=-
[[ $NATS_SERVER == none ]] || NS_VERSION=$("$NATS_SERVER" --version 2>&1 | head -n1)
cat <<EOF
### Restart time, store size and memory over N stored messages

- Machine: $(nproc) CPUs, ${CPU:-unknown CPU}, $(uname -sr); stores on ${FS:-unknown fs}
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Fill: N messages x $SIZE B, async publish window $FILL_WINDOW; stanzad with --file_sync=false
  --max_msgs 0 --max_bytes 0 (unsynced to save time), nats-server ($NS_VERSION) -js with its
  defaults; then SIGTERM
- Restart: spawn to the first successful connect + synchronous publish (\`stanza bench ready\`),
  $RESTARTS times per N, warm page cache; stanzad restarted with --file_sync=true. "floor" is
  the same command against a server that is already up (CLI process start, connect, one publish)

| server | N | served after, median ms | runs, ms | floor, ms | disk bytes / msg |
|---|---:|---:|---|---:|---:|
$(printf '%s\n' "${ROWS[@]}")

| server | N | RssAnon after fill, MiB | 2 s later, MiB | drain: before / max, MiB |
|---|---:|---:|---:|---:|
$(printf '%s\n' "${MEM_ROWS[@]}")
EOF
FAILED=0
