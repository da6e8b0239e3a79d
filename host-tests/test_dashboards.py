"""examples/grafana: every panel's query, with the template variables
substituted as Grafana would, evaluated by a real Prometheus scraping the real
stack: uWSGI with its stats server (examples/envoy-uwsgi-stats/uwsgi.ini),
Envoy with red-filter and the uwsgi-stats singleton (examples/demo/envoy.yaml),
and, for the gunicorn board, gunicorn and the example Collector. Each query
must return data, and the panels must agree with the traffic sent.

The Saturation rows read families the live stack does not export (the
uWSGI request log's queue histogram, red-filter's `upstream` label and
uwsgi-stats' uwsgi_upstream_info join): their panels are evaluated by a
second Prometheus over synthetic series with known rates, backfilled with
`promtool tsdb create-blocks-from openmetrics`, with the example rules
running on them (test_saturation_panels). The per-worker panels of that row
are also checked on the live stack.

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

from harness import EXAMPLES, ROOT, demo_config, free_port, get_text, http, require_binary, wait_for, wasm
from promql import by, example_prometheus_config, finite, label_values, quantile, query

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
        for t in p.get("targets", []):
            yield p, t


def row_of(d, panel):
    """Title of the row a panel sits under ("" above the first row)."""
    rows = [p for p in d["panels"] if p["type"] == "row" and p["gridPos"]["y"] <= panel["gridPos"]["y"]]
    return max(rows, key=lambda p: p["gridPos"]["y"])["title"] if rows else ""


def graph_panels(d):
    return [p for p in d["panels"] if p["type"] != "row"]


# Panels whose families the live stack (demo Envoy config, no Collector) does
# not export: test_saturation_panels checks them on synthetic series.
NOT_LIVE = {("red-by-route.json", "Saturation"), ("uwsgi-workers.json", "Queue time mean by backend (5m)")}


def live(name, d, panel):
    return (name, row_of(d, panel)) not in NOT_LIVE and (name, panel["title"]) not in NOT_LIVE


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
        if p["type"] == "row":
            # a row header: full width, one unit high, not collapsed (its
            # panels sit in the board's list, not inside the row)
            assert p["title"] and p["gridPos"]["w"] == 24 and p["gridPos"]["h"] == 1 and p["gridPos"]["x"] == 0
            assert p["collapsed"] is False and p["panels"] == [] and "targets" not in p
            cells |= {(x, p["gridPos"]["y"]) for x in range(24)}
            continue
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
    s.stats_port = stats
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
        if not live("red-by-route.json", d, panel):
            continue
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
    assert len(checked) == len([p for p in graph_panels(d) if live("red-by-route.json", d, p)]) == 11


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
    # uWSGI's own stats, unchanged since the last poll Prometheus saw (the
    # stack settled with every request counted and no worker busy)
    workers = {str(w["id"]): w for w in json.loads(get_text(f"http://127.0.0.1:{stack.stats_port}/"))["workers"]}
    assert sum(w["requests"] for w in workers.values()) == TOTAL
    checked = set()
    for panel, t in targets(d):
        if not live("uwsgi-workers.json", d, panel):
            continue
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
        elif title == "Mean response time per worker":
            # Counter form: uWSGI's running_time / requests since start, per
            # worker that served anything; the same division as PromQL's.
            want = {i: w["running_time"] / 1e6 / w["requests"] for i, w in workers.items() if w["requests"] > 0}
            assert {l["worker_id"]: v for l, v in exact} == want and want
            assert {l["worker_id"] for l, _ in got} <= set(want) and all(0 < v < 10 for _, v in got), got
        elif title == "Worker utilisation":
            if ref == "A":
                assert math.isclose(exact[0][1], sum(w["running_time"] for w in workers.values()) / 4 / 1e6,
                                    rel_tol=1e-12) and [l for l, _ in exact] == [one]
                assert [l for l, _ in got] == [one] and 0 < got[0][1] < 1
            else:
                assert {l["worker_id"]: v for l, v in exact} == {i: w["running_time"] / 1e6 for i, w in workers.items()}
                assert len(got) == 4 and all(0 <= v < 1 for _, v in got), got
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
    assert len(checked) == len([p for p in graph_panels(d) if live("uwsgi-workers.json", d, p)]) == 13


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


# ------------------------------------------------------------ Saturation rows

# Seconds between samples. Prometheus accepts no sample (a rule's result)
# older than the backfilled blocks' end, so the data ends just before it
# starts; rates extrapolate to a window's end only within 1.1 steps of the
# last sample, so the step bounds how long Prometheus may take to start and
# evaluate the rules (33 s), and a 1m window still holds 2 samples.
SAT_STEP = 30
SAT_STEPS = 30    # 15 minutes of history: every 5m rule window is full
A1, A2 = "127.0.0.1:8001", "127.0.0.1:8002"
ENVOY = {"job": "envoy", "instance": "127.0.0.1:9901"}
RED = {**ENVOY, "service": "uwsgi_app", "route": "/a", "method": "GET", "code": "200"}
LOG = {"job": "uwsgi-app", "instance": "127.0.0.1:9465", "http_request_method": "GET"}
# Queue-time histogram from the uWSGI request log (Collector): requests per
# step in each bucket (not cumulative), per route.
QUEUE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, math.inf)
QUEUE_PER_STEP = {"/a": (30, 0, 15, 15, 0, 0), "/b": (0, 0, 4, 4, 8, 0)}
# (name, labels, increment per step): counters. Backend A1 (target app1, one
# worker): 16 req/s, proxy mean 0.25 s, app mean 3/64 s, utilisation 0.75.
# Backend A2 (target app2, two workers): 16 req/s, proxy mean 10 ms, app
# mean 8 ms (both workers), utilisation 0.256/3 and 0.128/3.
SAT_COUNTERS = [
    ("uwsgi_red_request_duration_microseconds_count", {**RED, "upstream": A1}, 16 * SAT_STEP),
    ("uwsgi_red_request_duration_microseconds_sum", {**RED, "upstream": A1}, 16 * SAT_STEP * 250_000),
    ("uwsgi_red_request_duration_microseconds_count", {**RED, "upstream": A2}, 16 * SAT_STEP),
    ("uwsgi_red_request_duration_microseconds_sum", {**RED, "upstream": A2}, 16 * SAT_STEP * 10_000),
    # an Envoy without "upstream_label": not a backend
    ("uwsgi_red_request_duration_microseconds_count", {**RED, "instance": "127.0.0.1:9911"}, 5 * SAT_STEP),
    ("uwsgi_red_request_duration_microseconds_sum", {**RED, "instance": "127.0.0.1:9911"}, 5 * SAT_STEP * 900_000),
    # app1: 16 req/s of 3/64 s; app2: 32/3 and 16/3 req/s of 8 ms
    ("uwsgi_worker_requests_total", {**ENVOY, "target": "app1", "worker_id": "1"}, 16 * SAT_STEP),
    ("uwsgi_worker_running_time_microseconds", {**ENVOY, "target": "app1", "worker_id": "1"}, 750_000 * SAT_STEP),
    ("uwsgi_worker_requests_total", {**ENVOY, "target": "app2", "worker_id": "1"}, 32 * SAT_STEP // 3),
    ("uwsgi_worker_running_time_microseconds", {**ENVOY, "target": "app2", "worker_id": "1"}, 256_000 * SAT_STEP // 3),
    ("uwsgi_worker_requests_total", {**ENVOY, "target": "app2", "worker_id": "2"}, 16 * SAT_STEP // 3),
    ("uwsgi_worker_running_time_microseconds", {**ENVOY, "target": "app2", "worker_id": "2"}, 128_000 * SAT_STEP // 3),
]
assert SAT_STEP % 3 == 0
for _route, _counts in QUEUE_PER_STEP.items():
    for _i, _le in enumerate(QUEUE_BUCKETS):
        SAT_COUNTERS.append(("uwsgi_request_queue_duration_seconds_bucket",
                             {**LOG, "http_route": _route, "le": "+Inf" if math.isinf(_le) else repr(_le)},
                             sum(_counts[:_i + 1])))
SAT_GAUGES = [
    ("uwsgi_upstream_info", {**ENVOY, "target": "app1", "upstream": A1}, 1),
    ("uwsgi_upstream_info", {**ENVOY, "target": "app2", "upstream": A2}, 1),
    ("uwsgi_listen_queue_length", {**ENVOY, "target": "app1"}, 7),
    ("uwsgi_listen_queue_length", {**ENVOY, "target": "app2"}, 0),
    ("uwsgi_listen_queue_errors", {**ENVOY, "target": "app1"}, 3),
    ("uwsgi_listen_queue_errors", {**ENVOY, "target": "app2"}, 0),
    ("uwsgi_socket_queue_length", {**ENVOY, "target": "app1", "name": A1}, 7),
    ("uwsgi_socket_queue_length", {**ENVOY, "target": "app2", "name": A2}, 0),
]
UTIL = {("app1", "1"): 0.75, ("app2", "1"): 0.256 / 3, ("app2", "2"): 0.128 / 3}
# What each Saturation panel must show: {(board, title, refId): {label values: value}}
SAT_WANT = {
    ("red-by-route.json", "Queue time mean by backend (5m)", "A"): {(A1, "app1"): 0.25 - 0.046875, (A2, "app2"): 0.01 - 0.008},
    ("red-by-route.json", "Proxy mean and app mean by backend (5m)", "A"): {(A1,): 0.25, (A2,): 0.01},
    ("red-by-route.json", "Proxy mean and app mean by backend (5m)", "B"): {(A1, "app1"): 0.046875, (A2, "app2"): 0.008},
    ("red-by-route.json", "Worker utilisation by target (5m)", "A"): {("app1",): 0.75, ("app2",): 0.064},
    ("red-by-route.json", "Listen queue by target", "A"): {("app1",): 7, ("app2",): 0},
    ("red-by-route.json", "Listen queue by target", "B"): {("app1", A1): 7, ("app2", A2): 0},
    ("uwsgi-workers.json", "Worker utilisation", "A"): {("app1",): 0.75, ("app2",): 0.064},
    ("uwsgi-workers.json", "Worker utilisation", "B"): {k: v for k, v in UTIL.items()},
    ("uwsgi-workers.json", "Queue time mean by backend (5m)", "A"): {(A1, "app1"): 0.203125, (A2, "app2"): 0.002},
    ("uwsgi-workers.json", "Listen queue and refused connections", "A"): {("app1",): 7, ("app2",): 0},
    ("uwsgi-workers.json", "Listen queue and refused connections", "B"): {("app1",): 3, ("app2",): 0},
    ("uwsgi-workers.json", "Socket queues", "A"): {("app1", A1): 7, ("app2", A2): 0},
}
for _q, _ref in ((0.5, "A"), (0.95, "B")):
    SAT_WANT[("red-by-route.json", "Queue time p50 / p95 by route (uWSGI request log)", _ref)] = {
        (r,): quantile(_q, list(zip(QUEUE_BUCKETS, [sum(c[:i + 1]) for i in range(len(c))])))
        for r, c in QUEUE_PER_STEP.items()}
SAT_KEYS = ("upstream", "target", "worker_id", "name", "http_route")


def openmetrics(last):
    """Every synthetic series, one sample per SAT_STEP up to `last` (s)."""
    lines = []
    series = [(n, l, k * inc) for n, l, inc in SAT_COUNTERS for k in range(SAT_STEPS + 1)]
    series += [(n, l, v) for n, l, v in SAT_GAUGES for _k in range(SAT_STEPS + 1)]
    for i, (name, labels, value) in enumerate(sorted(series, key=lambda s: s[0])):
        step = i % (SAT_STEPS + 1)
        text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{name}{{{text}}} {value} {last - (SAT_STEPS - step) * SAT_STEP}")
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def saturation(hosts):
    """A Prometheus with the example config and rules over the synthetic
    series: history backfilled into its storage before it starts, ending a
    second before, so the rules' first evaluations (every second) and the
    panels' 1m windows see samples up to within one step of their end."""
    s = Stack()
    promtool = require_binary("promtool", "apt-get install prometheus")
    name = "dash-prometheus-saturation"
    s.last = int(time.time()) - 1
    src = hosts.logdir / "saturation.om"
    src.write_text(openmetrics(s.last))
    r = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(src),
                        str(hosts.logdir / f"{name}-data")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    s.prom = hosts.prometheus(name, example_prometheus_config([free_port()], free_port()))
    s.port = s.prom.port
    wait_for(lambda: query(s.port, "upstream:uwsgi_red_queue_seconds:mean5m")
             and query(s.port, "target:uwsgi_worker_utilisation:ratio5m"), 10, what="saturation rules recorded")
    s.at = time.time()
    # Later than that the rates would not be the ones written (see SAT_STEP).
    assert s.at - s.last < 1.1 * SAT_STEP - 1, f"Prometheus took {s.at - s.last:.1f} s to start and evaluate"
    return s


def test_saturation_panels(saturation):
    p, at = saturation.port, saturation.at
    checked = set()
    for name, variables in (("red-by-route.json", red_vars()), ("uwsgi-workers.json", {"target": ".*"})):
        d = board(name)
        row = [x for x in graph_panels(d) if row_of(d, x) == "Saturation"]
        assert len(row) == {"red-by-route.json": 5, "uwsgi-workers.json": 4}[name]
        for panel in row:
            for t in panel["targets"]:
                got = query(p, substitute(t["expr"], variables), at)
                show(f"{name} (synthetic)", panel, t, got)
                key = (name, panel["title"], t["refId"])
                want = SAT_WANT[key]
                values = {tuple(l[k] for k in SAT_KEYS if k in l): v for l, v in got}
                assert set(values) == set(want), (key, got)
                for k, v in want.items():
                    assert math.isclose(values[k], v, rel_tol=1e-9, abs_tol=1e-12), (key, k, values[k], v)
                checked.add(key)
    assert checked == set(SAT_WANT)
    # The per-route queue p50 of /a sits at the top of the first bucket, its p95
    # inside (25 ms, 50 ms]; every /b request waited more than 10 ms.
    assert SAT_WANT[("red-by-route.json", "Queue time p50 / p95 by route (uWSGI request log)", "A")] == {
        ("/a",): 0.005, ("/b",): 0.05}


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
    # Read by the saturation rules, which take either form; the live stack
    # (Envoy host mode) exports the other one.
    other_forms = {"uwsgi_red_request_duration_seconds_sum", "uwsgi_red_request_duration_seconds_count",  # self mode
                   "uwsgi_worker_running_time_seconds",  # nginx, CLI, self-served page
                   "uwsgi_upstream_info"}  # the uwsgi-stats join: one per listen socket of each target
    assert names == {"uwsgi_red_requests_total", "uwsgi_red_errors_total", "uwsgi_red_request_duration_microseconds_bucket",
                     "uwsgi_red_request_duration_microseconds_count", "uwsgi_red_request_duration_microseconds_sum",
                     "uwsgi_up", "uwsgi_listen_queue_length", "uwsgi_listen_queue_errors", "uwsgi_worker_busy",
                     "uwsgi_worker_idle", "uwsgi_worker_respawn_count_total", "uwsgi_worker_requests_total",
                     "uwsgi_worker_running_time_microseconds"} | other_forms
    live = set(label_values(stack.port, "__name__", '{__name__=~"uwsgi_.+"}'))
    print("\nseries the rules use:", ", ".join(sorted(names)))
    assert names - other_forms <= live, sorted(names - other_forms - live)
