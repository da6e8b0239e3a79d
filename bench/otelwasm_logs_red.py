"""Request-log records -> RED per route, end to end through the Collector.

OTLP/HTTP log batches of RECORDS gunicorn access-log lines (the README's
format, ending in %(D)s; 8 routes x 4 statuses) are posted back to back to
a Collector (project OCB build) whose pipeline is the example's RED path:
  logs:  otlp -> [batch, wasm (otelwasm, compiled)] -> signal_to_metrics
  metrics/red: signal_to_metrics -> [deltatocumulative] -> prometheus
and the clock stops when the Prometheus endpoint counts every record
(sum of http_server_request_count_total). Bounded by BATCHES and seconds.

Prints `BENCH otel_logs_to_red_records_per_s <v> records/s`.
"""
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
from harness import Proc, free_port, get_text, value, wait_for, wait_port  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue  # noqa: E402
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData  # noqa: E402

RECORDS = 1000
BATCHES = int(os.environ.get("BENCH_BATCHES", "60"))
MAX_SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))


def otelcol_bin():
    return subprocess.run(["bash", str(ROOT / "scripts/setup.d/otelcol.sh"), "--path"], capture_output=True,
                          text=True, check=True).stdout.strip()


def payload():
    ld = LogsData()
    sl = ld.resource_logs.add().scope_logs.add()
    for i in range(RECORDS):
        path = f"/r{i % 8}/{i}"
        status = (200, 201, 404, 503)[i % 4]
        line = (f'127.0.0.1 - - [30/Nov/2026:17:00:00 +0000] "GET {path} HTTP/1.1" {status} 12 "-" "bench" '
                f'{1000 + i}')
        sl.log_records.add().body.CopyFrom(AnyValue(string_value=line))
    return ld.SerializeToString()


def config(otlp, prom):
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  batch:
    timeout: 200ms
  wasm:
    path: {ROOT / 'dist/otel-processor.wasm'}
    runtime:
      mode: compiled
    plugin_config:
      gunicorn_duration_field: D
  deltatocumulative: {{}}
connectors:
  signal_to_metrics:
    logs:
      - name: http.server.request.duration
        unit: s
        conditions: ['attributes["http.server.request.duration"] != nil']
        attributes: [{{key: http.request.method}}, {{key: http.route}}, {{key: http.response.status_code}}]
        histogram:
          buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
          value: Double(attributes["http.server.request.duration"])
      - name: http.server.request.count
        unit: "{{request}}"
        conditions: ['attributes["uwsgi_red.log.parsed"] == true']
        attributes: [{{key: http.request.method}}, {{key: http.route}}, {{key: http.response.status_code}}]
        sum:
          value: "1"
          monotonic: true
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [otlp]
      processors: [batch, wasm]
      exporters: [signal_to_metrics]
    metrics/red:
      receivers: [signal_to_metrics]
      processors: [deltatocumulative]
      exporters: [prometheus]
"""


def main():
    body = payload()
    otlp, prom = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "otelcol-logs-red.yaml"
        cfg.write_text(config(otlp, prom))
        proc = Proc("otelcol-logs-red", [otelcol_bin(), "--config", str(cfg)], tmp)
        try:
            wait_port(prom, 30, proc)
            wait_port(otlp, 30, proc)
            url = f"http://127.0.0.1:{otlp}/v1/logs"

            def post():
                req = urllib.request.Request(url, data=body, method="POST",
                                             headers={"Content-Type": "application/x-protobuf"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    assert r.status == 200

            def counted():
                return value(get_text(f"http://127.0.0.1:{prom}/metrics"), "http_server_request_count_total")
            post()  # warm-up batch, counted before the clock starts
            wait_for(lambda: counted() == RECORDS, 30, interval=0.05, what="warm-up batch counted")
            sent, t0 = 0, time.perf_counter()
            while sent < BATCHES and time.perf_counter() - t0 < MAX_SECONDS:
                post()
                sent += 1
            total = RECORDS * (sent + 1)
            wait_for(lambda: counted() == total, 60, interval=0.05, what=f"{total} records counted")
            elapsed = time.perf_counter() - t0
        finally:
            proc.stop()
    print(f"# {sent} batches of {RECORDS} records in {elapsed:.2f} s")
    print(f"BENCH otel_logs_to_red_records_per_s {sent * RECORDS / elapsed:.0f} records/s")


if __name__ == "__main__":
    main()
