#!/usr/bin/env bash
# Builds the uwsgi-red OpenTelemetry Collector distribution with the official
# builder (OCB) from examples/otel-collector/builder-config.yaml into
# $UWSGI_RED_CACHE/otelcol/<hash>/, keyed by a hash of the manifest, its
# go.sum and the otelwasm source archive, so it is rebuilt only when they
# change. otelwasm (the Wasm processor host) is built from its source archive
# because the Go module proxy here refuses its modules.
#   otelcol.sh          build when missing, print the binary path
#   otelcol.sh --path   print the binary path only (nothing is built)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}/otelcol"
# Must equal the collector release the manifest pins.
OCB_VERSION=v0.155.0
# The stable (1.x) collector modules released with it.
CORE_STABLE=v1.61.0
SRC="$ROOT/examples/otel-collector"
# github.com/otelwasm/otelwasm at 4161e88, unmodified (Apache-2.0).
OTELWASM_TGZ="${UWSGI_RED_OTELWASM_TGZ:-$ROOT/../shared/hosts/otelwasm/otelwasm-4161e88.tar.gz}"

[ -r "$OTELWASM_TGZ" ] || { echo "otelwasm source archive not found: $OTELWASM_TGZ (set UWSGI_RED_OTELWASM_TGZ)" >&2; exit 1; }
# The shared archive must be the one whose digest is committed; an archive
# of your own (UWSGI_RED_OTELWASM_TGZ) is yours to vouch for.
if [ -z "${UWSGI_RED_OTELWASM_TGZ:-}" ]; then
  bash "$ROOT/scripts/verify-shared.sh" "$OTELWASM_TGZ" otelwasm/otelwasm-4161e88.tar.gz
fi
hash="$( { cat "$SRC/builder-config.yaml" "$SRC/otelcol.go.sum" "$OTELWASM_TGZ"; echo "$OCB_VERSION $CORE_STABLE build-v3"; } \
  | sha256sum | cut -c1-16)"
out="$CACHE/$hash"
bin="$out/_build/otelcol-uwsgi-red"

if [ "${1:-}" = "--path" ]; then echo "$bin"; exit 0; fi
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

# The generated module says `go 1.25.0`. Debian 12's golang-go is 1.19 and
# cannot build it: the official tarball (https://go.dev/dl/) can.
need_go="install Go >= 1.25 from https://go.dev/dl/ (Debian 12's golang-go is 1.19, too old) and put its bin/ on PATH"
command -v go >/dev/null || { echo "go not found: $need_go" >&2; exit 1; }
go_version="$(go env GOVERSION 2>/dev/null || true)"
if [[ "$go_version" =~ ^go1\.([0-9]+) ]] && ((BASH_REMATCH[1] < 25)); then
  echo "$go_version is too old: $need_go" >&2; exit 1
fi
mkdir -p "$CACHE/bin"
builder="$CACHE/bin/builder-$OCB_VERSION"
if [ ! -x "$builder" ]; then
  echo "installing go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >&2
  tmpbin="$(mktemp -d "$CACHE/bin/tmp.XXXXXX")"
  GOBIN="$tmpbin" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >&2
  mv "$tmpbin/builder" "$builder"
  rmdir "$tmpbin"
fi

# Build in a scratch copy so relative paths in the manifest resolve the same
# whatever OCB takes them relative to, and a failed build leaves no half dir.
work="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "$SRC/builder-config.yaml" "$work/"
# The manifest's `replaces:` point at ../otelwasm from the generated module.
tar -xzf "$OTELWASM_TGZ" -C "$work"
[ -d "$work/otelwasm/wasmprocessor" ] || { echo "no otelwasm/wasmprocessor in $OTELWASM_TGZ" >&2; exit 1; }
echo "building the Collector (OCB $OCB_VERSION) in $work; takes minutes on 2 cores" >&2
# OCB generates the sources; the module step is ours. OCB's own step runs
# `go mod tidy`, which also fetches the *test* dependencies of every
# component, and the module proxy serves some of those for no version
# (fileexporter's tests need otlpencodingextension: "403 Forbidden: This
# module version is not available"). `go build -mod=mod` resolves only
# what the binary imports.
(cd "$work" && "$builder" --config builder-config.yaml --skip-compilation --skip-get-modules >&2)
{
  printf 'module uwsgi-red.example/otelcol-uwsgi-red\n\ngo 1.25.0\n\nrequire (\n'
  # Core modules at the release the manifest pins, so MVS cannot float them.
  for m in component confmap exporter extension processor receiver; do printf '\tgo.opentelemetry.io/collector/%s %s\n' "$m" "$CORE_STABLE"; done
  for m in connector otelcol service; do printf '\tgo.opentelemetry.io/collector/%s %s\n' "$m" "$OCB_VERSION"; done
  sed -nE 's/^[[:space:]]*- gomod:[[:space:]]*(.*)$/\t\1/p' "$work/builder-config.yaml"
  printf ')\n\n'
  # `replaces:` entries (`- MODULE => PATH`) become replace directives.
  sed -nE '/^replaces:/,/^[^[:space:]-]/s/^[[:space:]]*-[[:space:]]*([^[:space:]]+[[:space:]]*=>[[:space:]]*[^[:space:]]+)[[:space:]]*$/replace \1/p' "$work/builder-config.yaml"
} >"$work/_build/go.mod"
# Module hashes are pinned by the committed otelcol.go.sum. sum.golang.org
# has no record of some contrib releases the proxy serves (pkg/stanza
# v0.155.0: "404 Not Found" from the sumdb lookup), so the checksum database
# is skipped for contrib only; go.sum still verifies every download.
cp "$SRC/otelcol.go.sum" "$work/_build/go.sum"
(cd "$work/_build" && GONOSUMDB="github.com/open-telemetry/opentelemetry-collector-contrib" \
  GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o otelcol-uwsgi-red . >&2)
[ -x "$work/_build/otelcol-uwsgi-red" ] || { echo "OCB produced no binary" >&2; exit 1; }
rm -rf "$out"
mv "$work" "$out"
trap - EXIT
echo "$bin"
