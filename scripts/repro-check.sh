#!/usr/bin/env bash
# Reproducible builds: two clean clones of one commit, at two different
# paths with their own target directories, must build byte-identical
# dist/*.wasm and identical OCI image layouts (so identical digests).
#   scripts/repro-check.sh [COMMIT]   default HEAD; committed work only
# Prints one sha256 per artifact and `BENCH repro_check_seconds N s`;
# exits 1 naming every artifact that differs. Uses the shared caches
# (cargo registry, the pinned nightly, wasm-opt) but no build output of
# this checkout. About 2 x (one cold `./build.sh build` of the Wasm modules +
# `./build.sh oci`): too slow for CI's budget, so CI does not run it; run it
# before a release and after bumping rust-toolchain-nightly or Cargo.lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
commit="$(git -C "$ROOT" rev-parse "${1:-HEAD}")"
# The modules build.sh ships (WASM_PLUGINS) without the build.d hooks.
modules=(red-filter noop-filter uwsgi-tcp otel-processor uwsgi-stats)
work="$(mktemp -d "${TMPDIR:-/tmp}/uwsgi-red-repro.XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$SECONDS

build_in() {  # build_in DIR: clone, build, list digests in DIR.sums
  local dir="$1"
  git clone --quiet --no-local --no-checkout "$ROOT" "$dir"
  git -C "$dir" checkout --quiet "$commit"
  (cd "$dir" && ./build.sh build "${modules[@]}" >"$dir.log" 2>&1 && ./build.sh oci >>"$dir.log" 2>&1) \
    || { echo "build in $dir failed; log:" >&2; tail -n 30 "$dir.log" >&2; exit 1; }
  # Every module, and every file of every OCI layout (content-addressed
  # blobs plus index.json/oci-layout), as paths relative to dist/.
  (cd "$dir/dist" && { ls ./*.wasm; find ./oci -type f; } | LC_ALL=C sort | xargs sha256sum) >"$dir.sums"
}

echo "repro-check of $commit in $work/a and $work/b (two cold builds)" >&2
build_in "$work/a"
build_in "$work/b"
cat "$work/a.sums"
grep -c . "$work/a.sums" | xargs -I{} echo "{} artifacts compared" >&2
echo "BENCH repro_check_seconds $((SECONDS - start)) s"
if ! diff -u "$work/a.sums" "$work/b.sums" >&2; then
  echo "NOT reproducible: the artifacts above differ between two clean clones of $commit" >&2
  exit 1
fi
echo "reproducible: every module and OCI digest is identical in both clones" >&2
