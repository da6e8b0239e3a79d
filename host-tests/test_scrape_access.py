"""Who may read the pages the plugins serve themselves, in real hosts.

red-filter `self`/`both` (Envoy 1.40 and the shipped nginx-wasm example)
and uwsgi-stats' admin role answer only an allowed client (default:
loopback; optionally a bearer token too), and only the exact raw path (with
an optional query string). Everything else, from a denied address
(127.0.0.2: the client socket is bound to it) or a decoded/normalised
variant of the path, passes on untouched: the app's own answer, counted as
a normal request. Also: measuring on a public listener and serving on an
internal one (one Envoy, one shared state), and uwsgi-stats keeping a
cron's secret command line out of Envoy's stats and the snapshot.
"""
import http.client
import json

import pytest

from harness import (Envoy, free_port, get_text, red_filter_config, render, samples, start_uwsgi,
                     uwsgi_stats_config, value, wait_for, wasm)
from nginx_wasm import NginxWasm

DENIED, ALLOWED = "127.0.0.2", "127.0.0.1"
TOKEN = "s3cr3t-T0KEN-0123456789abcdef"
# Each is a different raw request target than /metrics; hosts may decode or
# normalise them to /metrics, the filter must not.
VARIANTS = ["/metrics%3F", "/metrics%3f", "/metrics%23", "/metrics%3Fx=1", "//metrics", "/./metrics",
            "/x/../metrics", "/%6Detrics", "/METRICS", "/Metrics", "/metrics/"]
# The default allow list is all of loopback (127.0.0.0/8, ::1); these hosts
# narrow it to 127.0.0.1 as the nginx example does, so that 127.0.0.2 is a
# denied address on this machine.
BASE = {"route_patterns": ["/users/{id}"], "max_series": 1000, "exposition": "both", "flush_interval_ms": 200,
        "scrape_allow_cidrs": ["127.0.0.1/32"]}
SECRET = "s3cr3t-T0KEN"
CRON = f"curl -s -H 'Authorization: Bearer {SECRET}' https://internal/api/cleanup"


def get(port, path, source=ALLOWED, headers=None, method="GET"):
    """(status, headers, body) of one request on a fresh connection from
    `source`; the path is sent byte for byte."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15, source_address=(source, 0))
    try:
        c.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def is_page(resp):
    status, hdrs, body = resp
    return status == 200 and b"uwsgi_red_requests_total" in body and "x-app" not in hdrs


def is_app(resp, method="GET"):
    """The app's own answer (host-tests/apps/app.py: X-App header, "Hello
    <method> <decoded path>")."""
    status, hdrs, body = resp
    return status == 200 and hdrs.get("x-app") == "uwsgi-red" and body.startswith(f"Hello {method} ".encode())


def host_total(env):
    return value(env.prometheus(), "uwsgi_red_requests_total") or 0


@pytest.fixture(scope="module")
def stack(logdir):
    procs = []
    try:
        up = start_uwsgi(logdir, "acl-uwsgi", protocol="http11")
        procs.append(up)
        envs = {}
        for name, cfg in {"default": BASE,
                          "token": dict(BASE, scrape_allow_cidrs=["127.0.0.0/8"], scrape_bearer_token=TOKEN)}.items():
            listen, admin = free_port(), free_port()
            env = Envoy(f"acl-{name}", red_filter_config(listen, admin, up.port, cfg), logdir, admin)
            procs.append(env)
            env.listen_port = listen
            envs[name] = env
        for env in envs.values():
            env.wait_ready()
        yield {"up": up, **envs}
    finally:
        for p in reversed(procs):
            p.stop()


def test_envoy_denied_address_never_gets_the_page_and_reaches_the_app(stack):
    env = stack["default"]
    before = host_total(env)
    sent = 0
    for path in ["/metrics", "/metrics?x=1", *VARIANTS]:
        r = get(env.listen_port, path, source=DENIED)
        assert not is_page(r) and is_app(r), (path, r)
        sent += 1
    # HEAD too: the app's (empty) answer, not the page's headers.
    r = get(env.listen_port, "/metrics", source=DENIED, method="HEAD")
    assert r[0] == 200 and r[1].get("x-app") == "uwsgi-red"
    sent += 1
    # Every refused scrape is a normal request, counted exactly once.
    wait_for(lambda: host_total(env) == before + sent, 10, what=f"{sent} refused scrapes counted")
    text = env.prometheus()
    routes = {l["route"]: v for l, v in samples(text, "uwsgi_red_requests_total") if l["method"] == "GET"}
    # The route label drops the query and empty segments: /metrics,
    # /metrics?x=1 and //metrics are one route; every other variant its own.
    # In Envoy's stat names `=` is escaped (`\x3D`) so no value can pose as
    # a tag (plugins/red-filter/README.md, "Labels in Envoy stat names").
    want = {p.replace("=", "\\x3D"): 1 for p in VARIANTS if p != "//metrics"}
    assert routes == {"/metrics": 3, **want}, routes
    print(f"\nEnvoy from {DENIED}: {sent} scrape attempts, 0 answered by the filter, {sent} counted")


def test_envoy_loopback_gets_the_page_only_on_the_exact_raw_path(stack):
    env = stack["default"]
    before = host_total(env)
    for path in ["/metrics", "/metrics?x=1"]:
        assert is_page(get(env.listen_port, path)), path
    assert get(env.listen_port, "/metrics", method="HEAD")[1].get("x-app") is None
    for path in VARIANTS:
        r = get(env.listen_port, path)
        assert is_app(r), (path, r)
    wait_for(lambda: host_total(env) == before + len(VARIANTS), 10, what="variants counted, scrapes not")


def test_envoy_bearer_token(stack):
    env = stack["token"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = host_total(env)
    assert is_page(get(env.listen_port, "/metrics", source=ALLOWED, headers=auth))
    assert is_page(get(env.listen_port, "/metrics?x", source=DENIED, headers={"authorization": f"bearer {TOKEN}"}))
    refused = [
        (ALLOWED, {}),
        (DENIED, {}),
        (ALLOWED, {"Authorization": f"Bearer {TOKEN[:-1]}"}),
        (ALLOWED, {"Authorization": f"Bearer {TOKEN}x"}),
        (ALLOWED, {"Authorization": f"Basic {TOKEN}"}),
        (ALLOWED, {"Authorization": TOKEN}),
    ]
    for source, headers in refused:
        r = get(env.listen_port, "/metrics", source=source, headers=headers)
        assert is_app(r), (source, headers, r)
    for path in VARIANTS:
        assert is_app(get(env.listen_port, path, headers=auth)), path
    n = len(refused) + len(VARIANTS)
    wait_for(lambda: host_total(env) == before + n, 10, what="refused requests counted")


# ----------------------------------------------------- public + internal listener

def two_listener_config(public, internal, admin, upstream):
    """examples/envoy-red/envoy.yaml with a second, internal listener: the
    public one measures (`both`, `scrape_allow_cidrs: []`: never answers),
    the internal one serves the same shared state (`self`, same vm_id,
    service, max_series and buckets). As red-filter's README shows."""
    pub_cfg = dict(BASE, scrape_allow_cidrs=[])
    int_cfg = dict(BASE, exposition="self", scrape_allow_cidrs=["127.0.0.0/8"])
    text = red_filter_config(public, admin, upstream, pub_cfg)
    head, sep, rest = text.partition("  listeners:\n")
    listener, sep2, tail = rest.partition("  clusters:\n")
    inner = (listener.replace("name: http_in", "name: metrics_internal")
             .replace(f"port_value: {public}", f"port_value: {internal}")
             .replace(json.dumps(pub_cfg), json.dumps(int_cfg)))
    assert inner.count("metrics_internal") == 1 and json.dumps(int_cfg) in inner, inner
    return head + sep + listener + inner + sep2 + tail


def test_measure_on_public_listener_serve_on_internal(logdir, stack):
    public, internal, admin = free_port(), free_port(), free_port()
    env = Envoy("acl-two-listeners", two_listener_config(public, internal, admin, stack["up"].port), logdir, admin)
    try:
        env.wait_ready()
        for i in range(7):
            assert is_app(get(public, f"/users/{i}"))
        # The public listener never answers, even loopback.
        assert is_app(get(public, "/metrics"))
        t = wait_for(lambda: (r := get(internal, "/metrics")) and is_page(r)
                     and value(r[2].decode(), "uwsgi_red_requests_total", route="/users/{id}") == 7 and r[2].decode(),
                     10, what="internal listener shows the public listener's counts")
        assert value(t, "uwsgi_red_requests_total", route="/metrics") == 1
        # The internal listener's own allow list (all of loopback here).
        assert is_page(get(internal, "/metrics", source=DENIED))
        print("\nEnvoy two listeners: public never answers /metrics, internal serves the public counts")
    finally:
        env.stop()


# ----------------------------------------------------------------- nginx-wasm

@pytest.fixture(scope="module")
def nginx(logdir):
    procs = []
    try:
        up = start_uwsgi(logdir, "acl-ngx-uwsgi", protocol="uwsgi", processes=2, threads=4)
        procs.append(up)
        ng = NginxWasm(logdir, "acl-ngx", free_port(), upstream=up.port)
        procs.append(ng)
        ng.wait_loaded(ng.workers_expected)
        yield ng
    finally:
        for p in reversed(procs):
            p.stop()


def test_nginx_example_denied_address_never_gets_the_page(nginx):
    """The shipped examples/nginx-wasm/nginx.conf: from 127.0.0.2 no variant
    is answered by the filter. Those nginx routes to `location = /metrics`
    (the exact path, and what it normalises to it) get nginx's own 403;
    the rest reach the app through `location /`."""
    got = {}
    for path in ["/metrics", "/metrics?x=1", *VARIANTS]:
        r = get(nginx.port, path, source=DENIED)
        assert not is_page(r) and b"uwsgi_red" not in r[2], (path, r)
        got[path] = r[0] if r[0] != 200 else "app"
        assert r[0] == 403 or is_app(r), (path, r)
    for path in ["/metrics%3F", "/metrics%3f", "/metrics%23", "/metrics%3Fx=1", "/METRICS"]:
        assert got[path] == "app", got
    print(f"\nnginx from {DENIED}: {got}")


def test_nginx_example_loopback_page_only_on_the_exact_raw_path(nginx):
    for path in ["/metrics", "/metrics?x=1"]:
        assert is_page(get(nginx.port, path)), path
    for path in VARIANTS:
        r = get(nginx.port, path)
        assert not is_page(r) and b"uwsgi_red" not in r[2], (path, r)
    # Decoded to /metrics? by nginx, but not the raw path: the app answers.
    assert is_app(get(nginx.port, "/metrics%3F"))


# -------------------------------------------------------- uwsgi-stats admin role

@pytest.fixture(scope="module")
def stats_envoy(logdir):
    procs = []
    try:
        up = start_uwsgi(logdir, "acl-stats-uwsgi", stats=True,
                         extra=("--cron", f"-1 -1 -1 -1 -1 {CRON}"))
        procs.append(up)
        admin, public, snapshot = free_port(), free_port(), free_port()
        poller = {"targets": [{"name": "app1", "cluster": "uwsgi_stats_app1"}], "interval_ms": 300,
                  "timeout_ms": 250}
        cfg = uwsgi_stats_config(admin, public, snapshot, up.port, poller, {"uwsgi_stats_app1": up.stats_port},
                                 wasm_path=wasm("uwsgi-stats"))
        # As in the red-filter hosts: narrowed to 127.0.0.1 so that
        # 127.0.0.2 is denied (the default is all of loopback).
        cfg = render(cfg, [('"metrics_path": "/uwsgi/metrics"}',
                            '"metrics_path": "/uwsgi/metrics", "scrape_allow_cidrs": ["127.0.0.1/32"]}')])
        env = Envoy("acl-stats", cfg, logdir, admin)
        procs.append(env)
        env.wait_ready()
        env.snapshot_port = snapshot
        wait_for(lambda: value(env.prometheus(), "uwsgi_up", target="app1") == 1, 20, what="first poll")
        yield env
    finally:
        for p in reversed(procs):
            p.stop()


def test_uwsgi_stats_admin_answers_only_loopback_on_the_exact_path(stats_envoy):
    port = stats_envoy.snapshot_port
    for path in ["/uwsgi/snapshot.json", "/uwsgi/metrics", "/uwsgi/snapshot.json?x"]:
        assert get(port, path)[0] == 200, path
        status, _, body = get(port, path, source=DENIED)
        # Not answered: the admin listener's own route (404 for everything).
        assert (status, body) == (404, b"not found\n"), path
    for path in ["/uwsgi/snapshot.json%3F", "//uwsgi/snapshot.json", "/uwsgi/./metrics", "/uwsgi/%6Detrics",
                 "/UWSGI/metrics"]:
        assert get(port, path)[:3:2] == (404, b"not found\n"), path


def test_uwsgi_stats_cron_secret_is_in_no_output(stats_envoy):
    """A real uWSGI cron whose command line carries a bearer token: Envoy's
    stats (every stat name, the Prometheus page), the admin text and the
    snapshot have the cron by position only."""
    text = wait_for(lambda: (t := stats_envoy.prometheus()) and "uwsgi_cron_running" in t and t, 10,
                    what="cron series")
    assert value(text, "uwsgi_cron_running", target="app1", cron_id="0") in (0, 1)
    outputs = {
        "prometheus": text,
        "stats": get_text(f"http://127.0.0.1:{stats_envoy.admin_port}/stats"),
        "admin text": get_text(f"http://127.0.0.1:{stats_envoy.snapshot_port}/uwsgi/metrics"),
        "snapshot": get_text(f"http://127.0.0.1:{stats_envoy.snapshot_port}/uwsgi/snapshot.json"),
    }
    for name, out in outputs.items():
        assert SECRET not in out, name
    doc = json.loads(outputs["snapshot"])["targets"][0]["document"]
    assert "command" not in doc["crons"][0] and doc["crons"][0]["minute"] == -1
    assert not {"uid", "gid", "cwd"} & set(doc), sorted(doc)
    print("\nuwsgi-stats: cron secret absent from /stats, /stats/prometheus, admin text and snapshot")
