"""Scale-out: two Envoys (examples/envoy-red, red-filter) in front of one
uWSGI (examples/envoy-red/uwsgi.ini), one Prometheus
(examples/prometheus/prometheus.yml) scraping both. Each proxy counts only
what passed through it; Prometheus' sums over both equal everything sent,
per route and code, and the fixed histogram buckets add up exactly.
"""
import threading
from collections import Counter
from http.client import HTTPConnection

import pytest

from harness import EXAMPLES, free_port, red_filter_config, samples, wait_for, wasm
from promql import example_prometheus_config, query

# What each proxy is sent: (method, path, count, status, route)
TRAFFIC = {
    "a": [("GET", "/users/{i}", 20, 200, "/users/{id}"), ("POST", "/items", 5, 201, "/items"),
          ("GET", "/error", 3, 500, "/error")],
    "b": [("GET", "/users/{i}", 12, 200, "/users/{id}"), ("GET", "/status/503", 4, 503, "/status/:id"),
          ("GET", "/notfound", 6, 404, "/notfound"), ("GET", "/error", 2, 500, "/error")],
}


def sent(which):
    c = Counter()
    for _m, _p, n, status, route in TRAFFIC[which]:
        c[(route, str(status))] += n
    return c


SENT = sent("a") + sent("b")


class Fleet:
    pass


def drive(port, plan, results, key):
    """One keep-alive client sending `plan` through one Envoy."""
    c = HTTPConnection("127.0.0.1", port, timeout=20)
    got = Counter()
    i = 0
    for method, path, n, status, route in plan:
        for _ in range(n):
            i += 1
            c.request(method, path.replace("{i}", str(i)), body=b"x" if method == "POST" else None)
            r = c.getresponse()
            r.read()
            got[(route, str(r.status))] += 1
    c.close()
    results[key] = got


@pytest.fixture(scope="module")
def fleet(hosts):
    f = Fleet()
    wasm("red-filter")
    app_port = free_port()
    f.uwsgi = hosts.uwsgi_ini("scale-uwsgi", EXAMPLES / "envoy-red" / "uwsgi.ini",
                              [("127.0.0.1:8000", f"127.0.0.1:{app_port}")], port=app_port)
    f.envoys = {}
    for name in ("a", "b"):
        listen, admin = free_port(), free_port()
        f.envoys[name] = hosts.envoy(f"scale-envoy-{name}", red_filter_config(listen, admin, app_port), admin,
                                     listen_port=listen)
    admins = [f.envoys[n].admin_port for n in ("a", "b")]
    f.prom = hosts.prometheus("scale-prometheus", example_prometheus_config(admins, free_port()))
    f.port = f.prom.port
    wait_for(lambda: len(query(f.port, 'up{job="envoy"} == 1')) == 2, 30, interval=0.5,
             what="Prometheus scraping both Envoys")
    results = {}
    threads = [threading.Thread(target=drive, args=(f.envoys[n].listen_port, TRAFFIC[n], results, n))
               for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {"a": sent("a"), "b": sent("b")}, results
    total = float(sum(SENT.values()))
    wait_for(lambda: query(f.port, "sum(uwsgi_red_request_duration_microseconds_count)") == [({}, total)]
             and query(f.port, "sum(uwsgi_red_requests_total)") == [({}, total)],
             30, interval=0.5, what="both proxies' counts in Prometheus")
    return f


def test_sum_over_both_proxies_equals_everything_sent(fleet):
    got = query(fleet.port, "sum by (route, code) (uwsgi_red_requests_total)")
    print("\nsum by (route, code) (uwsgi_red_requests_total):",
          "; ".join(f"{l['route']} {l['code']} = {v:g}" for l, v in got))
    assert {(l["route"], l["code"]): v for l, v in got} == dict(SENT)
    errors = query(fleet.port, "sum by (route, code) (uwsgi_red_errors_total)")
    assert {(l["route"], l["code"]): v for l, v in errors} == {k: v for k, v in SENT.items() if k[1][0] == "5"}


def test_each_proxy_counts_only_its_own_traffic(fleet):
    got = query(fleet.port, "sum by (instance, route, code) (uwsgi_red_requests_total)")
    for name, env in fleet.envoys.items():
        mine = {(l["route"], l["code"]): v for l, v in got if l["instance"] == f"127.0.0.1:{env.admin_port}"}
        assert mine == dict(sent(name)), name


def test_fixed_buckets_merge_exactly(fleet):
    """sum by (le) over both proxies == the bucket-wise sum of the two
    Envoys' own admin output: same bounds everywhere, so the merge is exact
    (and so is any histogram_quantile over it)."""
    want = Counter()
    for env in fleet.envoys.values():
        for labels, v in samples(env.prometheus(), "uwsgi_red_request_duration_microseconds_bucket"):
            want[labels["le"]] += v
    got = query(fleet.port, "sum by (le) (uwsgi_red_request_duration_microseconds_bucket)")
    assert {l["le"]: v for l, v in got} == dict(want)
    assert want["+Inf"] == sum(SENT.values())
    assert len(want) == 18  # the 17 default bounds in µs and +Inf


def test_recording_rule_aggregates_the_fleet(fleet):
    """The example rule sums over instances: one series per route, not per proxy."""
    routes = sorted({r for r, _ in SENT})
    # Rules run every second: wait for an evaluation after the last scrape.
    got = wait_for(lambda: (g := query(fleet.port, 'service_route:uwsgi_red_requests:rate5m{service="uwsgi_app"}'))
                   and sorted(l["route"] for l, _ in g) == routes and g, 15, what="recording rule over every route")
    assert all(set(l) == {"service", "route"} for l, _ in got), got
