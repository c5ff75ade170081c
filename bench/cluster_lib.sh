# shellcheck shell=bash
# bench/cluster_lib.sh: 3-node clusters on loopback for bench/raft.sh and bench/failover.sh, of
# stanzad (--clustered) or of nats-streaming-server (NSS, --clustered, see bench/nss-build.sh).
# Sourced after lib.sh:  . "$(dirname "$0")/cluster_lib.sh"
#
# Each node has its own embedded NATS server (client port, monitoring port, route port), routed
# to the other two; Raft runs over loopback (Stanza: libraft's TCP transport; NSS: over NATS).
#   stanza  stanzad -a 127.0.0.1 -p P -m M --store FILE --dir D --file_sync=FILE_SYNC
#           --clustered --cluster_node_id nI --cluster_peers n0,n1,n2 --cluster C --routes R
#   nss     nats-streaming-server -a 127.0.0.1 -p P -m M -cid test-cluster --store file --dir D
#           --clustered --cluster_node_id nI --cluster_peers n0,n1,n2 --cluster_log_path D.raft
#           --cluster_sync=NSS_CLUSTER_SYNC --cluster C --routes R [-c NSS_CONF]
#           (clustered NSS sets its file store's sync to --cluster_sync, false by default, and
#           then does not sync its Raft log (bolt) either: with defaults nothing is fsynced)
# What the functions read: STANZAD, NSS, FILE_SYNC, NSS_CLUSTER_SYNC, NSS_CONF (a config file
# for NSS, e.g. Raft timeouts; empty: none), STANZA_ARGS (more stanzad arguments, split at
# spaces; empty: none), STANZAD_ENV (VAR=value words stanzad runs with; empty: none),
# DATA_PARENT, WORK, LEADER_WAIT_SECS.
# What they set: CL_KIND, CL_RUN, CL_PORT[i], CL_MPORT[i], CL_URLS (client URLs, comma-separated),
# CL_PID[i] (empty: node not running), LEADER (index of the serving leader), PORT (its port).

# cluster_init KIND RUN : KIND stanza or nss; picks ports for a fresh cluster of round RUN.
cluster_init() {
    local i
    CL_KIND=$1 CL_RUN=$2 CL_ROUTES="" CL_URLS=""
    CL_PORT=() CL_MPORT=() CL_CPORT=() CL_PID=("" "" "")
    for i in 0 1 2; do
        CL_PORT[i]=$(free_port) CL_MPORT[i]=$(free_port) CL_CPORT[i]=$(free_port)
        CL_ROUTES+="${CL_ROUTES:+,}nats://127.0.0.1:${CL_CPORT[i]}"
        CL_URLS+="${CL_URLS:+,}nats://127.0.0.1:${CL_PORT[i]}"
    done
}

# cluster_start_node I : starts node I (again, on the same store after a kill) and waits until
# its client port listens.
cluster_start_node() {
    local i=$1 data="$DATA_PARENT/data.$CL_RUN.$CL_KIND.n$1" log
    log="$WORK/$CL_KIND.n$i.$CL_RUN.log"
    local -a common=(-a 127.0.0.1 -p "${CL_PORT[i]}" -m "${CL_MPORT[i]}" --clustered
        --cluster_node_id "n$i" --cluster_peers "n0,n1,n2"
        --cluster "nats://127.0.0.1:${CL_CPORT[i]}" --routes "$CL_ROUTES")
    if [[ $CL_KIND == stanza ]]; then
        # shellcheck disable=SC2086 # STANZA_ARGS and STANZAD_ENV hold several words
        start_server "stanzad n$i" "${CL_PORT[i]}" "$log" env ${STANZAD_ENV:-} "$STANZAD" \
            "${common[@]}" -l "$log" \
            --store FILE --dir "$data" --file_sync="$FILE_SYNC" ${STANZA_ARGS:-}
    else
        start_server "nss n$i" "${CL_PORT[i]}" "$log" "$NSS" "${common[@]}" -l "$log" \
            -cid test-cluster --store file --dir "$data" --cluster_log_path "$data.raft" \
            --cluster_sync="$NSS_CLUSTER_SYNC" ${NSS_CONF:+-c "$NSS_CONF"}
    fi
    CL_PID[i]=$SERVER_PID
}

# cluster_start KIND RUN : a fresh 3-node cluster; returns once a leader serves (LEADER, PORT).
cluster_start() {
    local i
    cluster_init "$1" "$2"
    for i in 0 1 2; do cluster_start_node "$i"; done
    cluster_wait_leader
}

# node_role I : the role in node I's /streaming/serverz, or nothing. A leader that does not
# serve yet (Stanza's server_id is empty until then) is "Starting".
node_role() {
    local z role
    z=$(curl -s --max-time 1 "http://127.0.0.1:${CL_MPORT[$1]}/streaming/serverz") || return 0
    role=$(sed -n 's/.*"role": *"\([A-Za-z]*\)".*/\1/p' <<<"$z" | head -n 1)
    [[ $role == Leader ]] && grep -q '"server_id": *""' <<<"$z" && role=Starting
    echo "$role"
}

# cluster_wait_leader : waits until a running node serves as leader; sets LEADER and PORT; dies
# after LEADER_WAIT_SECS.
cluster_wait_leader() {
    local t i
    for ((t = 0; t < LEADER_WAIT_SECS * 20; t++)); do
        for i in 0 1 2; do
            [[ -n ${CL_PID[i]} ]] || continue
            if [[ $(node_role "$i") == Leader ]]; then
                LEADER=$i PORT=${CL_PORT[i]}
                return 0
            fi
        done
        sleep 0.05
    done
    die "$CL_KIND: no serving leader within ${LEADER_WAIT_SECS}s (logs in $WORK)"
}

# cluster_wait_role I ROLE : waits until node I reports ROLE; dies after LEADER_WAIT_SECS.
cluster_wait_role() {
    local t
    for ((t = 0; t < LEADER_WAIT_SECS * 20; t++)); do
        [[ $(node_role "$1") == "$2" ]] && return 0
        sleep 0.05
    done
    die "$CL_KIND: node n$1 not $2 within ${LEADER_WAIT_SECS}s (logs in $WORK)"
}

# cluster_kill I : SIGKILL to node I, reaped.
cluster_kill() {
    local pid=${CL_PID[$1]}
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    SERVER_PID=$pid
    stop_server
    CL_PID[$1]=""
}

# cluster_stop : stops the running nodes (SIGTERM) and removes the cluster's stores.
cluster_stop() {
    local i
    for i in 0 1 2; do
        [[ -n ${CL_PID[i]} ]] || continue
        SERVER_PID=${CL_PID[i]}
        stop_server
        CL_PID[i]=""
    done
    rm -rf "$DATA_PARENT/data.$CL_RUN.$CL_KIND".*
}
