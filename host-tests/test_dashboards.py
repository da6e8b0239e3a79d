"""examples/grafana: every panel's query, with the template variables
substituted as Grafana would, evaluated by a real Prometheus scraping the real
stack: uWSGI with its stats server (examples/envoy-uwsgi-stats/uwsgi.ini),
Envoy with red-filter and the uwsgi-stats singleton (examples/demo/envoy.yaml),
and, for the gunicorn board, gunicorn and the example Collector. Each query
must return data, and the panels must agree with the traffic sent.

Grafana cannot be installed here, so `$__rate_interval` is given the value
Grafana computes for the default 1 h view with a Prometheus data source at
its default 15 s scrape interval: max(4 x 15 s, $__interval + 15 s) = 1m.
Exact checks use each panel's counter form: the panel's query with every
`rate(X[$__rate_interval])` replaced by `X` (no extrapolation, so counts and
ratios compare with `==`). Run with -s to see every panel's values.
"""
import json
import math
import os
import re
import subprocess
import threading
import time
from collections import Counter
from http.client import HTTPConnection

import pytest

from harness import EXAMPLES, ROOT, demo_config, free_port, http, wait_for, wasm
from promql import by, example_prometheus_config, finite, label_values, query

GRAFANA = EXAMPLES / "grafana"
BOARDS = ("red-by-route.json", "uwsgi-workers.json", "gunicorn-collector.json")
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
RATE_INTERVAL = "1m"  # Grafana's $__rate_interval for the default view (see above)
INTERVAL = "5s"       # $__interval for 1 h over ~720 px
RATE = re.compile(r"rate\(([^()]*?)\[\$__rate_interval\]\)")

# (method, path, status, route label): sent once before and `n` times after
# Prometheus' first look, so every series has a rate.
MIX = [
    ("GET", "/users/{i}", 200, "/users/{id}", 30),
    ("POST", "/items", 201, "/items", 8),
    ("GET", "/notfound", 404, "/notfound", 5),
    ("GET", "/error", 500, "/error", 3),
    ("GET", "/status/200", 200, "/status/:id", 8),
    ("GET", "/status/503", 503, "/status/:id", 2),
    # uWSGI answers an unhandled exception with an empty reply: the client
    # gets Envoy's 503, and uWSGI counts an exception.
    ("GET", "/raise", 503, "/raise", 1),
    # 0.3 s: every /slow request lands in the (0.25 s, 0.5 s] bucket.
    ("GET", "/slow?s=0.3", 200, "/slow", 3),
]
SENT = Counter()
for _m, _p, _s, _r, _n in MIX:
    SENT[(_r, str(_s), _m)] += 1 + _n
TOTAL = sum(SENT.values())
ERRORS = Counter({k: v for k, v in SENT.items() if k[1].startswith("5")})


def board(name):
    return json.loads((GRAFANA / name).read_text())


def targets(d):
    for p in d["panels"]:
        for t in p["targets"]:
            yield p, t


def substitute(expr, variables):
    """Grafana's interpolation for our boards: $__rate_interval, $__interval
    and the query variables (All = the allValue `.*`)."""
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__interval", INTERVAL)
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${name}", variables[name])
    assert "$" not in expr, expr
    return expr


def counter_form(expr):
    """The panel's query over the raw counters (before substitution)."""
    out = RATE.sub(r"\1", expr)
    assert "rate(" not in out, out
    return out


def quantile(q, buckets):
    """histogram_quantile's interpolation over [(upper bound, cumulative count)]."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            return prev_bound + (bound - prev_bound) * ((rank - prev_count) / (count - prev_count))
        prev_bound, prev_count = bound, count
    raise AssertionError(buckets)


def show(board_name, panel, target, got, exact=None):
    print(f"\n[{board_name}] {panel['title']} ({target['refId']}): {fmt(got)}"
          + (f"\n    counter form: {fmt(exact)}" if exact is not None else ""))


def fmt(result):
    parts = []
    for labels, v in result:
        key = ",".join(f"{k}={labels[k]}" for k in sorted(labels) if k not in ("job", "instance"))
        parts.append(f"{{{key}}} {v:.6g}")
    return "; ".join(parts) or "(no data)"


# ------------------------------------------------------------------ structure

@pytest.mark.parametrize("name", BOARDS)
def test_board_structure(name):
    d = board(name)
    assert d["__inputs"] == [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": d["__inputs"][0]["description"],
                              "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}]
    assert "uid" not in d and d["id"] is None, "an importable board carries no uid/id of its own"

    def uids(node, path="$"):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "uid":
                    yield path, v
                yield from uids(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from uids(v, f"{path}[{i}]")
    # The only uid anywhere is the datasource input, inside datasource objects.
    assert all(v == "${DS_PROMETHEUS}" and p.endswith(".datasource") for p, v in uids(d)), list(uids(d))

    defined = {v["name"] for v in d["templating"]["list"]}
    for v in d["templating"]["list"]:
        # `.+` where an empty value belongs to other series (gunicorn: the
        # StatsD series have no http_route)
        assert v["datasource"] == DS and v["type"] == "query" and v["allValue"] in (".*", ".+")
        assert re.fullmatch(r"label_values\((.+), (\w+)\)", v["query"]["query"]), v["query"]
    used = set()
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) >= 5
    cells = set()
    for p in d["panels"]:
        assert p["type"] in ("stat", "timeseries") and p["title"] and p["datasource"] == DS
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24 and g["w"] > 0 and g["h"] > 0
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not (mine & cells), f"panel {p['title']!r} overlaps another"
        cells |= mine
        assert p["fieldConfig"]["defaults"]["unit"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs))
        for t in p["targets"]:
            assert t["datasource"] == DS and t["expr"].strip()
            used |= set(re.findall(r"\$(\w+)", t["expr"]))
    for v in d["templating"]["list"]:
        used |= set(re.findall(r"\$(\w+)", v["query"]["query"]))
    assert used - {"__rate_interval", "__interval"} == defined, "every variable defined is used and vice versa"


# ------------------------------------------------------------------ the stack

def send(port, rounds):
    """Each MIX entry `rounds(n)` times from 4 keep-alive clients in
    parallel; returns Counter((route, code, method))."""
    jobs = []
    for method, path, status, route, n in MIX:
        for i in range(rounds(n)):
            jobs.append((method, path.replace("{i}", str(len(jobs))), status, route))
    got, wrong, lock = Counter(), [], threading.Lock()

    def worker(part):
        c = HTTPConnection("127.0.0.1", port, timeout=20)
        for method, path, status, route in part:
            c.request(method, path, body=b"x" if method == "POST" else None)
            r = c.getresponse()
            r.read()
            with lock:
                got[(route, str(r.status), method)] += 1
                if r.status != status:
                    wrong.append((method, path, r.status))
        c.close()
    threads = [threading.Thread(target=worker, args=(jobs[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not wrong and sum(got.values()) == len(jobs), wrong
    return got


class Stack:
    pass


@pytest.fixture(scope="module")
def stack(hosts):
    s = Stack()
    wasm("red-filter"), wasm("uwsgi-stats")
    # The example uWSGI as-is (4 workers, stats server, memory report).
    app, stats = free_port(), free_port()
    s.uwsgi = hosts.uwsgi_ini("dash-uwsgi", EXAMPLES / "envoy-uwsgi-stats" / "uwsgi.ini",
                              [("127.0.0.1:9090", f"127.0.0.1:{app}"), ("127.0.0.1:9191", f"127.0.0.1:{stats}")],
                              port=app, stats_port=stats)
    # examples/demo/envoy.yaml: red-filter and the uwsgi-stats singleton in one Envoy.
    admin, public = free_port(), free_port()
    s.envoy = hosts.envoy("dash-envoy", demo_config(public, admin, app, stats), admin, listen_port=public)
    s.prom = hosts.prometheus("dash-prometheus", example_prometheus_config([admin], free_port()))
    s.port = s.prom.port
    wait_for(lambda: by(s.port, "uwsgi_up", "target") == {"app": 1.0}, 30, interval=0.5,
             what="Prometheus scraping Envoy's first uWSGI poll")
    # Round 1: every series once, and seen by Prometheus before round 2.
    first = send(public, lambda n: 1)
    wait_for(lambda: query(s.port, "sum(uwsgi_red_request_duration_microseconds_count)") == [({}, float(len(MIX)))],
             20, interval=0.5, what="round 1 in Prometheus")
    second = send(public, lambda n: n)
    assert first + second == SENT
    s.sent_at = time.time()

    def settled():
        # Everything sent is counted: histograms flushed, last poll after the
        # last request, scraped.
        return (query(s.port, "sum(uwsgi_red_request_duration_microseconds_count)") == [({}, float(TOTAL))]
                and query(s.port, "sum(uwsgi_worker_requests_total)") == [({}, float(TOTAL))]
                and query(s.port, "sum(uwsgi_worker_busy)") == [({}, 0.0)])
    wait_for(settled, 30, interval=0.5, what="all traffic counted in Prometheus")
    s.at = time.time()
    assert s.at - s.sent_at < 45, "the 1m rate windows must still hold round 2"
    s.envoy_text = s.envoy.prometheus()
    return s


def red_vars(**chosen):
    return {"service": ".*", "route": ".*", "method": ".*", **chosen}


def test_red_variables_list_what_was_sent(stack):
    p = stack.port
    assert label_values(p, "service", "uwsgi_red_requests_total") == ["uwsgi_app"]
    assert label_values(p, "route", 'uwsgi_red_requests_total{service=~"uwsgi_app"}') == sorted({r for r, _, _ in SENT})
    assert label_values(p, "method", 'uwsgi_red_requests_total{service=~"uwsgi_app"}') == ["GET", "POST"]
    assert label_values(p, "target", "uwsgi_up") == ["app"]


def envoy_buckets(text, route=None):
    """Cumulative µs buckets straight from Envoy's admin text (not via Prometheus)."""
    from harness import samples
    acc = Counter()
    for labels, v in samples(text, "uwsgi_red_request_duration_microseconds_bucket"):
        if route is None or labels["route"] == route:
            acc[float(labels["le"])] += v
    return sorted(acc.items())


def test_red_by_route_panels(stack):
    d = board("red-by-route.json")
    p, at = stack.port, stack.at
    routes = {r for r, _, _ in SENT}
    per_route = Counter()
    for (r, _c, _m), n in SENT.items():
        per_route[r] += n
    err_route = Counter()
    for (r, _c, _m), n in ERRORS.items():
        err_route[r] += n
    slow = {q: 0.25 + 0.25 * q for q in (0.5, 0.95, 0.99)}  # all /slow in (0.25, 0.5]
    overall = envoy_buckets(stack.envoy_text)
    checked = set()
    for panel, t in targets(d):
        expr = substitute(t["expr"], red_vars())
        got = query(p, expr, at)
        exact = query(p, substitute(counter_form(t["expr"]), red_vars()), at)
        show("RED by route", panel, t, got, exact)
        assert got and exact, f"{panel['title']}: no data for {expr}"
        assert all(finite(v) for _, v in got + exact), (panel["title"], got, exact)
        title = panel["title"]
        if title == "Requests per second":
            assert exact == [({}, float(TOTAL))] and got[0][1] > 0
        elif title == "Error ratio":
            assert exact == [({}, sum(ERRORS.values()) / TOTAL)]
        elif title in ("p95 latency", "p99 latency"):
            q = 0.95 if "95" in title else 0.99
            assert math.isclose(exact[0][1], quantile(q, overall) / 1e6, rel_tol=1e-12), (exact, overall)
        elif title == "Request rate by route":
            assert {l["route"]: v for l, v in exact} == dict(per_route)
            assert {l["route"] for l, v in got if v > 0} == routes
        elif title == "Request rate by status code":
            codes = Counter()
            for (_r, c, _m), n in SENT.items():
                codes[c] += n
            assert {l["code"]: v for l, v in exact} == dict(codes)
        elif title == "Error ratio by route":
            want = {r: err_route[r] / per_route[r] for r in routes}
            assert {l["route"]: v for l, v in exact} == want
            # Single-outcome routes are exact under rate() too.
            rated = {l["route"]: v for l, v in got}
            assert rated["/error"] == rated["/raise"] == 1.0 and rated["/users/{id}"] == rated["/slow"] == 0.0
        elif title.startswith("Latency p50"):
            q = {"A": 0.5, "B": 0.95, "C": 0.99}[t["refId"]]
            assert {l["route"] for l, _ in exact} == routes
            assert math.isclose(dict((l["route"], v) for l, v in exact)["/slow"], slow[q], rel_tol=1e-12)
            assert math.isclose(dict((l["route"], v) for l, v in got)["/slow"], slow[q], rel_tol=1e-12)
            assert all(0 < v <= 10 for _, v in exact)
        elif title.startswith("Time to first byte"):
            assert math.isclose(dict((l["route"], v) for l, v in exact)["/slow"], slow[0.95], rel_tol=1e-12)
        elif title == "Requests by method":
            methods = Counter()
            for (_r, _c, m), n in SENT.items():
                methods[m] += n
            assert {l["method"]: v for l, v in exact} == dict(methods)
        elif title.startswith("red-filter health"):
            assert exact == got == [({}, 0.0)]
        else:
            raise AssertionError(f"panel {title!r} has no check")
        checked.add(title)
    assert len(checked) == len(d["panels"])


def test_red_by_route_variables_filter(stack):
    """Choosing one route and method narrows every series to it (Grafana
    regex-escapes the chosen value: `{` becomes `\\{`, written `\\\\{` in PromQL)."""
    d = board("red-by-route.json")
    chosen = red_vars(service="uwsgi_app", route="/users/\\\\{id\\\\}", method="GET")
    panel = next(p for p in d["panels"] if p["title"] == "Request rate by route")
    exact = query(stack.port, substitute(counter_form(panel["targets"][0]["expr"]), chosen), stack.at)
    assert exact == [({"route": "/users/{id}"}, float(SENT[("/users/{id}", "200", "GET")]))]
    chosen = red_vars(method="POST")
    exact = query(stack.port, substitute(counter_form(panel["targets"][0]["expr"]), chosen), stack.at)
    assert exact == [({"route": "/items"}, float(SENT[("/items", "201", "POST")]))]


def test_uwsgi_workers_panels(stack):
    d = board("uwsgi-workers.json")
    p, at = stack.port, stack.at
    checked = set()
    for panel, t in targets(d):
        expr = substitute(t["expr"], {"target": ".*"})
        got = query(p, expr, at)
        exact = query(p, substitute(counter_form(t["expr"]), {"target": ".*"}), at)
        show("uWSGI workers", panel, t, got, exact)
        assert got and exact, f"{panel['title']}: no data for {expr}"
        assert all(finite(v) for _, v in got + exact), (panel["title"], got, exact)
        title, ref = panel["title"], t["refId"]
        one = {"target": "app"}
        if title == "Stats target up":
            assert got == [(one, 1.0)]
        elif title == "Workers":
            assert got == [(one, 4.0)]
        elif title == "Busy workers":
            assert got == [(one, 0.0)]
        elif title == "Listen queue":
            assert got == [(one, 0.0)]
        elif title == "Workers busy / idle / cheap":
            assert got == [(one, {"A": 0.0, "B": 4.0, "C": 0.0}[ref])]
        elif title == "Listen queue and refused connections":
            assert got == [(one, 0.0)]
        elif title == "Requests per second per worker":
            # uWSGI's own count of what Envoy sent it: every request.
            assert sorted(l["worker_id"] for l, _ in exact) == ["1", "2", "3", "4"]
            assert sum(v for _, v in exact) == TOTAL
        elif title == "Exceptions per second":
            assert exact == [(one, float(SENT[("/raise", "503", "GET")]))] and got[0][1] > 0
        elif title == "Respawns and harakiri per second":
            assert got == [(one, 0.0)], "no worker died during the test"
            # uWSGI counts a worker's first spawn in respawn_count.
            assert exact == [(one, {"A": 4.0, "B": 0.0}[ref])]
        elif title.startswith("Average response time"):
            assert len(got) == 4 and any(v > 0 for _, v in got) and all(0 <= v < 10 for _, v in got)
        elif title == "Resident memory per worker":
            # --memory-report fills rss at the end of each request a worker
            # serves; a worker the kernel never handed a connection reports 0.
            served = {l["worker_id"]: v for l, v in query(p, 'uwsgi_worker_requests_total{target="app"}', at)}
            assert len(got) == 4 and any(v > 1e6 for _, v in got), "--memory-report fills rss"
            for labels, v in got:
                assert (v > 1e6) == (served[labels["worker_id"]] > 0), (labels, v, served)
        elif title == "Socket queues":
            assert got == [({"target": "app", "name": f"127.0.0.1:{stack.uwsgi.port}"}, 0.0)]
        else:
            raise AssertionError(f"panel {title!r} has no check")
        checked.add(title)
    assert len(checked) == len(d["panels"])


def test_rules_evaluate_on_the_live_stack(stack):
    assert (sum(ERRORS.values()), TOTAL) == (9, 68)
    """The example rules, loaded by the same Prometheus: the per-route
    recording rule sees every route, and with 9 of 68 requests failing
    (13 %) the fast error-budget alert fires for the service."""
    p = stack.port
    routes = {r for r, _, _ in SENT}
    # Rules run every second: wait for an evaluation after the last scrape.
    rec = wait_for(lambda: (r := by(p, "service_route:uwsgi_red_requests:rate5m", "route")) and set(r) == routes and r,
                   15, what="recording rule over every route")
    assert all(v > 0 for v in rec.values()), rec

    def alert():
        return [l for l, _ in query(p, 'ALERTS{alertstate="firing"}')]
    firing = wait_for(lambda: [a for a in alert() if a["alertname"] == "UwsgiRedErrorBudgetFastBurn"] or None, 20,
                      what="fast-burn alert")
    assert [(a["service"], a["severity"]) for a in firing] == [("uwsgi_app", "page")]
    assert not [a for a in alert() if a["alertname"].startswith("Uwsgi") and not a["alertname"].startswith("UwsgiRed")]


# ------------------------------------------------------------ gunicorn / Collector

# gunicorn traffic: (path, status, http.route from the request log), one cycle
# every 0.25 s, CYCLES cycles in two halves with a pause longer than the
# StatsD aggregation interval between them (idle intervals must not lose
# counts on the way through the Collector's Prometheus exporter).
GUNICORN_CYCLE = [("/users/{n}", 200, "/users/{id}"), ("/", 200, "/"), ("/notfound", 404, "/notfound"),
                  ("/status/503", 503, "/status/{code}"), ("/error", 500, "/error")]
CYCLES = 16
G_SENT = Counter()      # by status
G_ROUTES = Counter()    # by (route, status)
for _p, _st, _r in GUNICORN_CYCLE:
    G_SENT[str(_st)] += CYCLES
    G_ROUTES[(_r, str(_st))] += CYCLES
G_TOTAL = sum(G_SENT.values())
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'


def otelcol_bin():
    """The Collector scripts/setup.d/otelcol.sh built for this tree."""
    path = subprocess.run(["bash", str(ROOT / "scripts" / "setup.d" / "otelcol.sh"), "--path"],
                          capture_output=True, text=True, check=True).stdout.strip()
    if not os.access(path, os.X_OK):
        pytest.fail(f"Collector not built at {path}: run `bash scripts/setup.d/otelcol.sh` (./build.sh test does)")
    return path


@pytest.fixture(scope="module")
def collector_stack(hosts):
    """gunicorn (StatsD + access log) -> examples/otel-collector/config.yaml
    as-is (addresses through its documented environment variables) ->
    Prometheus (examples/prometheus/prometheus.yml) scraping both of its
    exporter endpoints."""
    s = Stack()
    ports = {k: free_port() for k in ("grpc", "http", "statsd", "prom", "prom_red")}
    out = hosts.logdir / "otelcol-out"
    (out / "gunicorn").mkdir(parents=True, exist_ok=True)
    (out / "uwsgi").mkdir(exist_ok=True)
    env = {"UWSGI_RED_OTEL_WASM": wasm("otel-processor"), "UWSGI_RED_OUT_DIR": str(out),
           "UWSGI_RED_GUNICORN_LOGS": str(out / "gunicorn" / "*.log"), "UWSGI_RED_UWSGI_LOGS": str(out / "uwsgi" / "*.log"),
           "UWSGI_RED_OTLP_GRPC": f"127.0.0.1:{ports['grpc']}", "UWSGI_RED_OTLP_HTTP": f"127.0.0.1:{ports['http']}",
           "UWSGI_RED_STATSD": f"127.0.0.1:{ports['statsd']}", "UWSGI_RED_PROM": f"127.0.0.1:{ports['prom']}",
           "UWSGI_RED_PROM_RED": f"127.0.0.1:{ports['prom_red']}"}
    hosts.proc("dash-otelcol", [otelcol_bin(), "--config", str(EXAMPLES / "otel-collector" / "config.yaml")],
               port=ports["prom_red"], timeout=30, env=env, cwd=str(ROOT))
    g = hosts.gunicorn("dash-gunicorn", workers=2,
                       extra=("--statsd-host", f"127.0.0.1:{ports['statsd']}", "--statsd-prefix", "app",
                              "--access-logfile", str(out / "gunicorn" / "access.log"),
                              "--access-logformat", ACCESS_LOG_FORMAT))
    s.prom = hosts.prometheus("dash-prometheus-otel", example_prometheus_config(
        [free_port()], ports["prom"], collector_red_port=ports["prom_red"]))
    s.port = s.prom.port
    got, n = Counter(), 0
    for half in range(2):
        for _ in range(CYCLES // 2):
            tick = time.monotonic()
            for path, status, _route in GUNICORN_CYCLE:
                n += 1
                code, _, _ = http("GET", f"http://127.0.0.1:{g.port}{path.replace('{n}', str(n))}")
                got[str(code)] += 1
            time.sleep(max(0.0, 0.25 - (time.monotonic() - tick)))
        if half == 0:
            time.sleep(3)  # > the 2 s aggregation interval: one interval without data
    assert got == G_SENT

    def totals():
        return (query(s.port, 'sum(http_server_request_count_total{job="gunicorn-app", http_route=""})'),
                query(s.port, 'sum(http_server_request_duration_seconds_count{job="gunicorn-app", http_route=""})'),
                query(s.port, 'sum(http_server_request_count_total{job="gunicorn-app", http_route!=""})'))
    want = ([({}, float(G_TOTAL))],) * 3
    wait_for(lambda: totals() == want, 40, interval=0.5, what=f"{G_TOTAL} requests via StatsD and via the access log")
    s.at = time.time()
    return s


def test_gunicorn_collector_panels(collector_stack):
    d = board("gunicorn-collector.json")
    p, at = collector_stack.port, collector_stack.at
    assert label_values(p, "job", "http_server_request_count_total") == ["gunicorn-app"]
    assert label_values(p, "http_route", 'http_server_request_count_total{job=~"gunicorn-app", http_route!=""}') \
        == sorted({r for r, _ in G_ROUTES})
    chosen = {"service": "gunicorn-app", "route": ".+"}
    errors = sum(n for code, n in G_SENT.items() if code.startswith("5"))
    by_route = Counter()
    err_route = Counter()
    for (r, st), n in G_ROUTES.items():
        by_route[r] += n
        err_route[r] += n if st.startswith("5") else 0
    checked = set()
    for panel, t in targets(d):
        expr = substitute(t["expr"], chosen)
        got = query(p, expr, at)
        exact = query(p, substitute(counter_form(t["expr"]), chosen), at)
        show("gunicorn / Collector", panel, t, got, exact)
        assert got and exact, f"{panel['title']}: no data for {expr}"
        assert all(finite(v) for _, v in got + exact), (panel["title"], got, exact)
        title = panel["title"]
        job = {"job": "gunicorn-app"}
        if title == "Requests per second":
            assert exact == [({}, float(G_TOTAL))] and got[0][1] > 0
        elif title == "Error ratio" and panel["type"] == "stat":
            assert exact == [({}, errors / G_TOTAL)]
        elif title == "Error ratio":
            assert exact == [(job, errors / G_TOTAL)]
        elif title == "Workers":
            assert got == [(job, 2.0)]
        elif title == "Request rate by status code":
            assert {l["http_response_status_code"]: v for l, v in exact} == dict(G_SENT)
        elif title in ("p95 latency", "Latency p50 / p95 / p99", "Mean latency"):
            # The app answers in milliseconds: seconds, not ms, and within the first buckets.
            assert all(0 < v < 0.5 for _, v in got + exact), (got, exact)
        elif title == "Request rate by route (request log)":
            assert {l["http_route"]: v for l, v in exact} == dict(by_route)
        elif title == "Error ratio by route (request log)":
            assert {l["http_route"]: v for l, v in exact} == {r: err_route[r] / by_route[r] for r in by_route}
        elif title == "Latency p95 by route (request log)":
            assert {l["http_route"] for l, _ in exact} == set(by_route)
            assert all(0 < v < 0.5 for _, v in got + exact), (got, exact)
        else:
            raise AssertionError(f"panel {title!r} has no check")
        checked.add(title)
    assert len(checked) == len({p["title"] for p in d["panels"]})


def test_rule_and_unit_test_metric_names_exist_on_the_live_stack(stack):
    """The rules and their promtool unit tests name real series: a typo
    there would pass the unit tests (same typo on both sides) and never fire.
    (No YAML comment contains '#' inside PromQL, so cutting at '#' is safe.)"""
    prom_dir = EXAMPLES / "prometheus"
    names = set()
    for f in list((prom_dir / "rules").glob("*.yml")) + list((prom_dir / "tests").glob("*.yml")):
        # metric names, not recording-rule names (those have colons)
        text = re.sub(r"#.*", "", f.read_text())  # comments name self-mode series too
        names |= set(re.findall(r"(?<![\w:])(uwsgi_[a-z_]+)(?![\w:])", text))
    assert names == {"uwsgi_red_requests_total", "uwsgi_red_errors_total", "uwsgi_red_request_duration_microseconds_bucket",
                     "uwsgi_red_request_duration_microseconds_count", "uwsgi_up", "uwsgi_listen_queue_length",
                     "uwsgi_listen_queue_errors", "uwsgi_worker_busy", "uwsgi_worker_idle",
                     "uwsgi_worker_respawn_count_total"}
    live = set(label_values(stack.port, "__name__", '{__name__=~"uwsgi_.+"}'))
    print("\nseries the rules use:", ", ".join(sorted(names)))
    assert names <= live, sorted(names - live)
