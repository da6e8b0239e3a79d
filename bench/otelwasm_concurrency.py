"""Repro of otelwasm's missing lock (examples/otel-collector/OTELWASM-CONCURRENCY.md),
and the check that the shipped pipeline shape avoids it.

The same load, CLIENTS concurrent OTLP/HTTP clients x BATCHES batches of
POINTS gauge points, goes to two Collectors (the project's OCB build with
otelwasm's `wasm` processor):
  unserialised:  otlp -> [wasm]         -> file   (runtime compiled, then interpreter)
  shipped shape: otlp -> [batch, wasm]  -> file   (runtime compiled)
and the script counts non-200 answers, points that reached the file
exporter, and whether the Collector log shows a panic or wazero's
"out of bounds memory access". Not a test: the unserialised case is a race,
its numbers vary from run to run.

Prints `BENCH otelwasm_unserialised_failed_batches <n> batches`,
`BENCH otelwasm_unserialised_lost_points <n> points` and the same two for the
shipped shape (expected 0).
"""
import json
import os
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
from harness import Proc, free_port, http, wait_port  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
BATCHES = int(os.environ.get("BENCH_BATCHES", "25"))
POINTS = 200
MAX_SECONDS = 60


def otelcol_bin():
    return subprocess.run(["bash", str(ROOT / "scripts/setup.d/otelcol.sh"), "--path"], capture_output=True,
                          text=True, check=True).stdout.strip()


def config(port, out, processors, mode):
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
processors:
  batch:
    timeout: 100ms
  wasm:
    path: {ROOT / 'dist/otel-processor.wasm'}
    runtime:
      mode: {mode}
exporters:
  file:
    path: {out}
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [{", ".join(processors)}]
      exporters: [file]
"""


def payload(c, b):
    pts = [{"asInt": "1", "timeUnixNano": str(time.time_ns()),
            "attributes": [{"key": "k", "value": {"stringValue": f"{c}/{b}/{i}"}}]} for i in range(POINTS)]
    return json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "load.points", "gauge": {"dataPoints": pts}}]}]}]}).encode()


def points_in(out):
    if not out.exists():
        return 0
    n = 0
    for line in out.read_text().splitlines():
        for rm in json.loads(line).get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    n += len(m.get("gauge", {}).get("dataPoints", []))
    return n


def run(tmp, name, processors, mode="compiled"):
    port = free_port()
    out = Path(tmp) / f"{name}.json"
    cfg = Path(tmp) / f"{name}.yaml"
    cfg.write_text(config(port, out, processors, mode))
    proc = Proc(name, [otelcol_bin(), "--config", str(cfg)], tmp)
    codes = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + MAX_SECONDS
    try:
        wait_port(port, 30, proc)

        def client(c):
            for b in range(BATCHES):
                if time.monotonic() > deadline:
                    return
                try:
                    code, _, _ = http("POST", f"http://127.0.0.1:{port}/v1/metrics", payload(c, b),
                                      {"Content-Type": "application/json"})
                except OSError as e:  # the Collector died
                    code = type(e).__name__
                with lock:
                    codes[code] += 1
        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(MAX_SECONDS)
        time.sleep(1.5)  # let the file exporter flush; not an assertion
        log = proc.log()
        panic = next((i for i, l in enumerate(log.splitlines()) if l.startswith("panic")), None)
        if panic is not None:
            print(f"# {name}: " + "\n# ".join(log.splitlines()[panic:panic + 12]))
        return {"exited": proc.poll() is not None,"failed": sum(v for k, v in codes.items() if k != 200), "codes": dict(codes),
                "lost": CLIENTS * BATCHES * POINTS - points_in(out),
                "panic": "panic" in log, "oob": "out of bounds memory access" in log}
    finally:
        proc.stop()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        bad = run(tmp, "otelcol-unserialised", ["wasm"])
        bad_interp = run(tmp, "otelcol-unserialised-interpreter", ["wasm"], "interpreter")
        good = run(tmp, "otelcol-batched", ["batch", "wasm"])
    print(f"# unserialised [wasm], compiled: {bad}")
    print(f"# unserialised [wasm], interpreter: {bad_interp}")
    print(f"# shipped [batch, wasm], compiled: {good}")
    print(f"BENCH otelwasm_unserialised_failed_batches {bad['failed']} batches")
    print(f"BENCH otelwasm_unserialised_lost_points {bad['lost']} points")
    print(f"BENCH otelwasm_unserialised_interpreter_failed_batches {bad_interp['failed']} batches")
    print(f"BENCH otelwasm_unserialised_interpreter_lost_points {bad_interp['lost']} points")
    print(f"BENCH otelwasm_batched_failed_batches {good['failed']} batches")
    print(f"BENCH otelwasm_batched_lost_points {good['lost']} points")


if __name__ == "__main__":
    main()
