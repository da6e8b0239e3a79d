#!/usr/bin/env bash
# Native CLI `uwsgi-red` (stats -> Prometheus text, decode a uwsgi packet) -> dist/uwsgi-red
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# Profile `native` (Cargo.toml): the release profile at opt-level 3; the
# workspace's "release" stays "s" for the Wasm builds that use it.
rm -f target/native/uwsgi-red  # never copy a stale build
cargo build --profile native --locked -p uwsgi-red-cli --quiet
[ -x target/native/uwsgi-red ] || { echo "build of uwsgi-red-cli produced no target/native/uwsgi-red" >&2; exit 1; }
cp target/native/uwsgi-red dist/uwsgi-red
echo "dist/uwsgi-red $(stat -c %s dist/uwsgi-red) bytes"
# Each plugin configuration's JSON Schema, generated from the key tables
# the parsers read (`uwsgi-red schema`), for editors and CI; Kong reads
# red-filter's as <filter>.meta.json next to the module (examples/kong).
for plugin in red-filter uwsgi-tcp uwsgi-stats otel-processor; do
  dist/uwsgi-red schema "$plugin" >"dist/$plugin.schema.json"
done
dist/uwsgi-red schema red-filter --kong-meta >dist/red-filter.meta.json
echo "dist/*.schema.json, dist/red-filter.meta.json written"
