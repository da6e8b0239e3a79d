"""The uwsgi-red OpenTelemetry Collector (OCB build with otelwasm's `wasm`
processor, scripts/setup.d/otelcol.sh) running the SHIPPED example config
(examples/otel-collector/config.yaml; only ports and paths are set through
its environment variables) with dist/otel-processor.wasm: real gunicorn and
uWSGI send StatsD and write request logs, the filelog receivers tail them,
and both the file exporter's OTLP JSON and the two Prometheus endpoints are
checked series by series. Also: concurrent OTLP load through the shipped
pipeline, and the processor's refusal reasons in the Collector log.
"""
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from conftest import (APPS, ROOT, Proc, free_port, gunicorn_bin, http, samples, uwsgi_bin, wait_for,
                      wait_port, wasm)

VECTORS = ROOT / "core" / "tests" / "vectors"
UWSGI_LOG_VECTORS = ["uwsgi_reqlog_http_socket.log", "uwsgi_fulllog_logdate.log"]
GUNICORN_LOG_VECTORS = ["gunicorn_access_default.log", "gunicorn_access_custom_M.log"]
EXAMPLE = ROOT / "examples" / "otel-collector" / "config.yaml"
# The access-log format the example documents (README, config.yaml).
GUNICORN_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'

# gunicorn request mix: (method, path, status, times). Routes chosen to be
# absent from the log vectors, so the per-route counts are exact.
GUNICORN_MIX = [("GET", "/users/1", 200, 2), ("GET", "/users/22", 200, 3), ("POST", "/items/7", 201, 3),
                ("GET", "/status/503", 503, 3), ("GET", "/status/404", 404, 2), ("GET", "/status/500", 500, 1)]
# (method, http.route, status) -> requests at the log-derived endpoint, for
# both rounds (GUNICORN_MIX[:3], then GUNICORN_MIX): route templates
# /users/{id} and /status/{code} from the example, /items/7 id-collapsed.
GUNICORN_RED = {("GET", "/users/{id}", "200"): 10, ("POST", "/items/:id", "201"): 6,
                ("GET", "/status/{code}", "503"): 3, ("GET", "/status/{code}", "404"): 2,
                ("GET", "/status/{code}", "500"): 1}
UWSGI_REQUESTS = ["/", "/", "/", "/notfound", "/error", "/status/204", "/", "/slow?s=0.05", "/"]
UWSGI_RED_MIX = [("GET", "/accounts/55", 200, 3), ("GET", "/status/500", 500, 2), ("POST", "/items/9", 201, 1)]
UWSGI_RED = {("GET", "/accounts/:id", "200"): 3, ("GET", "/status/{code}", "500"): 2,
             ("POST", "/items/:id", "201"): 1}


def otelcol_bin():
    path = subprocess.run(["bash", str(ROOT / "scripts" / "setup.d" / "otelcol.sh"), "--path"],
                          capture_output=True, text=True, check=True).stdout.strip()
    if not os.access(path, os.X_OK):
        pytest.fail(f"Collector not built at {path}: run `bash scripts/setup.d/otelcol.sh` "
                    "(./build.sh test does this; needs Go and the Go module proxy)")
    return path


def example_env(tmp, ports):
    """The example's environment overrides: every address and path."""
    return {"UWSGI_RED_OTEL_WASM": wasm("otel-processor"),
            "UWSGI_RED_GUNICORN_LOGS": f"{tmp}/gunicorn/*.log", "UWSGI_RED_UWSGI_LOGS": f"{tmp}/uwsgi/*.log",
            "UWSGI_RED_OUT_DIR": str(tmp),
            "UWSGI_RED_OTLP_GRPC": f"127.0.0.1:{ports['otlp_grpc']}",
            "UWSGI_RED_OTLP_HTTP": f"127.0.0.1:{ports['otlp_http']}",
            "UWSGI_RED_STATSD": f"127.0.0.1:{ports['statsd']}",
            "UWSGI_RED_PROM": f"127.0.0.1:{ports['prom']}",
            "UWSGI_RED_PROM_RED": f"127.0.0.1:{ports['prom_red']}"}


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("otelcol")
    for sub, names in (("gunicorn", GUNICORN_LOG_VECTORS), ("uwsgi", UWSGI_LOG_VECTORS)):
        (tmp / sub).mkdir()
        for name in names:
            shutil.copy(VECTORS / name, tmp / sub / name)
    ports = {k: free_port() for k in ("statsd", "otlp_grpc", "otlp_http", "prom", "prom_red")}
    proc = Proc("otelcol", [otelcol_bin(), "--config", str(EXAMPLE)], tmp, env=example_env(tmp, ports),
                cwd=ROOT)
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
    # The file exporter may be writing a line as we read: only lines it has
    # finished (ended by a line feed) are documents yet.
    for line in path.read_text().split("\n")[:-1]:
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
    for doc in otlp_lines(tmp / "otel-metrics.json"):
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


# --- gunicorn -> statsd receiver + access log -> wasm -> exporters -----------

def gunicorn_requests(port, mix):
    for method, path, status, n in mix:
        for _ in range(n):
            code, _, _ = http(method, f"http://127.0.0.1:{port}{path}", b"x" if method == "POST" else None)
            assert code == status, (method, path)


@pytest.fixture(scope="module")
def gunicorn_run(collector):
    """Two rounds of the mix, the second after the StatsD receiver emitted
    an interval without data: totals must survive the idle interval."""
    port = free_port()
    tmp = collector["tmp"]
    g = Proc("gunicorn", [gunicorn_bin(), "--chdir", str(APPS), "-w", "2", "-b", f"127.0.0.1:{port}",
                          "--statsd-host", f"127.0.0.1:{collector['statsd']}", "--statsd-prefix", "app",
                          "--access-logfile", str(tmp / "gunicorn" / "access.log"),
                          "--access-logformat", GUNICORN_LOG_FORMAT, "app:application"], tmp)
    try:
        wait_port(port, 20, g)
        first = GUNICORN_MIX[:3]
        gunicorn_requests(port, first)
        want = Counter()
        for _, _, status, n in first:
            want[status] += n
        wait_for(lambda: gunicorn_counts(tmp) == want, 20, what=f"round 1 {want}")
        # Idle for more than the 2 s aggregation interval: the next deltas
        # do not start where the last ones ended.
        time.sleep(2.5)
        gunicorn_requests(port, GUNICORN_MIX)
        yield sum(n for *_, n in GUNICORN_MIX) + sum(n for *_, n in first)
    finally:
        g.stop()


def gunicorn_expected():
    want = Counter()
    for rnd in (GUNICORN_MIX[:3], GUNICORN_MIX):
        for _, _, status, n in rnd:
            want[status] += n
    return want


def gunicorn_counts(tmp):
    """Latest running total per status (deltatocumulative is in the pipeline)."""
    latest = {}
    for res, m, kind, dp, a in datapoints(tmp):
        if res.get("service.name") == "gunicorn-app" and m["name"] == "http.server.request.count":
            key = a["http.response.status_code"]
            t = int(dp["timeUnixNano"])
            if key not in latest or t >= latest[key][0]:
                latest[key] = (t, number(dp))
    return Counter({k: v for k, (_, v) in latest.items()})


def test_gunicorn_statsd_becomes_http_semconv(collector, gunicorn_run):
    tmp = collector["tmp"]
    expected = gunicorn_expected()
    wait_for(lambda: gunicorn_counts(tmp) == expected, 20, what=f"gunicorn counts {expected}")

    pts = [p for p in datapoints(tmp) if p[0].get("service.name") == "gunicorn-app"]
    for res, m, kind, dp, a in pts:
        if m["name"] == "http.server.request.count":
            assert (kind, m["unit"], m["sum"]["isMonotonic"]) == ("sum", "{request}", True)
            assert m["sum"]["aggregationTemporality"] == 2  # cumulative
            assert a.get("error.type") == (str(a["http.response.status_code"])
                                           if a["http.response.status_code"] >= 500 else None)
    hist = [(m, dp) for res, m, kind, dp, a in pts if m["name"] == "http.server.request.duration"]
    assert hist and all(m["unit"] == "s" and "histogram" in m for m, _ in hist)
    assert max(int(dp["count"]) for _, dp in hist) == gunicorn_run  # the latest running total
    for _, dp in hist:
        assert sum(int(c) for c in dp["bucketCounts"]) == int(dp["count"])
        assert dp["explicitBounds"][:3] == [0.0005, 0.001, 0.0025]
        # The app answers in well under a second: seconds, not milliseconds.
        assert 0 < float(dp["sum"]) < int(dp["count"]) * 1.0
    workers = [number(dp) for res, m, kind, dp, a in pts if m["name"] == "gunicorn.workers"]
    assert workers and workers[-1] == 2
    names = {m["name"] for _, m, _, _, _ in datapoints(tmp)}
    assert not any(n.startswith("app.gunicorn.") for n in names), names


def prom_text(port, must):
    return wait_for(lambda: (t := get(f"http://127.0.0.1:{port}/metrics")) and must in t and t, 15,
                    what=f"{must} on :{port}")


def test_gunicorn_red_on_prometheus_exporter(collector, gunicorn_run):
    want = {str(k): v for k, v in gunicorn_expected().items()}

    def got():
        text = get(f"http://127.0.0.1:{collector['prom']}/metrics")
        return {l["http_response_status_code"]: v for l, v in samples(text, "http_server_request_count_total")
                if l.get("job") == "gunicorn-app"}
    # Exact totals across the idle interval (they were reset before
    # deltatocumulative was in the pipeline).
    wait_for(lambda: got() == want, 20, what=f"StatsD totals {want}")


def red_by_route(port, job):
    text = get(f"http://127.0.0.1:{port}/metrics")
    count = {(l["http_request_method"], l["http_route"], l["http_response_status_code"]): v
             for l, v in samples(text, "http_server_request_count_total", job=job)}
    hist = {(l["http_request_method"], l["http_route"], l["http_response_status_code"]): v
            for l, v in samples(text, "http_server_request_duration_seconds_count", job=job)}
    return count, hist, text


def test_gunicorn_access_log_red_per_route(collector, gunicorn_run):
    """gunicorn's access log -> wasm (method, route, status, duration) ->
    signal_to_metrics -> Prometheus: RED per route without touching the app."""
    port = collector["prom_red"]

    def mine():
        count, hist, _ = red_by_route(port, "gunicorn-app")
        keys = set(GUNICORN_RED)
        return ({k: v for k, v in count.items() if k in keys}, {k: v for k, v in hist.items() if k in keys})
    want = GUNICORN_RED
    count, hist = wait_for(lambda: (m := mine()) and m[0] == want and m, 30, what=f"RED per route {want}")
    assert hist == want
    _, _, text = red_by_route(port, "gunicorn-app")
    for (method, route, status), n in want.items():
        lab = dict(job="gunicorn-app", http_request_method=method, http_route=route,
                   http_response_status_code=status)
        buckets = sorted((float(l["le"]), v) for l, v in samples(text, "http_server_request_duration_seconds_bucket",
                                                               **lab))
        assert [b for b, _ in buckets][:4] == [0.0005, 0.001, 0.0025, 0.005] and buckets[-1] == (float("inf"), n)
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
        total = sum(v for _, v in samples(text, "http_server_request_duration_seconds_sum", **lab))
        assert 0 < total < n * 1.0  # microseconds became seconds
        err = {l.get("error_type") for l, _ in samples(text, "http_server_request_count_total", **lab)}
        assert err == ({status} if status.startswith("5") else {None})


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
                              "--stats-pusher-default-freq", "3", "--die-on-term",
                              "--logto", str(tmp / "uwsgi" / "requests.log")], tmp)
    try:
        wait_port(port, 20, u)
        for path in UWSGI_REQUESTS:
            http("GET", f"http://127.0.0.1:{port}{path}")
        gunicorn_requests(port, UWSGI_RED_MIX)
        n = len(UWSGI_REQUESTS) + sum(k for *_, k in UWSGI_RED_MIX)
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

    # The same requests from uWSGI's request log (--logto): RED per route.
    def mine():
        count, hist, _ = red_by_route(collector["prom_red"], "uwsgi-app")
        return ({k: v for k, v in count.items() if k in UWSGI_RED},
                {k: v for k, v in hist.items() if k in UWSGI_RED})
    count, hist = wait_for(lambda: (m := mine()) and m[0] == UWSGI_RED and m, 30,
                           what=f"uWSGI RED per route {UWSGI_RED}")
    assert hist == UWSGI_RED


# --- queue time from the documented uWSGI log-format -----------------------

# The documented log-format's line (examples/otel-collector/README.md), with
# a known request start and stamp. Every queue time is a sum of powers of
# two, so sums are exact in binary floating point.
QUEUE_START = 1_796_652_821_500_000
QUEUE_LINE = ("[pid: 7|app: -|req: -/-] 127.0.0.1 (-) {{26 vars in 290 bytes}} [Mon Dec  7 14:13:41 2026] "
              "{method} {path} => generated 3 bytes in 90 micros (HTTP/1.1 200) 1 headers in 45 bytes "
              "(1 switches on core 0) tmicros={start} x_request_start={stamp}")
# (method, path, X-Request-Start as logged, uwsgi_red.queue.duration or .error)
QUEUE_LINES = [
    ("GET", "/queue/1", f"t={QUEUE_START - 125_000}", 0.125),         # µs
    ("GET", "/queue/2", "t=1796652821.250", 0.25),                     # nginx t=${msec}
    ("GET", "/queue/3", "1796652821375", 0.125),                       # bare ms
    ("GET", "/queue/4", f"t={QUEUE_START + 5_000}", 0.0),              # within the 10 ms tolerance
    ("GET", "/queue/9", f"t={QUEUE_START + 10_000}", 0.0),             # its edge
    ("GET", "/queue/10", f"t={(QUEUE_START - 500_000) * 1000}", 0.5),  # ns
    ("POST", "/queue/5", f"t={QUEUE_START - 2_000_000}", 2.0),
    ("GET", "/queue/6", "-", "missing"),
    ("GET", "/queue/7", "t=soon", "unparsable"),
    ("GET", "/queue/8", f"t={QUEUE_START + 10_001}", "skewed"),
]
# The real uWSGI capture (core/tests/vectors/SOURCES.md): path -> attribute.
QUEUE_CAPTURE = {"/a": "missing", "/b": 0.018778, "/c": 0.006217, "/d": 0.005417, "/e": "unparsable",
                 "/f": "skewed", "/g": "missing", "/h": "missing"}


def test_uwsgi_log_queue_time_histogram_and_errors_exact(collector):
    """Lines in the documented log-format with known tmicros and stamps, and
    the real uWSGI capture, through filelog -> wasm -> signal_to_metrics ->
    Prometheus: exact queue-time histograms per route and exact counts of
    missing, unparsable and skewed stamps; each record carries its value."""
    tmp = collector["tmp"]
    text = "".join(QUEUE_LINE.format(method=m, path=p, start=QUEUE_START, stamp=st) + "\n"
                   for m, p, st, _ in QUEUE_LINES)
    # Written whole, under names the other tests do not count.
    (tmp / "uwsgi" / "queue-lines.log").write_text(text)
    shutil.copy(VECTORS / "uwsgi_reqlog_queue.log", tmp / "uwsgi" / "queue-capture.log")

    want_hist = {("GET", "/queue/:id"): (6, 1.0), ("POST", "/queue/:id"): (1, 2.0),
                 ("GET", "/b"): (1, 0.018778), ("GET", "/c"): (1, 0.006217), ("GET", "/d"): (1, 0.005417)}
    want_err = {"missing": 4, "unparsable": 2, "skewed": 2}

    def prom():
        text = get(f"http://127.0.0.1:{collector['prom_red']}/metrics")
        key = lambda l: (l["http_request_method"], l["http_route"])  # noqa: E731
        count = {key(l): v for l, v in samples(text, "uwsgi_request_queue_duration_seconds_count", job="uwsgi-app")}
        total = {key(l): v for l, v in samples(text, "uwsgi_request_queue_duration_seconds_sum", job="uwsgi-app")}
        hist = {k: (count[k], total.get(k)) for k in count}
        err = {l["uwsgi_red_queue_error"]: v for l, v in samples(text, "uwsgi_request_queue_errors_total",
                                                                 job="uwsgi-app")}
        return hist, err, text
    hist, err, text = wait_for(lambda: (r := prom()) and r[0] == want_hist and r[1] == want_err and r, 30,
                               what=f"queue histograms {want_hist} and errors {want_err}")
    buckets = {float(l["le"]): v for l, v in samples(text, "uwsgi_request_queue_duration_seconds_bucket",
                                                     job="uwsgi-app", http_request_method="GET",
                                                     http_route="/queue/:id")}
    # 0, 0 | 0.125, 0.125, 0.25 | 0.5
    assert (buckets[0.005], buckets[0.1], buckets[0.25], buckets[0.5], buckets[float("inf")]) == (2, 2, 5, 6, 6)
    # The series labels: method and route only (no status), like the RED histogram's route labels.
    labels = {frozenset(k for k in l if k != "le" and not k.startswith("otel_scope_"))
              for l, _ in samples(text, "uwsgi_request_queue_duration_seconds_bucket")}
    assert labels == {frozenset({"job", "http_request_method", "http_route"})}, labels

    # gunicorn with the documented gunicorn.conf.py: the same metric and
    # errors under its own job (the capture: core/tests/vectors/SOURCES.md).
    shutil.copy(VECTORS / "gunicorn_access_queue.log", tmp / "gunicorn" / "queue-gunicorn.log")
    g_want = {("GET", "/b"): (1, 0.223128), ("GET", "/spoof"): (1, 0.195985)}
    g_slow = [0.180638, 0.174616, 0.247236, 0.348562, 0.399958]

    def gunicorn_prom():
        text = get(f"http://127.0.0.1:{collector['prom_red']}/metrics")
        key = lambda l: (l["http_request_method"], l["http_route"])  # noqa: E731
        count = {key(l): v for l, v in samples(text, "uwsgi_request_queue_duration_seconds_count",
                                               job="gunicorn-app")}
        total = {key(l): v for l, v in samples(text, "uwsgi_request_queue_duration_seconds_sum", job="gunicorn-app")}
        err = {l["uwsgi_red_queue_error"]: v for l, v in samples(text, "uwsgi_request_queue_errors_total",
                                                                 job="gunicorn-app")}
        return {k: (count[k], total.get(k)) for k in count}, err
    g_hist, g_err = wait_for(lambda: (r := gunicorn_prom()) and len(r[0]) == 3 and r, 30,
                             what="gunicorn queue histograms")
    assert g_err == {"missing": 1}
    assert {k: v for k, v in g_hist.items() if k != ("GET", "/slow")} == g_want
    assert g_hist[("GET", "/slow")][0] == len(g_slow)
    assert g_hist[("GET", "/slow")][1] == pytest.approx(sum(g_slow), abs=1e-12)

    # The log records: exactly one of the two attributes, with the value.
    want_rec = {p: q for _, p, _, q in QUEUE_LINES} | QUEUE_CAPTURE
    recs = {a["url.path"]: a for _, a, _ in log_records(tmp)
            if a.get("log.file.name") in ("queue-lines.log", "queue-capture.log")}
    assert set(recs) == set(want_rec)
    for path, q in want_rec.items():
        a = recs[path]
        got = a.get("uwsgi_red.queue.error", a.get("uwsgi_red.queue.duration"))
        assert got == q and ("uwsgi_red.queue.error" in a) != ("uwsgi_red.queue.duration" in a), (path, a)


def test_gunicorn_conf_of_the_example_logs_queue_time(collector):
    """The shipped gunicorn.conf.py on a real gunicorn: each request gets a
    queue time from its own start stamp, or `missing` without a stamp."""
    tmp = collector["tmp"]
    port = free_port()
    log = tmp / "gunicorn" / "queue-live.log"
    g = Proc("gunicorn-queue", [gunicorn_bin(), "-c", str(EXAMPLE.parent / "gunicorn.conf.py"), "--chdir", str(APPS),
                                "-w", "1", "-b", f"127.0.0.1:{port}", "--access-logfile", str(log),
                                "app:application"], tmp)
    try:
        wait_port(port, 20, g)
        sent = []
        for i in range(3):
            sent.append(time.time_ns() // 1000)
            code, _, _ = http("GET", f"http://127.0.0.1:{port}/live/{i}", headers={"X-Request-Start": f"t={sent[-1]}"})
            assert code == 200
        code, _, _ = http("GET", f"http://127.0.0.1:{port}/live/none")
        assert code == 200
        done = time.time_ns() // 1000
    finally:
        g.stop()
    recs = wait_for(lambda: (r := [a for _, a, _ in log_records(tmp) if a.get("log.file.name") == "queue-live.log"])
                    and len(r) == 4 and r, 30, what="4 records from the live gunicorn")
    by_path = {a["url.path"]: a for a in recs}
    assert by_path["/live/none"]["uwsgi_red.queue.error"] == "missing"
    for i in range(3):
        q = by_path[f"/live/{i}"]["uwsgi_red.queue.duration"]
        # Between the stamp and the end of the run: a real, bounded value.
        assert 0 <= q <= (done - sent[i]) / 1e6, (i, q)


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
    for doc in otlp_lines(tmp / "otel-logs.json"):
        for rl in doc.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                for rec in sl.get("logRecords", []):
                    out.append((rec.get("body", {}).get("stringValue", ""), attrs(rec.get("attributes")), rec))
    return out


def test_filelog_request_lines_become_structured(collector):
    tmp = collector["tmp"]
    vectors = set(UWSGI_LOG_VECTORS + GUNICORN_LOG_VECTORS)
    total = sum(len((VECTORS / n).read_text().splitlines()) for n in vectors)

    def from_vectors():
        return [r for r in log_records(tmp) if r[1].get("log.file.name") in vectors]
    recs = wait_for(lambda: (r := from_vectors()) and len(r) >= total and r, 30, what=f"{total} log records")
    assert len(recs) == total
    parsed = [(b, a) for b, a, _ in recs if a.get("uwsgi_red.log.parsed") is True]
    unparsed = [(b, a) for b, a, _ in recs if a.get("uwsgi_red.log.parsed") is False]
    assert len(parsed) + len(unparsed) == total
    # 17 + 7 uWSGI request lines, 20 + 20 gunicorn lines; the rest of the full
    # log (banner, traceback, shutdown) passes through marked unparsed. The
    # example declares gunicorn_duration_field D, so the %(M)s vector's
    # trailing number is read as microseconds.
    assert Counter(a["uwsgi_red.log.format"] for _, a in parsed) == {"uwsgi": 24, "gunicorn": 20,
                                                                      "gunicorn_micros": 20}
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
    gslow = one("gunicorn_micros", "/slow")
    assert gslow["http.server.request.duration"] == 0.0015
    assert gslow["http.route"] == "/slow" and slow["http.route"] == "/slow"
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
    # otelwasm checks the module path when the pipeline starts, not in
    # `validate`: a wrong path stops the Collector at start, naming it.
    ports = {k: free_port() for k in ("statsd", "otlp_grpc", "otlp_http", "prom", "prom_red")}
    env.update(example_env(Path("/tmp"), ports), UWSGI_RED_OTEL_WASM="/nonexistent/otel-processor.wasm")
    r = subprocess.run([otelcol_bin(), "--config", str(EXAMPLE)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "/nonexistent/otel-processor.wasm" in r.stdout + r.stderr


# --- concurrency: the shipped pipeline under concurrent OTLP clients --------

CLIENTS, BATCHES, POINTS = 4, 25, 10
STATSD_LINES, LOG_LINES = 60, 100


def otlp_batch(client, batch):
    pts = [{"asInt": "1", "timeUnixNano": str(time.time_ns()),
            "attributes": [{"key": "client", "value": {"intValue": str(client)}},
                           {"key": "batch", "value": {"intValue": str(batch)}},
                           {"key": "i", "value": {"intValue": str(i)}}]} for i in range(POINTS)]
    return json.dumps({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "load"}}]},
        "scopeMetrics": [{"scope": {"name": "load"}, "metrics": [{
            "name": "load.points", "unit": "1", "gauge": {"dataPoints": pts}}]}]}]}).encode()


def test_concurrent_otlp_statsd_and_logs_exact(collector):
    """4 OTLP clients x 25 batches at once, plus StatsD and request-log lines,
    through the shipped pipeline (batch in front of otelwasm's wasm): every
    batch accepted, every point, datagram and line counted exactly, the
    Collector neither panicked nor restarted."""
    tmp, proc = collector["tmp"], collector["proc"]
    url = f"http://127.0.0.1:{collector['otlp_http']}/v1/metrics"
    codes = Counter()
    lock = threading.Lock()

    def client(c):
        for b in range(BATCHES):
            code, _, body = http("POST", url, otlp_batch(c, b), {"Content-Type": "application/json"})
            with lock:
                codes[code] += 1

    def statsd():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(STATSD_LINES):
            s.sendto(b"load.gunicorn.request.status.200:1|c", ("127.0.0.1", collector["statsd"]))
            time.sleep(0.005)
        s.close()

    def logs():
        with open(tmp / "gunicorn" / "load.log", "a") as f:
            for i in range(LOG_LINES):
                f.write(f'127.0.0.1 - - [30/Nov/2026:17:00:00 +0000] "GET /load/{i} HTTP/1.1" 200 2 "-" "t" 900\n')
                f.flush()
                time.sleep(0.002)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    threads += [threading.Thread(target=statsd), threading.Thread(target=logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert codes == {200: CLIENTS * BATCHES}, codes

    def points():
        seen = Counter()
        for res, m, kind, dp, a in datapoints(tmp):
            if m["name"] == "load.points":
                seen[(a["client"], a["batch"], a["i"])] += 1
        return seen
    seen = wait_for(lambda: (p := points()) and len(p) == CLIENTS * BATCHES * POINTS and p, 30,
                    what=f"{CLIENTS * BATCHES * POINTS} points")
    assert set(seen.values()) == {1}, "a point arrived twice"

    def statsd_total():
        latest = [(int(dp["timeUnixNano"]), number(dp)) for res, m, kind, dp, a in datapoints(tmp)
                  if res.get("service.name") == "load" and m["name"] == "http.server.request.count"]
        return max(latest)[1] if latest else 0
    wait_for(lambda: statsd_total() == STATSD_LINES, 20, what=f"{STATSD_LINES} StatsD requests")

    def lines():
        return sum(1 for b, a, _ in log_records(tmp) if a.get("log.file.name") == "load.log"
                   and a.get("http.route") == "/load/:id")
    wait_for(lambda: lines() == LOG_LINES, 30, what=f"{LOG_LINES} log records")
    count, hist, _ = wait_for(lambda: (r := red_by_route(collector["prom_red"], "gunicorn-app"))
                              and r[0].get(("GET", "/load/:id", "200")) == LOG_LINES and r, 30,
                              what="load route count")
    assert hist[("GET", "/load/:id", "200")] == LOG_LINES
    log = proc.log()
    assert proc.poll() is None and log.count("Everything is ready") == 1
    for bad in ("panic", "out of bounds", "wasm: error processing"):
        assert bad not in log, bad


# --- refusal reasons reach the Collector log on otelwasm ------------------------

def test_misspelt_plugin_config_key_is_in_collector_log(tmp_path):
    """otelwasm drops the status reason of a status-0 answer; the processor
    also writes it to stderr, which otelwasm connects to the Collector's."""
    otlp, prom = free_port(), free_port()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  batch:
    timeout: 100ms
  wasm:
    path: {wasm("otel-processor")}
    plugin_config:
      uwsgi_prefix: [uwsgi]
exporters:
  file:
    path: {tmp_path}/out.json
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [batch, wasm]
      exporters: [file]
""")
    proc = Proc("otelcol-badkey", [otelcol_bin(), "--config", str(cfg)], tmp_path)
    try:
        wait_port(otlp, 30, proc)
        body = otlp_batch(0, 0)
        code, _, _ = http("POST", f"http://127.0.0.1:{otlp}/v1/metrics", body,
                          {"Content-Type": "application/json"})
        assert code == 200
        line = wait_for(lambda: next((l for l in proc.log().splitlines() if "uwsgi-red otel-processor" in l),
                                     None), 15, what="refusal line in the Collector log")
        assert "config_rejected, 1 so far" in line and "`uwsgi_prefix`" in line, line
        # The batch itself passed through unchanged.
        wait_for(lambda: (tmp_path / "out.json").exists() and "load.points" in (tmp_path / "out.json").read_text(),
                 15, what="batch passed through")
    finally:
        proc.stop()


# --- a hostile request log cannot flood the Collector with series ---------------

FLOOD_LINES, FLOOD_METHODS, FLOOD_BATCH = 100_000, 1_000, 5_000
# The example's plugin_config max_series; the flood is the only sender, so
# exactly that many label sets are admitted.
EXAMPLE_MAX_SERIES = 1000
FLOOD_STATUSES = (200, 404, 503)


def flood_logs(first):
    """OTLP/JSON logs: one gunicorn access line per record, each with its own
    path and one of FLOOD_METHODS methods (none of them an HTTP method)."""
    recs = []
    for n in range(first, first + FLOOD_BATCH):
        line = (f'127.0.0.1 - - [30/Nov/2026:17:00:00 +0000] "M{n % FLOOD_METHODS} /flood/p{n}x HTTP/1.1" '
                f'{FLOOD_STATUSES[n % 3]} 2 "-" "t" 900')
        recs.append({"body": {"stringValue": line}})
    return json.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "flood"}}]},
        "scopeLogs": [{"logRecords": recs}]}]}).encode()


@pytest.fixture(scope="module")
def flood_collector(tmp_path_factory):
    """Its own Collector on the shipped config: the flood fills the series
    cap, which would fold the other tests' routes into overflow."""
    tmp = tmp_path_factory.mktemp("otelcol-flood")
    ports = {k: free_port() for k in ("statsd", "otlp_grpc", "otlp_http", "prom", "prom_red")}
    proc = Proc("otelcol-flood", [otelcol_bin(), "--config", str(EXAMPLE)], tmp, env=example_env(tmp, ports),
                cwd=ROOT)
    try:
        wait_port(ports["otlp_http"], 30, proc)
        wait_for(lambda: "Everything is ready" in proc.log(), 30, what="collector ready")
        yield {"proc": proc, "tmp": tmp, **ports}
    finally:
        proc.stop()
        # The file exporter's copy of the flood (~100 MB): nothing reads it.
        (tmp / "otel-logs.json").unlink(missing_ok=True)


def test_request_log_flood_is_bounded_and_counted_exactly(flood_collector):
    """100 000 lines with 100 000 distinct paths and 1 000 distinct methods
    through the shipped pipeline: the RED endpoint shows max_series series
    plus one overflow series per status class, and their counts add up to
    exactly the lines sent."""
    c = flood_collector
    url = f"http://127.0.0.1:{c['otlp_http']}/v1/logs"
    for first in range(0, FLOOD_LINES, FLOOD_BATCH):
        code, _, body = http("POST", url, flood_logs(first), {"Content-Type": "application/json"})
        assert code == 200, body

    def counts():
        text = get(f"http://127.0.0.1:{c['prom_red']}/metrics")
        return ({(l["http_request_method"], l["http_route"], l["http_response_status_code"]): v
                 for l, v in samples(text, "http_server_request_count_total", job="flood")},
                {(l["http_request_method"], l["http_route"], l["http_response_status_code"]): v
                 for l, v in samples(text, "http_server_request_duration_seconds_count", job="flood")},
                text)
    count, hist, text = wait_for(lambda: (r := counts()) and sum(r[0].values()) == FLOOD_LINES and r, 60,
                                 what=f"{FLOOD_LINES} requests at the RED endpoint")
    overflow = {k: v for k, v in count.items() if k[1] == "__overflow__"}
    # 1 000 admitted label sets + the 2xx, 4xx and 5xx overflow series; no
    # other series at the endpoint at all.
    assert len(count) == EXAMPLE_MAX_SERIES + len(FLOOD_STATUSES), len(count)
    assert set(overflow) == {("_OTHER", "__overflow__", cls) for cls in ("2xx", "4xx", "5xx")}
    assert {l.get("job") for l, _ in samples(text, "http_server_request_count_total")} == {"flood"}
    assert {k[0] for k in count} == {"_OTHER"}, "a method outside the OTel list became a label"
    # Exactly the first 1 000 (one line each) were admitted; each overflow
    # class holds the rest of its lines.
    assert all(v == 1 for k, v in count.items() if k not in overflow)
    per_class = Counter(FLOOD_STATUSES[n % 3] // 100 for n in range(EXAMPLE_MAX_SERIES, FLOOD_LINES))
    assert {k[2]: v for k, v in overflow.items()} == {f"{s}xx": n for s, n in per_class.items()}
    assert sum(count.values()) == FLOOD_LINES and hist == count
    log = c["proc"].log()
    assert c["proc"].poll() is None and "panic" not in log
