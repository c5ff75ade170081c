#!/usr/bin/env bash
# bench/raft.sh: streaming publish on a 3-node clustered Stanza (--clustered, routed embedded
# NATS servers, Raft over loopback) next to a single node, in the same run (issue 11: clustered
# async publish >= 0.5 x single-node Stanza), and with NSS=PATH a 3-node clustered
# nats-streaming-server beside them (issue 11: clustered Stanza >= 2 x clustered NSS).
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
#   nss-clustered  only with NSS=path/to/nats-streaming-server (bench/nss-build.sh builds one):
#              three NSS nodes the same way (bench/cluster_lib.sh has both command lines), NSS's
#              file store, --cluster_sync=NSS_CLUSTER_SYNC (default false, NSS's default: then
#              clustered NSS fsyncs neither its store nor its Raft log), the bench on the leader
# and runs `stanza bench stan` one phase per invocation on a fresh store:
#   pub      MSGS messages published asynchronously (at most WINDOW acks outstanding)
#   latency  LAT_MSGS synchronous publishes: p50/p90/p99 publish-to-ack
# It prints a markdown table with the modes' medians, the ratio clustered / single and, with NSS,
# clustered Stanza / clustered NSS. Rounds rotate which mode goes first. A row "servers' CPU"
# adds up the CPU time (user + system, from /proc/PID/stat) the mode's server processes used
# during the pub phase, per 100,000 messages: one process for single, the three nodes for
# clustered (the client's is the same in both modes).
# Servers are stopped by PID however the script exits.
#
# stanzad runs in both modes with STANZAD_ENV in its environment, by default
# GLIBC_TUNABLES=glibc.malloc.hugetlb=1 as deploy/'s systemd unit and image run it (huge pages for
# the heap: docs/operations.md); STANZAD_ENV= runs it without. The client's environment is left
# as it is.
#
# Environment overrides: STANZAD, STANZA (binaries), RUNS (3), MSGS (50000), SIZE (128),
# WINDOW (16384), LAT_MSGS (500), FILE_SYNC (true), DATA_PARENT (the work dir), NSS (unset: no
# NSS mode), NSS_CLUSTER_SYNC (false), NSS_CONF (an NSS config file, e.g. Raft timeouts; none).
#
# The comparison with NSS, re-run in one command:
#   bench/nss-build.sh && NSS=/work/nss-build/bin/nats-streaming-server RUNS=5 bench/raft.sh BUILD
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
NSS=${NSS:-}
NSS_CLUSTER_SYNC=${NSS_CLUSTER_SYNC:-false}
NSS_CONF=${NSS_CONF:-}
STANZAD_ENV=${STANZAD_ENV-GLIBC_TUNABLES=glibc.malloc.hugetlb=1}

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=cluster_lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/cluster_lib.sh"

check_counts RUNS MSGS SIZE WINDOW LAT_MSGS
require_executables "$STANZAD" "$STANZA" ${NSS:+"$NSS"}
command -v curl >/dev/null || die "curl is needed (to read /streaming/serverz)"
bench_workdir raft
DATA_PARENT=${DATA_PARENT:-$WORK}

NAMES=(single clustered)
[[ -n $NSS ]] && NAMES+=(nss-clustered)
PUB=("" "" "") P50=("" "" "") P90=("" "" "") P99=("" "" "") CPU=("" "" "")
TICKS=$(getconf CLK_TCK)
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
    # shellcheck disable=SC2086 # STANZAD_ENV holds several words
    start_server stanzad "$PORT" "$log" env ${STANZAD_ENV:-} "$STANZAD" -a 127.0.0.1 -p "$PORT" \
        -l "$log" --store FILE --dir "$data" --file_sync="$FILE_SYNC"
    SERVER_PIDS=("$SERVER_PID")
}

# start_cluster KIND RUN: three nodes (KIND stanza or nss); sets PORT to the serving leader's
# client port.
start_cluster() {
    cluster_start "$1" "$2"
    SERVER_PIDS=("${CL_PID[@]}")
}

stop_all() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do SERVER_PID=$pid; stop_server; done
    SERVER_PIDS=()
}

last() { awk '{ print $NF }' <<<"$1"; }

# servers_ticks: the CPU ticks (user + system) the running servers have used so far.
servers_ticks() {
    local pid total=0 t
    for pid in "${SERVER_PIDS[@]}"; do
        t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) || t=0
        total=$((total + t))
    done
    echo "$total"
}

run_one() {
    local i=$1 run=$2
    case $i in
    0) start_single "$run" ;;
    1) start_cluster stanza "$run" ;;
    *) start_cluster nss "$run" ;;
    esac
    local t0
    t0=$(servers_ticks)
    bench_phase pub "$PORT" "bench.raft.$run"
    PUB[i]+=" $(field pub_msgs_per_sec)"
    CPU[i]+=" $(awk -v t="$(($(servers_ticks) - t0))" -v hz="$TICKS" -v n="$MSGS" \
        'BEGIN { printf "%.0f", t * 1000 / hz * 100000 / n }')"
    bench_phase latency "$PORT" "bench.raft.$run"
    P50[i]+=" $(field sync_p50_us)" P90[i]+=" $(field sync_p90_us)" P99[i]+=" $(field sync_p99_us)"
    stop_all
    rm -rf "$DATA_PARENT"/data."$run".*
    printf 'raft.sh: run %d/%d %-13s pub %8s msgs/s  sync p50/p90/p99 %s/%s/%s us\n' "$run" "$RUNS" \
        "${NAMES[i]}" "$(last "${PUB[i]}")" "$(last "${P50[i]}")" "$(last "${P90[i]}")" \
        "$(last "${P99[i]}")" >&2
}

echo "raft.sh: $RUNS rounds of $MSGS msgs x $SIZE B, window $WINDOW, $LAT_MSGS sync publishes," \
    "--file_sync=$FILE_SYNC${NSS:+, NSS --cluster_sync=$NSS_CLUSTER_SYNC${NSS_CONF:+ -c $NSS_CONF}}" >&2
MODES=${#NAMES[@]}
for ((run = 1; run <= RUNS; run++)); do
    order=()
    for ((i = 0; i < MODES; i++)); do order+=($(((i + run - 1) % MODES))); done
    for i in "${order[@]}"; do run_one "$i" "$run"; done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
med() {
    local -a v
    read -ra v <<<"$1"
    median_fmt %.0f "${v[@]}"
}
# row LABEL VALUES_SINGLE VALUES_CLUSTERED [VALUES_NSS]
# shellcheck disable=SC2086 # the values are split into join's arguments
row() {
    local label=$1 a=$2 b=$3 c=${4:-}
    local m0 m1 m2
    m0=$(med "$a") m1=$(med "$b")
    if [[ -z $NSS ]]; then
        printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$m0" "$m1" "$(ratio "$m1" "$m0")" \
            "$(join $a)" "$(join $b)"
        return
    fi
    m2=$(med "$c")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$m0" "$m1" "$m2" \
        "$(ratio "$m1" "$m0")" "$(ratio "$m1" "$m2")" "$(join $a)" "$(join $b)" "$(join $c)"
}

if [[ -z $NSS ]]; then
    TITLE="3-node clustered Stanza against a single node, same run"
    HEAD="| metric | single | clustered | clustered / single | single runs | clustered runs |
|---|---:|---:|---:|---|---|"
else
    TITLE="3-node clustered Stanza against a single node and 3-node clustered NSS, same run"
    HEAD="| metric | single | clustered | NSS clustered | clustered / single | clustered / NSS | single runs | clustered runs | NSS runs |
|---|---:|---:|---:|---:|---:|---|---|---|"
fi
cat <<EOF
### stanza bench stan: $TITLE

- Machine: $(nproc) CPUs, $(cpu_model), $(uname -sr)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- stanzad's environment: ${STANZAD_ENV:-(nothing added)}
- Workload: $MSGS messages x $SIZE B published async (window $WINDOW acks), then $LAT_MSGS
  synchronous publishes; $RUNS rounds, servers started afresh each round, rotating which mode
  goes first; --file_sync=$FILE_SYNC
- clustered: three stanzads on this machine (routed embedded NATS, Raft on loopback), the bench
  connected to the leader
EOF
if [[ -n $NSS ]]; then
    cat <<EOF
- NSS clustered: three nodes of $("$NSS" --version 2>&1 | head -n 1), NSS's file store,
  --cluster_sync=$NSS_CLUSTER_SYNC${NSS_CONF:+, -c $NSS_CONF}, the bench connected to the leader
EOF
fi
printf '\n%s\n' "$HEAD"
row "publish, msgs/s (acked)" "${PUB[0]}" "${PUB[1]}" "${PUB[2]}"
row "sync publish p50, us" "${P50[0]}" "${P50[1]}" "${P50[2]}"
row "sync publish p90, us" "${P90[0]}" "${P90[1]}" "${P90[2]}"
row "sync publish p99, us" "${P99[0]}" "${P99[1]}" "${P99[2]}"
row "servers' CPU, ms per 100k msgs (pub)" "${CPU[0]}" "${CPU[1]}" "${CPU[2]}"
FAILED=0
