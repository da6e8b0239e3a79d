#!/usr/bin/env bash
# Reproducible builds: clean clones of one commit, at different paths with
# their own target directories, must build byte-identical dist/*.wasm and
# identical OCI image layouts (so identical digests).
#   scripts/repro-check.sh [COMMIT]   two clones, every module + `./build.sh oci`,
#                                     compared with each other (default HEAD;
#                                     committed work only)
#   scripts/repro-check.sh --quick    this working tree copied to another path, the
#                                     four proxy-wasm modules built there with their
#                                     own target dir, compared with this checkout's
#                                     dist/ (./build.sh test runs it after `build`:
#                                     66 s of CPU, 4 min wall on the shared machine)
# Prints one sha256 per artifact and `BENCH repro_check_seconds N s`; exits 1
# naming every artifact that differs. Uses the shared caches (cargo registry,
# the pinned nightly, wasm-opt) but no build output of the clones' origin.
# The full check costs two cold builds (10-23 min wall, 4 min CPU on the shared
# 2-core machine): run it before a release and after bumping
# rust-toolchain-nightly or Cargo.lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
quick=0
[ "${1:-}" = --quick ] && { quick=1; shift; }
commit="$(git -C "$ROOT" rev-parse "${1:-HEAD}")"
# The modules build.sh ships (WASM_PLUGINS) without the build.d hooks; quick:
# the nightly -Zbuild-std ones, whose bytes depend on the most (paths of the
# checkout, the sysroot and CARGO_HOME are remapped by build_small).
modules=(red-filter noop-filter uwsgi-tcp otel-processor uwsgi-stats)
((quick)) && modules=(red-filter noop-filter uwsgi-tcp uwsgi-stats)
work="$(mktemp -d "${TMPDIR:-/tmp}/uwsgi-red-repro.XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$SECONDS

build_in() {  # build_in DIR: clone (quick: copy the working tree), build, list digests in DIR.sums
  local dir="$1"
  if ((quick)); then
    mkdir -p "$dir"
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$dir"
  else
    git clone --quiet --no-local --no-checkout "$ROOT" "$dir"
    git -C "$dir" checkout --quiet "$commit"
  fi
  (cd "$dir" && ./build.sh build "${modules[@]}" >"$dir.log" 2>&1 && { ((quick)) || ./build.sh oci >>"$dir.log" 2>&1; }) \
    || { echo "build in $dir failed; log:" >&2; tail -n 30 "$dir.log" >&2; exit 1; }
  sums "$dir/dist" >"$dir.sums"
}

sums() {  # every module, and every file of every OCI layout (content-addressed
  # blobs plus index.json/oci-layout), as paths relative to dist/. Not
  # dist/oci/digests.json: a summary naming the layouts' absolute paths.
  local m
  (cd "$1" && { for m in "${modules[@]}"; do echo "./$m.wasm"; done
                ((quick)) || find ./oci -mindepth 2 -type f; } | LC_ALL=C sort | xargs sha256sum)
}

if ((quick)); then
  echo "repro-check --quick: this working tree copied to $work/b, built cold, against $ROOT/dist" >&2
  sums "$ROOT/dist" >"$work/a.sums"
else
  echo "repro-check of $commit in $work/a and $work/b (two cold builds)" >&2
  build_in "$work/a"
fi
build_in "$work/b"
cat "$work/a.sums"
grep -c . "$work/a.sums" | xargs -I{} echo "{} artifacts compared" >&2
echo "BENCH repro_check_seconds $((SECONDS - start)) s"
if ! diff -u "$work/a.sums" "$work/b.sums" >&2; then
  echo "NOT reproducible: the artifacts above differ between the two builds" >&2
  exit 1
fi
echo "reproducible: every module (and OCI digest) is identical in both builds" >&2
