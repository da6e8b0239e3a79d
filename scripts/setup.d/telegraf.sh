#!/usr/bin/env bash
# Builds Telegraf with only the plugins the InfluxDB tests and examples use
# (Go build tag `custom` plus one tag per plugin) into
# $UWSGI_RED_CACHE/tools/telegraf-<version>-<hash>/telegraf, so it is built
# once per machine and rebuilt only when the version or plugin list changes.
# The full Telegraf links several hundred plugins and takes far longer.
#   telegraf.sh          build when missing, print the binary path
#   telegraf.sh --path   print the binary path only (nothing is built)
set -euo pipefail

CACHE="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}/tools"
VERSION=v1.37.2
# inputs.uwsgi: the parity reference; inputs.prometheus + outputs.influxdb:
# the path a Telegraf user takes from Envoy's /stats/prometheus to InfluxDB;
# outputs.file: line protocol on disk for the comparison.
TAGS="custom,inputs.uwsgi,inputs.prometheus,outputs.influxdb,outputs.file"
hash="$(printf '%s %s build-v1' "$VERSION" "$TAGS" | sha256sum | cut -c1-12)"
out="$CACHE/telegraf-$VERSION-$hash"
bin="$out/telegraf"

if [ "${1:-}" = "--path" ]; then echo "$bin"; exit 0; fi
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

command -v go >/dev/null || { echo "go not found: install Go >= 1.25 (e.g. apt-get install golang-go or go.dev)" >&2; exit 1; }
mkdir -p "$CACHE"
tmpbin="$(mktemp -d "$CACHE/telegraf.tmp.XXXXXX")"
trap 'rm -rf "$tmpbin"' EXIT
echo "building Telegraf $VERSION (-tags $TAGS); takes minutes on 2 cores" >&2
start=$SECONDS
GOBIN="$tmpbin" GOFLAGS=-mod=mod go install -trimpath -ldflags='-s -w' -tags "$TAGS" \
  "github.com/influxdata/telegraf/cmd/telegraf@$VERSION" >&2
[ -x "$tmpbin/telegraf" ] || { echo "go install produced no telegraf binary" >&2; exit 1; }
echo "Telegraf built in $((SECONDS - start)) s" >&2
rm -rf "$out"
mv "$tmpbin" "$out"
trap - EXIT
echo "$bin"
