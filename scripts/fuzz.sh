#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz) with clang into BUILD_DIR (default ./build-fuzz) and
# runs each for a bounded time, starting from its seed corpus in tests/fuzz/corpus/<target>.
# Fails (exit 1) on any crash, leak, timeout, out-of-memory or UB report; the input that did it
# is kept in BUILD_DIR/fuzz-artifacts/ (reproduce: BUILD_DIR/fuzz_<target> FILE).
#   STANZA_FUZZ_SECONDS   time per target (default 30)
#   STANZA_FUZZ_TARGETS   which targets (default: all of tests/fuzz/fuzz_*.c)
#   STANZA_FUZZ_NOBUILD=1 skip the build (e.g. for long runs of an existing build)
# New inputs the fuzzers find go to BUILD_DIR/fuzz-corpus/<target>, never into the repository.
set -eu
cd "$(dirname "$0")/.."
SRC=$(pwd)
BUILD_DIR=${BUILD_DIR:-build-fuzz}
SECONDS_EACH=${STANZA_FUZZ_SECONDS:-30}
if [ -z "${STANZA_FUZZ_TARGETS:-}" ]; then
    STANZA_FUZZ_TARGETS=$(cd tests/fuzz && ls fuzz_*.c | sed -e 's/^fuzz_//' -e 's/\.c$//' |
        grep -v '^common$' | tr '\n' ' ')
fi
if [ "${STANZA_FUZZ_NOBUILD:-0}" != "1" ]; then
    echo "== build (clang, libFuzzer + ASan + UBSan) into $BUILD_DIR"
    CC=${FUZZ_CC:-clang} cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DSTANZA_FUZZ=ON -DSTANZA_TESTS=OFF >/dev/null
    targets=""
    for t in $STANZA_FUZZ_TARGETS; do targets="$targets --target fuzz_$t"; done
    # shellcheck disable=SC2086
    cmake --build "$BUILD_DIR" -j"$(nproc)" $targets
fi
# LeakSanitizer on; UBSan already halts (-fno-sanitize-recover=undefined); both print stacks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$BUILD_DIR/fuzz-artifacts" "$BUILD_DIR/fuzz-logs"
failed=""
for t in $STANZA_FUZZ_TARGETS; do
    bin="$BUILD_DIR/fuzz_$t"
    seeds="$SRC/tests/fuzz/corpus/$t"
    work="$BUILD_DIR/fuzz-corpus/$t"
    log="$BUILD_DIR/fuzz-logs/$t.log"
    mkdir -p "$work"
    dict=""
    case $t in
    parser | daemon) dict="-dict=$SRC/tests/fuzz/nats.dict" ;;
    httpd) dict="-dict=$SRC/tests/fuzz/http.dict" ;;
    config) dict="-dict=$SRC/tests/fuzz/yaml.dict" ;;
    esac
    echo "== fuzz_$t for ${SECONDS_EACH}s (log: $log)"
    rc=0
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 \
        -print_final_stats=1 -artifact_prefix="$BUILD_DIR/fuzz-artifacts/$t-" $dict \
        "$work" "$seeds" >"$log" 2>&1 || rc=$?
    # Belt and braces: a sanitizer report is a failure even if the exit status said otherwise.
    if [ $rc -ne 0 ] || grep -qE 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log"; then
        echo "fuzz_$t FAILED (exit $rc):"
        grep -E 'runtime error:|ERROR: |SUMMARY:|Test unit written|fuzz: |check failed' "$log" | head -20
        failed="$failed $t"
        continue
    fi
    grep -E '^#[0-9]+.*DONE' "$log" | tail -1 | sed "s/^/fuzz_$t: /"
done
if [ -n "$failed" ]; then
    echo "fuzzing found problems in:$failed (inputs in $BUILD_DIR/fuzz-artifacts/)"
    exit 1
fi
echo "fuzzing: no crash, leak, timeout or UB in: $STANZA_FUZZ_TARGETS"
