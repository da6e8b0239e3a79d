"""RED and uWSGI stats into a real InfluxDB 1.x the way a Telegraf user
would wire it: uWSGI (examples/envoy-uwsgi-stats/uwsgi.ini) behind Envoy
with red-filter and the uwsgi-stats singleton (examples/demo/envoy.yaml),
Telegraf (examples/influxdb/telegraf.conf: `inputs.prometheus` on Envoy's
/stats/prometheus -> `outputs.influxdb`), and Debian's influxd. Every query
of examples/influxdb/queries.influxql runs against the stored data and must
agree with what was sent, with Envoy's own page, and with uWSGI's own stats
document.

Telegraf gathers twice (`--once`): after round 1 and after round 2 of the
traffic, so the rate panels have two points; their rate x elapsed time
must give round 2's counts exactly.
"""
import json
import math
import re
import socket
import threading
import time
from collections import Counter
from http.client import HTTPConnection

import pytest

from harness import EXAMPLES, demo_config, free_port, influx_query, parse_prometheus, render, wait_for, wasm

EXAMPLE = EXAMPLES / "influxdb"
DB = "uwsgi_red"
# (method, path, status, route label, requests in round 2); each is also
# sent once in round 1.
MIX = [
    ("GET", "/users/{i}", 200, "/users/{id}", 12),
    ("POST", "/items", 201, "/items", 4),
    ("GET", "/notfound", 404, "/notfound", 3),
    ("GET", "/error", 500, "/error", 2),
    ("GET", "/status/503", 503, "/status/:id", 2),
    ("GET", "/status/200", 200, "/status/:id", 3),
    # 0.3 s: no /slow request lands at or below the 250000 µs bound.
    ("GET", "/slow?s=0.3", 200, "/slow", 2),
]
ROUND2 = Counter()
SENT = Counter()
for _m, _p, _s, _r, _n in MIX:
    SENT[(_r, str(_s))] += 1 + _n
    ROUND2[(_r, str(_s))] += _n
TOTAL = sum(SENT.values())
ERRORS = Counter({k: v for k, v in SENT.items() if k[1].startswith("5")})
TIME_FILTER = "time > now() - 1h"
INTERVAL = "1s"


def panels(collector):
    """[(title, InfluxQL)] from queries.influxql, in file order: the
    Collector's panels (titles `Collector: ...`) or the others."""
    out, title = [], None
    for line in (EXAMPLE / "queries.influxql").read_text().splitlines():
        if line.startswith("-- panel: "):
            title = line[len("-- panel: "):]
        elif line.strip() and not line.startswith("--"):
            assert title, f"query without a `-- panel:` line: {line}"
            if title.startswith("Collector: ") == collector:
                out.append((title, line.strip()))
            title = None
    return out


def substitute(q):
    q = q.replace("$timeFilter", TIME_FILTER).replace("$__interval", INTERVAL)
    assert "$" not in q, q
    return q


def send(port, rounds):
    got, wrong, lock = Counter(), [], threading.Lock()
    jobs = []
    for method, path, status, route, n in MIX:
        for _ in range(rounds(n)):
            jobs.append((method, path.replace("{i}", str(len(jobs))), status, route))

    def worker(part):
        c = HTTPConnection("127.0.0.1", port, timeout=20)
        for method, path, status, route in part:
            c.request(method, path, body=b"x" if method == "POST" else None)
            r = c.getresponse()
            r.read()
            with lock:
                got[(route, str(r.status))] += 1
                if r.status != status:
                    wrong.append((method, path, r.status))
        c.close()
    threads = [threading.Thread(target=worker, args=(jobs[k::3],)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not wrong and sum(got.values()) == len(jobs), wrong
    return got


def stats_doc(port):
    """uWSGI's own stats document, read directly from --stats-http."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def rows(series):
    """[(tags, {column: value})] of every non-empty row of an InfluxQL answer."""
    out = []
    for s in series:
        for vals in s["values"]:
            row = dict(zip(s["columns"], vals))
            if any(v is not None for k, v in row.items() if k != "time"):
                out.append((s.get("tags", {}), row))
    return out


class Stack:
    pass


def past(times):
    """Telegraf rounds timestamps to the nearest second (its precision for
    intervals of 1 s and more), so the last gather can be up to 0.5 s
    ahead of the clock, and a GROUP BY time() query ends at now(): wait
    until it is in the past, as any dashboard refresh would be."""
    wait_for(lambda: time.time_ns() > max(times) + 50_000_000, 5, interval=0.05, what="the last gather in the past")


@pytest.fixture(scope="module")
def stack(hosts):
    s = Stack()
    wasm("red-filter"), wasm("uwsgi-stats")
    app, stats = free_port(), free_port()
    s.uwsgi = hosts.uwsgi_ini("ix-uwsgi", EXAMPLES / "envoy-uwsgi-stats" / "uwsgi.ini",
                              [("127.0.0.1:9090", f"127.0.0.1:{app}"), ("127.0.0.1:9191", f"127.0.0.1:{stats}")],
                              port=app, stats_port=stats)
    s.admin, public = free_port(), free_port()
    s.envoy = hosts.envoy("ix-envoy", demo_config(public, s.admin, app, stats), s.admin, listen_port=public)
    s.influx = hosts.influxdb("ix-influxdb")
    conf = render(EXAMPLE / "telegraf.conf", [("127.0.0.1:9901", f"127.0.0.1:{s.admin}"),
                                               ("127.0.0.1:8086", f"127.0.0.1:{s.influx.port}")])

    def page():
        return parse_prometheus(s.envoy.prometheus())

    def settled(n):
        p = page()
        red = sum(v for k, lab, v in p if k == "uwsgi_red_requests_total")
        workers = sum(v for k, lab, v in p if k == "uwsgi_worker_requests_total")
        busy = [v for k, lab, v in p if k == "uwsgi_worker_busy"]
        # Envoy merges histogram samples into the admin page at its stats
        # flush, after the counters: wait for the durations too.
        timed = sum(v for k, lab, v in p if k == "uwsgi_red_request_duration_microseconds_count")
        return red == n and timed == n and workers == n and len(busy) == 4 and not any(busy)

    first = send(public, lambda n: 1)
    wait_for(lambda: settled(len(MIX)), 30, interval=0.5, what="round 1 counted by Envoy")
    hosts.telegraf("ix-telegraf-1", conf, once=True)
    # The rate panels group by 1 s: the second gather must fall in a later second.
    time.sleep(1.0)
    second = send(public, lambda n: n)
    assert first + second == SENT
    wait_for(lambda: settled(TOTAL), 30, interval=0.5, what="round 2 counted by Envoy")
    hosts.telegraf("ix-telegraf-2", conf, once=True)
    s.doc = stats_doc(stats)
    s.page = page()
    s.times = sorted({row["time"] for _t, row in rows(influx_query(s.influx.port, 'SELECT "uwsgi_up" FROM "prometheus"',
                                                                     DB))})
    past(s.times)
    return s


def envoy_sum(page, name, keys, **match):
    acc = Counter()
    for n, lab, v in page:
        if n == name and all(lab.get(k) == x for k, x in match.items()):
            acc[tuple(lab[k] for k in keys)] += v
    return acc


def test_two_gathers_stored(stack):
    assert len(stack.times) == 2, stack.times
    assert stack.times[1] // 10**9 > stack.times[0] // 10**9


def test_every_panel_query(stack):
    p = stack.influx.port
    # Rates are over the two gathers' 1 s buckets.
    elapsed = (stack.times[1] // 10**9 - stack.times[0] // 10**9)
    by_route2 = Counter()
    by_code2 = Counter()
    for (r, c), n in ROUND2.items():
        by_route2[r] += n
        by_code2[c] += n
    envoy_buckets = {}
    for n, lab, v in stack.page:
        if n == "uwsgi_red_request_duration_microseconds_bucket":
            key = (lab["route"], float(lab["le"]))
            envoy_buckets[key] = envoy_buckets.get(key, 0) + v
    checked = []
    for title, q in panels(collector=False):
        got = rows(influx_query(p, substitute(q), DB))
        print(f"\n{title}: {len(got)} rows; {got[:6]}")
        assert got, f"{title}: no data for {q}"
        vals = [v for _t, row in got for k, v in row.items() if k != "time"]
        assert all(v is None or math.isfinite(v) for v in vals), (title, got)
        if title == "Requests by route and status (totals, table)":
            assert {(t["route"], t["code"]): r["sum"] for t, r in got} == dict(SENT)
            assert {(t["route"], t["code"]): r["sum"] for t, r in got} == \
                dict(envoy_sum(stack.page, "uwsgi_red_requests_total", ("route", "code")))
        elif title == "Errors by route and status (totals, table)":
            assert {(t["route"], t["code"]): r["sum"] for t, r in got} == dict(ERRORS)
            assert dict(ERRORS) == {k: v for k, v in envoy_sum(stack.page, "uwsgi_red_errors_total",
                                                                ("route", "code")).items() if v}
        elif title == "Error ratio by route (totals)":
            per_route, err_route = Counter(), Counter()
            for (r, c), n in SENT.items():
                per_route[r] += n
                err_route[r] += ERRORS.get((r, c), 0)
            ratio = {t["route"]: r["sum_sum"] for t, r in got}
            assert {k: v for k, v in ratio.items() if v} == {r: err_route[r] / per_route[r] for r in err_route
                                                            if err_route[r]}
        elif title == "Mean latency by route (seconds, totals)":
            s_ = envoy_sum(stack.page, "uwsgi_red_request_duration_microseconds_sum", ("route",))
            c_ = envoy_sum(stack.page, "uwsgi_red_request_duration_microseconds_count", ("route",))
            mean = {t["route"]: list(r.values())[1] for t, r in got}
            assert mean.keys() == {r for r, _c in SENT}
            for (route,), total in s_.items():
                assert math.isclose(mean[route], total / c_[(route,)] / 1e6, rel_tol=1e-9), (route, mean[route])
            assert mean["/slow"] >= 0.3
        elif title == "Latency histogram by route (cumulative bucket counts; le in microseconds)":
            influx = {(t["route"], float(t["le"])): r["sum"] for t, r in got}
            assert influx == envoy_buckets
            # /slow sleeps longer than 250 ms (a lower bound that load cannot
            # break); how far above depends on queueing, so only +Inf is exact.
            assert influx[("/slow", 250000.0)] == 0
            assert influx[("/slow", math.inf)] == SENT[("/slow", "200")]
        elif title == "Latency buckets per second (heatmap; le in microseconds)":
            inf = [r["sum"] for t, r in got if t["le"] == "+Inf"]
            assert len(inf) == 1 and math.isclose(inf[0] * elapsed, sum(ROUND2.values()), rel_tol=1e-9)
        elif title == "Requests per second by route":
            rate = {t["route"]: r["sum"] for t, r in got}
            assert rate.keys() == by_route2.keys() and len(got) == len(rate)
            for route, n in by_route2.items():
                assert math.isclose(rate[route] * elapsed, n, rel_tol=1e-9), (route, rate[route], elapsed, n)
        elif title == "Requests per second by status code":
            rate = {t["code"]: r["sum"] for t, r in got}
            assert rate.keys() == by_code2.keys() and len(got) == len(rate)
            for code, n in by_code2.items():
                assert math.isclose(rate[code] * elapsed, n, rel_tol=1e-9), (code, rate[code], elapsed, n)
        elif title == "Errors per second by route":
            rate = {t["route"]: r["sum"] for t, r in got}
            want = Counter()
            for (r, c), n in ROUND2.items():
                if c.startswith("5"):
                    want[r] += n
            assert {k for k, v in rate.items() if v} == set(want)
            for route, n in want.items():
                assert math.isclose(rate[route] * elapsed, n, rel_tol=1e-9)
        elif title == "uWSGI busy workers":
            assert [r["sum"] for t, r in got if t["target"] == "app"][-1] == 0
        elif title == "uWSGI requests per second by worker":
            total = sum(r["non_negative_derivative"] for _t, r in got) * elapsed
            assert math.isclose(total, sum(ROUND2.values()), rel_tol=1e-9), total
        elif title == "uWSGI worker fields (latest, table)":
            check_worker_fields(got, stack.doc)
        elif title == "uWSGI listen queue":
            assert [r["last"] for t, r in got][-1] == stack.doc["listen_queue"]
        elif title == "uWSGI stats target up":
            assert [r["last"] for t, r in got][-1] == 1
        else:
            raise AssertionError(f"panel {title!r} has no check")
        checked.append(title)
    assert len(checked) == len(panels(collector=False)) >= 10


def check_worker_fields(got, doc):
    """Each worker's row in InfluxDB equals uWSGI's own document."""
    table = {t["worker_id"]: r for t, r in got if t["target"] == "app"}
    assert sorted(table) == sorted(str(w["id"]) for w in doc["workers"])
    for w in doc["workers"]:
        r = table[str(w["id"])]
        want = {k: w[k] for k in ("requests", "exceptions", "pid", "respawn_count", "rss", "vsz", "tx", "avg_rt",
                                  "running_time", "accepting")}
        want["busy"] = int(w["status"] == "busy")
        assert {k: r[k] for k in want} == want, (w["id"], r, want)
    assert sum(r["requests"] for r in table.values()) == TOTAL
    assert any(r["rss"] > 0 for r in table.values()), "memory-report fills rss"


def test_measurement_shape(stack):
    """What telegraf.conf stores: one measurement, our fields only, the
    Prometheus labels as tags (README: 'what you should see')."""
    p = stack.influx.port
    assert [s["values"] for s in influx_query(p, "SHOW MEASUREMENTS", DB)] == [[["prometheus"]]]
    fields = {v[0] for s in influx_query(p, "SHOW FIELD KEYS", DB) for v in s["values"]}
    assert fields and all(f.startswith("uwsgi_") for f in fields), sorted(fields)
    assert {"uwsgi_red_requests_total", "uwsgi_red_errors_total", "uwsgi_red_request_duration_microseconds_bucket",
            "uwsgi_worker_requests_total", "uwsgi_worker_busy", "uwsgi_up"} <= fields
    tags = {v[0] for s in influx_query(p, "SHOW TAG KEYS", DB) for v in s["values"]}
    assert {"route", "code", "method", "service", "le", "target", "worker_id", "url"} <= tags
    assert not any(re.fullmatch(r"envoy_.*", f) for f in fields)


# ------------------------------------------------- the OTel Collector path

# gunicorn (StatsD + access log) -> the example Collector (otel-processor)
# -> its two Prometheus endpoints -> Telegraf -> InfluxDB.
# (method, path, status, route after the example's templates, round-2 count);
# each is also sent once in round 1.
GUNICORN_MIX = [("GET", "/users/1", 200, "/users/{id}", 3), ("POST", "/items/7", 201, "/items/:id", 2),
                ("GET", "/status/503", 503, "/status/{code}", 2)]
G_SENT = Counter({(m, r, str(s)): 1 + n for m, _p, s, r, n in GUNICORN_MIX})
G_ROUND2 = Counter({(m, r, str(s)): n for m, _p, s, r, n in GUNICORN_MIX})


@pytest.fixture(scope="module")
def otel(hosts, tmp_path_factory):
    from harness import APPS, get_text, http
    from test_otel_collector import GUNICORN_LOG_FORMAT, example_env, otelcol_bin
    s = Stack()
    tmp = tmp_path_factory.mktemp("ix-otelcol")
    for sub in ("gunicorn", "uwsgi"):
        (tmp / sub).mkdir()
    ports = {k: free_port() for k in ("statsd", "otlp_grpc", "otlp_http", "prom", "prom_red")}
    col = hosts.proc("ix-otelcol", [otelcol_bin(), "--config", str(EXAMPLES / "otel-collector" / "config.yaml")],
                     port=ports["prom"], timeout=30, env=example_env(tmp, ports), cwd=EXAMPLES.parent)
    wait_for(lambda: "Everything is ready" in col.log(), 30, what="collector ready")
    g = hosts.gunicorn("ix-gunicorn", app="app:application", chdir=APPS, extra=(
        "--statsd-host", f"127.0.0.1:{ports['statsd']}", "--statsd-prefix", "app",
        "--access-logfile", str(tmp / "gunicorn" / "access.log"), "--access-logformat", GUNICORN_LOG_FORMAT))
    s.influx = hosts.influxdb("ix-influxdb-otel")
    conf = render(EXAMPLE / "telegraf-collector.conf", [
        ("127.0.0.1:9464", f"127.0.0.1:{ports['prom']}"), ("127.0.0.1:9465", f"127.0.0.1:{ports['prom_red']}"),
        ("127.0.0.1:8086", f"127.0.0.1:{s.influx.port}")])

    def counts():
        logs, statsd = Counter(), Counter()
        for port, acc in ((ports["prom_red"], logs), (ports["prom"], statsd)):
            for n, lab, v in parse_prometheus(get_text(f"http://127.0.0.1:{port}/metrics")):
                if n == "http_server_request_count_total" and lab.get("job") == "gunicorn-app":
                    if "http_route" in lab:
                        acc[(lab["http_request_method"], lab["http_route"], lab["http_response_status_code"])] += v
                    else:
                        acc[lab["http_response_status_code"]] += v
        return logs, statsd

    def by_status(c):
        out = Counter()
        for (_m, _r, st), n in c.items():
            out[st] += n
        return out

    def send(rounds):
        for method, path, status, _r, n in GUNICORN_MIX:
            for _ in range(rounds(n)):
                code, _, _ = http(method, f"http://127.0.0.1:{g.port}{path}", b"x" if method == "POST" else None)
                assert code == status, (method, path, code)

    want1 = Counter({k: 1 for k in G_SENT})
    send(lambda n: 1)
    wait_for(lambda: counts() == (want1, by_status(want1)), 30, interval=0.5, what="round 1 at the Collector")
    hosts.telegraf("ix-telegraf-otel-1", conf, once=True)
    time.sleep(1.0)
    send(lambda n: n)
    wait_for(lambda: counts() == (G_SENT, by_status(G_SENT)), 30, interval=0.5, what="round 2 at the Collector")
    hosts.telegraf("ix-telegraf-otel-2", conf, once=True)
    s.by_status = by_status(G_SENT)
    s.times = sorted({row["time"] for _t, row in rows(influx_query(
        s.influx.port, 'SELECT "http_server_request_count_total" FROM "prometheus"', DB))})
    past(s.times)
    return s


def test_collector_panels(otel):
    p = otel.influx.port
    assert len(otel.times) == 2, otel.times
    elapsed = otel.times[1] // 10**9 - otel.times[0] // 10**9
    assert elapsed >= 1
    checked = []
    for title, q in panels(collector=True):
        got = [(t, r) for t, r in rows(influx_query(p, substitute(q), DB)) if t.get("job") == "gunicorn-app"]
        print(f"\n{title}: {got}")
        assert got, (f"{title}: no data for {q}; the stored points: "
                     + json.dumps(influx_query(p, 'SELECT "http_server_request_count_total", "http_route", "url" '
                                             'FROM "prometheus" WHERE "http_route" != \'\'', DB)))
        if title == "Collector: requests by route and status (from request logs, totals)":
            assert {(t["http_request_method"], t["http_route"], t["http_response_status_code"]): r["sum"]
                    for t, r in got} == dict(G_SENT)
        elif title == "Collector: requests by status (from StatsD, totals)":
            assert {t["http_response_status_code"]: r["sum"] for t, r in got} == dict(otel.by_status)
        elif title == "Collector: requests per second by route":
            rate = {t["http_route"]: r["sum"] for t, r in got}
            want = Counter()
            for (_m, r, _s), n in G_ROUND2.items():
                want[r] += n
            assert rate.keys() == want.keys() and len(got) == len(rate)
            for route, n in want.items():
                assert math.isclose(rate[route] * elapsed, n, rel_tol=1e-9), (route, rate[route], elapsed, n)
        else:
            raise AssertionError(f"panel {title!r} has no check")
        checked.append(title)
    assert len(checked) == len(panels(collector=True)) == 3
