#!/usr/bin/env bash
# bench/scrape.sh: how long the monitoring endpoints take with many subscriptions.
#
# usage: bench/scrape.sh [BUILD_DIR]        (BUILD_DIR defaults to ./build; STANZAD=PATH overrides)
#
# Compiles bench/scrape_fill.c (cc, libnats), starts stanzad on free loopback ports
# (--store FILE, fresh dir, -m HTTP_PORT), and lets scrape_fill put SUBS subscriptions on it from
# CONNS connections over CHANNELS channels (a quarter each plain, durable, queue group, durable
# queue group; manual ack, MaxInflight INFLIGHT, never acked), then publish MSGS messages of
# 128 B to every channel, so that every subscription has messages in flight and a backlog.
# With everything held open and quiet, it GETs each endpoint REPS times with curl, one request at
# a time on a new connection, and records curl's time_total and size_download, plus the CPU time
# of stanzad's loop thread (the first field of /proc/PID/task/PID/schedstat) over the REPS
# requests. The loop serves the HTTP request itself, so the time a request keeps it busy is at
# most time_total, and at least the loop thread's CPU time per request.
#
# Environment: STANZAD, CHANNELS (100), CONNS (50), SUBS (10000), MSGS (50 per channel),
# INFLIGHT (10), REPS (20), ENDPOINTS ("/metrics /streaming/channelsz?subs=1
# /streaming/clientsz?subs=1"), PERF=1 (then also `perf record --call-graph dwarf` of the loop
# thread during one more round of REPS GETs per endpoint; the reports stay in the work dir),
# KEEP_LOGS=1.
set -euo pipefail

BUILD=${1:-./build}
STANZAD=${STANZAD:-$BUILD/stanzad}
CHANNELS=${CHANNELS:-100}
CONNS=${CONNS:-50}
SUBS=${SUBS:-10000}
MSGS=${MSGS:-50}
INFLIGHT=${INFLIGHT:-10}
REPS=${REPS:-20}
ENDPOINTS=${ENDPOINTS:-/metrics /streaming/channelsz?subs=1 /streaming/clientsz?subs=1}
PERF=${PERF:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
PORT_WAIT_SECS=10
STOP_WAIT_SECS=5

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

[[ -x $STANZAD ]] || die "$STANZAD is not an executable (build first, or set STANZAD)"
command -v curl >/dev/null || die "curl is needed"

bench_workdir scrape
SERVER_PID='' FILL_PID=''
# Not lib.sh's cleanup: scrape_fill goes first (once its stdin closes), and PERF=1 keeps the logs.
cleanup() {
    exec 4>&- 2>/dev/null || true
    local pid
    for pid in $FILL_PID $SERVER_PID; do stop_pid "$pid"; done
    if [[ $FAILED == 1 || ${KEEP_LOGS:-0} == 1 || $PERF == 1 ]]; then
        rm -rf "$WORK/data"
        echo "scrape.sh: logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

loop_ns() { awk '{ print $1 }' "/proc/$SERVER_PID/task/$SERVER_PID/schedstat"; }

cc -O2 -DNATS_HAS_STREAMING -o "$WORK/scrape_fill" "$HERE/scrape_fill.c" -lnats -lpthread || die "cannot build scrape_fill"

PORT=$(free_port)
HTTP=$(free_port)
start_server stanzad "$PORT" "$WORK/stanzad.log" "$STANZAD" -a 127.0.0.1 -p "$PORT" -m "$HTTP" \
    -l "$WORK/stanzad.log" --store FILE --dir "$WORK/data" --max_channels "$((CHANNELS + 1))" \
    --max_subs 0
wait_port stanzad "$HTTP" "$WORK/stanzad.log" "$STANZAD"

mkfifo "$WORK/hold"
T0=$EPOCHREALTIME
"$WORK/scrape_fill" "nats://127.0.0.1:$PORT" "$CHANNELS" "$CONNS" "$SUBS" "$MSGS" "$INFLIGHT" \
    <"$WORK/hold" >"$WORK/fill.out" 2>"$WORK/fill.err" &
FILL_PID=$!
exec 4>"$WORK/hold" # scrape_fill holds everything open until this closes
until grep -q '^READY' "$WORK/fill.out"; do
    kill -0 "$FILL_PID" 2>/dev/null || die "scrape_fill failed: $(cat "$WORK/fill.err")"
    sleep 0.2
done
READY=$(grep '^READY' "$WORK/fill.out")
echo "scrape.sh: $READY after $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s" >&2

BASE="http://127.0.0.1:$HTTP"
# A sanity check of what the scrape shows.
curl -sf "$BASE/metrics" >"$WORK/metrics.txt" || die "GET /metrics failed"
NSERIES=$(grep -c '^stanza_subscription_pending_messages{' "$WORK/metrics.txt" || true)
NONZERO_BACKLOG=$(grep '^stanza_subscription_backlog_messages{' "$WORK/metrics.txt" | awk '$NF > 0' | wc -l)
NONZERO_INFLIGHT=$(grep '^stanza_subscription_inflight_messages{' "$WORK/metrics.txt" | awk '$NF > 0' | wc -l)
NLINES=$(wc -l <"$WORK/metrics.txt")
curl -sf "$BASE/streaming/serverz" >"$WORK/serverz.json" || true
echo "scrape.sh: /metrics: $NLINES lines, $NSERIES subscription series ($NONZERO_BACKLOG with a backlog, $NONZERO_INFLIGHT with messages in flight)" >&2

ROWS=""
for ep in $ENDPOINTS; do
    times=() sizes=()
    n0=$(loop_ns)
    for ((r = 0; r < REPS; r++)); do
        read -r t s code < <(curl -s -o /dev/null -w '%{time_total} %{size_download} %{http_code}\n' "$BASE$ep")
        [[ $code == 200 ]] || die "GET $ep: HTTP $code"
        times+=("$(awk -v t="$t" 'BEGIN { printf "%.2f", t * 1000 }')")
        sizes+=("$s")
    done
    n1=$(loop_ns)
    med=$(median "${times[@]}")
    max=$(printf '%s\n' "${times[@]}" | sort -g | tail -n1)
    min=$(printf '%s\n' "${times[@]}" | sort -g | head -n1)
    cpu=$(awk -v a="$n0" -v b="$n1" -v n="$REPS" 'BEGIN { printf "%.2f", (b - a) / n / 1e6 }')
    size=$(median "${sizes[@]}")
    ROWS+="| \`GET $ep\` | $(printf '%.2f' "$med") | $min | $max | $cpu | $(printf '%.0f' "$size") | $(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }') |"$'\n'
    echo "scrape.sh: $ep median $med ms, min $min, max $max; loop CPU $cpu ms/request; $size B; runs: ${times[*]}" >&2
done

if [[ $PERF == 1 ]]; then
    command -v perf >/dev/null || die "PERF=1 but no perf"
    k=0
    for ep in $ENDPOINTS; do
        k=$((k + 1))
        perf record --call-graph dwarf,16384 -F 2000 -o "$WORK/perf.$k.data" -t "$SERVER_PID" \
            >/dev/null 2>"$WORK/perf.$k.err" &
        PERF_PID=$!
        sleep 1
        for ((r = 0; r < REPS; r++)); do curl -s -o /dev/null "$BASE$ep"; done
        kill -INT "$PERF_PID"
        wait "$PERF_PID" || true
        { echo "# GET $ep x $REPS"; perf report -i "$WORK/perf.$k.data" --no-children --percent-limit 0.8 \
            --stdio -g none 2>/dev/null; } >"$WORK/perf.$k.flat.txt" || true
        { echo "# GET $ep x $REPS"; perf report -i "$WORK/perf.$k.data" --children --percent-limit 3 \
            --stdio -g none 2>/dev/null; } >"$WORK/perf.$k.children.txt" || true
        rm -f "$WORK/perf.$k.data"
        echo "scrape.sh: perf reports for $ep in $WORK/perf.$k.{flat,children}.txt" >&2
    done
fi

CPU=$(cpu_model)
cat <<EOF
### scrape.sh: $SUBS subscriptions, $CHANNELS channels, $CONNS connections

- Machine: $(nproc) CPUs, ${CPU:-unknown CPU}, $(uname -sr); load average $(cut -d' ' -f1-3 /proc/loadavg)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- stanzad: \`$STANZAD --store FILE -m PORT --max_channels $((CHANNELS + 1)) --max_subs 0\`
- Fill: $READY; each channel got $((MSGS + 1)) messages of 128 B; MaxInflight $INFLIGHT, nothing
  acked; /metrics showed $NSERIES subscription series, $NONZERO_BACKLOG with a backlog, $NONZERO_INFLIGHT
  with messages in flight
- $REPS sequential GETs per endpoint with curl (new connection each), server otherwise idle

| request | median ms | min ms | max ms | loop CPU ms / request | bytes | MiB |
|---|---:|---:|---:|---:|---:|---:|
$ROWS
EOF
FAILED=0
