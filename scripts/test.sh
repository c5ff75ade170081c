#!/bin/sh
# One command from a fresh Debian 12 machine to the whole test suite: installs the
# dependencies, builds, runs every test (unit and integration), then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs every test again, then builds the
# libFuzzer targets with clang and runs each for a bounded time (scripts/fuzz.sh).
# Set STANZA_SKIP_SANITIZE=1 to skip the sanitized build, STANZA_SKIP_FUZZ=1 to skip fuzzing.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh

echo "== build (RelWithDebInfo) and test"
BUILD_DIR=build sh scripts/build.sh
(cd build && ctest --output-on-failure --timeout 600 -j2)

if [ "${STANZA_SKIP_SANITIZE:-0}" != "1" ]; then
    echo "== build (ASan + UBSan) and test"
    BUILD_DIR=build-asan BUILD_TYPE=Debug sh scripts/build.sh -DSTANZA_SANITIZE=ON
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    (cd build-asan && ctest --output-on-failure --timeout 900 -j2)
fi
if [ "${STANZA_SKIP_FUZZ:-0}" != "1" ]; then
    # libFuzzer targets (tests/fuzz), each for STANZA_FUZZ_SECONDS (default 30 s): any crash,
    # leak, timeout or UB report fails the suite.
    echo "== fuzz (clang, libFuzzer + ASan + UBSan)"
    BUILD_DIR=build-fuzz sh scripts/fuzz.sh
fi
echo "all tests passed"
