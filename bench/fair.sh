#!/usr/bin/env bash
# bench/fair.sh: does one subscriber draining a deep backlog keep other clients waiting? Another
# client's PING round trips while a STAN subscriber with a wide window drains MSGS messages.
#
# usage: bench/fair.sh [BUILD_DIR]        (BUILD_DIR defaults to ./build)
#
# Compiles bench/fair_ping.c (cc, libnats). Each of RUNS rounds, for each server binary (STANZAD,
# and STANZAD_BASE if set, alternating which goes first): starts it on a free loopback port with
# a fresh store (--store FILE --dir DIR --max_msgs 0 --max_bytes 0: the default 1,000,000
# messages per channel would drop half the backlog), publishes MSGS messages of 128 B to one
# channel with `stanza bench stan --phase pub`, then runs fair_ping: one subscriber
# (DeliverAllAvailable, MaxInflight INFLIGHT, auto-ack) drains the channel while a raw TCP client
# sends PING and waits for its PONG, back to back, until the drain is complete. Records the drain
# rate, the PING round trips' count, p50, p99 and max, and the server's peak RSS (VmHWM), and
# prints a markdown table of the medians per binary. Servers are stopped by PID however the
# script exits.
#
# Environment overrides:
#   STANZAD=PATH        server under test (default BUILD_DIR/stanzad)
#   STANZAD_BASE=PATH   a second server to compare, e.g. an older build (default: none)
#   STANZA=PATH         CLI for the publish phase (default BUILD_DIR/stanza)
#   RUNS=N MSGS=N INFLIGHT=N   rounds (3), backlog (2000000), the drainer's MaxInflight (1000000)
#   KEEP_LOGS=1         keep the server logs (they are kept anyway when something fails)
set -euo pipefail

BUILD=${1:-./build}
STANZAD=${STANZAD:-$BUILD/stanzad}
STANZAD_BASE=${STANZAD_BASE:-}
STANZA=${STANZA:-$BUILD/stanza}
RUNS=${RUNS:-3}
MSGS=${MSGS:-2000000}
INFLIGHT=${INFLIGHT:-1000000}
SIZE=128
WINDOW=16384 # PubAcks outstanding while publishing (libnats' default MaxPubAcksInflight)
HERE=$(cd "$(dirname "$0")" && pwd)
PORT_WAIT_SECS=10
STOP_WAIT_SECS=5

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

check_counts RUNS MSGS INFLIGHT
SERVERS=("$STANZAD")
NAMES=(stanzad)
if [[ -n $STANZAD_BASE ]]; then
    SERVERS+=("$STANZAD_BASE")
    NAMES+=(base)
fi
require_executables "${SERVERS[@]}" "$STANZA"

bench_workdir fair
# The stores (MSGS messages each) stay out of WORK: cleanup removes them even when it keeps the logs.
DATA_PARENT=${TMPDIR:-/tmp}
DATA_GLOB="stanza-bench-fair-data.$$.*"

cc -O2 -Wall -Wextra -DNATS_HAS_STREAMING -o "$WORK/fair_ping" "$HERE/fair_ping.c" -lnats -lpthread ||
    die "cannot build fair_ping"

# peak_rss_mib PID : the process's peak resident set (VmHWM) in MiB.
peak_rss_mib() {
    awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" ||
        die "cannot read /proc/$1/status (is the server still running?)"
}

# Results by server index, each a space-separated list of run values.
COMPLETE=() RATE=() PINGS=() P50=() P99=() MAX=() OVER=() RSS=() SLOW=()
for i in "${!SERVERS[@]}"; do
    COMPLETE[i]="" RATE[i]="" PINGS[i]="" P50[i]="" P99[i]="" MAX[i]="" OVER[i]="" RSS[i]="" SLOW[i]=""
done

last() { awk '{ print $NF }' <<<"$1"; }

# run_one INDEX RUN : publish, then drain and ping, on a fresh server INDEX with a fresh store.
run_one() {
    local i=$1 run=$2 port data log
    port=$(free_port)
    data="$DATA_PARENT/stanza-bench-fair-data.$$.$run.$i"
    rm -rf "$data"
    log="$WORK/${NAMES[i]}.$run.log"
    start_server "${NAMES[i]}" "$port" "$log" "${SERVERS[i]}" -a 127.0.0.1 -p "$port" -l "$log" \
        --store FILE --dir "$data" --max_msgs 0 --max_bytes 0
    run_stanza "$WORK/pub.out" "$WORK/pub.err" "bench stan --phase pub" \
        -s "nats://127.0.0.1:$port" bench stan --phase pub --channel fair --msgs "$MSGS" \
        --size "$SIZE" --async-window "$WINDOW"
    # fair_ping through run_stanza: in the background, so cleanup can stop it.
    STANZA="$WORK/fair_ping" run_stanza "$WORK/fair.out" "$WORK/fair.err" fair_ping \
        "$port" fair "$MSGS" "$INFLIGHT"
    cat "$WORK/fair.err" >>"$WORK/fair.$run.${NAMES[i]}.err"
    LINE=$(grep '^RESULT fair ' "$WORK/fair.out") || die "no RESULT line from fair_ping"
    RSS[i]+=" $(peak_rss_mib "$SERVER_PID")"
    stop_server
    rm -rf "$data"
    COMPLETE[i]+=" $(field complete)" RATE[i]+=" $(field drain_msgs_per_sec)"
    PINGS[i]+=" $(field pings)" P50[i]+=" $(field ping_p50_ms)" P99[i]+=" $(field ping_p99_ms)"
    MAX[i]+=" $(field ping_max_ms)" OVER[i]+=" $(field pings_over_20ms)"
    SLOW[i]+=" $(field slow_consumer)"
    printf 'fair.sh: run %d/%d %-7s delivered %s/%s  drain %8s msgs/s  %6s PINGs  p50/p99/max %s/%s/%s ms (%s over 20 ms)  peak RSS %s MiB  redelivered %s  slow-consumer reports %s\n' \
        "$run" "$RUNS" "${NAMES[i]}" "$(field delivered)" "$MSGS" "$(last "${RATE[i]}")" \
        "$(last "${PINGS[i]}")" "$(last "${P50[i]}")" "$(last "${P99[i]}")" \
        "$(last "${MAX[i]}")" "$(last "${OVER[i]}")" "$(last "${RSS[i]}")" "$(field redelivered)" \
        "$(last "${SLOW[i]}")" >&2
}

echo "fair.sh: $RUNS rounds: $MSGS msgs x $SIZE B backlog, drainer MaxInflight $INFLIGHT;" \
    "servers: ${SERVERS[*]}" >&2
for ((run = 1; run <= RUNS; run++)); do
    # Alternate which server goes first, so that neither always meets the same machine state.
    order=("${!SERVERS[@]}")
    if ((run % 2 == 0 && ${#SERVERS[@]} == 2)); then order=(1 0); fi
    for i in "${order[@]}"; do run_one "$i" "$run"; done
done

# med ARRAY INDEX FORMAT : the median of the runs, formatted.
med() {
    local -n arr=$1
    local -a v
    read -ra v <<<"${arr[$2]}"
    # shellcheck disable=SC2059 # the format is ours
    printf "$3" "$(median "${v[@]}")"
}
# sum ARRAY INDEX : the sum of the runs.
sum() {
    local -n arr=$1
    awk '{ for (k = 1; k <= NF; k++) s += $k } END { print s + 0 }' <<<"${arr[$2]}"
}

ROWS=""
for i in "${!SERVERS[@]}"; do
    read -ra p99runs <<<"${P99[i]}"
    ROWS+="| ${NAMES[i]} | $(sum COMPLETE "$i")/$RUNS | $(med RATE "$i" %.0f) | $(med PINGS "$i" %.0f) |"
    ROWS+=" $(med P50 "$i" %.3f) | $(med P99 "$i" %.3f) | $(med MAX "$i" %.1f) | $(med OVER "$i" %.0f) |"
    ROWS+=" $(med RSS "$i" %.0f) | $(sum SLOW "$i") | $(join "${p99runs[@]}") |"$'\n'
done
SERVER_LINES="- stanzad: \`$STANZAD --store FILE --dir DIR --max_msgs 0 --max_bytes 0\`"
[[ -z $STANZAD_BASE ]] || SERVER_LINES+=$'\n'"- base: \`$STANZAD_BASE\`, the same arguments"

CPU=$(cpu_model)
cat <<EOF
### fair.sh: PING round trips while one subscriber drains $MSGS messages

- Machine: $(nproc) CPUs, ${CPU:-unknown CPU}, $(uname -sr); load average $(cut -d' ' -f1-3 /proc/loadavg)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
$SERVER_LINES
- Each run: a fresh server and store; $MSGS messages x $SIZE B published (\`stanza bench stan
  --phase pub\`), then one subscriber (DeliverAllAvailable, MaxInflight $INFLIGHT, auto-ack)
  drains the channel while a raw TCP client sends PING and waits for the PONG, back to back,
  until the drain is complete; $RUNS rounds, alternating which server goes first. Medians over
  the runs; "complete" counts runs where every message arrived and every PING was answered

| server | complete | drain msgs/s | PINGs | PING p50 ms | PING p99 ms | PING max ms | PINGs > 20 ms | server peak RSS MiB | slow-consumer reports | p99 ms of each run |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
$ROWS
EOF
FAILED=0
