"""red-filter in a real Envoy 1.40 (V8) in front of real uWSGI and gunicorn.

Counts are exact: every request the test sends is a request the metrics
show, with the labels it should have.
"""
import http.client
import json
import random
import string
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import (ROOT, Envoy, Proc, free_port, get_text, require_binary, samples, value, wait_for, wait_port,
                      wasm)
from envoy_red import render
from harness import start_gunicorn, start_uwsgi
from harness.envoy import envoy_label_value
from harness.prom import parse_prometheus
from request_start_upstream import STAMP_REQUESTS, RecordingUpstream, assert_stamps, per_backend, send_stamped

PLUGIN_CONFIG = {"route_patterns": ["/users/{id}", "/prom/{id}"], "max_series": 1000}


def start_envoy(logdir, name, upstream_port, plugin_config=PLUGIN_CONFIG, filter_kind="http", concurrency=1):
    wasm("red-filter")
    listen, admin = free_port(), free_port()
    cfg = render(listen, admin, upstream_port, plugin_config, filter_kind=filter_kind)
    env = Envoy(name, cfg, logdir, admin, concurrency=concurrency)
    env.wait_ready()
    env.listen_port = listen
    return env


class Client:
    """Keep-alive HTTP/1.1 client to one Envoy listener."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)

    def request(self, method, path, body=None):
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers={"Content-Type": "text/plain"} if body else {})
                r = self.conn.getresponse()
                data = r.read()
                return r.status, dict(r.getheaders()), data
            except (http.client.HTTPException, ConnectionError):
                # Only a connection the server closed between requests is
                # retried; that request never reached Envoy's router.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                if attempt:
                    raise

    def close(self):
        self.conn.close()


# (method, path, expected status, expected route label): the known mix.
def known_mix():
    mix = []
    mix += [("GET", f"/users/{i}", 200, "/users/{id}") for i in range(20)]
    mix += [("POST", "/items", 201, "/items")] * 5
    mix += [("GET", "/notfound", 404, "/notfound")] * 4
    mix += [("GET", "/error", 500, "/error")] * 3
    mix += [("GET", f"/orders/{uuid.uuid4()}/lines/{i}", 200, "/orders/:id/lines/:id") for i in range(2)]
    mix += [("BREW", "/pot", 200, "/pot")] * 2
    mix += [("GET", "/healthz", 200, "health")] * 3
    return mix


@pytest.fixture(scope="module")
def stacks(logdir):
    procs = []
    try:
        up_u, up_g = free_port(), free_port()
        procs.append(start_uwsgi(logdir, "red-uwsgi", port=up_u, protocol="http11"))
        procs.append(start_gunicorn(logdir, "red-gunicorn", port=up_g))
        eu = start_envoy(logdir, "red-envoy-uwsgi", up_u)
        eu.upstream_port = up_u
        procs.append(eu)
        eg = start_envoy(logdir, "red-envoy-gunicorn", up_g, dict(PLUGIN_CONFIG, service="gunicorn"))
        procs.append(eg)
        sent = {}
        for env in (eu, eg):
            c = Client(env.listen_port)
            results = []
            for method, path, status, route in known_mix():
                body = b"payload" if method == "POST" else None
                got, headers, data = c.request(method, path, body)
                results.append((method, path, status, got, headers, data))
            c.close()
            sent[env.name] = results
        yield {"uwsgi": eu, "gunicorn": eg, "sent": sent}
    finally:
        for p in reversed(procs):
            p.stop()


def expected_counts(service):
    exp = {}
    for method, path, status, route in known_mix():
        m = method if method in ("GET", "POST") else "_OTHER"
        svc = service
        key = (m, str(status), route, svc)
        exp[key] = exp.get(key, 0) + 1
    return exp


def flushed_prometheus(env, total):
    """Histograms reach the admin endpoint on a stats flush (1 s): wait for
    the histogram count to catch up with the counters."""
    def ready():
        text = env.prometheus()
        c = value(text, "uwsgi_red_request_duration_microseconds_count")
        return text if c >= total else None
    return wait_for(ready, 15, what="histogram flush")


@pytest.mark.parametrize("backend,service", [("uwsgi", "uwsgi_app"), ("gunicorn", "gunicorn")])
def test_exact_counts_and_labels(stacks, backend, service):
    env = stacks[backend]
    for method, path, want, got, headers, data in stacks["sent"][env.name]:
        assert got == want, f"{method} {path}: {got} {data[:100]!r}"
    mix = known_mix()
    text = flushed_prometheus(env, len(mix))
    exp = expected_counts(service)
    # The named direct_response route has no cluster: service falls back.
    if service == "uwsgi_app":
        exp[("GET", "200", "health", "unknown")] = exp.pop(("GET", "200", "health", "uwsgi_app"))
    got = {}
    for labels, v in samples(text, "uwsgi_red_requests_total"):
        assert labels["protocol"] == "http"
        assert labels["code_class"] == labels["code"][0] + "xx"
        got[(labels["method"], labels["code"], labels["route"], labels["service"])] = v
    assert got == exp
    assert value(text, "uwsgi_red_requests_total") == len(mix)
    # errors == 5xx, per series and in total
    errors = {(l["route"], l["code"]): v for l, v in samples(text, "uwsgi_red_errors_total")}
    assert errors == {("/error", "500"): 3}
    # every series' histogram count equals its request count
    for labels, v in samples(text, "uwsgi_red_requests_total"):
        match = {k: labels[k] for k in ("method", "code", "route", "service")}
        assert value(text, "uwsgi_red_request_duration_microseconds_count", **match) == v, match
        assert value(text, "uwsgi_red_time_to_first_byte_microseconds_count", **match) == v, match
        buckets = samples(text, "uwsgi_red_request_duration_microseconds_bucket", **match)
        inf = [b for l, b in buckets if l["le"] == "+Inf"]
        assert inf == [v], match
        # Envoy's OTel-aligned buckets from the example config (µs)
        assert {l["le"] for l, _ in buckets} >= {"5000", "10000000", "+Inf"}
    assert value(text, "uwsgi_red_dropped_label_sets_total") == 0
    assert value(text, "uwsgi_red_internal_errors_total") == 0


def test_traffic_is_untouched(stacks):
    """The filter never changes what the client gets."""
    for method, path, want, got, headers, data in stacks["sent"][stacks["uwsgi"].name]:
        if method == "GET" and path.startswith("/users/"):
            assert data == f"Hello GET {path} read=0\n".encode()
            assert headers.get("x-app") == "uwsgi-red"
        if method == "POST":
            assert data == b"created\n"


def test_duration_is_measured_at_the_proxy(logdir, stacks):
    """A slow upstream shows up in the right duration bucket."""
    env = stacks["uwsgi"]
    c = Client(env.listen_port)
    status, _, _ = c.request("GET", "/slow?s=0.3")
    c.close()
    assert status == 200

    def slow():
        text = env.prometheus()
        le_250ms = value(text, "uwsgi_red_request_duration_microseconds_bucket", route="/slow", le="250000")
        le_500ms = value(text, "uwsgi_red_request_duration_microseconds_bucket", route="/slow", le="500000")
        return (le_250ms, le_500ms) if le_500ms == 1 else None
    assert wait_for(slow, 15, what="slow request histogram") == (0, 1)


def test_access_logger_form_counts_the_same(logdir, stacks):
    """The module also runs as an access logger (one VM entry per request)."""
    up = free_port()
    u = start_uwsgi(logdir, "red-uwsgi-al", port=up, protocol="http11")
    env = start_envoy(logdir, "red-envoy-al", up, filter_kind="access_log")
    try:
        c = Client(env.listen_port)
        for i in range(7):
            c.request("GET", f"/users/{i}")
        c.request("GET", "/error")
        c.close()
        text = wait_for(lambda: (t := env.prometheus()) and value(t, "uwsgi_red_request_duration_microseconds_count") >= 8 and t,
                        15, what="flush")
        assert value(text, "uwsgi_red_requests_total", route="/users/{id}", code="200") == 7
        assert value(text, "uwsgi_red_errors_total", route="/error") == 1
        # An access logger sees no response headers pass: no TTFB there.
        assert value(text, "uwsgi_red_time_to_first_byte_microseconds_count") == 0
    finally:
        env.stop()
        u.stop()


def test_dead_upstream_is_counted_as_error_and_proxied(logdir):
    dead = free_port()
    env = start_envoy(logdir, "red-envoy-dead", dead)
    try:
        c = Client(env.listen_port)
        for _ in range(3):
            status, _, _ = c.request("GET", "/users/1")
            assert status == 503
        # Upstream down: the hostile paths too stay in the error series.
        for p in HOSTILE_PATHS:
            status, _, _ = c.request("GET", p)
            assert status == 503, p
        c.close()
        sent = 3 + len(HOSTILE_PATHS)
        text = wait_for(lambda: (t := env.prometheus()) and value(t, "uwsgi_red_errors_total") == sent and t, 15,
                        what="errors")
        assert value(text, "uwsgi_red_requests_total", code="503", route="/users/{id}") == 3
        assert value(text, "uwsgi_red_requests_total") == sent
        parsed = plugin_samples(text)
        assert_only_red_metrics(parsed, "uwsgi_app")
        for p in HOSTILE_PATHS:
            for name in ("uwsgi_red_requests_total", "uwsgi_red_errors_total"):
                got = of(parsed, name, route=hostile_route(p))
                assert [(l["method"], l["code"], l["code_class"], l["service"], l["protocol"], v)
                        for l, v in got] == [("GET", "503", "5xx", "uwsgi_app", "http", 1)], (name, p, got)
    finally:
        env.stop()


def worker_connections(env, port):
    """Accepted connections per Envoy worker thread on one listener."""
    out = {}
    stats = get_text(f"http://127.0.0.1:{env.admin_port}/stats?filter=worker_[0-9]+.downstream_cx_total")
    for line in stats.splitlines():
        name, _, v = line.partition(": ")
        if f"_{port}.worker_" in name:
            out[name.split(".worker_")[1].split(".")[0]] = int(v)
    return out


def test_cardinality_cap_is_process_wide_across_two_workers(logdir):
    """Two Envoy workers, four clients each sending the same 1 500 new paths
    at the same time: exactly `cap` label sets get a series process-wide
    (two workers racing on one new set never take two slots, or fewer than
    `cap` series would exist), every request is counted, and the overflow
    series holds exactly the dropped requests."""
    cap = 500
    # A dead upstream: Envoy answers 503 itself, only the plugin's work counts.
    env = start_envoy(logdir, "red-envoy-card", free_port(),
                      {"use_route_name": False, "collapse_ids": False, "max_series": cap}, concurrency=2)
    try:
        rnd = random.Random(42)
        paths = set()
        while len(paths) < 1500:
            paths.add("/x/" + "".join(rnd.choice(string.ascii_lowercase) for _ in range(12)))
        paths = sorted(paths)
        clients = 4

        def load(_):
            done = 0
            for i in range(0, len(paths), 50):
                # A new connection every 50 requests: both workers get some.
                c = Client(env.listen_port)
                for p in paths[i:i + 50]:
                    status, _, _ = c.request("GET", p)
                    done += status == 503
                c.close()
            return done

        with ThreadPoolExecutor(clients) as pool:
            sent = sum(pool.map(load, range(clients)))
        assert sent == clients * len(paths)
        workers = worker_connections(env, env.listen_port)
        assert len(workers) == 2 and all(v > 0 for v in workers.values()), workers
        text = wait_for(lambda: (t := env.prometheus()) and value(t, "uwsgi_red_requests_total") >= sent and t, 20,
                        what=f"{sent} requests")
        series = samples(text, "uwsgi_red_requests_total")
        overflow = [(l, v) for l, v in series if l["route"] == "__overflow__"]
        own = [(l, v) for l, v in series if l["route"] != "__overflow__"]
        assert len(own) == cap, "one slot per label set, all slots used"
        assert len(overflow) == 1
        assert value(text, "uwsgi_red_requests_total") == sent
        dropped = value(text, "uwsgi_red_dropped_label_sets_total")
        assert dropped == overflow[0][1] == sent - sum(v for _, v in own)
        assert value(text, "uwsgi_red_internal_errors_total") == 0
    finally:
        env.stop()


@pytest.mark.parametrize("bad,key", [
    ({"max_seris": 5}, "max_seris"),
    ({"route_patterns": ["/" + "x" * 1100]}, "route_patterns[0]"),
])
def test_refused_config_fails_open_naming_the_key(logdir, stacks, bad, key):
    """A refused configuration never costs a request: Envoy starts, every
    response is the upstream's byte for byte, nothing is measured, and the
    refusal is logged (critical, naming the key) and counted once per VM."""
    upstream = stacks["uwsgi"].upstream_port
    listen, admin = free_port(), free_port()
    name = f"red-envoy-bad-{key.replace('[', '').replace(']', '')}"
    env = Envoy(name, render(listen, admin, upstream, bad), logdir, admin, concurrency=2)
    try:
        env.wait_ready()
        c = Client(listen)
        direct = Client(upstream)
        for method, path, status, route in known_mix():
            body = b"payload" if method == "POST" else None
            got = c.request(method, path, body)
            assert got[0] == status, (method, path, got[0])
            if route != "health":
                want = direct.request(method, path, body)
                assert got[2] == want[2], (path, got[2][:200], want[2][:200])
        c.close()
        direct.close()
        refusals = [line for line in env.log().splitlines()
                    if "red-filter: invalid plugin configuration" in line and f"`{key}`" in line]
        assert refusals, env.tail()
        assert all("critical" in line for line in refusals), refusals
        text = env.prometheus()
        assert value(text, "uwsgi_red_internal_errors_total", reason="config") == len(refusals)
        assert value(text, "uwsgi_red_requests_total") == 0
        assert env.poll() is None
    finally:
        env.stop()


def test_prometheus_scrapes_envoy_and_promql_rate_by_route(logdir, stacks, tmp_path):
    prom = require_binary("prometheus", "apt-get install prometheus")
    env = stacks["uwsgi"]
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "- job_name: envoy\n"
        "  metrics_path: /stats/prometheus\n"
        f"  static_configs: [{{targets: ['127.0.0.1:{env.admin_port}']}}]\n")
    p = Proc("prometheus", [prom, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                            f"--web.listen-address=127.0.0.1:{port}"], logdir)
    try:
        wait_port(port, 30, p)

        def scraped():
            try:
                res = json.loads(get_text(f"http://127.0.0.1:{port}/api/v1/query?query=up", timeout=2))
            except (AssertionError, OSError):
                return None
            return [r for r in res["data"]["result"] if r["value"][1] == "1"]
        # The web port opens before the TSDB and the first scrape are done.
        wait_for(scraped, 30, interval=0.5, what="Prometheus' first scrape of Envoy")
        c = Client(env.listen_port)
        # Two rounds with scrapes in between, so the rate has an increase
        # to measure over existing series.
        for rnd in range(3):
            for i in range(10):
                c.request("GET", f"/prom/{i}")
            c.request("POST", "/items", b"x")
            time.sleep(2.5)
        c.close()
        q = 'sum by (route) (rate(uwsgi_red_requests_total{service="uwsgi_app"}[1m]))'

        def query():
            body = get_text(f"http://127.0.0.1:{port}/api/v1/query?query={urllib_quote(q)}")
            res = json.loads(body)
            assert res["status"] == "success"
            got = {r["metric"].get("route"): float(r["value"][1]) for r in res["data"]["result"]}
            last["got"] = got
            return got if got.get("/prom/{id}", 0) > 0 and got.get("/items", 0) > 0 else None
        last = {}
        try:
            got = wait_for(query, 30, interval=1, what="PromQL rate by route")
        except AssertionError:
            raise AssertionError(f"PromQL {q} -> {last.get('got')}")
        # Each result is one series per route: labels really are labels.
        assert "/prom/{id}" in got and "/items" in got
        assert all("{" not in k or k.endswith("{id}") for k in got)
        assert got["/prom/{id}"] > got["/items"]
    finally:
        p.stop()


def urllib_quote(s):
    from urllib.parse import quote
    return quote(s, safe="")


def test_examples_validate_in_envoy():
    """`envoy --mode validate` on every Envoy YAML in examples/."""
    configs = [p for p in (ROOT / "examples").rglob("*.yaml")
               if ("static_resources" in p.read_text() or "bootstrap_extensions" in p.read_text())
               and "\napiVersion:" not in p.read_text()]  # Kubernetes manifests (examples/istio) are not bootstraps
    assert configs, "no Envoy example configs found"
    for cfg in configs:
        ok, out = envoy_validate_from_root(cfg)
        assert ok, f"{cfg}: {out[-2000:]}"


def envoy_validate_from_root(cfg):
    from conftest import envoy_bin
    r = subprocess.run([envoy_bin(), "--mode", "validate", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    return r.returncode == 0, r.stdout + r.stderr


# Paths that split the old tag encoding: a label key with `=.=` or `;.;`
# inside a value took the first match in the stat name (forged `service`,
# requests moved out of uwsgi_red_requests_total), `;` and `_` collided.
# Each must land in its own series with the labels the plugin set.
HOSTILE_PATHS = ["/aservice=.=billing-prod", "/aprotocol=.=grpc", "/areason=.=forged", "/u;service=.=x",
                 "/v/%3Bservice=.=y", "/semi;x", "/semi_x", "/m;.;method=.=POST;.;code=.=200;.;x",
                 "/static/app.js", "/q\"uote", "/L" + ";=.\\" * 80]
RED_FAMILIES = {"uwsgi_red_requests_total", "uwsgi_red_errors_total", "uwsgi_red_dropped_label_sets_total",
                "uwsgi_red_internal_errors_total"} | {
    f"{h}{s}" for h in ("uwsgi_red_request_duration_microseconds", "uwsgi_red_time_to_first_byte_microseconds")
    for s in ("_bucket", "_sum", "_count")}
RED_LABELS = {"method", "code", "code_class", "route", "service", "protocol"}


def hostile_route(path):
    """The route label: the path (no query), at most 256 bytes, escaped."""
    return envoy_label_value(path.encode()[:256])


def plugin_samples(text):
    """The plugin's samples, parsed once: [(name, labels, value)]."""
    return [s for s in parse_prometheus(text) if not s[0].startswith("envoy_")]


def of(parsed, name, **match):
    return [(l, v) for n, l, v in parsed if n == name and all(l.get(k) == x for k, x in match.items())]


def assert_only_red_metrics(parsed, service):
    """No forged metric name, no forged or missing label on any series."""
    names = {n for n, _, _ in parsed}
    assert names <= RED_FAMILIES, names - RED_FAMILIES
    for labels, _ in of(parsed, "uwsgi_red_requests_total") + of(parsed, "uwsgi_red_errors_total"):
        assert set(labels) == RED_LABELS, labels
        assert labels["service"] in (service, "unknown") and labels["protocol"] == "http", labels


def test_hostile_paths_cannot_split_labels(stacks):
    """Upstream up: every hostile path is counted exactly, in its own series."""
    env = stacks["uwsgi"]
    before = env.prometheus()
    c = Client(env.listen_port)
    for p in HOSTILE_PATHS:
        for _ in range(2):
            status, _, data = c.request("GET", p)
            assert status == 200, (p, status, data[:100])
    c.close()
    sent = 2 * len(HOSTILE_PATHS)
    total = value(before, "uwsgi_red_requests_total") + sent
    hist = value(before, "uwsgi_red_request_duration_microseconds_count") + sent
    text = wait_for(lambda: (t := env.prometheus()) and value(t, "uwsgi_red_requests_total") >= total
                    and value(t, "uwsgi_red_request_duration_microseconds_count") >= hist and t, 15, what="flush")
    assert value(text, "uwsgi_red_requests_total") == total
    assert value(text, "uwsgi_red_errors_total") == value(before, "uwsgi_red_errors_total")
    parsed = plugin_samples(text)
    assert_only_red_metrics(parsed, "uwsgi_app")
    for p in HOSTILE_PATHS:
        got = of(parsed, "uwsgi_red_requests_total", route=hostile_route(p))
        assert [(l["method"], l["code"], l["service"], l["protocol"], v) for l, v in got] == \
            [("GET", "200", "uwsgi_app", "http", 2)], (p, got)
        assert [v for _, v in of(parsed, "uwsgi_red_request_duration_microseconds_count",
                                 route=hostile_route(p))] == [2], p
    # `;` and `_` no longer share a series (nor an admission slot's name).
    assert hostile_route("/semi;x") == "/semi\\x3Bx" != hostile_route("/semi_x")


# ---------------------------------------------------------------- request_start and upstream_label
# Two recording upstreams behind one Envoy cluster (round robin): each
# records every X-Request-Start value a request carried, so "exactly one"
# and "within the request's time window" are checked on what arrived.

STAMP_MODES = {
    # keep + upstream_label, in both expositions at once (host and self).
    "keep": {"request_start": "keep", "upstream_label": True, "exposition": "both", "flush_interval_ms": 100},
    "replace": {"request_start": "replace"},
    "off": {},
}
def two_backend_envoy(logdir, name, upstreams, plugin_config):
    wasm("red-filter")
    listen, admin = free_port(), free_port()
    cfg = render(listen, admin, upstreams[0].port, plugin_config)
    one = f"        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {upstreams[0].port}}}}}}}\n"
    two = one.replace(str(upstreams[0].port), str(upstreams[1].port))
    assert cfg.count(one) == 1, cfg
    env = Envoy(name, cfg.replace(one, one + two), logdir, admin)
    env.wait_ready()
    env.listen_port = listen
    return env


@pytest.fixture(scope="module")
def stamped(logdir):
    ups = [RecordingUpstream(), RecordingUpstream()]
    envs = []
    try:
        # Envoys start together, then traffic goes to one at a time.
        for mode, extra in STAMP_MODES.items():
            envs.append(two_backend_envoy(logdir, f"red-stamp-{mode}", ups, dict(PLUGIN_CONFIG, **extra)))
        sent = {mode: send_stamped(env.listen_port, ups) for mode, env in zip(STAMP_MODES, envs)}
        yield {"envs": dict(zip(STAMP_MODES, envs)), "sent": sent, "upstreams": ups}
    finally:
        for e in envs:
            e.stop()
        for u in ups:
            u.stop()


@pytest.mark.parametrize("mode", list(STAMP_MODES))
def test_upstream_gets_exactly_one_request_start(stamped, mode):
    """keep: an outer proxy's value arrives as it was, else Envoy's own;
    replace: always Envoy's own, once; off: nothing added, an outer value
    untouched."""
    assert_stamps(stamped["sent"][mode], mode)


def test_upstream_label_is_the_backend_address_with_exact_counts(stamped):
    """Round robin over two backends: the `upstream` label is each
    backend's real address, and its count is exactly the requests that
    backend received, in host mode (Envoy stats) and self mode alike."""
    ups = stamped["upstreams"]
    want = per_backend(stamped["sent"]["keep"], ups)
    assert set(want) == {u.address for u in ups} and sum(want.values()) == STAMP_REQUESTS, want
    env = stamped["envs"]["keep"]
    host = wait_for(lambda: (t := env.prometheus()) and value(t, "uwsgi_red_requests_total") >= STAMP_REQUESTS
                    and t, 15, what="host counts")
    self_text = wait_for(lambda: (t := get_text(f"http://127.0.0.1:{env.listen_port}/metrics"))
                         and value(t, "uwsgi_red_requests_total") >= STAMP_REQUESTS and t, 15, what="self counts")
    for text in (host, self_text):
        got = {}
        for labels, v in samples(text, "uwsgi_red_requests_total"):
            got[labels["upstream"]] = got.get(labels["upstream"], 0) + v
        assert got == want, (got, want)
    # Off (the default): no `upstream` label at all.
    off = stamped["envs"]["off"]
    text = wait_for(lambda: (t := off.prometheus()) and value(t, "uwsgi_red_requests_total") >= STAMP_REQUESTS
                    and t, 15, what="off counts")
    assert all("upstream" not in l for l, _ in samples(text, "uwsgi_red_requests_total"))
