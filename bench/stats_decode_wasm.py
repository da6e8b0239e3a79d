"""Times core::stats decode + map of the largest captured stats document
inside wasm32-wasip1 under wasmtime (the `wasmtime` PyPI package), using the
bench/crates/stats-wasm-bench module. Prints:
  BENCH stats_decode_wasm_us <v> us
  BENCH stats_decode_wasm_mb_s <v> MB/s
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "target" / "wasm32-wasip1" / "release" / "stats-wasm-bench.wasm"
ITERATIONS = 2000


def build():
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "stats-wasm-bench", "--target", "wasm32-wasip1"],
                   cwd=ROOT, check=True)
    if not MODULE.exists():
        sys.exit(f"{MODULE} was not built")


def run():
    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(MODULE))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stdout"
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["stats-wasm-bench", str(ITERATIONS)]
        wasi.stdout_file = str(out)
        wasi.inherit_stderr()
        store.set_wasi(wasi)
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as e:
            if e.code != 0:
                sys.exit(f"stats-wasm-bench exited with {e.code}")
        line = out.read_text().strip()
    fields = dict(kv.split("=") for kv in line.split())
    per_doc_us = int(fields["total_ns"]) / int(fields["iterations"]) / 1000
    mb_s = int(fields["doc_bytes"]) / per_doc_us
    print(f"BENCH stats_decode_wasm_us {per_doc_us:.2f} us")
    print(f"BENCH stats_decode_wasm_mb_s {mb_s:.1f} MB/s")


if __name__ == "__main__":
    build()
    run()
