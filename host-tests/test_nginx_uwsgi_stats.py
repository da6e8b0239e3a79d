"""uwsgi-stats in a real nginx 1.27.4 + ngx_wasm_module (4 worker
processes), from examples/nginx-wasm/nginx-uwsgi-stats.conf with only ports,
paths, targets and relay locations substituted, beside a real Envoy running
examples/envoy-uwsgi-stats with the same targets.

- exactly one poll per target per interval across the 4 workers (a lease
  in shm_kv), taken over within one interval after SIGKILL of the holder,
  and through `nginx -s reload`;
- the nginx page equals Envoy's /stats/prometheus (families, labels,
  values) for every committed stats vector and for live uWSGI instances;
- faults (down, slow, garbage, truncated, oversized) counted with Envoy's
  reasons while nginx serves every request; a refused configuration never
  stops a worker.
"""
import http.client
import json
import os
import re
import signal
import time

import pytest

from harness import (Sub, free_port, parse_prometheus, render, start_uwsgi, uwsgi_stats_config, value,
                     wait_for, wasm)
from harness.envoy import Envoy
from nginx_wasm import NginxWasm

from test_uwsgi_stats import HTTP_HEAD, VECTORS, FakeStats, huge_document

EXAMPLE = "examples/nginx-wasm/nginx-uwsgi-stats.conf"
INTERVAL_S = 1.0
MAX_DOC = 2 * 1024 * 1024
PLUGIN_LINE = re.compile(r"proxy_wasm uwsgi_stats '(\{.*\})';")
RELAY_LOCATIONS = re.compile(r"        location = /app1 \{.*?\n        location = /app2 \{[^\n]*\n", re.S)
HOLDS = re.compile(r"\] (\d+)#\d+: .*worker lease id (\d+) holds the poller lease")
# Vectors whose documents are served as-is by fake stats servers.
VECTOR_FILES = sorted(p.name for p in VECTORS.glob("stats_*_http.bin"))


class Beat(FakeStats):
    """A fake stats server that records when each poll arrives."""

    def __init__(self, reply):
        self.times = []
        super().__init__(reply)

    def _serve(self, conn):
        self.times.append(time.monotonic())
        super()._serve(conn)


class Setup:
    pass


def relay_locations(ports):
    return "".join(f"        location = /{name} {{ proxy_pass http://127.0.0.1:{port}/; }}\n"
                   for name, port in ports.items())


def vector_name(file_name):
    return file_name.removeprefix("stats_").removesuffix("_http.bin").replace("_", "-")


@pytest.fixture(scope="module")
def env(logdir):
    s = Setup()
    wasm("uwsgi-stats")
    wasm("red-filter")
    s.app1 = start_uwsgi(logdir, "nginx-stats-app1", protocol="uwsgi", processes=2, stats=True, memory_report=True)
    s.app2 = start_uwsgi(logdir, "nginx-stats-app2", protocol="uwsgi", processes=2, stats=True, memory_report=True)
    s.vectors = {vector_name(f): FakeStats((VECTORS / f).read_bytes()) for f in VECTOR_FILES}
    truncated = (VECTORS / "stats_b_4x4_after_load_http.json").read_bytes()
    s.faults = {
        "closed": None,
        "hang": FakeStats(mode="hang"),
        "garbage": FakeStats(HTTP_HEAD + b"\x00\x17<html>this is not a stats document</html>\xff"),
        "rawgarbage": FakeStats(b"\x00\x01\x02 not even HTTP \xfe\xff\r\n\r\n"),
        "truncated": FakeStats(HTTP_HEAD + truncated[: len(truncated) // 2]),
        "huge": FakeStats(HTTP_HEAD + huge_document()),
    }
    # Good at first, garbage later (a stats server that breaks): stale.
    s.flip = FakeStats((VECTORS / "stats_b_4x4_load_http.bin").read_bytes())
    s.beat = Beat((VECTORS / "stats_a_2proc_idle_http.bin").read_bytes())
    ports = {"app1": s.app1.stats_port, "app2": s.app2.stats_port, "beat": s.beat.port}
    ports.update({k: f.port for k, f in s.vectors.items()})
    ports.update({k: (f.port if f else free_port()) for k, f in s.faults.items()})
    ports["flip"] = s.flip.port
    s.ports = ports
    common = {"interval_ms": int(INTERVAL_S * 1000), "timeout_ms": 800, "max_document_bytes": MAX_DOC}

    # Envoy: one cluster per target, straight to the stats server.
    # Not "beat": it counts nginx's polls only.
    envoy_ports = {k: p for k, p in ports.items() if k != "beat"}
    envoy_targets = [{"name": k, "cluster": f"uwsgi_stats_{k}"} for k in envoy_ports]
    s.envoy_admin = free_port()
    cfg = uwsgi_stats_config(s.envoy_admin, free_port(), free_port(), s.app1.stats_port,
                             {"targets": envoy_targets, **common},
                             {f"uwsgi_stats_{k}": p for k, p in envoy_ports.items()}, wasm_path=wasm("uwsgi-stats"))
    s.envoy = Envoy("envoy-parity", cfg, logdir, s.envoy_admin)

    # nginx: the example, every target through its stats relay.
    s.port, relay = free_port(), free_port()
    nginx_targets = [{"name": k, "cluster": f"127.0.0.1:{relay}", "path": f"/{k}"} for k in ports]
    # A stats server polled directly, without the relay (a likely mistake).
    nginx_targets.append({"name": "direct", "cluster": f"127.0.0.1:{s.app1.stats_port}"})
    plugin = {"mode": "nginx", "targets": nginx_targets, **common,
              "metrics_path": "/uwsgi/metrics", "snapshot_path": "/uwsgi/snapshot.json"}
    prefix = logdir / "nginx-uwsgi-stats-prefix"
    conf = render(EXAMPLE, [
        ("listen 127.0.0.1:8080 reuseport;", f"listen 127.0.0.1:{s.port} reuseport;"),
        ("listen 127.0.0.1:9190;", f"listen 127.0.0.1:{relay};"),
        ("server 127.0.0.1:8001;", f"server 127.0.0.1:{s.app1.port};"),
        ("server 127.0.0.1:8002;", f"server 127.0.0.1:{s.app2.port};"),
        ("pid /tmp/nginx-uwsgi-stats.pid;", f"pid {prefix}/nginx.pid;"),
        ("error_log /tmp/nginx-uwsgi-stats-error.log info;", f"error_log {prefix}/error.log info;"),
        Sub(PLUGIN_LINE, f"proxy_wasm uwsgi_stats '{json.dumps(plugin)}';"),
        Sub(RELAY_LOCATIONS, relay_locations(ports)),
        # A location whose uwsgi-stats configuration is refused: its
        # requests must still be served by every worker.
        ("        location = /metrics {",
         "        location = /refused {\n"
         "            proxy_wasm uwsgi_stats '{\"mode\": \"nginx\", \"targets\": []}';\n"
         "            uwsgi_pass uwsgi_app;\n"
         "        }\n"
         "        location = /metrics {"),
    ])
    s.nginx = NginxWasm(logdir, "nginx-uwsgi-stats", s.port, conf_text=conf)
    # Two modules per worker, four workers.
    s.nginx.wait_loaded(at_least=4, timeout=120)
    s.envoy.wait_ready()
    wait_for(lambda: value(page(s, must=False), "uwsgi_up", target="app1") == 1, 30, what="nginx: first poll of app1")
    wait_for(lambda: value(s.envoy.prometheus(), "uwsgi_up", target="app1") == 1, 30,
             what="envoy: first poll of app1")
    yield s
    s.nginx.stop()
    s.envoy.stop()
    for p in (s.app1, s.app2):
        p.stop(signal.SIGINT)
    for f in [*s.vectors.values(), *s.faults.values(), s.beat, s.flip]:
        if f:
            f.close()


def page(s, path="/uwsgi/metrics", must=True):
    """The page; before the first poll (503) "" unless `must`."""
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status == 503 and not must:
        return ""
    assert r.status == 200, (r.status, body[:300])
    return body.decode()


def series(text, targets):
    """{(name, labels)} -> value for samples of the given targets."""
    return {(n, tuple(sorted(l.items()))): v for n, l, v in parse_prometheus(text)
            if l.get("target") in targets}


# Values that depend on when or how often each host polled.
TIME_OR_COUNT = {"uwsgi_scrape_last_success_timestamp_seconds", "uwsgi_stats_repairs_total"}


def gaps(times):
    return [b - a for a, b in zip(times, times[1:])]


# ---------------------------------------------------------------- the lease

def test_one_poll_per_interval_across_four_workers(env):
    assert len(env.nginx.workers()) == 4
    start = len(env.beat.times)
    time.sleep(6 * INTERVAL_S)
    times = env.beat.times[start:]
    print(f"polls in 6 intervals: {len(times)}; gaps {[round(g, 3) for g in gaps(times)]}")
    assert len(times) in (5, 6, 7), times
    # Polls ride on 4 ticks per interval (a poll due within half a tick is
    # made at that tick) and nginx timers drift with the worker's load:
    # each gap is one interval give or take a tick or two, never two polls
    # in one tick.
    assert all(0.5 * INTERVAL_S <= g <= 1.5 * INTERVAL_S for g in gaps(times)), gaps(times)
    # Every other target was polled as often (one lease for all targets).
    holders = {m.group(1) for m in HOLDS.finditer(env.nginx.error_log())}
    assert holders, env.nginx.error_log()[-2000:]


def test_sigkill_of_the_holder_is_taken_over_within_one_interval(env):
    holder = int(HOLDS.findall(env.nginx.error_log())[-1][0])
    assert holder in env.nginx.workers()
    errors_before = value(page(env), "uwsgi_scrape_errors_total", target="closed", reason="connect")
    assert errors_before >= 1
    before = len(env.beat.times)
    wait_for(lambda: len(env.beat.times) > before, 5, 0.01, what="a poll")
    time.sleep(0.3 * INTERVAL_S)
    killed_at = time.monotonic()
    os.kill(holder, signal.SIGKILL)
    wait_for(lambda: env.beat.times[-1] > killed_at, 5, 0.01, what="a poll after the kill")
    first = next(t for t in env.beat.times if t > killed_at)
    last = max(t for t in env.beat.times if t <= killed_at)
    takeover = first - killed_at
    print(f"BENCH nginx_uwsgi_stats_takeover_after_sigkill {takeover * 1000:.0f} ms "
          f"(poll gap {(first - last) * 1000:.0f} ms, interval {INTERVAL_S * 1000:.0f} ms)")
    # The lease expires 3/5 interval after the last renewal (at most the
    # kill), another worker takes it at its next tick (1/5) and polls at
    # the tick after (1/5): one interval, plus nginx's timer slack.
    assert takeover <= 1.15 * INTERVAL_S, takeover
    assert first - last >= 0.4 * INTERVAL_S, "two pollers"
    new = int(HOLDS.findall(env.nginx.error_log())[-1][0])
    assert new != holder
    # The plugin's own counters continue on the new holder (never back).
    wait_for(lambda: value(page(env), "uwsgi_scrape_errors_total", target="closed", reason="connect")
             > errors_before, 5, what="the new holder counting on")
    # nginx respawns the killed worker; polling goes on once per interval.
    wait_for(lambda: len(env.nginx.workers()) == 4, 30, what="respawned worker")
    start = len(env.beat.times)
    time.sleep(4 * INTERVAL_S)
    g = gaps(env.beat.times[start - 1:])
    assert g and all(0.5 * INTERVAL_S <= x <= 1.5 * INTERVAL_S for x in g), g


def app_requests(text):
    return sum(v for n, l, v in parse_prometheus(text)
               if n == "uwsgi_worker_requests_total" and l.get("target") in ("app1", "app2"))


def get_app(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def test_reload_keeps_one_poller_and_absolute_counters(env):
    base = app_requests(page(env))
    assert [get_app(env.port, f"/users/{i}") for i in range(10)] == [200] * 10
    wait_for(lambda: app_requests(page(env)) == base + 10, 10, what="the 10 requests in uWSGI's counters")
    uwsgi_counters = {k: v for k, v in series(page(env), {"app1", "app2"}).items()
                      if k[0].endswith("_total") and k[0] not in TIME_OR_COUNT and "scrape_errors" not in k[0]}
    start = len(env.beat.times)
    t0 = time.monotonic()
    env.nginx.reload(timeout=120)
    reloaded = time.monotonic() - t0
    # Settled: the old workers are gone, the new ones poll once per interval.
    settled = len(env.beat.times)
    time.sleep(4 * INTERVAL_S)
    through = gaps(env.beat.times[start - 1:])
    after_gaps = gaps(env.beat.times[settled:])
    print(f"BENCH nginx_uwsgi_stats_reload_poll_pause {max(through):.1f} s (reload took {reloaded:.1f} s); "
          f"poll gaps from the reload on {[round(x, 3) for x in through]}")
    assert len(after_gaps) >= 2 and all(0.5 * INTERVAL_S <= x <= 1.5 * INTERVAL_S for x in after_gaps), through
    # Never two pollers: not even while old and new workers overlap.
    assert min(through) >= 0.4 * INTERVAL_S, through
    # Polling resumed as soon as the new workers had compiled the modules.
    assert max(through) <= reloaded + 2 * INTERVAL_S, through
    # uWSGI's own counters are absolute: a reload (a fresh shm_kv zone, new
    # workers) neither resets nor repeats them.
    after = series(page(env), {"app1", "app2"})
    assert {k: after.get(k) for k in uwsgi_counters} == uwsgi_counters


# ---------------------------------------------------------------- parity

def test_page_equals_envoy_for_every_vector_and_live_uwsgi(env):
    targets = set(env.vectors) | {"app1", "app2"}
    wait_for(lambda: all(value(page(env), "uwsgi_up", target=t) == 1 for t in targets), 20,
             what="every vector polled by nginx")
    wait_for(lambda: all(value(env.envoy.prometheus(), "uwsgi_up", target=t) == 1 for t in targets), 20,
             what="every vector polled by envoy")
    ngx = series(page(env), targets)
    env_ = series(env.envoy.prometheus(), targets)
    rows = []
    for t in sorted(targets):
        n = {k: v for k, v in ngx.items() if dict(k[1])["target"] == t}
        e = {k: v for k, v in env_.items() if dict(k[1])["target"] == t}
        assert set(n) == set(e), (t, sorted(set(n) ^ set(e))[:10])
        live = t in ("app1", "app2")
        differ = [k for k in n if n[k] != e[k] and k[0] not in TIME_OR_COUNT]
        if live:
            # Live documents move between the two hosts' polls (memory).
            differ = [k for k in differ if not k[0].startswith(("uwsgi_worker_rss", "uwsgi_worker_vsz"))]
        assert not differ, (t, [(k, n[k], e[k]) for k in differ[:10]])
        rows.append(f"{t}: {len({k[0] for k in n})} families, {len(n)} series, equal")
    print("PARITY\n" + "\n".join(rows))


# ---------------------------------------------------------------- faults

def envoy_reasons(text, target):
    return {l["reason"] for n, l, v in parse_prometheus(text)
            if n == "uwsgi_scrape_errors_total" and l.get("target") == target and v > 0}


def test_faults_counted_like_envoy_while_nginx_serves_traffic(env):
    statuses = []
    for i in range(40):
        c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=10)
        c.request("GET", f"/users/{i}")
        r = c.getresponse()
        r.read()
        statuses.append(r.status)
        c.close()
    assert statuses == [200] * 40
    wait_for(lambda: all(envoy_reasons(page(env), t) for t in env.faults), 20, what="every fault counted")
    ngx, envoy = page(env), env.envoy.prometheus()
    rows = []
    for t in env.faults:
        assert value(ngx, "uwsgi_up", target=t) == 0
        rows.append(f"{t}: nginx {sorted(envoy_reasons(ngx, t))} envoy {sorted(envoy_reasons(envoy, t))}")
    print("FAULTS\n" + "\n".join(rows))
    for t in env.faults:
        assert envoy_reasons(ngx, t) == envoy_reasons(envoy, t), rows
    snap = json.loads(page(env, "/uwsgi/snapshot.json"))
    by = {x["target"]: x for x in snap["targets"]}
    assert by["closed"]["up"] is False and by["closed"]["stale"] is False
    assert by["app1"]["up"] is True


def test_a_target_that_breaks_is_stale_and_equal_to_envoy(env):
    """Up, then garbage: uwsgi_up 0, gauges zeroed, counters kept, the
    snapshot keeps the last document marked stale - as in Envoy."""
    wait_for(lambda: value(page(env), "uwsgi_up", target="flip") == 1, 10, what="flip up in nginx")
    wait_for(lambda: value(env.envoy.prometheus(), "uwsgi_up", target="flip") == 1, 10, what="flip up in envoy")
    env.flip.reply = HTTP_HEAD + b"<html>maintenance</html>"
    wait_for(lambda: value(page(env), "uwsgi_up", target="flip") == 0, 10, what="flip down in nginx")
    wait_for(lambda: value(env.envoy.prometheus(), "uwsgi_up", target="flip") == 0, 10,
             what="flip down in envoy")
    ngx = series(page(env), {"flip"})
    envoy = series(env.envoy.prometheus(), {"flip"})
    # Error counts depend on how many polls each host made since the break.
    ignore = TIME_OR_COUNT | {"uwsgi_scrape_errors_total"}
    assert {k: v for k, v in ngx.items() if k[0] not in ignore} == \
        {k: v for k, v in envoy.items() if k[0] not in ignore}
    assert value(ngx_text := page(env), "uwsgi_worker_busy", target="flip", worker_id="1") == 0
    assert value(ngx_text, "uwsgi_worker_requests_total", target="flip", worker_id="1") > 0
    by = {x["target"]: x for x in json.loads(page(env, "/uwsgi/snapshot.json"))["targets"]}
    assert by["flip"]["up"] is False and by["flip"]["stale"] is True and by["flip"]["document"]


def test_a_direct_poll_is_counted_empty_and_explained(env):
    wait_for(lambda: value(page(env), "uwsgi_scrape_errors_total", target="direct", reason="empty") >= 1, 10,
             what="direct poll counted")
    assert value(page(env), "uwsgi_up", target="direct") == 0
    assert "poll it through an nginx relay location" in env.nginx.error_log()


def test_refused_configuration_never_stops_a_worker(env):
    workers = set(env.nginx.workers())
    assert len(workers) == 4
    for _ in range(12):
        c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=10)
        c.request("GET", "/refused")
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == 200
    assert "not polling, passing traffic through" in env.nginx.error_log()
    assert set(env.nginx.workers()) == workers


def test_page_only_for_allowed_clients(env):
    # 127.0.0.2 is loopback for the kernel but outside the location's ACL:
    # nginx answers 403 before the filter; the filter's own default list
    # (loopback) is the same rule.
    c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=10, source_address=("127.0.0.2", 0))
    c.request("GET", "/uwsgi/metrics")
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 403 and b"uwsgi_up" not in body


# ---------------------------------------------------------------- dashboards

def test_uwsgi_dashboard_queries_on_prometheus_scraping_nginx(env, logdir):
    """Every panel of examples/grafana/uwsgi-workers.json, as Grafana would
    send it, answered by a real Prometheus scraping nginx's page."""
    from harness import start_prometheus
    from promql import finite, query
    from test_dashboards import board, graph_panels, live, substitute, targets

    cfg = ("global: {scrape_interval: 1s}\n"
           "scrape_configs:\n"
           "  - job_name: uwsgi-stats-nginx\n"
           "    metrics_path: /uwsgi/metrics\n"
           f"    static_configs: [{{targets: ['127.0.0.1:{env.port}']}}]\n")
    prom = start_prometheus(logdir, "prometheus-nginx-uwsgi-stats", cfg)
    try:
        wait_for(lambda: query(prom.port, 'count_over_time(uwsgi_up{target="app1"}[1m])') and
                 query(prom.port, 'count_over_time(uwsgi_up{target="app1"}[1m])')[0][1] >= 4, 30,
                 what="four scrapes of nginx")
        # Traffic between scrapes: the per-worker mean response time is a
        # ratio of rates, defined only for workers that served requests.
        served = 'sum(uwsgi_worker_requests_total{target=~"app1|app2"})'
        before = query(prom.port, served)[0][1]
        for i in range(8):
            assert get_app(env.port, f"/users/{i}") == 200
        wait_for(lambda: query(prom.port, served)[0][1] == before + 8, 30, what="8 requests polled and scraped")
        d = board("uwsgi-workers.json")
        seen = []
        # The targets that are up (a down target's ratios are 0/0, NaN, in
        # any host), chosen in the board's target variable as a user would.
        up = "|".join(sorted({"app1", "app2", *env.vectors}))
        for panel, t in targets(d):
            if not live("uwsgi-workers.json", d, panel):
                continue  # per-backend queue time: needs red-filter's upstream label
            expr = substitute(t["expr"], {"target": up})
            got = query(prom.port, expr)
            assert got, f"{panel['title']}: no data for {expr}"
            assert all(finite(v) for _, v in got), (panel["title"], got)
            seen.append(panel["title"])
            if panel["title"] == "Stats target up":
                assert set(up_now := {l["target"]: v for l, v in got}) == set(up.split("|"))
                assert all(v == 1.0 for v in up_now.values()), up_now
            if panel["title"] == "Workers":
                assert {l["target"]: v for l, v in got}["app1"] == 2.0
        print(f"dashboard panels answered from nginx: {len(seen)}")
        assert len(set(seen)) == len([p for p in graph_panels(d) if live("uwsgi-workers.json", d, p)])
    finally:
        prom.stop()
