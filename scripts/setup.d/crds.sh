#!/usr/bin/env bash
# The CRDs the example manifests are validated against, taken from the Go
# modules that publish them (never committed): istio.io/api (TrafficExtension,
# WasmPlugin) and github.com/envoyproxy/gateway (EnvoyExtensionPolicy).
# `go mod download -json` fetches each module into the Go module cache and
# names its directory; each CRD file is converted to JSON (a list of the
# file's documents) by `uwsgi-red-xds yaml2json` into
# $UWSGI_RED_CACHE/crds/<module>@<version>/<file>.json.
#   crds.sh          fetch and convert when missing, print the directory
#   crds.sh --path   print the directory only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}/crds"
# module@version path-in-module (the versions the Go proxy serves; TrafficExtension
# is in istio.io/api from v1.32.0 on).
CRDS=(
  "istio.io/api@v1.32.0 kubernetes/customresourcedefinitions.gen.yaml"
  "github.com/envoyproxy/gateway@v1.9.1 charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_envoyextensionpolicies.yaml"
)
stamp="$OUT/.done-$(printf '%s\n' "${CRDS[@]}" | sha256sum | cut -c1-16)"

if [ "${1:-}" = "--path" ]; then echo "$OUT"; exit 0; fi
if [ -f "$stamp" ]; then echo "$OUT"; exit 0; fi

command -v go >/dev/null || { echo "go not found: install Go >= 1.26" >&2; exit 1; }
xds="$(bash "$ROOT/scripts/setup.d/xds.sh")"
mkdir -p "$OUT"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for entry in "${CRDS[@]}"; do
  read -r mod file <<<"$entry"
  # Outside any module: download only, nothing is added to a go.mod.
  (cd "$tmp" && go mod download -json "$mod" >"$tmp/dl.json") \
    || { echo "go mod download $mod failed: $(cat "$tmp/dl.json")" >&2; exit 1; }
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$tmp/dl.json")"
  [ -f "$dir/$file" ] || { echo "$mod has no $file" >&2; exit 1; }
  mkdir -p "$OUT/$mod"
  "$xds" yaml2json "$dir/$file" >"$OUT/$mod/$(basename "$file" .yaml).json"
done
touch "$stamp"
echo "$OUT"
