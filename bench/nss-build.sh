#!/usr/bin/env bash
# bench/nss-build.sh: builds nats-streaming-server (NSS) offline, from a local git mirror of its
# source plus Debian 12's Go toolchain and Go library packages, for bench/raft.sh and
# bench/failover.sh (issue 11 compares clustered Stanza with clustered NSS). Not run by CI;
# nothing in the build or the tests depends on it.
#
# usage: bench/nss-build.sh [OUT_DIR]     (OUT_DIR defaults to /work/nss-build)
#   then: NSS=OUT_DIR/bin/nats-streaming-server bench/raft.sh BUILD_DIR
#
# Needs (as root, from Debian's mirror; the script installs them with apt-get when it can):
#   golang-go (1.19) and the golang-*-dev packages listed in DEB_PKGS below (their sources land
#   in /usr/share/gocode/src).
# and git mirrors (bare git dirs) of the modules Debian lacks or has too old, under MIRROR
# (default /work/.mirror, one OWNER+NAME/repo per repository):
#   nats-io/nats-streaming-server  NSS_TAG (v0.25.6, the last release)
#   hashicorp/raft                 RAFT_TAG (v1.6.0, what NSS v0.25.6 requires; Debian has 1.1.2)
#   hashicorp/go-msgpack           MSGPACK_TAG (v2.1.1, imported as go-msgpack/v2; Debian: 0.5.5)
#   nats-io/stan.go                STAN_TAG (v0.10.4; not in Debian)
#   hashicorp/go-hclog             HCLOG_TAG (v1.5.0; raft 1.6 needs it, Debian has 0.11.0)
#
# How: GOPATH mode (GO111MODULE=off), GOPATH=OUT_DIR/gopath:/usr/share/gocode, so the
# checkouts in OUT_DIR/gopath/src (exported from the mirrors with git archive) shadow Debian's
# copies and everything else comes from Debian's packages. No network access besides apt-get.
# The other libraries are Debian's versions, not NSS's go.mod versions (nats-server 2.9.10 for
# 2.9.24, nats.go 1.22.1 for 1.31.0, bbolt 1.3.6 for 1.3.8, go-metrics 0.3.4 for 0.4.1, ...);
# v0.25.6 built with them unchanged: PATCHES below (empty) would list source changes were any
# needed. Idempotent: re-running re-exports the trees and rebuilds (from the Go build cache).
set -euo pipefail

OUT=${1:-/work/nss-build}
MIRROR=${MIRROR:-/work/.mirror}
NSS_TAG=${NSS_TAG:-v0.25.6}
RAFT_TAG=${RAFT_TAG:-v1.6.0}
MSGPACK_TAG=${MSGPACK_TAG:-v2.1.1}
STAN_TAG=${STAN_TAG:-v0.10.4}
HCLOG_TAG=${HCLOG_TAG:-v1.5.0}

DEB_PKGS="golang-go golang-github-nats-io-nats-server-dev golang-github-nats-io-go-nats-dev
golang-github-nats-io-nuid-dev golang-github-nats-io-jwt-dev golang-github-nats-io-nkeys-dev
golang-github-gogo-protobuf-dev golang-github-coreos-bbolt-dev golang-github-go-sql-driver-mysql-dev
golang-github-lib-pq-dev golang-github-prometheus-procfs-dev golang-golang-x-crypto-dev
golang-golang-x-sys-dev golang-golang-x-time-dev golang-github-klauspost-compress-dev
golang-github-minio-highwayhash-dev golang-github-hashicorp-go-immutable-radix-dev
golang-github-hashicorp-golang-lru-dev golang-github-fatih-color-dev golang-github-mattn-go-isatty-dev
golang-github-mattn-go-colorable-dev golang-github-armon-go-metrics-dev"

die() {
    echo "nss-build.sh: $*" >&2
    exit 1
}

missing=""
for p in $DEB_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=" $p"
done
if [[ -n $missing ]]; then
    [[ $(id -u) == 0 ]] || die "missing Debian packages (install as root):$missing"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
fi

GOPATH_OUR=$OUT/gopath
# export REPO TAG DEST: the tree of TAG from MIRROR/REPO/repo into GOPATH_OUR/src/DEST, afresh.
export_tree() {
    local repo=$1 tag=$2 dest=$GOPATH_OUR/src/$3 git_dir=$MIRROR/$1/repo
    [[ -d $git_dir/.git ]] && git_dir+=/.git
    [[ -d $git_dir ]] || die "no git mirror $git_dir (fetch github:${repo/+//} first)"
    git --git-dir="$git_dir" rev-parse -q --verify "$tag^{commit}" >/dev/null ||
        die "$git_dir has no $tag"
    rm -rf "$dest"
    mkdir -p "$dest"
    git --git-dir="$git_dir" archive "$tag" | tar -x -C "$dest"
}

export_tree nats-io+nats-streaming-server "$NSS_TAG" github.com/nats-io/nats-streaming-server
export_tree hashicorp+raft "$RAFT_TAG" github.com/hashicorp/raft
# The import path ends in /v2: a literal v2 directory resolves it in GOPATH mode.
export_tree hashicorp+go-msgpack "$MSGPACK_TAG" github.com/hashicorp/go-msgpack/v2
export_tree nats-io+stan.go "$STAN_TAG" github.com/nats-io/stan.go
export_tree hashicorp+go-hclog "$HCLOG_TAG" github.com/hashicorp/go-hclog

# Debian keeps a few /vN modules in the directory without /vN (nats-server/v2 in nats-server):
# a symlink at the import path finds them (GOPATH mode does not strip /vN here).
(
    cd /usr/share/gocode/src
    find . -maxdepth 4 -name go.mod | while read -r f; do
        mod=$(awk '$1 == "module" { print $2; exit }' "$f") dir=${f%/go.mod} dir=${dir#./}
        if [[ $mod =~ /v[0-9]+$ && $dir != "$mod" && ! -e $GOPATH_OUR/src/$mod ]]; then
            mkdir -p "$(dirname "$GOPATH_OUR/src/$mod")"
            ln -sfn "/usr/share/gocode/src/$dir" "$GOPATH_OUR/src/$mod"
        fi
    done
)

# PATCHES: source changes for Debian's library versions (applied to the exported copies only).
PATCHES=()
for p in "${PATCHES[@]}"; do
    patch -d "$GOPATH_OUR/src" -p1 --forward <"$p"
done

mkdir -p "$OUT/bin" "$OUT/gocache"
cd "$GOPATH_OUR/src/github.com/nats-io/nats-streaming-server"
rm -f go.mod go.sum
# Two cores shared with others: one package at a time.
GO111MODULE=off GOPATH="$GOPATH_OUR:/usr/share/gocode" GOCACHE="$OUT/gocache" GOPROXY=off \
    GOFLAGS='' CGO_ENABLED=0 go build -p 1 -o "$OUT/bin/nats-streaming-server" .
"$OUT/bin/nats-streaming-server" --version
echo "nss-build.sh: built $OUT/bin/nats-streaming-server ($NSS_TAG)"
