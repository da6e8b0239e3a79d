"""The 1 MB stats document (testdata/fixtures/stats_64x16_load.json: 64 workers x 16 threads,
--enable-metrics --memory-report, 128 requests in flight) through decode + map + Prometheus text,
natively and inside wasm32-wasip1 under wasmtime (bench/crates/stats-wasm-bench, one code path), against
Python's json.loads merely parsing the same bytes, all in one run. Each figure is the fastest of
15 rounds: on a shared machine a slower round measures the other processes. Prints:
  BENCH stats_1mb_decode_map_encode_ms <v> ms   (stats::scrape, native)
  BENCH stats_1mb_owned_path_ms <v> ms          (decode + map_document + encode_text, native)
  BENCH stats_1mb_json_loads_ms <v> ms
  BENCH stats_1mb_vs_json_loads_ratio <scrape / json.loads> x
  BENCH stats_1mb_wasm_ms <v> ms                (stats::scrape in Wasm)
  BENCH stats_1mb_cpu_vs_json_loads_ratio <v> x  (the same ratio in CPU time per scrape / parse)
The last line divides CPU time by work done on both sides (the native process's
user+system time over all its scrapes, json.loads's process time over all its
parses): on a machine shared with other jobs the wall-clock figures above swing
up to 2x between runs, CPU time far less.
"""
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "testdata" / "fixtures" / "stats_64x16_load.json"
# Native: profile `native` (opt-level 3, as dist/uwsgi-red); Wasm: "release".
NATIVE = ROOT / "target" / "native" / "stats-wasm-bench"
MODULE = ROOT / "target" / "wasm32-wasip1" / "release" / "stats-wasm-bench.wasm"
ITERATIONS = 10
ROUNDS = 15


def build():
    for how in (["--profile", "native"], ["--release", "--target", "wasm32-wasip1"]):
        subprocess.run(["cargo", "build", *how, "--locked", "-p", "stats-wasm-bench"], cwd=ROOT, check=True)
    for f in (NATIVE, MODULE):
        if not f.exists():
            sys.exit(f"{f} was not built")


def parse(line):
    fields = dict(kv.split("=") for kv in line.split())
    return int(fields["total_ns"]) / int(fields["iterations"]) / 1e6, int(fields["out_bytes"])


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def native(mode):
    p = subprocess.run([str(NATIVE), str(ITERATIONS), mode], capture_output=True, text=True, check=True)
    return parse(p.stdout.strip())


def native_cpu_ms(mode):
    """CPU time per scrape of one run of the native binary (its warm-up included)."""
    before = children_cpu_s()
    subprocess.run([str(NATIVE), str(ITERATIONS), mode], capture_output=True, check=True)
    scrapes = ITERATIONS // 10 + 1 + ROUNDS * ITERATIONS
    return (children_cpu_s() - before) / scrapes * 1e3


def wasm(mode):
    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(MODULE))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stdout"
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["stats-wasm-bench", str(ITERATIONS), mode]
        wasi.stdout_file = str(out)
        wasi.inherit_stderr()
        store.set_wasi(wasi)
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as e:
            if e.code != 0:
                sys.exit(f"stats-wasm-bench exited with {e.code}")
        return parse(out.read_text().strip())


def json_loads_ms(raw):
    """(fastest round's wall-clock ms, CPU ms per parse over all rounds)"""
    json.loads(raw)
    best = float("inf")
    cpu = time.process_time()
    for _ in range(ROUNDS):
        t = time.perf_counter()
        for _ in range(ITERATIONS):
            json.loads(raw)
        best = min(best, (time.perf_counter() - t) / ITERATIONS)
    cpu = (time.process_time() - cpu) / (ROUNDS * ITERATIONS)
    return best * 1e3, cpu * 1e3


def main():
    build()
    raw = DOC.read_bytes()
    fast_ms, out_bytes = native("1mb")
    py_ms, py_cpu_ms = json_loads_ms(raw)
    cpu_ms = native_cpu_ms("1mb")
    owned_ms, _ = native("1mb-owned")
    wasm_ms, wasm_out = wasm("1mb")
    if wasm_out != out_bytes:
        sys.exit(f"Wasm wrote {wasm_out} bytes of text, native {out_bytes}")
    print(f"# document {len(raw)} bytes -> {out_bytes} bytes of Prometheus text")
    print(f"BENCH stats_1mb_decode_map_encode_ms {fast_ms:.3f} ms")
    print(f"BENCH stats_1mb_owned_path_ms {owned_ms:.3f} ms")
    print(f"BENCH stats_1mb_json_loads_ms {py_ms:.3f} ms")
    print(f"BENCH stats_1mb_vs_json_loads_ratio {fast_ms / py_ms:.3f} x")
    print(f"BENCH stats_1mb_wasm_ms {wasm_ms:.3f} ms")
    print(f"# CPU time: {cpu_ms:.3f} ms per scrape, json.loads {py_cpu_ms:.3f} ms per parse")
    print(f"BENCH stats_1mb_cpu_vs_json_loads_ratio {cpu_ms / py_cpu_ms:.3f} x")


if __name__ == "__main__":
    main()
