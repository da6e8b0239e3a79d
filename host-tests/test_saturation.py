"""Queue time oracles in real hosts: nginx (ngx_wasm_module, red-filter) and
Envoy (red-filter) in front of real uWSGI, with closed-loop clients on a
50 ms route.

Two independent measurements of the mean queue time (time a request waits
in uWSGI's listen queue for a free worker, which the app never sees):

- the log path: uWSGI's own request log in the documented format
  (`tmicros=%(tmicros) x_request_start=%(var.HTTP_X_REQUEST_START)`), queue =
  tmicros - the proxy's stamp (nginx: `uwsgi_param HTTP_X_REQUEST_START
  "t=${msec}"`, stock nginx), app time = `micros`;
- the stats path: the proxy's mean (red-filter's duration sum / count) minus
  the app's mean, Δrunning_time / Δrequests of the uWSGI stats server (read
  with `uwsgi-red stats --exact`, the plugin's code).

One worker and 4 closed-loop clients: each request waits for the 3 ahead
of it, so queue ≈ 3 × 50 ms (a little less: the first and last rounds of a
bounded load queue behind fewer). Four workers: no queue. Then nginx
`least_conn` over four single-process uWSGI beside one uWSGI with four
processes: the per-backend counts of the proxy (its upstream address, joined
to each uWSGI through uwsgi-stats' `uwsgi_upstream_info`) equal each uWSGI's
own counters, and each backend's app mean from its log agrees with its
stats; a burst larger than one instance's listen backlog shows the
one-uWSGI setup queueing well above the four (a steady load that fits the
backlogs queues the same in both: printed). The oracle table is printed as
`ORACLE` lines (and `BENCH` lines).
"""
import http.client
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import DIST, free_port, get_text, parse_prometheus, red_filter_config, start_uwsgi, wait_for
from nginx_wasm import NginxWasm

SLOW = "/slow?s=0.05"
FAST = "/fast"
APP_S = 0.050
CLIENTS = 4
PER_CLIENT = 40
MIXED_CLIENTS = 6
MIXED_PER_CLIENT = 30
LISTEN = 8
SPIKE_CLIENTS = 32
SPIKE_PER_CLIENT = 1
# Measured 3.8-4.1 (least_conn ~175 ms, the central-queue value; one uWSGI
# 660-720 ms, the dropped handshakes' 1 s retransmissions on top).
SPIKE_RATIO = 2.0
# The documented uWSGI log format (plugins/otel-processor, core::logs).
LOG_FORMAT = ("[pid: %(pid)|app: -|req: -/-] %(addr) (%(user)) {%(vars) vars in %(pktsize) bytes} "
              "[%(ctime)] %(method) %(uri) => generated %(rsize) bytes in %(micros) micros "
              "(%(proto) %(status)) %(headers) headers in %(hsize) bytes "
              "(%(switches) switches on core %(core)) tmicros=%(tmicros) "
              "x_request_start=%(var.HTTP_X_REQUEST_START)")
ORACLE = []


# ---------------------------------------------------------------- hosts

def uwsgi(hosts, name, processes, http_port=None, listen=None):
    """uWSGI with a uwsgi-protocol socket (nginx), optionally an HTTP socket
    too (Envoy), the stats server, and the documented log in its own file."""
    log = hosts.logdir / f"{name}.requests.log"
    extra = ["--log-format", LOG_FORMAT, "--req-logger", f"file:{log}", "--logger", f"file:{log}.main"]
    if listen:
        extra += ["--listen", str(listen)]
    if http_port:
        extra += ["--http-socket", f"127.0.0.1:{http_port}", "--add-header", "Connection: close"]
    up = hosts.uwsgi(name, protocol="uwsgi", processes=processes, stats=True, logging=True, extra=extra)
    up.requests_log, up.http_port = log, http_port
    return up


UWSGI_PARAMS = [
    ("QUERY_STRING", "$query_string"), ("REQUEST_METHOD", "$request_method"),
    ("CONTENT_TYPE", "$content_type"), ("CONTENT_LENGTH", "$content_length"),
    ("REQUEST_URI", "$request_uri"), ("PATH_INFO", "$document_uri"),
    ("SERVER_PROTOCOL", "$server_protocol"), ("REMOTE_ADDR", "$remote_addr"),
    ("REMOTE_PORT", "$remote_port"), ("SERVER_NAME", "$server_name"), ("SERVER_PORT", "$server_port")]
# The stamp a stock nginx can send: seconds since the epoch with
# milliseconds, the industry's X-Request-Start convention. (It would replace
# red-filter's own stamp: one or the other per location.)
STOCK_STAMP = ("HTTP_X_REQUEST_START", '"t=${msec}"')


def nginx_conf(prefix, servers):
    """One nginx worker; per server (service, listen port, backend ports,
    least_conn, stamp) a red-filter instance in self mode whose `service`
    label names the setup, with the `upstream` label; stamp "stock" sends
    nginx's `t=${msec}`, "filter" red-filter's `request_start`."""
    blocks = []
    for service, port, backends, least_conn, stamp in servers:
        ups = "".join(f"        server 127.0.0.1:{p};\n" for p in backends)
        red = json.dumps({"service": service, "exposition": "self", "metrics_path": "/metrics",
                          "scrape_allow_cidrs": ["127.0.0.1/32"], "flush_interval_ms": 200,
                          "upstream_label": True, "request_start": "replace" if stamp == "filter" else "off"})
        params = UWSGI_PARAMS + ([STOCK_STAMP] if stamp == "stock" else [])
        params = "\n".join(f"            uwsgi_param {k} {v};" for k, v in params)
        blocks.append(f"""
    upstream {service} {{
{"        least_conn;" if least_conn else ""}
{ups}    }}
    server {{
        listen 127.0.0.1:{port};
        access_log {prefix}/access.log oracle;
        proxy_wasm red '{red}';
        location / {{
{params}
            uwsgi_pass {service};
        }}
        location = /metrics {{
            allow 127.0.0.1;
            deny all;
        }}
    }}""")
    return f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{}}
wasm {{
    module red {DIST}/red-filter.wasm;
    shm_kv * 4m;
}}
http {{
    log_format oracle '$server_port $upstream_addr $status $request_time $request_uri';
{"".join(blocks)}
}}
"""


@pytest.fixture(scope="module")
def stack(hosts):
    one = uwsgi(hosts, "one", 1, http_port=free_port())
    four = uwsgi(hosts, "four", 4, http_port=free_port(), listen=LISTEN)
    singles = [uwsgi(hosts, f"single{i}", 1, listen=LISTEN) for i in range(4)]
    ports = {s: free_port() for s in ("w1", "w1f", "w4", "lc4")}
    servers = [("w1", ports["w1"], [one.port], False, "stock"),
               ("w1f", ports["w1f"], [one.port], False, "filter"),
               ("w4", ports["w4"], [four.port], False, "stock"),
               ("lc4", ports["lc4"], [s.port for s in singles], True, "stock")]
    prefix = hosts.logdir / "ngx-prefix"
    prefix.mkdir(parents=True, exist_ok=True)
    ng = hosts.add(NginxWasm(hosts.logdir, "ngx", ports["w1"], nginx_conf(prefix, servers)))
    envoys = {}
    for name, up in (("e1", one), ("e4", four)):
        listen, admin = free_port(), free_port()
        cfg = red_filter_config(listen, admin, up.http_port,
                                plugin_config={"request_start": "replace", "upstream_label": True})
        envoys[name] = hosts.envoy(name, cfg, admin, listen_port=listen)
    ng.wait_loaded(1)
    yield {"one": one, "four": four, "singles": singles, "ng": ng, "ports": ports, "envoys": envoys,
           "access_log": prefix / "access.log"}


# ---------------------------------------------------------------- load

def closed_loop(port, plans, timeout=60.0):
    """One thread per plan (a list of paths), each sending its paths one
    after another on one keep-alive connection (reconnecting when the
    proxy closes it); every answer must be 200. Bounded by the plans'
    length and by `timeout`."""
    deadline = time.monotonic() + timeout
    errors = []

    def client(paths):
        conn = None
        try:
            for path in paths:
                if time.monotonic() > deadline:
                    raise TimeoutError("load over its time bound")
                for attempt in (0, 1):
                    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                    try:
                        conn.request("GET", path)
                        r = conn.getresponse()
                        r.read()
                        break
                    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                        conn.close()
                        conn = None
                        if attempt:
                            raise
                assert r.status == 200, (path, r.status)
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            if conn:
                conn.close()

    threads = [threading.Thread(target=client, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "load threads still running"
    assert not errors, errors
    return sum(len(p) for p in plans)


def slow_plans(clients=CLIENTS, per_client=PER_CLIENT):
    return [[SLOW] * per_client for _ in range(clients)]


# ---------------------------------------------------------------- the two paths

def stats_of(up):
    """(Σ running_time seconds, Σ requests, upstream values) of one uWSGI,
    read through `uwsgi-red stats --exact` (the poller's code)."""
    cli = DIST / "uwsgi-red"
    p = subprocess.run([str(cli), "stats", "--exact", "--target", "t", f"http://127.0.0.1:{up.stats_port}"],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    fams = parse_prometheus(p.stdout.decode())
    run = sum(v for n, _, v in fams if n == "uwsgi_worker_running_time_seconds")
    req = sum(v for n, _, v in fams if n == "uwsgi_worker_requests_total")
    ups = sorted(lab["upstream"] for n, lab, v in fams if n == "uwsgi_upstream_info" and v == 1)
    return run, int(req), ups


class LogCursor:
    """The request lines a uWSGI appends to its log after this point,
    decoded by `uwsgi-red logs` (the otel-processor's own code): one dict of
    attributes per line."""

    def __init__(self, up):
        self.path = Path(up.requests_log)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def records(self, expect):
        def read():
            return self.path.read_bytes()[self.offset:]
        wait_for(lambda: read().count(b"\n") >= expect, timeout=10, what=f"{expect} log lines in {self.path.name}")
        part = self.path.with_name(f"{self.path.name}.{self.offset}")
        part.write_bytes(read())
        p = subprocess.run([str(DIST / "uwsgi-red"), "logs", str(part), "--format", "uwsgi"],
                           capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr.decode(errors="replace")
        recs = [json.loads(line) for line in p.stdout.decode().splitlines()]
        assert len(recs) == expect, (len(recs), expect)
        assert all(r.get("uwsgi_red.log.parsed") is True for r in recs), recs[:3]
        return recs


def log_means(recs):
    """(mean queue s, mean app s, lines without a queue time): the queue is
    uWSGI's tmicros - X-Request-Start, the app time its `micros`."""
    queues, apps, missing = [], [], 0
    for r in recs:
        assert r["http.response.status_code"] == 200, r
        apps.append(r["http.server.request.duration"])
        if "uwsgi_red.queue.duration" in r:
            queues.append(r["uwsgi_red.queue.duration"])
        else:
            missing += 1
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return mean(queues), mean(apps), missing


def nginx_totals(port, service):
    """red-filter's (duration sum s, count) for one service on the nginx page."""
    fams = parse_prometheus(get_text(f"http://127.0.0.1:{port}/metrics"))
    pick = lambda name: sum(v for n, lab, v in fams if n == name and lab.get("service") == service)  # noqa: E731
    return pick("uwsgi_red_request_duration_seconds_sum"), int(pick("uwsgi_red_request_duration_seconds_count"))


def nginx_per_upstream(port, service):
    """{upstream label: (request count, duration sum s)} of one service."""
    out = {}
    for n, lab, v in parse_prometheus(get_text(f"http://127.0.0.1:{port}/metrics")):
        if lab.get("service") != service:
            continue
        c, t = out.get(lab.get("upstream"), (0, 0.0))
        if n == "uwsgi_red_requests_total":
            c += int(v)
        elif n == "uwsgi_red_request_duration_seconds_sum":
            t += v
        out[lab.get("upstream")] = (c, t)
    return out


def envoy_totals(env):
    """red-filter's (duration sum s, count) in Envoy host mode (µs histogram)."""
    fams = parse_prometheus(get_text(f"http://127.0.0.1:{env.admin_port}/stats/prometheus"))
    pick = lambda name: sum(v for n, lab, v in fams if n == name)  # noqa: E731
    return (pick("uwsgi_red_request_duration_microseconds_sum") / 1e6,
            int(pick("uwsgi_red_request_duration_microseconds_count")))


def measure(ups, send, totals):
    """Runs `send()` (returns the request count) and returns the log-path and
    stats-path means over exactly those requests, checking every count."""
    before = [stats_of(u) for u in ups]
    cursors = [LogCursor(u) for u in ups]
    p0 = totals()
    n = send()
    wait_for(lambda: totals()[1] - p0[1] >= n, timeout=15, what=f"the proxy to count {n} requests")
    p1 = totals()
    assert p1[1] - p0[1] == n
    after = [stats_of(u) for u in ups]
    d_req = [a[1] - b[1] for a, b in zip(after, before)]
    d_run = [a[0] - b[0] for a, b in zip(after, before)]
    assert sum(d_req) == n, (d_req, n)
    lines = [c.records(d) for c, d in zip(cursors, d_req)]
    queue_log, app_log, missing = log_means([m for ls in lines for m in ls])
    app_stats = sum(d_run) / n
    proxy_mean = (p1[0] - p0[0]) / n
    return {"n": n, "queue_log": queue_log, "app_log": app_log, "missing": missing,
            "app_stats": app_stats, "proxy_mean": proxy_mean, "queue_stats": max(0.0, proxy_mean - app_stats),
            "per_backend": list(zip(d_req, d_run, lines))}


def report(setup, expected, m):
    line = (f"ORACLE {setup}: expected queue {expected} | via log {m['queue_log'] * 1e3:.1f} ms "
            f"(app {m['app_log'] * 1e3:.1f} ms) | via stats {m['queue_stats'] * 1e3:.1f} ms "
            f"(proxy {m['proxy_mean'] * 1e3:.1f} ms - app {m['app_stats'] * 1e3:.1f} ms) | n={m['n']}")
    ORACLE.append(line)
    key = re.sub(r"\W+", "_", setup).strip("_")
    print(line)
    print(f"BENCH saturation_{key}_queue_log_ms {m['queue_log'] * 1e3:.1f} ms")
    print(f"BENCH saturation_{key}_queue_stats_ms {m['queue_stats'] * 1e3:.1f} ms")


def near(x, want, rel):
    return abs(x - want) <= rel * want


def agree(m, rel=0.0):
    """The two paths measure the same requests: their queue means agree
    within 3 ms (the stamp's millisecond resolution, the proxy's clock), or
    within `rel` of the queue where the proxy's duration sum is itself an
    estimate (Envoy host mode: a histogram's `_sum` comes from its log-linear
    bins, two significant digits per sample)."""
    assert abs(m["queue_log"] - m["queue_stats"]) <= max(0.003, rel * m["queue_log"]), m


# Envoy host mode's `_sum` is binned (see `agree`): 5 % of the queue.
ENVOY_SUM_REL = 0.05


# ---------------------------------------------------------------- tests

def one_worker_oracle(m, rel=0.0):
    assert m["missing"] == 0
    assert near(m["app_log"], APP_S, 0.10), m
    assert near(m["app_stats"], APP_S, 0.10), m
    assert near(m["queue_log"], 3 * APP_S, 0.15), m
    assert near(m["queue_stats"], 3 * APP_S, 0.15), m
    agree(m, rel)


@pytest.mark.parametrize("server", ["w1", "w1f"])
def test_one_worker_nginx_queue_is_three_requests(stack, server):
    """1 worker, 4 closed-loop clients on the 50 ms route; the stamp from
    stock nginx (`t=${msec}`) or from red-filter's `request_start`."""
    port = stack["ports"][server]
    m = measure([stack["one"]], lambda: closed_loop(port, slow_plans()),
                lambda: nginx_totals(port, server))
    stamp = {"w1": "stock t=${msec}", "w1f": "red-filter request_start"}[server]
    report(f"nginx ({stamp}) -> uWSGI 1 worker, 4 clients", "~150 ms", m)
    one_worker_oracle(m)


def test_one_worker_envoy(stack):
    """The same through Envoy's red-filter (host mode, `request_start`)."""
    env = stack["envoys"]["e1"]
    m = measure([stack["one"]], lambda: closed_loop(env.listen_port, slow_plans()),
                lambda: envoy_totals(env))
    report("envoy (red-filter request_start) -> uWSGI 1 worker, 4 clients", "~150 ms", m)
    one_worker_oracle(m, ENVOY_SUM_REL)
    # Envoy's upstream label is one of the uWSGI's listen sockets as
    # uwsgi_upstream_info spells them (its HTTP socket): the join holds.
    fams = parse_prometheus(get_text(f"http://127.0.0.1:{env.admin_port}/stats/prometheus"))
    labelled = {lab.get("upstream") for n, lab, v in fams if n == "uwsgi_red_requests_total" and v}
    one = stack["one"]
    assert labelled == {f"127.0.0.1:{one.http_port}"}, labelled
    assert stats_of(one)[2] == sorted([f"127.0.0.1:{one.port}", f"127.0.0.1:{one.http_port}"])


def test_four_workers_no_queue(stack):
    """4 workers, 4 clients: every request finds a free worker."""
    port = stack["ports"]["w4"]
    m = measure([stack["four"]], lambda: closed_loop(port, slow_plans()),
                lambda: nginx_totals(port, "w4"))
    report("nginx (stock t=${msec}) -> uWSGI 4 workers, 4 clients", "< 5 ms", m)
    env = stack["envoys"]["e4"]
    e = measure([stack["four"]], lambda: closed_loop(env.listen_port, slow_plans()),
                lambda: envoy_totals(env))
    report("envoy (red-filter request_start) -> uWSGI 4 workers, 4 clients", "< 5 ms", e)
    for x in (m, e):
        assert x["missing"] == 0
        assert x["queue_log"] < 0.005, x
        assert x["queue_stats"] < 0.005, x
        assert near(x["app_stats"], APP_S, 0.10), x


class AccessCursor:
    """nginx's access-log lines (`$server_port $upstream_addr $status
    $request_time $request_uri`) appended after this point."""

    def __init__(self, path):
        self.path = Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def per_upstream(self, port, expect):
        def rows():
            data = self.path.read_text()[self.offset:]
            rows = (r.split() for r in data.splitlines() if r.startswith(f"{port} "))
            # Scrapes of red-filter's page are answered by nginx, not a backend.
            return [r for r in rows if r[4] != "/metrics"]
        wait_for(lambda: len(rows()) >= expect, timeout=10, what=f"{expect} access-log lines")
        counts = {}
        for r in rows():
            assert r[2] == "200", r
            counts[r[1]] = counts.get(r[1], 0) + 1
        return counts


def mixed_plans(clients=MIXED_CLIENTS, per_client=MIXED_PER_CLIENT):
    """Closed-loop clients, each cycling through slow and fast requests
    from a different phase, so slow and fast requests overlap."""
    cycle = [SLOW, FAST, FAST]
    return [[cycle[(i + k) % len(cycle)] for k in range(per_client)] for i in range(clients)]


def test_least_conn_backends_join_to_each_uwsgi(stack):
    """nginx least_conn over 4 single-process uWSGI vs one uWSGI with 4
    processes, the same steady mixed load (6 clients): the proxy's
    per-backend counts equal each uWSGI's own, each backend's app mean from
    its log agrees with its stats, and both paths agree on each setup's queue."""
    singles, ports = stack["singles"], stack["ports"]
    acc = AccessCursor(stack["access_log"])
    label0 = nginx_per_upstream(ports["lc4"], "lc4")
    lc = measure(singles, lambda: closed_loop(ports["lc4"], mixed_plans()),
                 lambda: nginx_totals(ports["lc4"], "lc4"))
    per_addr = acc.per_upstream(ports["lc4"], lc["n"])
    label1 = nginx_per_upstream(ports["lc4"], "lc4")
    per_label = {u: (c - label0.get(u, (0, 0.0))[0], t - label0.get(u, (0, 0.0))[1])
                 for u, (c, t) in label1.items()}
    per_label = {u: ct for u, ct in per_label.items() if ct[0]}
    rows = []
    for s, (d_req, d_run, lines) in zip(singles, lc["per_backend"]):
        ups = stats_of(s)[2]
        # The join: the uWSGI's listen socket, spelled as nginx spells the backend.
        assert ups == [f"127.0.0.1:{s.port}"], ups
        assert d_req > 0
        assert per_addr.get(ups[0]) == d_req, (ups, per_addr, d_req)
        count, dur = per_label[ups[0]]
        assert count == d_req, (ups, per_label, d_req)
        app_log = sum(r["http.server.request.duration"] for r in lines) / d_req
        queue_log = sum(r["uwsgi_red.queue.duration"] for r in lines) / d_req
        app_proxy = dur / count - queue_log
        app_stats = d_run / d_req
        rows.append(f"{ups[0]} n={d_req} app via log {app_log * 1e3:.1f} ms, via proxy-queue "
                    f"{app_proxy * 1e3:.1f} ms, via stats {app_stats * 1e3:.1f} ms")
        assert near(app_log, app_stats, 0.10), rows[-1]
        assert near(app_proxy, app_stats, 0.10), rows[-1]
    assert sum(per_addr.values()) == lc["n"] == sum(c for c, _ in per_label.values())
    assert len(per_label) == len(singles), per_label
    acc = AccessCursor(stack["access_log"])
    one = measure([stack["four"]], lambda: closed_loop(ports["w4"], mixed_plans()),
                  lambda: nginx_totals(ports["w4"], "w4"))
    assert acc.per_upstream(ports["w4"], one["n"]) == {f"127.0.0.1:{stack['four'].port}": one["n"]}
    report("nginx least_conn -> 4 x uWSGI 1 worker, steady mixed", "same as one uWSGI", lc)
    report("nginx -> 1 x uWSGI 4 workers, steady mixed", "same as least_conn", one)
    for r in rows:
        print("ORACLE backend", r)
    for m in (lc, one):
        assert m["missing"] == 0
        agree(m)
    # Under a steady load that fits the listen queues, one shared queue is
    # no worse than least_conn's per-instance queues (a central queue is
    # the better discipline): printed, not a claim either way.
    print(f"ORACLE steady ratio one-uWSGI/least_conn: log {one['queue_log'] / max(lc['queue_log'], 1e-6):.2f} "
          f"stats {one['queue_stats'] / max(lc['queue_stats'], 1e-6):.2f}")

def test_spike_one_uwsgi_overflows_its_listen_queue(stack):
    """A burst of 32 requests at once, every instance with the same `--listen`
    backlog (8): four instances hold 4 x (1 + 9) connections, one instance
    only 4 + 9, and the kernel drops the handshakes beyond that, which come
    back a retransmission timeout later (1 s). Without the overflow both
    would wait the same (7 x 50 ms / 2 on average); with it the one-uWSGI
    setup waits well above, time the app never sees, on both paths."""
    ports = stack["ports"]
    plans = slow_plans(SPIKE_CLIENTS, SPIKE_PER_CLIENT)
    lc = measure(stack["singles"], lambda: closed_loop(ports["lc4"], plans),
                 lambda: nginx_totals(ports["lc4"], "lc4"))
    one = measure([stack["four"]], lambda: closed_loop(ports["w4"], plans),
                  lambda: nginx_totals(ports["w4"], "w4"))
    report("nginx least_conn -> 4 x uWSGI 1 worker, burst of 32", "below one uWSGI", lc)
    report("nginx -> 1 x uWSGI 4 workers, burst of 32", "above least_conn (backlog overflow)", one)
    ratios = (one["queue_log"] / lc["queue_log"], one["queue_stats"] / lc["queue_stats"])
    print(f"ORACLE spike ratio one-uWSGI/least_conn: log {ratios[0]:.2f} stats {ratios[1]:.2f}")
    for m in (lc, one):
        assert m["missing"] == 0
        assert near(m["app_log"], APP_S, 0.10) and near(m["app_stats"], APP_S, 0.10), m
        agree(m)
    assert min(ratios) >= SPIKE_RATIO, ratios
