#!/usr/bin/env bash
# Builds the stats viewer's JS-glue generator (plugins/stats-viewer/bindgen:
# wasm-bindgen-cli-support as a library, its own lock file) and prints its
# path. Its wasm-bindgen version must equal the wasm-bindgen crate's in the
# workspace Cargo.lock (the glue refuses a module from another version).
# Idempotent: cargo rebuilds nothing when it is up to date.
#   viewer.sh          build when needed, print the binary path
#   viewer.sh --path   print the binary path only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CRATE="$ROOT/plugins/stats-viewer/bindgen"
TARGET_DIR="$ROOT/target/viewer-bindgen"
bin="$TARGET_DIR/release/stats-viewer-bindgen"

if [ "${1:-}" = "--path" ]; then echo "$bin"; exit 0; fi

lock_version() {  # lock_version <Cargo.lock> <crate name>
  awk -v n="name = \"$2\"" '$0 == n { getline; gsub(/version = |"/, ""); print; exit }' "$1"
}
want="$(lock_version "$ROOT/Cargo.lock" wasm-bindgen)"
have="$(lock_version "$CRATE/Cargo.lock" wasm-bindgen-cli-support)"
[ -n "$want" ] && [ "$want" = "$have" ] || {
  echo "wasm-bindgen $want in Cargo.lock but wasm-bindgen-cli-support $have in $CRATE/Cargo.lock: bump it there" >&2
  exit 1
}
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown >&2
cargo build --release --locked --quiet --manifest-path "$CRATE/Cargo.toml" --target-dir "$TARGET_DIR" >&2
[ -x "$bin" ] || { echo "build of $CRATE produced no $bin" >&2; exit 1; }
echo "$bin"
