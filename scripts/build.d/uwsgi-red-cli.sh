#!/usr/bin/env bash
# Native CLI `uwsgi-red` (stats -> Prometheus text, decode a uwsgi packet) -> dist/uwsgi-red
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
rm -f target/release/uwsgi-red  # never copy a stale build
cargo build --release --locked -p uwsgi-red-cli --quiet
[ -x target/release/uwsgi-red ] || { echo "build of uwsgi-red-cli produced no target/release/uwsgi-red" >&2; exit 1; }
cp target/release/uwsgi-red dist/uwsgi-red
echo "dist/uwsgi-red $(stat -c %s dist/uwsgi-red) bytes"
