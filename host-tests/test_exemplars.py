"""red-filter self mode with `exemplars` on, in a real Envoy 1.40 and a real
nginx + ngx_wasm_module (two worker VMs each), scraped by a real Prometheus
(Debian's) with `--enable-feature=exemplar-storage`.

Requests carry known W3C `traceparent` headers to a fast and a slow route;
`/api/v1/query_exemplars` returns exactly those trace ids, each on the
duration bucket (`le`) its request landed in and on `_total`. Requests
without a traceparent, or with an invalid one, add no exemplar (the invalid
one is counted). Prometheus text stays without exemplars.
"""
import time
import uuid

import pytest

from envoy_red import render
from harness import free_port, get_text, http, value, wait_for
from nginx_wasm import NginxWasm, example_plugin_config
from promql import api

# Fast answers (~1 ms) land in the first bucket, the 0.3 s route in the
# second, with room on both sides for a busy machine.
BUCKETS = [0.25, 2.5]
SLOW_S = 0.3
EXEMPLAR_CONFIG = {"exposition": "self", "exemplars": True, "buckets_seconds": BUCKETS,
                   "flush_interval_ms": 200, "service": "app"}
ROUNDS = 2
OM_ACCEPT = "application/openmetrics-text; version=1.0.0"


def traceparent(trace_id):
    return f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"


def new_id():
    # Never all-zero: uuid4 has fixed version bits.
    return uuid.uuid4().hex


def get(port, path, headers=None):
    status, _, body = http("GET", f"http://127.0.0.1:{port}{path}", headers=headers or {}, timeout=20)
    assert status == 200, (path, status, body[:200])


def page(port, accept=None):
    status, hdrs, body = http("GET", f"http://127.0.0.1:{port}/metrics",
                              headers={"Accept": accept} if accept else {})
    assert status == 200, body[:300]
    return {k.lower(): v for k, v in hdrs.items()}["content-type"], body.decode()


def exemplars(prom_port, selector, since):
    """{(route, le or None): [(trace_id, value)] in time order} from
    /api/v1/query_exemplars."""
    data = api(prom_port, "/api/v1/query_exemplars",
               {"query": selector, "start": f"{since:.3f}", "end": f"{time.time() + 60:.3f}"})
    out = {}
    for s in data:
        key = (s["seriesLabels"]["route"], s["seriesLabels"].get("le"))
        got = sorted(s["exemplars"], key=lambda e: float(e["timestamp"]))
        out[key] = [(e["labels"]["trace_id"], float(e["value"])) for e in got]
        assert all(set(e["labels"]) == {"trace_id"} for e in got), got
    return out


def bucket_of(seconds):
    """The `le` label (OpenMetrics spelling) a duration lands in."""
    for b in BUCKETS:
        if seconds <= b:
            return repr(b)
    return "+Inf"


@pytest.fixture(scope="module")
def stack(hosts):
    since = time.time() - 5
    envoy_up = hosts.uwsgi("ex-uwsgi-envoy", protocol="http11", processes=2)
    nginx_up = hosts.uwsgi("ex-uwsgi-nginx", protocol="uwsgi", processes=2)
    listen, admin = free_port(), free_port()
    envoy = hosts.envoy("ex-envoy", render(listen, admin, envoy_up.port, EXEMPLAR_CONFIG), admin,
                        concurrency=2, listen_port=listen)
    nginx_cfg = dict(example_plugin_config(), **EXEMPLAR_CONFIG)
    nginx = hosts.add(NginxWasm(hosts.logdir, "ex-nginx", free_port(), upstream=nginx_up.port,
                                plugin_config=nginx_cfg))
    nginx.wait_loaded(nginx.workers_expected)
    ports = {"envoy": listen, "nginx": nginx.port}
    jobs = "".join(f"  - job_name: {job}\n    metrics_path: /metrics\n"
                   f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n" for job, port in ports.items())
    prom = hosts.prometheus("ex-prometheus",
                            f"global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{jobs}",
                            extra=["--enable-feature=exemplar-storage"])
    def targets():
        active = api(prom.port, "/api/v1/targets", {"state": "active"})["activeTargets"]
        return {r["labels"]["job"]: (r["health"], r["lastError"]) for r in active}
    want = {"envoy": ("up", ""), "nginx": ("up", "")}
    seen = []
    try:
        wait_for(lambda: seen.append(targets()) or seen[-1] == want, 30, interval=0.5, what="both targets scraped")
    except AssertionError:
        raise AssertionError(f"targets: {seen[-1:]}") from None

    sent = {job: {"/fast": [], "/slow": []} for job in ports}
    for rnd in range(ROUNDS):
        for job, port in ports.items():
            if rnd == 0:
                # Counted like any request, but no exemplar: none, and invalid.
                get(port, "/fast")
                get(port, "/fast", {"traceparent": "00-" + new_id().upper() + "-00f067aa0ba902b7-01"})
            for route, path in (("/fast", "/fast"), ("/slow", f"/slow?s={SLOW_S}")):
                tid = new_id()
                get(port, path, {"traceparent": traceparent(tid)})
                sent[job][route].append(tid)
        # Each slot keeps only its latest request: Prometheus must have
        # scraped this round before the next one replaces it.
        for job in ports:
            want = {r: ids[:rnd + 1] for r, ids in sent[job].items()}
            wait_for(lambda: {r: [t for t, _ in v] for (r, _), v in
                              exemplars(prom.port, f'uwsgi_red_requests_total{{job="{job}"}}', since).items()}
                     == want, 20, interval=0.5, what=f"round {rnd} exemplars of {job} in Prometheus")
    return {"ports": ports, "prom": prom.port, "sent": sent, "since": since}


@pytest.mark.parametrize("job", ["envoy", "nginx"])
def test_prometheus_returns_the_sent_trace_ids_on_their_buckets(stack, job):
    sent, port = stack["sent"][job], stack["prom"]
    buckets = exemplars(port, f'uwsgi_red_request_duration_seconds_bucket{{job="{job}"}}', stack["since"])
    ids = {route: [t for t, _ in v] for (route, _), v in buckets.items()}
    assert ids == sent, buckets
    for (route, le), got in buckets.items():
        for tid, secs in got:
            assert le == bucket_of(secs), (route, le, tid, secs)
            if route == "/slow":
                # nginx's clock can read a hair under the 0.3 s sleep.
                assert BUCKETS[0] < secs < BUCKETS[1], (tid, secs)
            else:
                assert secs < BUCKETS[0], (tid, secs)
    assert {(r, le) for r, le in buckets} == {("/fast", repr(BUCKETS[0])), ("/slow", repr(BUCKETS[1]))}

    totals = exemplars(port, f'uwsgi_red_requests_total{{job="{job}"}}', stack["since"])
    assert {route: [t for t, _ in v] for (route, _), v in totals.items()} == sent
    assert all(v == 1.0 for got in totals.values() for _, v in got), totals
    print(f"exemplars {job}: " + ", ".join(f"{r} le={le}: {[t for t, _ in v]}" for (r, le), v in
                                            sorted(buckets.items())))


@pytest.mark.parametrize("job", ["envoy", "nginx"])
def test_page_shows_exemplars_only_in_openmetrics(stack, job):
    port, sent = stack["ports"][job], stack["sent"][job]
    ctype, om = page(port, OM_ACCEPT)
    assert ctype.startswith("application/openmetrics-text"), ctype
    assert om.endswith("# EOF\n")
    lines = [l for l in om.splitlines() if " # {" in l]
    # The latest per slot: each route's last request, on its bucket and _total.
    latest = {sent["/fast"][-1], sent["/slow"][-1]}
    assert {l.split('trace_id="')[1][:32] for l in lines} == latest, lines
    assert len(lines) == 4, lines
    assert all(l.startswith(("uwsgi_red_requests_total{", "uwsgi_red_request_duration_seconds_bucket{"))
               for l in lines), lines
    ctype, text = page(port)
    assert ctype.startswith("text/plain"), ctype
    assert "trace_id" not in text and " # " not in text
    # Every request counted, the invalid traceparent once per host.
    assert value(text, "uwsgi_red_requests_total") == 2 + 2 * ROUNDS
    assert value(text, "uwsgi_red_internal_errors_total", reason="invalid_traceparent") == 1
    assert get_text(f"http://127.0.0.1:{stack['prom']}/-/ready")
