#!/bin/sh
# One command from a fresh Debian 12 machine to a running stanzad: installs the dependencies,
# builds, and runs the daemon in the foreground on the shipped config (config/stanza.yaml:
# clients on 127.0.0.1:4222, monitoring port 8222, data under ./data). Extra arguments are
# passed to stanzad (they override the file), e.g. scripts/run.sh -DV.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
sh scripts/build.sh
exec ./build/stanzad -c config/stanza.yaml "$@"
