#!/usr/bin/env bash
# bench/callgrind.sh: instructions the server executes for one streaming phase, counted by
# valgrind's callgrind. Unlike wall-clock figures these repeat on a busy shared machine, so
# they settle "did this change make a message cheaper or dearer" when throughput runs are noise.
#
# usage: bench/callgrind.sh STANZAD pub|drain OUT [BUILD_DIR]
#   pub    MSGS messages published asynchronously (window 16,384)
#   drain  the same number published first (not counted), then read back by one subscriber
# Instrumentation is switched on only around the phase (callgrind_control -i on/off), so start-up
# and the store's creation are not counted. Prints the RESULT line of the phase and the total
# instruction count; OUT keeps the profile (callgrind_annotate OUT shows where they went).
#
# Environment: STANZA=PATH (CLI, default BUILD_DIR/stanza), MSGS (200000), SIZE (128).
set -euo pipefail

STANZAD=${1:?usage: bench/callgrind.sh STANZAD pub|drain OUT [BUILD_DIR]}
PHASE=${2:?phase: pub or drain}
OUT=${3:?output file}
BUILD=${4:-./build}
STANZA=${STANZA:-$BUILD/stanza}
MSGS=${MSGS:-200000}
SIZE=${SIZE:-128}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 2; }

DIR=$(mktemp -d)
PID=
cleanup() {
    if [[ -n $PID ]]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$DIR"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT" "$STANZAD" \
    -a 127.0.0.1 -p "$PORT" --store FILE --dir "$DIR/data" --file_sync=false -l "$DIR/log" \
    >"$DIR/out" 2>&1 &
PID=$!
for _ in $(seq 1 150); do
    (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
    sleep 0.2
done

bench() { "$STANZA" -s "nats://127.0.0.1:$PORT" bench stan --channel c --msgs "$MSGS" --size "$SIZE" "$@"; }
case $PHASE in
pub) ;;
drain) bench --phase pub --async-window 16384 >/dev/null ;;
*) echo "callgrind.sh: phase must be pub or drain" >&2; exit 2 ;;
esac
callgrind_control -i on "$PID" >/dev/null 2>&1
if [[ $PHASE == pub ]]; then
    bench --phase pub --async-window 16384 >"$DIR/phase.out" 2>&1
else
    bench --phase drain --subs 1 >"$DIR/phase.out" 2>&1
fi
callgrind_control -i off "$PID" >/dev/null 2>&1
grep RESULT "$DIR/phase.out"
kill -TERM "$PID"
wait "$PID" || true
PID=
callgrind_annotate "$OUT" 2>/dev/null | grep 'PROGRAM TOTALS'
