#!/usr/bin/env bash
# bench/failover.sh: leader failover of a 3-node clustered Stanza, and with NSS=PATH of a 3-node
# clustered nats-streaming-server (NSS), on this machine (issue 11: leader killed -> first PubAck
# from the new leader, median <= 2 s with default settings; NSS for comparison).
#
# usage: bench/failover.sh [BUILD_DIR]        (BUILD_DIR defaults to ./build)
#   with NSS: bench/nss-build.sh && NSS=/work/nss-build/bin/nats-streaming-server \
#             bench/failover.sh BUILD_DIR
#
# Modes, each on one fresh cluster (bench/cluster_lib.sh has the command lines):
#   stanza     three stanzads --clustered, Stanza's defaults (election timeout 800 ms, heartbeat
#              100 ms)
#   stanza-300ms  the same with --cluster_raft_election_timeout 300ms
#   nss        three NSS nodes --clustered, NSS's defaults (Raft heartbeat and election timeouts
#              2 s, leader lease 1 s, commit 100 ms)
#   nss-300ms  the same with a config file setting raft_heartbeat_timeout, raft_election_timeout
#              and raft_lease_timeout to 300ms (NSS has no command-line flags for them)
# Each of KILLS times per mode: find the serving leader; compile-once client bench/failover_pub.c
# connects with the three client URLs, the leader's first (so the kill also drops its connection)
# and publishes synchronously in a loop (PubAckWait ACK_WAIT_MS: the resolution); after it has
# published for WARM_SECS, SIGKILL to the leader; failover = time of the first PubAck after the
# kill - time of the kill (both CLOCK_REALTIME). Then the client is stopped, the killed node
# restarted on its store and waited for until it follows again, before the next kill.
# Prints a markdown table: per mode the median, min and max over the kills, and each kill.
#
# Environment overrides: STANZAD, NSS (unset: Stanza only), KILLS (5), ACK_WAIT_MS (50),
# WARM_SECS (1), FILE_SYNC (true), NSS_CLUSTER_SYNC (false), DATA_PARENT (the work dir).
set -euo pipefail

BUILD=${1:-./build}
STANZAD=${STANZAD:-$BUILD/stanzad}
NSS=${NSS:-}
KILLS=${KILLS:-5}
ACK_WAIT_MS=${ACK_WAIT_MS:-50}
WARM_SECS=${WARM_SECS:-1}
FILE_SYNC=${FILE_SYNC:-true}
NSS_CLUSTER_SYNC=${NSS_CLUSTER_SYNC:-false}
NSS_CONF=
STANZA_ARGS=
PORT_WAIT_SECS=20
STOP_WAIT_SECS=10
LEADER_WAIT_SECS=60
FAILOVER_WAIT_SECS=60
HERE=$(dirname "$0")

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$HERE/lib.sh"
# shellcheck source=cluster_lib.sh source-path=SCRIPTDIR
. "$HERE/cluster_lib.sh"

check_counts KILLS ACK_WAIT_MS WARM_SECS
require_executables "$STANZAD" ${NSS:+"$NSS"}
command -v curl >/dev/null || die "curl is needed (to read /streaming/serverz)"
bench_workdir failover
DATA_PARENT=${DATA_PARENT:-$WORK}
DATA_GLOB='data.*'
cc -O2 -Wall -Wextra -DNATS_HAS_STREAMING -o "$WORK/failover_pub" "$HERE/failover_pub.c" \
    -lnats -lpthread || die "cannot build failover_pub"
cat >"$WORK/nss-300ms.conf" <<EOF
streaming {
  cluster {
    raft_heartbeat_timeout: "300ms"
    raft_election_timeout: "300ms"
    raft_lease_timeout: "300ms"
  }
}
EOF

# start_client: failover_pub against the cluster, the leader's URL first; waits until it has
# published for WARM_SECS. Sets BENCH_PID and OUT.
start_client() {
    local urls="nats://127.0.0.1:$PORT" i t
    for i in 0 1 2; do ((i == LEADER)) || urls+=",nats://127.0.0.1:${CL_PORT[i]}"; done
    OUT="$WORK/client.$CL_KIND.$KILL.out"
    "$WORK/failover_pub" "$urls" test-cluster "bench.failover" "$ACK_WAIT_MS" >"$OUT" 2>&1 &
    BENCH_PID=$!
    for ((t = 0; t < PORT_WAIT_SECS * 20; t++)); do
        grep -q '^READY' "$OUT" && { sleep "$WARM_SECS"; return 0; }
        kill -0 "$BENCH_PID" 2>/dev/null || { cat "$OUT" >&2; die "failover_pub exited"; }
        sleep 0.05
    done
    die "failover_pub did not publish within ${PORT_WAIT_SECS}s (see $OUT)"
}

# kill_leader: SIGKILL to the leader; sets MS to the time until the client's first PubAck after it.
kill_leader() {
    local killed=$LEADER t0 t line
    t0=$(date +%s%N)
    cluster_kill "$killed"
    for ((t = 0; t < FAILOVER_WAIT_SECS * 100; t++)); do
        line=$(awk -v t0="$t0" '$1 == "GAP" && $3 > t0 { print $3; exit }' "$OUT")
        if [[ -n $line ]]; then
            MS=$(((line - t0) / 1000000))
            break
        fi
        sleep 0.01
    done
    [[ -n $line ]] || die "$CL_KIND: no PubAck within ${FAILOVER_WAIT_SECS}s of the kill (see $OUT)"
    stop_pid "$BENCH_PID"
    BENCH_PID=
    cluster_start_node "$killed"
    cluster_wait_role "$killed" Follower
    cluster_wait_leader
}

# run_mode NAME KIND ARGS : KILLS kills on a fresh cluster; appends the times to ROWS. ARGS: for
# stanza more stanzad arguments, for nss a config file (or nothing).
run_mode() {
    local name=$1 times=""
    if [[ $2 == stanza ]]; then STANZA_ARGS=$3 NSS_CONF=""; else STANZA_ARGS="" NSS_CONF=$3; fi
    cluster_start "$2" "$name"
    for ((KILL = 1; KILL <= KILLS; KILL++)); do
        start_client
        kill_leader
        times+=" $MS"
        echo "failover.sh: $name kill $KILL/$KILLS: ${MS} ms" >&2
    done
    cluster_stop
    local -a v
    read -ra v <<<"$times"
    ROWS+="| $name | $(median_fmt %.0f "${v[@]}") | $(printf '%s\n' "${v[@]}" | sort -n | head -n 1) |"
    ROWS+=" $(printf '%s\n' "${v[@]}" | sort -n | tail -n 1) | $(join "${v[@]}") |"$'\n'
}

ROWS=""
run_mode stanza stanza ""
run_mode stanza-300ms stanza "--cluster_raft_election_timeout 300ms"
if [[ -n $NSS ]]; then
    run_mode nss nss ""
    run_mode nss-300ms nss "$WORK/nss-300ms.conf"
fi

cat <<EOF
### Failover: leader SIGKILLed -> first PubAck from the new leader

- Machine: $(nproc) CPUs, $(cpu_model), $(uname -sr)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- $KILLS kills per mode, one fresh 3-node cluster per mode, the killed node restarted between
  kills; a libnats client publishing synchronously (PubAckWait $ACK_WAIT_MS ms), connected to
  the leader; --file_sync=$FILE_SYNC${NSS:+; NSS: $("$NSS" --version 2>&1 | head -n 1), --cluster_sync=$NSS_CLUSTER_SYNC}

| mode | median, ms | min | max | kills, ms |
|---|---:|---:|---:|---|
$ROWS
EOF
FAILED=0
