#!/usr/bin/env bash
# Builds the test xDS control plane (host-tests/xds/, go-control-plane) into
# $UWSGI_RED_CACHE/tools/xds/<hash>/uwsgi-red-xds, keyed by a hash of its
# go.mod, go.sum and sources, so it is rebuilt only when they change.
#   xds.sh          build when missing, print the binary path
#   xds.sh --path   print the binary path only (nothing is built)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$ROOT/host-tests/xds"
CACHE="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}/tools/xds"
hash="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go | sha256sum | cut -c1-16)"
bin="$CACHE/$hash/uwsgi-red-xds"

if [ "${1:-}" = "--path" ]; then echo "$bin"; exit 0; fi
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

command -v go >/dev/null || { echo "go not found: install Go >= 1.26 (e.g. go.dev or apt-get install golang-go)" >&2; exit 1; }
mkdir -p "$CACHE"
tmp="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "building the xDS control plane (go-control-plane) into $CACHE/$hash" >&2
# -mod=readonly: the committed go.sum pins every module; nothing is resolved anew.
(cd "$SRC" && GOFLAGS=-mod=readonly go build -trimpath -ldflags='-s -w' -o "$tmp/uwsgi-red-xds" . >&2)
rm -rf "$CACHE/$hash"
mv "$tmp" "$CACHE/$hash"
trap - EXIT
echo "$bin"
