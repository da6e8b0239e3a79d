#!/usr/bin/env bash
# Builds the browser stats viewer (plugins/stats-viewer): the cdylib for
# wasm32-unknown-unknown, then wasm-bindgen's JS glue twice:
#   --target web    -> plugins/stats-viewer/www/pkg/ (the page; gitignored)
#   --target nodejs -> $UWSGI_RED_CACHE/stats-viewer/node-pkg/ (Node tests)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}"
cd "$ROOT"

wasm_bindgen="$(bash "$ROOT/scripts/setup.d/viewer.sh")"
cargo build --release --locked -p stats-viewer --target wasm32-unknown-unknown 2>&1 | grep -v '^\s*Compiling' || true
module="$ROOT/target/wasm32-unknown-unknown/release/stats_viewer.wasm"
[ -f "$module" ] || { echo "build of stats-viewer produced no $module" >&2; exit 1; }

web="$ROOT/plugins/stats-viewer/www/pkg"
node="$CACHE/stats-viewer/node-pkg"
rm -rf "$web" "$node"
"$wasm_bindgen" --target web --out-dir "$web" "$module"
"$wasm_bindgen" --target nodejs --out-dir "$node" "$module"
echo "plugins/stats-viewer/www/pkg/stats_viewer_bg.wasm $(stat -c %s "$web/stats_viewer_bg.wasm") bytes; node glue in $node"
