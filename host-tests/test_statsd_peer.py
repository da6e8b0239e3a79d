"""The Collector's StatsD path checked against a peer no one here wrote:
Prometheus' statsd_exporter (scripts/setup.d/statsd-exporter.sh), the tool
gunicorn users run today, fed the very same live gunicorn stream through a
UDP tee (gunicorn sends to one --statsd-host only). One gunicorn is started
before the Collector, one after; both run the shipped example config. Per
status, the request counts and the duration counts on :9464 equal the
requests sent, statsd_exporter's, and the datagrams the tee saw; per route,
the access-log counts on :9465 equal the requests sent.

Also the cause of the one duration that went missing live: gunicorn's own
StatsD client drops the datagram after one sent to a port nobody listened on.
"""
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import APPS, ROOT, Proc, free_port, gunicorn_bin, http, samples, wait_for, wait_port
from statsd_tee import UdpTee
from test_otel_collector import EXAMPLE, GUNICORN_LOG_FORMAT, example_env, get, otelcol_bin

# The statsd_exporter mapping gunicorn users write: status and prefix as
# labels. Timers become `<name>_count`/`_sum` (seconds) summaries.
MAPPING = """mappings:
  - match: "*.gunicorn.request.status.*"
    name: gunicorn_request_status
    labels: {app: "$1", status: "$2"}
  - match: "*.gunicorn.request.duration"
    name: gunicorn_request_duration_seconds
    labels: {app: "$1"}
  - match: "*.gunicorn.workers"
    name: gunicorn_workers
    labels: {app: "$1"}
"""

# (method, path, status, route at :9465, times) per gunicorn, spread over
# several 2 s receiver intervals. The StatsD prefix is the Prometheus `job`
# (service.name) of the StatsD series.
MIXES = {
    "before": [("GET", "/accounts/5", 200, "/accounts/:id", 30), ("GET", "/status/404", 404, "/status/{code}", 12),
               ("GET", "/status/503", 503, "/status/{code}", 9), ("POST", "/items/3", 201, "/items/:id", 9)],
    "after": [("GET", "/users/7", 200, "/users/{id}", 33), ("GET", "/status/404", 404, "/status/{code}", 10),
              ("GET", "/status/500", 500, "/status/{code}", 8), ("POST", "/items/4", 201, "/items/:id", 9)],
}
CLIENTS = 3
SPREAD_S = 5.0  # the requests of each gunicorn take about this long


def statsd_exporter_bin():
    path = subprocess.run(["bash", str(ROOT / "scripts" / "setup.d" / "statsd-exporter.sh"), "--path"],
                          capture_output=True, text=True, check=True).stdout.strip()
    if not Path(path).is_file():
        pytest.fail(f"statsd_exporter not built at {path}: run `bash scripts/setup.d/statsd-exporter.sh` "
                    "(./build.sh test does this; needs Go and the Go module proxy)")
    return path


def start_gunicorn(tmp, prefix, statsd_port):
    port = free_port()
    g = Proc(f"gunicorn-{prefix}", [gunicorn_bin(), "--chdir", str(APPS), "-w", "2", "-b", f"127.0.0.1:{port}",
                                    "--statsd-host", f"127.0.0.1:{statsd_port}", "--statsd-prefix", prefix,
                                    "--access-logfile", str(tmp / "gunicorn" / f"{prefix}.log"),
                                    "--access-logformat", GUNICORN_LOG_FORMAT, "app:application"], tmp)
    wait_port(port, 20, g)
    return g, port


def drive(port, mix):
    """The mix from CLIENTS threads, paced over about SPREAD_S seconds."""
    jobs = [(m, p, s) for m, p, s, _, n in mix for _ in range(n)]
    pause = SPREAD_S * CLIENTS / len(jobs)
    bad = []

    def client(k):
        for method, path, status in jobs[k::CLIENTS]:
            code, _, _ = http(method, f"http://127.0.0.1:{port}{path}", b"x" if method == "POST" else None)
            if code != status:
                bad.append((method, path, code))
            time.sleep(pause)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not bad, bad


def ours(port):
    text = get(f"http://127.0.0.1:{port}/metrics")
    status = {(l["job"], l["http_response_status_code"]): v
              for l, v in samples(text, "http_server_request_count_total") if "http_route" not in l}
    durations = {l["job"]: v for l, v in samples(text, "http_server_request_duration_seconds_count")
                 if "http_route" not in l}
    workers = {l["job"]: v for l, v in samples(text, "gunicorn_workers")}
    return status, durations, workers


def theirs(port):
    text = get(f"http://127.0.0.1:{port}/metrics")
    status = {(l["app"], l["status"]): v for l, v in samples(text, "gunicorn_request_status_total")}
    durations = {l["app"]: v for l, v in samples(text, "gunicorn_request_duration_seconds_count")}
    workers = {l["app"]: v for l, v in samples(text, "gunicorn_workers")}
    return status, durations, workers


def sent_by_status():
    return {(prefix, str(s)): float(sum(n for _, _, st, _, n in mix if st == s))
            for prefix, mix in MIXES.items() for s in {st for _, _, st, _, _ in mix}}


def sent_durations():
    return {prefix: float(sum(n for *_, n in mix)) for prefix, mix in MIXES.items()}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("statsd-peer")
    (tmp / "gunicorn").mkdir()
    (tmp / "uwsgi").mkdir()
    (tmp / "mapping.yml").write_text(MAPPING)
    ports = {k: free_port() for k in ("statsd", "otlp_grpc", "otlp_http", "prom", "prom_red", "peer_udp",
                                      "peer_web")}
    procs = []
    tee = UdpTee([ports["statsd"], ports["peer_udp"]])
    try:
        peer = Proc("statsd_exporter", [statsd_exporter_bin(), f"--statsd.listen-udp=127.0.0.1:{ports['peer_udp']}",
                                        "--statsd.listen-tcp=", f"--web.listen-address=127.0.0.1:{ports['peer_web']}",
                                        f"--statsd.mapping-config={tmp / 'mapping.yml'}"], tmp)
        procs.append(peer)
        wait_port(ports["peer_web"], 20, peer)
        # gunicorn first: its start-up gauge reaches the peer, not the Collector.
        before, before_port = start_gunicorn(tmp, "before", tee.port)
        procs.append(before)
        wait_for(lambda: theirs(ports["peer_web"])[2].get("before") == 2, 20, what="peer sees gunicorn 'before'")
        col = Proc("otelcol", [otelcol_bin(), "--config", str(EXAMPLE)], tmp, env=example_env(tmp, ports), cwd=ROOT)
        procs.append(col)
        wait_port(ports["prom"], 30, col)
        wait_for(lambda: "Everything is ready" in col.log(), 30, what="collector ready")
        after, after_port = start_gunicorn(tmp, "after", tee.port)
        procs.append(after)
        wait_for(lambda: theirs(ports["peer_web"])[2].get("after") == 2, 20, what="peer sees gunicorn 'after'")
        started = time.monotonic()
        threads = [threading.Thread(target=drive, args=(p, MIXES[k]))
                   for k, p in (("before", before_port), ("after", after_port))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        want = sent_by_status()
        wait_for(lambda: {k: v for k, v in ours(ports["prom"])[0].items() if k[0] in MIXES} == want, 20,
                 what=f"Collector status counts {want}")
        yield {"tmp": tmp, "tee": tee, "col": col, "before": before, "seconds": time.monotonic() - started,
               **ports}
    finally:
        for p in reversed(procs):
            p.stop()
        tee.close()


def test_status_and_duration_counts_equal_sent_and_statsd_exporter(live):
    want_status, want_dur = sent_by_status(), sent_durations()
    # Every interval flushed: the duration counts settle with the statuses.
    status, durations, _ = wait_for(
        lambda: (o := ours(live["prom"])) and {k: v for k, v in o[1].items() if k in MIXES} == want_dur and o, 15,
        what=f"Collector duration counts {want_dur}")
    assert {k: v for k, v in status.items() if k[0] in MIXES} == want_status
    peer_status, peer_dur, _ = theirs(live["peer_web"])
    assert peer_status == want_status
    assert peer_dur == want_dur
    # What went over the wire, per prefix (the tee's copy of every datagram).
    lines = live["tee"].lines()
    for prefix in MIXES:
        timings = sum(1 for l in lines if l.startswith(f"{prefix}.gunicorn.request.duration:".encode()))
        assert timings == want_dur[prefix]
    log = live["col"].log()
    for bad in ("Dropped misaligned", "out of order", "dropped sample", "panic"):
        assert bad not in log, bad


def test_access_log_counts_per_route_equal_sent(live):
    want = Counter()
    for mix in MIXES.values():
        for method, _, status, route, n in mix:
            want[(method, route, str(status))] += n
    text_of = lambda: get(f"http://127.0.0.1:{live['prom_red']}/metrics")  # noqa: E731

    def per_route(name):
        return {(l["http_request_method"], l["http_route"], l["http_response_status_code"]): v
                for l, v in samples(text_of(), name, job="gunicorn-app")}
    wait_for(lambda: per_route("http_server_request_count_total") == want, 30, what=f"per route {dict(want)}")
    # The recommended %(D)s format, read as microseconds: every record has
    # a duration, all of them well under a second.
    assert per_route("http_server_request_duration_seconds_count") == want
    total = sum(v for _, v in samples(text_of(), "http_server_request_duration_seconds_sum", job="gunicorn-app"))
    assert 0 < total < sum(want.values()) * 1.0


def test_gunicorn_workers_gauge(live):
    """Started after the Collector: seen, and kept (metric_expiration) for as
    long as the Collector runs. Started before: gunicorn sent the gauge once,
    to no one; the documented TTIN/TTOU resends it."""
    _, _, workers = ours(live["prom"])
    assert workers.get("after") == 2 and "before" not in workers, workers
    assert theirs(live["peer_web"])[2] == {"before": 2, "after": 2}
    master = live["before"].pid
    live["before"].p.send_signal(signal.SIGTTIN)
    wait_for(lambda: ours(live["prom"])[2].get("before") == 3, 20, what="gauge after TTIN")
    live["before"].p.send_signal(signal.SIGTTOU)
    wait_for(lambda: ours(live["prom"])[2].get("before") == 2, 20, what=f"gauge after TTOU (master {master})")
    assert theirs(live["peer_web"])[2] == {"before": 2, "after": 2}


def test_example_keeps_series_while_the_sender_runs():
    """A gauge sent once and an idle status total outlive the exporters'
    5-minute default; deltatocumulative keeps its running totals as long."""
    text = EXAMPLE.read_text()
    for key in ("metric_expiration: 8760h", "max_stale: 8760h"):
        assert key in text, key
    assert text.count("metric_expiration: 8760h") == 2


def test_gunicorn_drops_the_send_after_an_unreachable_port(tmp_path):
    """The live loss, reproduced without any Collector: gunicorn's StatsD
    socket is a connected UDP socket; the ICMP port-unreachable answering its
    start-up gauge (nobody listening yet) fails its next send, which gunicorn
    logs and drops. That send is the first request's timing: one duration
    fewer than statuses, on any receiver started after gunicorn."""
    port = free_port()
    g, gport = start_gunicorn_plain(tmp_path, port)
    try:
        wait_for(lambda: "Booting worker" in g.log(), 20, what="workers booted")
        time.sleep(1.0)  # the arbiter's gauge went out to the closed port
        with UdpListener(port) as rx:
            for _ in range(5):
                assert http("GET", f"http://127.0.0.1:{gport}/")[0] == 200
            got = rx.until(lambda d: sum(b".request.status." in x for x in d) == 5)
    finally:
        g.stop()
    timings = sum(b".request.duration:" in d for d in got)
    assert (timings, sum(b".request.status." in d for d in got)) == (4, 5)
    assert "Error sending message to statsd" in g.log()


def start_gunicorn_plain(tmp, statsd_port):
    port = free_port()
    g = Proc("gunicorn-unreachable", [gunicorn_bin(), "--chdir", str(APPS), "-w", "1", "-b", f"127.0.0.1:{port}",
                                      "--statsd-host", f"127.0.0.1:{statsd_port}", "--statsd-prefix", "x",
                                      "app:application"], tmp)
    wait_port(port, 20, g)
    return g, port


class UdpListener:
    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.got = []

    def until(self, done, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(self.got):
            try:
                self.got.append(self.sock.recvfrom(65535)[0])
            except socket.timeout:
                pass
        return self.got

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()
