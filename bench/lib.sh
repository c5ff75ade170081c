# shellcheck shell=bash
# bench/lib.sh: helpers shared by the bench scripts, which source it with
#   . "$(dirname "$0")/lib.sh"
# It defines functions and ME (the script's file name, the prefix of its messages) and runs
# nothing else. What the functions read from the script:
#   PORT_WAIT_SECS   wait_port, start_server: how long a server may take to listen
#   STOP_WAIT_SECS   stop_pid: how long a process may take to exit after SIGTERM
#   STANZA           run_stanza: the CLI
#   LINE             field: a RESULT line
#   DATA_PARENT, DATA_GLOB  cleanup: store dirs outside WORK to remove (DATA_GLOB unset: none)
#   CLK_TCK          us_per_msg: clock ticks per second (getconf CLK_TCK)
# and what they set: WORK PIDS BENCH_PID FAILED (bench_workdir), SERVER_PID (spawn).

ME=${0##*/}

die() {
    echo "$ME: $*" >&2
    exit 1
}

# check_counts VAR... : each VAR must hold a whole number >= 1 (SIZE: >= 0); exits 2 otherwise.
check_counts() {
    local v min
    for v in "$@"; do
        min=1
        [[ $v == SIZE ]] && min=0
        if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} < min)); then
            echo "$ME: $v must be a whole number >= $min, got '${!v}'" >&2
            exit 2
        fi
    done
}

# require_executables BIN... : exits 2 unless each BIN is an executable.
require_executables() {
    local bin
    for bin in "$@"; do
        [[ -x $bin ]] || { echo "$ME: $bin is not an executable (build first, or see the overrides at the top of $0)" >&2; exit 2; }
    done
}

# bench_workdir NAME : makes the work dir WORK ($TMPDIR/stanza-bench-NAME.XXXXXX), clears PIDS and
# BENCH_PID, sets FAILED=1 (the script clears it at the very end; it decides whether the logs are
# worth keeping) and has cleanup run however the script exits.
bench_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/stanza-bench-$1.XXXXXX")
    PIDS=()
    BENCH_PID=
    FAILED=1
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# stop_pid PID : SIGTERM, then SIGKILL after STOP_WAIT_SECS; reaps it.
stop_pid() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || return 0
    for ((i = 0; i < STOP_WAIT_SECS * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    echo "$ME: PID $pid ignored SIGTERM for ${STOP_WAIT_SECS}s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# cleanup: stops the CLI and the servers, keeps WORK if something failed (or KEEP_LOGS=1) and
# removes it otherwise, and removes the store dirs DATA_PARENT/DATA_GLOB when they lie outside
# WORK. A script with other needs defines its own cleanup after sourcing this file.
cleanup() {
    local pid
    [[ -n $BENCH_PID ]] && stop_pid "$BENCH_PID"
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ $FAILED == 1 || ${KEEP_LOGS:-0} == 1 ]]; then
        echo "$ME: logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    # Store dirs outside WORK are ours too (made by the script, one per run).
    # shellcheck disable=SC2086 # DATA_GLOB is a glob
    [[ -z ${DATA_GLOB:-} || $DATA_PARENT == "$WORK" ]] || rm -rf "${DATA_PARENT:?}"/$DATA_GLOB
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A random unprivileged port nobody is listening on. Another process could still take it before
# our server binds it; start_server then fails loudly rather than measuring the wrong thing.
# Ports in the kernel's ephemeral range are skipped: there a client socket's TIME-WAIT (tens of
# thousands when tests churn connections) makes the server's bind fail although nothing listens.
free_port() {
    local p i lo=32768 hi=60999
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    for ((i = 0; i < 1000; i++)); do
        p=$((20000 + RANDOM % 40000))
        ((p < lo || p > hi)) || continue
        port_open "$p" || { echo "$p"; return 0; }
    done
    die "no free port found"
}

# spawn NAME LOG CMD... : starts CMD in the background (output to LOG.out) without waiting for
# it; records its PID. Sets SERVER_PID.
spawn() {
    local log=$2
    shift 2
    "$@" >"$log.out" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
}

# wait_port NAME PORT LOG [CMD...] : waits until PORT accepts connections; dies, showing the end
# of LOG.out and LOG, if SERVER_PID exits first or PORT_WAIT_SECS pass.
wait_port() {
    local name=$1 port=$2 log=$3 i
    shift 3
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

# start_server NAME PORT LOG CMD... : starts CMD in the background, records its PID and waits
# until PORT accepts connections. Sets SERVER_PID.
start_server() {
    local name=$1 port=$2 log=$3
    shift 3
    spawn "$name" "$log" "$@"
    wait_port "$name" "$port" "$log" "$@"
}

# stop_server: stops SERVER_PID and forgets it.
stop_server() {
    local pid keep=()
    stop_pid "$SERVER_PID"
    for pid in "${PIDS[@]}"; do [[ $pid == "$SERVER_PID" ]] || keep+=("$pid"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# run_stanza OUT ERR WHAT ARGS... : `stanza ARGS` with stdout to OUT and stderr to ERR; dies
# with "WHAT failed" if it fails. The client runs in the background and we `wait` for it, so a
# SIGINT/SIGTERM to the script is handled at once (bash defers traps while a foreground child
# runs) and cleanup can stop it.
run_stanza() {
    local out=$1 err=$2 what=$3 rc=0
    shift 3
    "$STANZA" "$@" >"$out" 2>"$err" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=
    if ((rc != 0)); then
        cat "$out" "$err" >&2
        die "$what failed (exit $rc)"
    fi
}

# field NAME : the value of NAME=... in LINE.
field() {
    local v
    v=$(sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$LINE")
    [[ -n $v ]] || die "no $1 in: $LINE"
    echo "$v"
}

# Server CPU time so far (utime + stime) in clock ticks. The command name (field 2) may hold
# spaces, so fields are counted after its closing parenthesis: 14 and 15 become 12 and 13.
cpu_ticks() {
    local stat rest
    stat=$(<"/proc/$1/stat") || die "cannot read /proc/$1/stat (is the server still running?)"
    rest=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$rest"
}

# us_per_msg TICKS MSGS : CPU microseconds per message, for TICKS clock ticks over MSGS messages.
us_per_msg() {
    awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }'
}

# median_fmt FMT V... : the median of the values; of an even count, the mean of the middle two
# printed with FMT.
median_fmt() {
    local fmt=$1
    shift
    printf '%s\n' "$@" | sort -g | awk -v fmt="$fmt\n" '{v[NR] = $1} END {
        if (NR % 2) print v[(NR + 1) / 2]; else printf fmt, (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# median V... : the median of the values.
median() {
    median_fmt %.6f "$@"
}

# join V... : the values, comma-separated.
join() {
    local IFS=,
    local s="$*"
    echo "${s//,/, }"
}

# cpu_model : the CPU's model name from /proc/cpuinfo.
cpu_model() {
    grep -m1 -E '^(model name|Model|cpu model)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//'
}
