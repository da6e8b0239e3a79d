"""The uwsgi-red OpenTelemetry Collector (OCB build, scripts/setup.d/otelcol.sh)
running dist/otel-processor.wasm: real gunicorn and uWSGI send StatsD to the
Collector's statsd receiver, the filelog receiver tails captured request
logs, and the file exporter's OTLP JSON is checked series by series.
"""
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from conftest import (APPS, ROOT, Proc, free_port, gunicorn_bin, http, uwsgi_bin, wait_for, wait_port,
                      wasm)

VECTORS = ROOT / "core" / "tests" / "vectors"
LOG_VECTORS = ["uwsgi_reqlog_http_socket.log", "uwsgi_fulllog_logdate.log",
               "gunicorn_access_default.log", "gunicorn_access_custom_M.log"]
EXAMPLE = ROOT / "examples" / "otel-collector" / "config.yaml"

# gunicorn request mix: path -> (count, status)
GUNICORN_MIX = {"/": (5, 200), "/notfound": (2, 404), "/status/503": (3, 503), "/error": (1, 500),
                "/status/201": (2, 201)}
UWSGI_REQUESTS = ["/", "/", "/", "/notfound", "/error", "/status/204", "/", "/slow?s=0.05", "/"]


def otelcol_bin():
    path = subprocess.run(["bash", str(ROOT / "scripts" / "setup.d" / "otelcol.sh"), "--path"],
                          capture_output=True, text=True, check=True).stdout.strip()
    if not os.access(path, os.X_OK):
        pytest.fail(f"Collector not built at {path}: run `bash scripts/setup.d/otelcol.sh` "
                    "(./build.sh test does this; needs Go and the Go module proxy)")
    return path


def collector_config(tmp, statsd, otlp_http, prom, wasm_path):
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_http}
  statsd:
    endpoint: 127.0.0.1:{statsd}
    aggregation_interval: 1s
    is_monotonic_counter: true
    timer_histogram_mapping:
      - statsd_type: timing
        observer_type: histogram
        histogram:
          max_size: 160
  file_log:
    include: ["{tmp}/logs/*.log"]
    start_at: beginning
processors:
  wasm:
    path: {wasm_path}
    plugin_config:
      uwsgi_prefixes: [uwsgi]
      services:
        app: gunicorn-app
        uwsgi: uwsgi-app
exporters:
  file/metrics:
    path: {tmp}/metrics.json
    flush_interval: 100ms
  file/logs:
    path: {tmp}/logs.json
    flush_interval: 100ms
  prometheus:
    endpoint: 127.0.0.1:{prom}
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp, statsd]
      processors: [wasm]
      exporters: [file/metrics, prometheus]
    logs:
      receivers: [file_log]
      processors: [wasm]
      exporters: [file/logs]
"""


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("otelcol")
    (tmp / "logs").mkdir()
    for name in LOG_VECTORS:
        shutil.copy(VECTORS / name, tmp / "logs" / name)
    ports = {"statsd": free_port(), "otlp_http": free_port(), "prom": free_port()}
    cfg = tmp / "config.yaml"
    cfg.write_text(collector_config(tmp, wasm_path=wasm("otel-processor"), **ports))
    proc = Proc("otelcol", [otelcol_bin(), "--config", str(cfg)], tmp)
    try:
        wait_port(ports["prom"], 30, proc)
        wait_for(lambda: "Everything is ready" in proc.log(), 30, what="collector ready")
        yield {"proc": proc, "tmp": tmp, **ports}
    finally:
        proc.stop()


def otlp_lines(path):
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out


def attrs(kvs):
    out = {}
    for kv in kvs or []:
        v = kv.get("value", {})
        if "stringValue" in v:
            out[kv["key"]] = v["stringValue"]
        elif "intValue" in v:
            out[kv["key"]] = int(v["intValue"])
        elif "doubleValue" in v:
            out[kv["key"]] = float(v["doubleValue"])
        elif "boolValue" in v:
            out[kv["key"]] = v["boolValue"]
        else:
            out[kv["key"]] = v
    return out


def datapoints(tmp):
    """[(resource attrs, metric dict, kind, data point dict, point attrs)]"""
    out = []
    for doc in otlp_lines(tmp / "metrics.json"):
        for rm in doc.get("resourceMetrics", []):
            res = attrs(rm.get("resource", {}).get("attributes"))
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
                        if kind in m:
                            for dp in m[kind].get("dataPoints", []):
                                out.append((res, m, kind, dp, attrs(dp.get("attributes"))))
    return out


def number(dp):
    return int(dp["asInt"]) if "asInt" in dp else float(dp.get("asDouble", 0))


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


# --- gunicorn -> statsd receiver -> wasm -> file exporter -------------------

@pytest.fixture(scope="module")
def gunicorn_run(collector):
    port = free_port()
    g = Proc("gunicorn-statsd", [gunicorn_bin(), "--chdir", str(APPS), "-w", "2", "-b", f"127.0.0.1:{port}",
                                 "--statsd-host", f"127.0.0.1:{collector['statsd']}", "--statsd-prefix", "app",
                                 "app:application"], collector["tmp"])
    try:
        wait_port(port, 20, g)
        for path, (n, status) in GUNICORN_MIX.items():
            for _ in range(n):
                code, _, _ = http("GET", f"http://127.0.0.1:{port}{path}")
                assert code == status, path
        yield sum(n for n, _ in GUNICORN_MIX.values())
    finally:
        g.stop()


def gunicorn_counts(tmp):
    counts = Counter()
    for res, m, kind, dp, a in datapoints(tmp):
        if res.get("service.name") == "gunicorn-app" and m["name"] == "http.server.request.count":
            counts[a["http.response.status_code"]] += number(dp)
    return counts


def test_gunicorn_statsd_becomes_http_semconv(collector, gunicorn_run):
    tmp = collector["tmp"]
    expected = Counter({status: n for n, status in GUNICORN_MIX.values()})
    wait_for(lambda: gunicorn_counts(tmp) == expected, 20, what=f"gunicorn counts {expected}")
    time.sleep(1.5)  # one more aggregation interval: nothing may arrive twice
    assert gunicorn_counts(tmp) == expected

    pts = [p for p in datapoints(tmp) if p[0].get("service.name") == "gunicorn-app"]
    for res, m, kind, dp, a in pts:
        if m["name"] == "http.server.request.count":
            assert (kind, m["unit"], m["sum"]["isMonotonic"]) == ("sum", "{request}", True)
            assert a.get("error.type") == (str(a["http.response.status_code"])
                                           if a["http.response.status_code"] >= 500 else None)
    hist = [(m, dp) for res, m, kind, dp, a in pts if m["name"] == "http.server.request.duration"]
    assert hist and all(m["unit"] == "s" and "histogram" in m for m, _ in hist)
    assert sum(int(dp["count"]) for _, dp in hist) == gunicorn_run
    for _, dp in hist:
        assert sum(int(c) for c in dp["bucketCounts"]) == int(dp["count"])
        assert dp["explicitBounds"][0] == 0.005
        # The app answers in well under a second: seconds, not milliseconds.
        assert 0 < float(dp["sum"]) < int(dp["count"]) * 1.0
    workers = [number(dp) for res, m, kind, dp, a in pts if m["name"] == "gunicorn.workers"]
    assert workers and workers[-1] == 2
    names = {m["name"] for _, m, _, _, _ in datapoints(tmp)}
    assert not any(n.startswith("app.gunicorn.") for n in names), names


def test_gunicorn_red_on_prometheus_exporter(collector, gunicorn_run):
    from conftest import samples
    text = wait_for(lambda: (t := get(f"http://127.0.0.1:{collector['prom']}/metrics"))
                    and "http_server_request_count" in t and t, 15, what="prometheus exporter")
    got = {int(l["http_response_status_code"]): v
           for l, v in samples(text, "http_server_request_count_total") if l.get("job") == "gunicorn-app"}
    # The exporter accumulates delta sums into totals.
    assert got == {status: n for n, status in GUNICORN_MIX.values()}, text[:2000]


# --- uWSGI --stats-push statsd -> statsd receiver -> wasm ------------------

def uwsgi_latest(tmp):
    """Latest cumulative request count per worker and the worker ids seen."""
    latest = {}
    for res, m, kind, dp, a in datapoints(tmp):
        if res.get("service.name") == "uwsgi-app" and m["name"] == "http.server.request.count":
            t = int(dp["timeUnixNano"])
            w = a["worker.id"]
            if w not in latest or t >= latest[w][0]:
                latest[w] = (t, number(dp))
    return {w: v for w, (_, v) in latest.items()}


def test_uwsgi_stats_push_becomes_http_semconv(collector):
    tmp = collector["tmp"]
    port = free_port()
    u = Proc("uwsgi-statsd", [uwsgi_bin(), "--master", "--processes", "2", "--http-socket", f"127.0.0.1:{port}",
                              "--wsgi-file", str(APPS / "app.py"), "--enable-metrics",
                              "--stats-push", f"statsd:127.0.0.1:{collector['statsd']},uwsgi",
                              "--stats-pusher-default-freq", "2", "--die-on-term"], tmp)
    try:
        wait_port(port, 20, u)
        for path in UWSGI_REQUESTS:
            http("GET", f"http://127.0.0.1:{port}{path}")
        n = len(UWSGI_REQUESTS)
        wait_for(lambda: sum(uwsgi_latest(tmp).values()) == n, 25, what=f"uWSGI total {n}")
    finally:
        u.stop()
    latest = uwsgi_latest(tmp)
    assert set(latest) == {1, 2}, latest  # worker 0 (the aggregate) is not repeated
    assert sum(latest.values()) == n

    pts = [p for p in datapoints(tmp) if p[0].get("service.name") == "uwsgi-app"]
    by_name = defaultdict(list)
    for res, m, kind, dp, a in pts:
        by_name[m["name"]].append((m, kind, dp, a))
    for m, kind, dp, a in by_name["http.server.request.count"]:
        assert kind == "sum" and m["sum"]["aggregationTemporality"] == 2 and m["sum"]["isMonotonic"]
    states = {a["uwsgi.worker.state"] for _, _, _, a in by_name["uwsgi.workers"]}
    assert states == {"busy", "idle"}
    avg = by_name["uwsgi.worker.average_response_time"]
    assert avg and all(m["unit"] == "s" and kind == "gauge" and a["worker.id"] in (1, 2) for m, kind, _, a in avg)
    # Microseconds became seconds: no average above the 10 s the app allows.
    assert all(number(dp) < 10 for _, _, dp, _ in avg)
    assert by_name["process.memory.usage"]
    names = {m["name"] for _, m, _, _, _ in datapoints(tmp)}
    assert not any(n.startswith("uwsgi.worker.0") or n.startswith("uwsgi.worker.1.") for n in names), names


# --- untouched pass-through ---------------------------------------------------

def test_unrelated_otlp_metric_passes_untouched(collector):
    tmp = collector["tmp"]
    body = {"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "other"}}]},
        "scopeMetrics": [{"scope": {"name": "test"}, "metrics": [{
            "name": "queue.depth", "unit": "{item}",
            "gauge": {"dataPoints": [{"asInt": "42", "timeUnixNano": str(time.time_ns()),
                                      "attributes": [{"key": "queue", "value": {"stringValue": "q1"}}]}]}}]}]}]}
    code, _, resp = http("POST", f"http://127.0.0.1:{collector['otlp_http']}/v1/metrics",
                         json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert code == 200, resp

    def found():
        return [(res, m, dp, a) for res, m, kind, dp, a in datapoints(tmp) if m["name"] == "queue.depth"]
    res, m, dp, a = wait_for(found, 10, what="queue.depth")[0]
    assert (res, m["unit"], number(dp), a) == ({"service.name": "other"}, "{item}", 42, {"queue": "q1"})
    assert "sum" not in m and "gauge" in m


# --- filelog -> wasm: structured request logs -------------------------------

def log_records(tmp):
    out = []
    for doc in otlp_lines(tmp / "logs.json"):
        for rl in doc.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                for rec in sl.get("logRecords", []):
                    out.append((rec.get("body", {}).get("stringValue", ""), attrs(rec.get("attributes")), rec))
    return out


def test_filelog_request_lines_become_structured(collector):
    tmp = collector["tmp"]
    total = sum(len((VECTORS / n).read_text().splitlines()) for n in LOG_VECTORS)
    recs = wait_for(lambda: (r := log_records(tmp)) and len(r) >= total and r, 30, what=f"{total} log records")
    assert len(recs) == total
    parsed = [(b, a) for b, a, _ in recs if a.get("uwsgi_red.log.parsed") is True]
    unparsed = [(b, a) for b, a, _ in recs if a.get("uwsgi_red.log.parsed") is False]
    assert len(parsed) + len(unparsed) == total
    # 17 + 7 uWSGI request lines, 20 + 20 gunicorn lines; the rest of the full
    # log (banner, traceback, shutdown) passes through marked unparsed.
    assert Counter(a["uwsgi_red.log.format"] for _, a in parsed) == {"uwsgi": 24, "gunicorn": 20,
                                                                      "gunicorn_millis": 20}
    assert all(not b.startswith("[pid: ") for b, _ in unparsed)
    assert any(b.startswith("Traceback") for b, _ in unparsed)

    def one(fmt, path, **match):
        hits = [a for _, a in parsed if a["uwsgi_red.log.format"] == fmt and a["url.path"] == path
                and all(a.get(k) == v for k, v in match.items())]
        assert len(hits) >= 1, (fmt, path, match)
        return hits[0]

    slow = one("uwsgi", "/slow", **{"url.query": "s=2"})
    assert slow["http.server.request.duration"] == 2.0
    assert (slow["process.pid"], slow["uwsgi.core.id"], slow["http.response.status_code"]) == (23927, 1, 200)
    assert (slow["http.request.method"], slow["network.protocol.version"]) == ("GET", "1.1")
    raise_ = one("uwsgi", "/raise", **{"uwsgi.worker.requests": 5})
    assert (raise_["http.response.status_code"], raise_["error.type"], raise_["http.response.body.size"]) \
        == (500, "500", 0)
    alice = one("gunicorn", "/private")
    assert (alice["enduser.id"], alice["user_agent.original"], alice["client.address"]) \
        == ("alice", "curl/7.88.1", "127.0.0.1")
    gslow = one("gunicorn_millis", "/slow")
    assert gslow["http.server.request.duration"] == 1.5
    notfound = one("gunicorn", "/notfound")
    assert notfound["http.response.status_code"] == 404 and "error.type" not in notfound
    # gunicorn logs carry a UTC offset, so their records get the real time.
    g_times = {int(rec["timeUnixNano"]) for b, a, rec in recs if a.get("uwsgi_red.log.format") == "gunicorn"}
    assert min(g_times) == 1_795_320_751_000_000_000


# --- validate ------------------------------------------------------------------

def test_example_config_validates():
    env = dict(os.environ, UWSGI_RED_OTEL_WASM=wasm("otel-processor"))
    r = subprocess.run([otelcol_bin(), "validate", "--config", str(EXAMPLE)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # The documented default path (run from the repository root) works too.
    r = subprocess.run([otelcol_bin(), "validate", "--config", str(EXAMPLE)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    env["UWSGI_RED_OTEL_WASM"] = "/nonexistent/otel-processor.wasm"
    r = subprocess.run([otelcol_bin(), "validate", "--config", str(EXAMPLE)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "/nonexistent/otel-processor.wasm" in r.stdout + r.stderr
