#!/usr/bin/env bash
# Installs the `wasm-tools` CLI (crates.io) into $UWSGI_RED_CACHE/cargo-bin,
# used by host-tests/test_component.py to validate the component and print
# its world. Skipped when the pinned version is already there.
#   wasm-tools.sh          install when missing, print the binary path
#   wasm-tools.sh --path   print the binary path only
set -euo pipefail
VERSION=1.263.0
root="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}/cargo-bin"
bin="$root/bin/wasm-tools"
if [ "${1:-}" = "--path" ]; then echo "$bin"; exit 0; fi
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "^wasm-tools $VERSION"; then
  echo "$bin"; exit 0
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup" >&2; exit 1; }
echo "cargo install wasm-tools@$VERSION into $root (a few minutes on 2 cores)" >&2
# Only the subcommands the tests use (validate, component wit, print):
cargo install wasm-tools --version "$VERSION" --locked --no-default-features \
  --features validate,component,print --root "$root" >&2
echo "$bin"
