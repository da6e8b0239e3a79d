"""uwsgi head decode throughput inside Wasm: builds bench/crates/uwsgi-wasm-bench
for wasm32-wasip1 (release, same profile as the plugins) and runs it under
wasmtime (the `wasmtime` PyPI package), which compiles it with Cranelift.

Prints `BENCH uwsgi_decode_wasm_mbps <v> MB/s`, the ns per packet, and the
ratio to the same harness run natively.
"""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATE = "uwsgi-wasm-bench"
SECONDS = os.environ.get("UWSGI_WASM_BENCH_SECONDS", "1.5")


def cargo_build(target=None):
    cmd = ["cargo", "build", "--release", "--locked", "-p", CRATE]
    if target:
        cmd += ["--target", target]
    subprocess.run(cmd, cwd=ROOT, check=True)
    sub = f"target/{target}/release" if target else "target/release"
    return ROOT / sub / (CRATE + (".wasm" if target else ""))


def parse(out):
    vals = dict(re.findall(r"^(MBPS|NS_PER_PACKET) ([0-9.]+)$", out, re.M))
    if "MBPS" not in vals:
        sys.exit(f"unexpected harness output:\n{out}")
    return float(vals["MBPS"]), float(vals["NS_PER_PACKET"])


def run_wasm(path):
    import wasmtime

    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(path))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    with tempfile.NamedTemporaryFile(suffix=".out") as out:
        wasi = wasmtime.WasiConfig()
        wasi.argv = [CRATE, SECONDS]
        wasi.stdout_file = out.name
        wasi.inherit_stderr()
        store.set_wasi(wasi)
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as e:
            if e.code != 0:
                raise
        return parse(Path(out.name).read_text())


def main():
    wasm = cargo_build("wasm32-wasip1")
    native = cargo_build()
    w_mbps, w_ns = run_wasm(wasm)
    n_out = subprocess.run([str(native), SECONDS], check=True, capture_output=True, text=True).stdout
    n_mbps, n_ns = parse(n_out)
    print(f"BENCH uwsgi_decode_wasm_mbps {w_mbps:.1f} MB/s")
    print(f"BENCH uwsgi_decode_wasm_ns_per_packet {w_ns:.1f} ns")
    print(f"BENCH uwsgi_decode_harness_native_mbps {n_mbps:.1f} MB/s")
    print(f"BENCH uwsgi_decode_wasm_vs_native_ratio {w_mbps / n_mbps:.2f} x")


if __name__ == "__main__":
    main()
