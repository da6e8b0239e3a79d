#!/usr/bin/env bash
# Builds plugins/component for wasm32-wasip2 (rustc links a component
# directly) into dist/uwsgi-red.component.wasm. Not a WASM_PLUGINS entry:
# that path runs Debian's wasm-opt, which reads core modules, not components.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
rm -f target/wasm32-wasip2/release/uwsgi_red_component.wasm  # never copy a stale build
cargo build --release --locked -p uwsgi-red-component --target wasm32-wasip2 --quiet
out="target/wasm32-wasip2/release/uwsgi_red_component.wasm"
[ -f "$out" ] || { echo "build of uwsgi-red-component produced no $out" >&2; exit 1; }
mkdir -p dist
cp "$out" dist/uwsgi-red.component.wasm
echo "dist/uwsgi-red.component.wasm $(stat -c %s dist/uwsgi-red.component.wasm) bytes"
