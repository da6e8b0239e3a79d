"""red-filter `self`/`both` exposition in a real Envoy 1.40 with two worker
VMs (`--concurrency 2`): each worker keeps local counts and merges them into
proxy-wasm shared data on a tick; a scrape of the plugin's own `/metrics`
on either worker shows the whole process.

Totals are exact: the self-served numbers equal the requests sent and
Envoy's own host metrics for the same requests.
"""
import http.client as httpclient
import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import get_text, http, parse_prometheus, require_binary, samples, value, wait_for
from test_red_filter import Client, PLUGIN_CONFIG, known_mix, start_envoy
from harness import start_uwsgi
from conftest import Envoy, free_port
from envoy_red import render

FLUSH_MS = 200
SELF_CONFIG = dict(PLUGIN_CONFIG, exposition="both", flush_interval_ms=FLUSH_MS)
KEY = ("method", "code", "route", "service")


def scrape(env, accept=None):
    headers = {"Accept": accept} if accept else {}
    status, hdrs, body = http("GET", f"http://127.0.0.1:{env.listen_port}/metrics", headers=headers)
    assert status == 200, body[:300]
    return {k.lower(): v for k, v in hdrs.items()}, body.decode()


def per_series(text, name, suffix=""):
    return {tuple(l[k] for k in KEY): v for l, v in samples(text, name + suffix)}


def worker_connections(env):
    """Accepted connections per Envoy worker thread."""
    out = {}
    stats = get_text(f"http://127.0.0.1:{env.admin_port}/stats?filter=worker_[0-9]+.downstream_cx_total")
    for line in stats.splitlines():
        name, _, v = line.partition(": ")
        if f"_{env.listen_port}.worker_" in name:
            out[name.split(".worker_")[1].split(".")[0]] = int(v)
    return out


@pytest.fixture(scope="module")
def stack(logdir):
    procs = []
    try:
        up = free_port()
        procs.append(start_uwsgi(logdir, "self-uwsgi", port=up, protocol="http11"))
        env = start_envoy(logdir, "self-envoy", up, SELF_CONFIG, concurrency=2)
        procs.append(env)
        mix = known_mix() * 3
        # A fresh connection every few requests: the kernel spreads them over
        # both workers' listening sockets.
        results = []
        for i in range(0, len(mix), 4):
            c = Client(env.listen_port)
            for method, path, status, _ in mix[i:i + 4]:
                got, _, _ = c.request(method, path, b"payload" if method == "POST" else None)
                results.append((method, path, status, got))
            c.close()
        yield {"env": env, "mix": mix, "results": results}
    finally:
        for p in reversed(procs):
            p.stop()


def expected_counts(mix):
    exp = {}
    for method, _, status, route in mix:
        m = method if method in ("GET", "POST") else "_OTHER"
        svc = "unknown" if route == "health" else "uwsgi_app"
        exp[(m, str(status), route, svc)] = exp.get((m, str(status), route, svc), 0) + 1
    return exp


def test_self_served_totals_equal_host_totals(stack):
    env, mix = stack["env"], stack["mix"]
    for method, path, want, got in stack["results"]:
        assert got == want, (method, path)
    workers = worker_connections(env)
    assert len(workers) == 2 and all(v > 0 for v in workers.values()), workers

    # Other workers' deltas arrive within one tick; host histograms on the
    # 1 s stats flush.
    text = wait_for(lambda: (t := scrape(env)[1]) and value(t, "uwsgi_red_requests_total") >= len(mix) and t,
                    10, what="self-served totals")
    host = wait_for(lambda: (t := env.prometheus())
                    and value(t, "uwsgi_red_request_duration_microseconds_count") >= len(mix) and t,
                    15, what="host histogram flush")

    exp = expected_counts(mix)
    assert per_series(text, "uwsgi_red_requests_total") == exp
    assert per_series(host, "uwsgi_red_requests_total") == exp
    # Host mode only defines error counters for error series; self mode
    # shows every series, at 0 when it had no errors.
    self_errors = {k: v for k, v in per_series(text, "uwsgi_red_errors_total").items() if v}
    assert self_errors == per_series(host, "uwsgi_red_errors_total")
    assert value(text, "uwsgi_red_errors_total") == sum(v for k, v in exp.items() if k[1].startswith("5"))
    # Histograms: seconds in the self-served form, one count per request.
    for key, n in exp.items():
        match = dict(zip(KEY, key))
        assert value(text, "uwsgi_red_request_duration_seconds_count", **match) == n
        assert value(text, "uwsgi_red_time_to_first_byte_seconds_count", **match) == n
        assert value(host, "uwsgi_red_request_duration_microseconds_count", **match) == n
        les = {l["le"]: v for l, v in samples(text, "uwsgi_red_request_duration_seconds_bucket", **match)}
        assert les["+Inf"] == n, match
        assert {"0.005", "0.25", "10", "+Inf"} <= set(les), les
        assert list(les.values()) == sorted(les.values()), "buckets are cumulative"
        assert 0 < value(text, "uwsgi_red_request_duration_seconds_sum", **match) < 30 * n
    assert value(text, "uwsgi_red_dropped_label_sets_total") == 0
    assert "uwsgi_red_internal_errors_total{" not in text


def test_scrapes_are_stable_monotonic_and_not_counted(stack):
    env, mix = stack["env"], stack["mix"]
    wait_for(lambda: value(scrape(env)[1], "uwsgi_red_requests_total") == len(mix), 10, what="settled")
    prev = None
    # Fresh connections: scrapes land on both workers.
    for _ in range(8):
        _, text = scrape(env)
        cur = per_series(text, "uwsgi_red_requests_total")
        assert sum(cur.values()) == len(mix), "a scrape is not traffic"
        if prev is not None:
            for k, v in prev.items():
                assert cur.get(k, 0) >= v, k
        prev = cur
        time.sleep(FLUSH_MS / 1000 / 2)
    assert not any(k[2] == "/metrics" for k in prev)
    host = env.prometheus()
    assert value(host, "uwsgi_red_requests_total") == len(mix)
    assert not samples(host, "uwsgi_red_requests_total", route="/metrics")


def test_promtool_and_prometheus_client_accept_the_output(stack, tmp_path):
    promtool = require_binary("promtool", "apt-get install prometheus")
    hdrs, text = scrape(stack["env"])
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    # promtool exits 0 on valid input; lint remarks would be printed.
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr
    names = {n for n, _, _ in parse_prometheus(text)}
    assert {"uwsgi_red_requests_total", "uwsgi_red_request_duration_seconds_bucket",
            "uwsgi_red_time_to_first_byte_seconds_sum", "uwsgi_red_dropped_label_sets_total"} <= names
    for line in text.splitlines():
        if line.startswith("# TYPE uwsgi_red_request_duration_seconds"):
            assert line.endswith(" histogram")


def test_openmetrics_on_accept(stack):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    prom_accept = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                   "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    hdrs, text = scrape(stack["env"], prom_accept)
    assert hdrs["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert text.endswith("# EOF\n")
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["uwsgi_red_requests"].type == "counter"
    assert fams["uwsgi_red_request_duration_seconds"].type == "histogram"
    total = sum(s.value for s in fams["uwsgi_red_requests"].samples if s.name == "uwsgi_red_requests_total")
    assert total == len(stack["mix"])


def test_other_methods_on_metrics_path_are_proxied_and_counted(stack):
    env, mix = stack["env"], stack["mix"]
    c = Client(env.listen_port)
    status, _, data = c.request("POST", "/metrics", b"x")
    c.close()
    assert status == 200 and data.startswith(b"Hello POST /metrics")
    text = wait_for(lambda: (t := scrape(env)[1]) and value(t, "uwsgi_red_requests_total") == len(mix) + 1 and t,
                    10, what="POST counted")
    assert value(text, "uwsgi_red_requests_total", method="POST", route="/metrics") == 1


def test_two_workers_hammering_one_series_lose_nothing(logdir):
    """Bounded load from a fixed thread pool onto one series while 20 ms ticks
    merge both workers' deltas (and scrapes flush, too): the final count is
    exactly the number of completed requests, never more, never less."""
    env = start_envoy(logdir, "self-envoy-hammer", free_port(),
                      {"exposition": "self", "flush_interval_ms": 20}, concurrency=2)
    threads, per_thread = 16, 250
    stop = threading.Event()
    seen = []

    def scraper():
        while not stop.is_set():
            _, text = scrape(env)
            seen.append(value(text, "uwsgi_red_requests_total", route="health"))
            time.sleep(0.02)

    def load(_):
        conn = httpclient.HTTPConnection("127.0.0.1", env.listen_port, timeout=15)
        done = 0
        for _ in range(per_thread):
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            done += r.status == 200
        conn.close()
        return done

    try:
        t = threading.Thread(target=scraper)
        t.start()
        try:
            with ThreadPoolExecutor(threads) as pool:
                completed = sum(pool.map(load, range(threads)))
        finally:
            stop.set()
            t.join(30)
        assert completed == threads * per_thread
        workers = worker_connections(env)
        assert len(workers) == 2 and all(v > 0 for v in workers.values()), workers
        final = wait_for(lambda: (v := value(scrape(env)[1], "uwsgi_red_requests_total", route="health")) == completed
                         and v, 10, what=f"{completed} requests")
        time.sleep(0.2)  # ten more ticks: still exact, nothing double-counted
        _, text = scrape(env)
        assert value(text, "uwsgi_red_requests_total", route="health") == final == completed
        assert value(text, "uwsgi_red_request_duration_seconds_count", route="health") == completed
        assert "uwsgi_red_internal_errors_total{" not in text
        assert len(seen) > 5 and seen == sorted(seen), "counts went backwards between scrapes"
    finally:
        env.stop()


def test_two_instances_sharing_a_service_keep_separate_exact_counts(logdir):
    """Two red-filter instances in one VM id with the same `service` and
    different buckets (which used to make each wipe the other's state):
    each keeps its own exact counts, with its own start time and no
    internal errors."""
    listen, admin = free_port(), free_port()
    a = {"exposition": "self", "service": "s", "buckets_seconds": [0.1, 1.0], "metrics_path": "/m1",
         "flush_interval_ms": 50}
    b = dict(a, buckets_seconds=[0.5, 5.0], metrics_path="/m2")
    text = render(listen, admin, free_port(), a)
    start = text.index("          - name: envoy.filters.http.wasm\n")
    end = text.index("          - name: envoy.filters.http.router\n")
    block = text[start:end]
    second = block.replace("value: '" + json.dumps(a) + "'", "value: '" + json.dumps(b) + "'")
    assert second != block
    env = Envoy("self-envoy-two-instances", text[:end] + second + text[end:], logdir, admin, concurrency=2)
    t0 = time.time()
    try:
        env.wait_ready()
        env.listen_port = listen
        n = 0
        for _ in range(10):
            c = Client(listen)
            for i in range(6):
                status, _, _ = c.request("GET", f"/x/{i}")
                assert status == 503  # dead upstream: answered by Envoy, counted
                n += 1
            c.close()
        m2_scrapes = 0

        def scrape_path(path):
            status, _, body = http("GET", f"http://127.0.0.1:{listen}{path}")
            assert status == 200, body[:300]
            return body.decode()

        def b_done():
            nonlocal m2_scrapes
            m2_scrapes += 1
            t = scrape_path("/m2")
            return value(t, "uwsgi_red_requests_total") == n and t

        tb = wait_for(b_done, 10, what=f"{n} requests in instance b")
        ta = wait_for(lambda: (t := scrape_path("/m1")) and value(t, "uwsgi_red_requests_total") == n + m2_scrapes
                      and t, 10, what="instance a: the requests plus the /m2 scrapes it proxied")
        assert {l["le"] for l, _ in samples(ta, "uwsgi_red_request_duration_seconds_bucket")} == {"0.1", "1", "+Inf"}
        assert {l["le"] for l, _ in samples(tb, "uwsgi_red_request_duration_seconds_bucket")} == {"0.5", "5", "+Inf"}
        for t in (ta, tb):
            assert "uwsgi_red_internal_errors_total{" not in t
            started = value(t, "uwsgi_red_state_start_time_seconds")
            assert t0 - 5 <= started <= time.time() + 1, started
    finally:
        env.stop()
