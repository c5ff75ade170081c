#!/bin/sh
# One command from a fresh Debian 12 machine to the whole test suite: installs the
# dependencies, builds, runs every test (unit and integration), then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs every test again.
# Set STANZA_SKIP_SANITIZE=1 to run only the normal build.
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
echo "all tests passed"
