#!/usr/bin/env bash
# CTest hook for the node-nats-streaming 0.3.2 interop tests (test name: node_interop).
# Usage: tests/node/run.sh /path/to/stanzad
# Installs the pinned client with `npm ci` when node_modules is missing or older than
# package-lock.json (tracked by a stamp holding the lock file's hash), then runs every
# tests/node/*.test.js with node's built-in test runner. The exit code is node's.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 /path/to/stanzad" >&2
    exit 2
fi
for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "node_interop: FAILED: '$tool' is not installed (Node.js >= 18 with npm is required" \
             "for the node-nats-streaming interop tests)" >&2
        exit 1
    fi
done
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    echo "node_interop: FAILED: node $(node --version) is too old; Node.js >= 18 (node:test with before/after hooks) is required" >&2
    exit 1
fi

STANZAD_BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
if [ ! -x "$STANZAD_BIN" ]; then
    echo "node_interop: stanzad binary not found or not executable: $1" >&2
    exit 2
fi

cd "$(dirname "$0")"

stamp=.npm-ci.stamp
want=$(sha256sum package-lock.json | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ ! -d node_modules ] || [ "$want" != "$have" ]; then
    echo "node_interop: npm ci (node_modules missing or stale)"
    rm -f "$stamp"
    npm ci --no-audit --no-fund
    echo "$want" > "$stamp"
fi

shopt -s nullglob
tests=(*.test.js)
if [ ${#tests[@]} -eq 0 ]; then
    echo "node_interop: FAILED: no *.test.js files in $(pwd)" >&2
    exit 1
fi

export STANZAD="$STANZAD_BIN"
exec node --test "${tests[@]}"
