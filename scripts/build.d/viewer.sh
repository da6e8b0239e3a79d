#!/usr/bin/env bash
# Builds the browser stats viewer (plugins/stats-viewer): the cdylib for
# wasm32-unknown-unknown, then wasm-bindgen's JS glue twice (plugins/stats-viewer/bindgen, name and
# producers sections removed):
#   --target web    -> plugins/stats-viewer/www/pkg/ (the page; gitignored)
#   --target nodejs -> $UWSGI_RED_CACHE/stats-viewer/node-pkg/ (Node tests)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}"
cd "$ROOT"

wasm_bindgen="$(bash "$ROOT/scripts/setup.d/viewer.sh")"
# strip would drop the target_features section wasm-bindgen reads (wasm-bindgen
# drops the name section itself). opt-level 3 rather than the workspace's "s"
# (sized for proxy-wasm hosts): decoding is ~2.8x faster for +20% bytes.
rm -f "$ROOT/target/wasm32-unknown-unknown/release/stats_viewer.wasm"  # never bind a stale build
CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_OPT_LEVEL=3 \
  cargo build --release --locked -p stats-viewer --target wasm32-unknown-unknown --quiet
module="$ROOT/target/wasm32-unknown-unknown/release/stats_viewer.wasm"
[ -f "$module" ] || { echo "build of stats-viewer produced no $module" >&2; exit 1; }

web="$ROOT/plugins/stats-viewer/www/pkg"
node="$CACHE/stats-viewer/node-pkg"
rm -rf "$web" "$node"
"$wasm_bindgen" --target web --out-dir "$web" "$module"
"$wasm_bindgen" --target nodejs --out-dir "$node" "$module"
# No wasm-opt: Debian's binaryen (108) corrupts wasm-bindgen's externref table.
echo "plugins/stats-viewer/www/pkg/stats_viewer_bg.wasm $(stat -c %s "$web/stats_viewer_bg.wasm") bytes; node glue in $node"
