#!/usr/bin/env bash
# Installs the wasm-bindgen CLI for the stats viewer at exactly the version of
# the wasm-bindgen crate in Cargo.lock (the CLI refuses a mismatched module),
# into $UWSGI_RED_CACHE/cargo-bin. Idempotent: a no-op when already there.
#   viewer.sh          install when missing, print the binary path
#   viewer.sh --path   print the binary path only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}"
PREFIX="$CACHE/cargo-bin"

version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
[ -n "$version" ] || { echo "wasm-bindgen not found in Cargo.lock" >&2; exit 1; }
bin="$PREFIX/bin/wasm-bindgen"

if [ "${1:-}" = "--path" ]; then echo "$bin"; exit 0; fi
if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "wasm-bindgen $version" ]; then
  echo "$bin"; exit 0
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown >&2
echo "installing wasm-bindgen-cli $version into $PREFIX (a few minutes on 2 cores)" >&2
# --locked first; its lock file can name a dependency version the registry no
# longer serves (yanked), and then the resolver's choice is the only way.
cargo install --locked --quiet --root "$PREFIX" --version "=$version" --force wasm-bindgen-cli >&2 \
  || { echo "locked install failed; retrying with freshly resolved dependencies" >&2
       cargo install --quiet --root "$PREFIX" --version "=$version" --force wasm-bindgen-cli >&2; }
[ "$("$bin" --version)" = "wasm-bindgen $version" ] || { echo "wasm-bindgen-cli install gave $("$bin" --version)" >&2; exit 1; }
echo "$bin"
