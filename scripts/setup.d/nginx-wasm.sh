#!/usr/bin/env bash
# Provides an nginx built with Kong's ngx_wasm_module for the nginx host tests
# and bench (host-tests/test_nginx_wasm.py, bench/nginx_red.py). No package
# registry ships one, so it comes from, in order:
#   1. $UWSGI_RED_NGINX_WASM: the path of your own nginx binary with the module;
#   2. the prebuilt nginx 1.27.4 + ngx_wasm_module + Wasmtime 26 in
#      $UWSGI_RED_SHARED/hosts/nginx-wasm/bin (default ../shared next to the
#      repository), copied into $UWSGI_RED_CACHE/nginx-wasm/bin because the
#      shared folder is read-only and may not exist on the next machine.
# The shared binaries are checked against scripts/shared.sha256 before they
# are copied, and the cached copy before every use.
# Idempotent: an up-to-date copy is not copied again.
#   nginx-wasm.sh          provide the binary, print its path
#   nginx-wasm.sh --path   print the path it would use (nothing is copied)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}/nginx-wasm"
SHARED="${UWSGI_RED_SHARED:-$ROOT/../shared}/hosts/nginx-wasm"
FILES=(nginx libwasmtime.so)

how() {
  cat >&2 <<EOF
nginx with ngx_wasm_module not found. Get one of:
  - set UWSGI_RED_NGINX_WASM=/path/to/nginx (a build whose 'nginx -V' lists ngx_wasm_module;
    Kong publishes prebuilt 'wasmx-*' releases at https://github.com/Kong/ngx_wasm_module/releases);
  - put the project's prebuilt host at $SHARED/bin (nginx + libwasmtime.so), or set
    UWSGI_RED_SHARED to the folder holding hosts/nginx-wasm;
  - build it: hosts/nginx-wasm/build-from-source.sh OUT_DIR (about 25 min on 2 cores),
    then UWSGI_RED_NGINX_WASM=OUT_DIR/bin/nginx.
See examples/nginx-wasm/README.md.
EOF
  exit 1
}

# A binary that does not start (missing libraries) or lacks the module is as
# good as none: say so now rather than as a config error in a test.
check() {
  local v
  v="$("$1" -V 2>&1)" || { echo "$1 does not run:" >&2; echo "$v" >&2; how; }
  grep -qi "wasm" <<<"$v" || { echo "$1 has no ngx_wasm_module ('nginx -V' does not list it)" >&2; how; }
}

if [ -n "${UWSGI_RED_NGINX_WASM:-}" ]; then
  [ "${1:-}" = "--path" ] && { echo "$UWSGI_RED_NGINX_WASM"; exit 0; }
  [ -x "$UWSGI_RED_NGINX_WASM" ] || { echo "UWSGI_RED_NGINX_WASM=$UWSGI_RED_NGINX_WASM is not an executable" >&2; how; }
  check "$UWSGI_RED_NGINX_WASM"
  echo "$UWSGI_RED_NGINX_WASM"
  exit 0
fi

bin="$CACHE/bin/nginx"
[ "${1:-}" = "--path" ] && { echo "$bin"; exit 0; }

fresh=1
for f in "${FILES[@]}"; do
  if [ -f "$SHARED/bin/$f" ]; then
    cmp -s "$SHARED/bin/$f" "$CACHE/bin/$f" || fresh=0
  elif [ ! -f "$CACHE/bin/$f" ]; then
    how
  fi
done
if [ "$fresh" = 0 ]; then
  echo "copying $SHARED/bin into $CACHE/bin" >&2
  mkdir -p "$CACHE"
  # Copy beside, then swap: a half-copied binary is never left at $bin.
  tmp="$(mktemp -d "$CACHE/bin.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # Checked in the copy, so what is checked is what gets used.
  for f in "${FILES[@]}"; do
    cp "$SHARED/bin/$f" "$tmp/$f"
    bash "$ROOT/scripts/verify-shared.sh" "$tmp/$f" "nginx-wasm/bin/$f"
  done
  chmod 0755 "$tmp" "$tmp"/*
  rm -rf "$CACHE/bin"
  mv "$tmp" "$CACHE/bin"
  trap - EXIT
fi
for f in "${FILES[@]}"; do bash "$ROOT/scripts/verify-shared.sh" "$CACHE/bin/$f" "nginx-wasm/bin/$f"; done
check "$bin"
echo "$bin"
