#!/usr/bin/env bash
# bench/raft.sh: streaming publish on a 3-node clustered Stanza (--clustered, routed embedded
# NATS servers, Raft over loopback) next to a single node, in the same run (issue 11: clustered
# async publish >= 0.5 x single-node Stanza).
#
# usage: bench/raft.sh [BUILD_DIR]        (BUILD_DIR defaults to ./build)
#
# Each of RUNS rounds starts, afresh and on free loopback ports, alternating which goes first:
#   single     stanzad -a 127.0.0.1 -p P --store FILE --dir DIR
#   clustered  three stanzads --clustered --cluster_node_id nI --cluster_peers n0,n1,n2, each with
#              --cluster nats://127.0.0.1:CI --routes (all three) and -m MI; the script waits
#              until one serves as leader (its /streaming/serverz says role Leader with a server
#              id) and the bench connects to the leader's client port (so what is measured is
#              replication, not a route hop)
# and runs `stanza bench stan` one phase per invocation on a fresh store:
#   pub      MSGS messages published asynchronously (at most WINDOW acks outstanding)
#   latency  LAT_MSGS synchronous publishes: p50/p90/p99 publish-to-ack
# It prints a markdown table with both modes' medians and the ratio clustered / single.
# Servers are stopped by PID however the script exits.
#
# Environment overrides: STANZAD, STANZA (binaries), RUNS (3), MSGS (50000), SIZE (128),
# WINDOW (16384), LAT_MSGS (500), FILE_SYNC (true), DATA_PARENT (the work dir).
set -euo pipefail

BUILD=${1:-./build}
STANZAD=${STANZAD:-$BUILD/stanzad}
STANZA=${STANZA:-$BUILD/stanza}
RUNS=${RUNS:-3}
MSGS=${MSGS:-50000}
SIZE=${SIZE:-128}
WINDOW=${WINDOW:-16384}
LAT_MSGS=${LAT_MSGS:-500}
FILE_SYNC=${FILE_SYNC:-true}
PORT_WAIT_SECS=10
STOP_WAIT_SECS=10
LEADER_WAIT_SECS=20

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

check_counts RUNS MSGS SIZE WINDOW LAT_MSGS
require_executables "$STANZAD" "$STANZA"
command -v curl >/dev/null || die "curl is needed (to read /streaming/serverz)"
bench_workdir raft
DATA_PARENT=${DATA_PARENT:-$WORK}

NAMES=(single clustered)
PUB=("" "") P50=("" "") P90=("" "") P99=("" "")
SERVER_PIDS=()

bench_phase() {
    local phase=$1 port=$2 channel=$3
    run_stanza "$WORK/bench.out" "$WORK/bench.err" "bench stan --phase $phase" \
        -s "nats://127.0.0.1:$port" bench stan --phase "$phase" --channel "$channel" \
        --msgs "$MSGS" --size "$SIZE" --async-window "$WINDOW" --latency-msgs "$LAT_MSGS"
    LINE=$(grep '^RESULT stan ' "$WORK/bench.out") || die "no RESULT line from bench stan --phase $phase"
}

# start_single RUN: sets PORT.
start_single() {
    local data="$DATA_PARENT/data.$1.single" log="$WORK/single.$1.log"
    PORT=$(free_port)
    start_server stanzad "$PORT" "$log" "$STANZAD" -a 127.0.0.1 -p "$PORT" -l "$log" \
        --store FILE --dir "$data" --file_sync="$FILE_SYNC"
    SERVER_PIDS=("$SERVER_PID")
}

# start_cluster RUN: three nodes; sets PORT to the serving leader's client port.
start_cluster() {
    local run=$1 i routes="" log
    local -a cport port mport
    for i in 0 1 2; do
        cport[i]=$(free_port) port[i]=$(free_port) mport[i]=$(free_port)
        routes+="${routes:+,}nats://127.0.0.1:${cport[i]}"
    done
    SERVER_PIDS=()
    for i in 0 1 2; do
        log="$WORK/n$i.$run.log"
        start_server "stanzad n$i" "${port[i]}" "$log" "$STANZAD" -a 127.0.0.1 -p "${port[i]}" \
            -m "${mport[i]}" -l "$log" --store FILE --dir "$DATA_PARENT/data.$run.n$i" \
            --file_sync="$FILE_SYNC" --clustered --cluster_node_id "n$i" \
            --cluster_peers n0,n1,n2 --cluster "nats://127.0.0.1:${cport[i]}" --routes "$routes"
        SERVER_PIDS+=("$SERVER_PID")
    done
    local t
    for ((t = 0; t < LEADER_WAIT_SECS * 20; t++)); do
        for i in 0 1 2; do
            if curl -s "http://127.0.0.1:${mport[i]}/streaming/serverz" |
                grep -q '"role": "Leader"' &&
                ! curl -s "http://127.0.0.1:${mport[i]}/streaming/serverz" |
                grep -q '"server_id": ""'; then
                PORT=${port[i]}
                return 0
            fi
        done
        sleep 0.05
    done
    die "no serving leader within ${LEADER_WAIT_SECS}s (logs in $WORK)"
}

stop_all() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do SERVER_PID=$pid; stop_server; done
    SERVER_PIDS=()
}

last() { awk '{ print $NF }' <<<"$1"; }

run_one() {
    local i=$1 run=$2
    if ((i == 0)); then start_single "$run"; else start_cluster "$run"; fi
    bench_phase pub "$PORT" "bench.raft.$run"
    PUB[i]+=" $(field pub_msgs_per_sec)"
    bench_phase latency "$PORT" "bench.raft.$run"
    P50[i]+=" $(field sync_p50_us)" P90[i]+=" $(field sync_p90_us)" P99[i]+=" $(field sync_p99_us)"
    stop_all
    rm -rf "$DATA_PARENT"/data."$run".*
    printf 'raft.sh: run %d/%d %-9s pub %8s msgs/s  sync p50/p90/p99 %s/%s/%s us\n' "$run" "$RUNS" \
        "${NAMES[i]}" "$(last "${PUB[i]}")" "$(last "${P50[i]}")" "$(last "${P90[i]}")" \
        "$(last "${P99[i]}")" >&2
}

echo "raft.sh: $RUNS rounds of $MSGS msgs x $SIZE B, window $WINDOW, $LAT_MSGS sync publishes," \
    "--file_sync=$FILE_SYNC" >&2
for ((run = 1; run <= RUNS; run++)); do
    if ((run % 2)); then order=(0 1); else order=(1 0); fi
    for i in "${order[@]}"; do run_one "$i" "$run"; done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
med() {
    local -a v
    read -ra v <<<"$1"
    median "${v[@]}"
}
row() {
    local label=$1 a=$2 b=$3
    local m0 m1
    m0=$(med "$a") m1=$(med "$b")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$m0" "$m1" "$(ratio "$m1" "$m0")" \
        "$(join $a)" "$(join $b)"
}

cat <<EOF
### stanza bench stan: 3-node clustered Stanza against a single node, same run

- Machine: $(nproc) CPUs, $(cpu_model), $(uname -sr)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Workload: $MSGS messages x $SIZE B published async (window $WINDOW acks), then $LAT_MSGS
  synchronous publishes; $RUNS rounds, servers started afresh each round, alternating which mode
  goes first; --file_sync=$FILE_SYNC
- clustered: three stanzads on this machine (routed embedded NATS, Raft on loopback), the bench
  connected to the leader

| metric | single | clustered | clustered / single | single runs | clustered runs |
|---|---:|---:|---:|---|---|
EOF
row "publish, msgs/s (acked)" "${PUB[0]}" "${PUB[1]}"
row "sync publish p50, us" "${P50[0]}" "${P50[1]}"
row "sync publish p90, us" "${P90[0]}" "${P90[1]}"
row "sync publish p99, us" "${P99[0]}" "${P99[1]}"
FAILED=0
