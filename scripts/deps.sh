#!/bin/sh
# Installs the Debian 12 packages Stanza builds, runs and tests with.
# Idempotent; works as root or through sudo.
set -eu
PKGS="build-essential cmake pkg-config libuv1-dev liblmdb-dev libprotobuf-c-dev protobuf-c-compiler \
libyaml-dev libjansson-dev libnats-dev libhttp-parser-dev libcurl4-openssl-dev nats-server prometheus \
libssl-dev openssl clang libclang-rt-14-dev libraft-dev liblz4-dev libsystemd-dev python3-yaml curl jq"
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# The Node interop tests need node >= 18 and npm; Debian 12's nodejs is 18. A machine that
# already has a newer node (e.g. from NodeSource) keeps it.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    echo "deps: installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# libraft-dev: the Raft consensus library of clustered mode (issue 11), linked from its static
# archive, which needs liblz4-dev.
# libsystemd-dev: sd_notify, so that systemd knows when stanzad is ready (Type=notify).
# python3-yaml, curl, jq: tests/deploy (the manifests, and deploy/stanza-ready, the readiness
# probe, which the image runs with curl and jq).
# clang and libclang-rt-14-dev (libFuzzer, the sanitizers' runtimes) build the fuzz targets
# (scripts/fuzz.sh).
# nats-server (benchmark peer) and prometheus (its promtool checks /metrics in the tests) are
# installed for the tests only. The Debian nats-server package enables a system service; Stanza's tests and benchmarks start
# their own instances on free ports, so a system one (if systemd runs) is left as the admin set it.
exit 0
