"""otel-processor cost, two ways, one run:

1. In the processor: dist/otel-processor.wasm under wasmtime (PyPI; the
   otelwasm host ABI played by host-tests/test_otel_processor_abi.Guest),
   processMetrics on a 1 000-data-point OTLP batch shaped like the statsd
   receiver's gunicorn output (status counters, timer histograms, unrelated
   gauges). Median of CALLS calls, host copy included.
2. Through the real Collector (OCB build, otelwasm's `wasm` processor):
   OTLP/HTTP protobuf batches of 1 000 data points posted back to back by
   one client (so the processor is never called concurrently) to a
   Collector whose metrics pipeline is otlp -> [wasm] -> debug(basic),
   without the processor, with it in otelwasm's `compiled` runtime mode and
   in its default `interpreter` mode; data points/s of each.

Prints `BENCH otel_processor_us_per_1k <v> us`,
`BENCH otelwasm_compiled_points_per_s <v> points/s`,
`BENCH otelwasm_interpreter_points_per_s <v> points/s`, the rate without the
processor and `BENCH otel_pipeline_ratio <v> x` (compiled / without).
"""
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
from harness import Proc, free_port, wait_port  # noqa: E402
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData  # noqa: E402
from test_otel_processor_abi import Guest  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "300"))
BATCHES = int(os.environ.get("BENCH_BATCHES", "400"))
MAX_SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
POINTS = 1000


def batch(points=POINTS):
    """`points` data points: 60 % status counters, 20 % timers, 20 % unrelated."""
    md = MetricsData()
    sm = md.resource_metrics.add().scope_metrics.add()
    now = time.time_ns()
    for i in range(points):
        m = sm.metrics.add()
        kind = i % 5
        if kind < 3:
            m.name = f"app{i % 7}.gunicorn.request.status.{(200, 404, 500)[kind]}"
            m.sum.aggregation_temporality = 1
            m.sum.is_monotonic = True
            dp = m.sum.data_points.add()
            dp.as_int = i
        elif kind == 3:
            m.name = f"app{i % 7}.gunicorn.request.duration"
            m.exponential_histogram.aggregation_temporality = 1
            dp = m.exponential_histogram.data_points.add()
            dp.count, dp.sum, dp.scale = 12, 30.5, 3
            dp.positive.offset = 5
            dp.positive.bucket_counts.extend([1, 2, 3, 0, 4, 2])
        else:
            m.name = f"queue{i}.depth"
            dp = m.gauge.data_points.add()
            dp.as_double = i / 3
        dp.start_time_unix_nano, dp.time_unix_nano = now - 10**9, now
    return md.SerializeToString()


def us_per_1k(payload):
    g = Guest(b'{"services":{"app0":"shop"}}')
    for _ in range(20):  # warm-up: buffer growth, caches
        status, result, reason = g.call("processMetrics", payload)
        assert status == 0 and reason is None and result, reason
    times = []
    for _ in range(CALLS):
        t0 = time.perf_counter()
        g.call("processMetrics", payload)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def otelcol_bin():
    return subprocess.run(["bash", str(ROOT / "scripts/setup.d/otelcol.sh"), "--path"], capture_output=True,
                          text=True, check=True).stdout.strip()


def config(port, mode):
    with_wasm = mode is not None
    processors = f"""
processors:
  wasm:
    path: {ROOT / 'dist/otel-processor.wasm'}
    runtime:
      mode: {mode}
""" if with_wasm else ""
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
{processors}
exporters:
  debug:
    verbosity: basic
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [{'wasm' if with_wasm else ''}]
      exporters: [debug]
"""


def pipeline_rate(payload, mode, tmp):
    port = free_port()
    name = f"otelcol-{mode or 'plain'}"
    cfg = Path(tmp) / f"{name}.yaml"
    cfg.write_text(config(port, mode))
    proc = Proc(name, [otelcol_bin(), "--config", str(cfg)], tmp)
    try:
        wait_port(port, 30, proc)
        url = f"http://127.0.0.1:{port}/v1/metrics"
        headers = {"Content-Type": "application/x-protobuf"}

        def post():
            req = urllib.request.Request(url, data=payload, method="POST", headers=headers)
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 200
        for _ in range(10):
            post()
        sent, t0 = 0, time.perf_counter()
        while sent < BATCHES and time.perf_counter() - t0 < MAX_SECONDS:
            post()
            sent += 1
        elapsed = time.perf_counter() - t0
        return sent * POINTS / elapsed
    finally:
        proc.stop()


def main():
    payload = batch()
    us = us_per_1k(payload)
    with tempfile.TemporaryDirectory() as tmp:
        plain = pipeline_rate(payload, None, tmp)
        compiled = pipeline_rate(payload, "compiled", tmp)
        interpreter = pipeline_rate(payload, "interpreter", tmp)
    print(f"BENCH otel_processor_us_per_1k {us:.1f} us")
    print(f"BENCH otel_pipeline_points_per_s_without {plain:.0f} points/s")
    print(f"BENCH otelwasm_compiled_points_per_s {compiled:.0f} points/s")
    print(f"BENCH otelwasm_interpreter_points_per_s {interpreter:.0f} points/s")
    print(f"BENCH otel_pipeline_ratio {compiled / plain:.3f} x")


if __name__ == "__main__":
    main()
