#!/usr/bin/env bash
# bench/counters.sh: what the per-subscription monitoring counters cost on the streaming path.
# Two stanzad builds run the same workload, alternating, RUNS rounds each: BEFORE (built from the
# parent of the commit that added the counters) and AFTER (built from a later commit), and
# optionally AFTER again with the HTTP monitor listening (MONITOR=1; it is never scraped).
#
# usage: BEFORE=/tmp/bmeas-base/stanzad AFTER=/tmp/bmeas-head/stanzad \
#        STANZA=/tmp/bmeas-head/stanza bench/counters.sh
#
# Each round starts every variant afresh (--store FILE --file_sync=true, new empty dir, free
# loopback port), in an order that rotates from round to round, and runs
#   stanza bench stan --phase pub   --msgs MSGS --subs SUBS   (MSGS messages, async, window W)
#   stanza bench stan --phase drain --msgs MSGS --subs SUBS   (SUBS subscribers each read all
#                                                              MSGS: SUBS x MSGS deliveries)
# Around each phase it reads the server's CPU time two ways: utime+stime from /proc/PID/stat
# (clock ticks, as bench/stan.sh does; it includes exited threads) and the sum of the first
# field of /proc/PID/task/*/schedstat (nanoseconds: finer than a 10 ms tick, which matters for
# a publish phase of a few tens of ms). It prints per-round lines on stderr and a markdown table
# of medians with AFTER vs BEFORE in % on stdout.
#
# Environment: BEFORE, AFTER, STANZA (required paths); RUNS (5), MSGS (20000), SUBS (100),
# SIZE (128), WINDOW (16384), MONITOR (0), DATA_PARENT (work dir under $TMPDIR), KEEP_LOGS.
set -euo pipefail

BEFORE=${BEFORE:?set BEFORE=path/to/stanzad (parent of the counters commit)}
AFTER=${AFTER:?set AFTER=path/to/stanzad (with the counters)}
STANZA=${STANZA:?set STANZA=path/to/stanza}
RUNS=${RUNS:-5}
MSGS=${MSGS:-20000}
SUBS=${SUBS:-100}
SIZE=${SIZE:-128}
WINDOW=${WINDOW:-16384}
MONITOR=${MONITOR:-0}
PORT_WAIT_SECS=10
STOP_WAIT_SECS=5

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

for v in RUNS MSGS SUBS SIZE WINDOW; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} < 1)); then echo "counters.sh: $v must be >= 1" >&2; exit 2; fi
done
for bin in "$BEFORE" "$AFTER" "$STANZA"; do
    [[ -x $bin ]] || { echo "counters.sh: $bin is not an executable" >&2; exit 2; }
done
CLK_TCK=$(getconf CLK_TCK)

bench_workdir counters
DATA_PARENT=${DATA_PARENT:-$WORK}
DATA_GLOB="stanza-bench-counters-data.$$.*"

# cpu_ns PID: on-CPU nanoseconds summed over the live threads.
cpu_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'
}

bench_phase() {
    local phase=$1 port=$2 name=$3
    run_stanza "$WORK/bench.out" "$WORK/bench.err" "bench stan --phase $phase" \
        -s "nats://127.0.0.1:$port" bench stan --phase "$phase" --channel "$name" \
        --subs "$SUBS" --msgs "$MSGS" --size "$SIZE" --async-window "$WINDOW"
    LINE=$(grep "^RESULT stan " "$WORK/bench.out") || die "no RESULT line from --phase $phase"
}
per_msg() { awk -v t="$1" -v scale="$2" -v n="$3" 'BEGIN { printf "%.4f", t * scale / n }'; }

NAMES=(before after)
BINS=("$BEFORE" "$AFTER")
if [[ $MONITOR == 1 ]]; then NAMES+=(after+m); BINS+=("$AFTER"); fi
NV=${#NAMES[@]}
declare -A R # R[metric,variant] = space-separated values
METRICS=(pub drain tick_pub tick_drain ns_pub ns_drain)

run_one() {
    local i=$1 run=$2 port data log args=() t0 t1 t2 n0 n1 n2
    port=$(free_port)
    data="$DATA_PARENT/stanza-bench-counters-data.$$.$run.$i"
    rm -rf "$data"
    log="$WORK/${NAMES[i]}.$run.log"
    [[ ${NAMES[i]} == after+m ]] && args=(-m "$(free_port)")
    start_server "${NAMES[i]}" "$port" "$log" "${BINS[i]}" -a 127.0.0.1 -p "$port" -l "$log" \
        --store FILE --dir "$data" --file_sync=true "${args[@]}"
    t0=$(cpu_ticks "$SERVER_PID") n0=$(cpu_ns "$SERVER_PID")
    bench_phase pub "$port" "bench.counters.$run"
    R[pub,$i]+=" $(field pub_msgs_per_sec)"
    t1=$(cpu_ticks "$SERVER_PID") n1=$(cpu_ns "$SERVER_PID")
    bench_phase drain "$port" "bench.counters.$run"
    R[drain,$i]+=" $(field drain_msgs_per_sec)"
    t2=$(cpu_ticks "$SERVER_PID") n2=$(cpu_ns "$SERVER_PID")
    local us_tick
    us_tick=$(awk -v hz="$CLK_TCK" 'BEGIN { print 1e6 / hz }')
    R[tick_pub,$i]+=" $(per_msg $((t1 - t0)) "$us_tick" "$MSGS")"
    R[tick_drain,$i]+=" $(per_msg $((t2 - t1)) "$us_tick" $((MSGS * SUBS)))"
    R[ns_pub,$i]+=" $(per_msg $((n1 - n0)) 0.001 "$MSGS")"
    R[ns_drain,$i]+=" $(per_msg $((n2 - n1)) 0.001 $((MSGS * SUBS)))"
    stop_server
    rm -rf "$data"
    local last=()
    for m in "${METRICS[@]}"; do last+=("$(awk '{ print $NF }' <<<"${R[$m,$i]}")"); done
    printf 'counters.sh: run %d/%d %-8s pub %8s msgs/s  drain %8s deliveries/s  CPU (stat) %s / %s us  (schedstat) %s / %s us per pub / delivery\n' \
        "$run" "$RUNS" "${NAMES[i]}" "${last[@]}" >&2
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
MONNOTE=
[[ $MONITOR == 1 ]] && MONNOTE="; after+m adds \`-m PORT\` (never scraped)"
echo "counters.sh: $RUNS rounds; $MSGS msgs x $SIZE B, window $WINDOW, then $SUBS subscribers drain;" \
    "variants: ${NAMES[*]}" >&2
for ((run = 1; run <= RUNS; run++)); do
    for ((k = 0; k < NV; k++)); do run_one $(((run - 1 + k) % NV)) "$run"; done
done

CPU=$(cpu_model)
row() {
    local label=$1 m=$2 fmt=$3 i vals med0 med cells="" runs=""
    for ((i = 0; i < NV; i++)); do
        read -ra vals <<<"${R[$m,$i]}"
        med=$(median "${vals[@]}")
        ((i == 0)) && med0=$med
        # shellcheck disable=SC2059
        cells+=" $(printf "$fmt" "$med") |"
        runs+=" $(join "${vals[@]}") |"
    done
    for ((i = 1; i < NV; i++)); do
        read -ra vals <<<"${R[$m,$i]}"
        med=$(median "${vals[@]}")
        cells+=" $(awk -v a="$med" -v b="$med0" 'BEGIN { if (b > 0) printf "%+.1f %%", (a / b - 1) * 100; else print "-" }') |"
    done
    echo "| $label |$cells$runs"
}
head="| metric |" sep="|---|"
for n in "${NAMES[@]}"; do head+=" $n |"; sep+="---:|"; done
for ((i = 1; i < NV; i++)); do head+=" ${NAMES[i]} vs before |"; sep+="---:|"; done
for n in "${NAMES[@]}"; do head+=" $n runs |"; sep+="---|"; done
cat <<EOF
### counters.sh: $MSGS msgs x $SIZE B, $SUBS subscribers, ${NAMES[*]}

- Machine: $(nproc) CPUs, ${CPU:-unknown CPU}, $(uname -sr); load average before: $LOAD0
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- before: \`$BEFORE\`; after: \`$AFTER\`; CLI: \`$STANZA\`; all with
  \`--store FILE --dir DIR --file_sync=true\`$MONNOTE; load average after: $(cut -d' ' -f1-3 /proc/loadavg)

$head
$sep
$(row "publish, msgs/s (acked)" pub "%.0f")
$(row "drain, deliveries/s" drain "%.0f")
$(row "server CPU per published msg, µs (stat ticks)" tick_pub "%.3f")
$(row "server CPU per delivery, µs (stat ticks)" tick_drain "%.4f")
$(row "server CPU per published msg, µs (schedstat)" ns_pub "%.3f")
$(row "server CPU per delivery, µs (schedstat)" ns_drain "%.4f")
EOF
FAILED=0
