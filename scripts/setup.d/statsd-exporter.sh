#!/usr/bin/env bash
# Builds Prometheus' statsd_exporter (pinned) into
# $UWSGI_RED_CACHE/tools/statsd_exporter-<version>. It is the tool gunicorn
# users run today; host-tests/test_statsd_peer.py feeds it the same live
# gunicorn StatsD stream as the Collector and compares the counts.
#   statsd-exporter.sh          build when missing, print the binary path
#   statsd-exporter.sh --path   print the binary path only (nothing is built)
set -euo pipefail
VERSION=v0.31.0
dir="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}/tools"
bin="$dir/statsd_exporter-$VERSION"
if [ "${1:-}" = "--path" ]; then echo "$bin"; exit 0; fi
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
command -v go >/dev/null || { echo "go not found: install Go >= 1.23 (go.dev/dl)" >&2; exit 1; }
mkdir -p "$dir"
# A scratch GOBIN, then one rename: a failed or interrupted build leaves no
# binary that the next run would take for a finished one.
tmp="$(mktemp -d "$dir/tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "go install github.com/prometheus/statsd_exporter@$VERSION (about a minute)" >&2
GOBIN="$tmp" go install -trimpath -ldflags='-s -w' "github.com/prometheus/statsd_exporter@$VERSION" >&2
mv "$tmp/statsd_exporter" "$bin"
echo "$bin"
