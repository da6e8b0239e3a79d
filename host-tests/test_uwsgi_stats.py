"""uwsgi-stats in a real Envoy 1.40 (V8): the bootstrap singleton polls real
uWSGI stats servers (and fake broken ones) and its metrics at
/stats/prometheus must agree with the stats JSON read directly.

The Envoy config is rendered from examples/envoy-uwsgi-stats/envoy.yaml, so
the example users copy is the configuration that is exercised.
"""
import http.client as httpclient
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (ROOT, Envoy, envoy_bin, free_port, get_text, http, parse_prometheus, require_binary,
                      samples, value, wait_for, wait_port, wasm)
from harness import start_uwsgi, uwsgi_stats_config

EXAMPLE = ROOT / "examples" / "envoy-uwsgi-stats"
VECTORS = ROOT / "core" / "tests" / "vectors"
HTTP_HEAD = b"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n"


# ---------------------------------------------------------------- helpers

def stats_json(port):
    """The stats document read directly from a --stats-http server."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


class FakeStats:
    """A TCP server standing in for a uWSGI stats server. mode "reply": read
    the request, write `reply`, close (like --stats-http); "hang": accept and
    never answer."""

    def __init__(self, reply=b"", mode="reply"):
        self.reply, self.mode = reply, mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.accepted = 0
        self.stop = False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "hang":
                self.held.append(conn)
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(5)
            got = b""
            while b"\r\n\r\n" not in got and len(got) < 4096:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                got += chunk
            conn.sendall(self.reply)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.held:
            c.close()


def huge_document():
    """About 5 MB: 64 busy workers x 64 cores, each core with ~1.2 KB of vars
    (cookies) that must be skipped, never exported."""
    cookie = "c" * 1200
    workers = []
    for w in range(1, 65):
        cores = [{"id": c, "requests": c, "in_request": 1, "req_info": {"request_start": 1},
                  "vars": ["REQUEST_METHOD=GET", f"HTTP_COOKIE=session={cookie}", ""]} for c in range(64)]
        workers.append({"id": w, "pid": 100000 + w, "requests": w * 10, "status": "busy", "apps": [],
                        "cores": cores})
    return json.dumps({"version": "2.0.30", "cwd": "/srv", "sockets": [], "workers": workers}).encode()


# ---------------------------------------------------------------- fixtures

class Setup:
    pass


@pytest.fixture(scope="module")
def env(logdir):
    s = Setup()
    # --http11-socket, a stats server speaking HTTP, and memory figures.
    app = dict(protocol="http11", stats=True, memory_report=True)
    s.app1 = start_uwsgi(logdir, "uwsgi-stats-app1", processes=4, **app)
    s.app2 = start_uwsgi(logdir, "uwsgi-stats-app2", processes=2, **app)
    closed_port = free_port()  # nothing listens here
    invalid = (VECTORS / "stats_k_cwd_backslash_invalid_http.bin").read_bytes()
    good_small = (VECTORS / "stats_a_2proc_idle_http.bin").read_bytes()
    truncated_body = (VECTORS / "stats_b_4x4_after_load_http.json").read_bytes()
    s.fakes = {
        "hang": FakeStats(mode="hang"),
        "garbage": FakeStats(HTTP_HEAD + b"\x00\x17<html>this is not a stats document</html>\xff"),
        "rawgarbage": FakeStats(b"\x00\x01\x02 not even HTTP \xfe\xff\r\n\r\n"),
        "truncated": FakeStats(HTTP_HEAD + truncated_body[: len(truncated_body) // 2]),
        "invalid": FakeStats(invalid),
        "huge": FakeStats(HTTP_HEAD + huge_document()),
        "flip": FakeStats(good_small),
    }
    ports = {"app1": s.app1.stats_port, "app2": s.app2.stats_port, "closed": closed_port}
    ports.update({k: f.port for k, f in s.fakes.items()})
    targets = [{"name": k, "cluster": f"uwsgi_stats_{k}"} for k in ports]
    poller = {"targets": targets, "interval_ms": 1000, "timeout_ms": 800}
    s.admin, s.public, s.snapshot = free_port(), free_port(), free_port()
    cfg = uwsgi_stats_config(s.admin, s.public, s.snapshot, s.app1.port, poller,
                             {f"uwsgi_stats_{k}": p for k, p in ports.items()}, wasm_path=wasm("uwsgi-stats"))
    s.envoy = Envoy("envoy-uwsgi-stats", cfg, logdir, s.admin)
    s.envoy.wait_ready()
    # First poll after one interval, then stats flush.
    wait_for(lambda: value(s.envoy.prometheus(), "uwsgi_up", target="app1") == 1, 20, what="first poll of app1")
    yield s
    s.envoy.stop()
    for p in (s.app1, s.app2):
        p.stop(signal.SIGINT)
    for f in s.fakes.values():
        f.close()


def prom(s):
    return s.envoy.prometheus()


def through_envoy(s, path):
    return http("GET", f"http://127.0.0.1:{s.public}{path}", timeout=15)


def load(s, n, path="/", threads=8):
    """n requests through Envoy from `threads` keep-alive clients; returns statuses."""
    statuses = []
    lock = threading.Lock()

    def worker(k):
        c = httpclient.HTTPConnection("127.0.0.1", s.public, timeout=20)
        for _ in range(k):
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            with lock:
                statuses.append(r.status)
        c.close()

    per = n // threads
    ts = [threading.Thread(target=worker, args=(per,)) for _ in range(threads)]
    for t in ts:
        t.start()
    return ts, statuses


def value_of(text, metric, labels):
    """Like conftest.value, for label sets that include `name`."""
    return sum(v for n, l, v in parse_prometheus(text)
               if n == metric and all(l.get(k) == str(x) for k, x in labels.items()))


def per_worker(text, name, target):
    return {l["worker_id"]: v for l, v in samples(text, name, target=target)}


# ---------------------------------------------------------------- tests

def test_example_configs_validate():
    wasm("uwsgi-stats")
    r = subprocess.run([envoy_bin(), "--mode", "validate", "-c", str(EXAMPLE / "envoy.yaml")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    promtool = require_binary("promtool", "apt-get install prometheus")
    r = subprocess.run([promtool, "check", "config", str(EXAMPLE / "prometheus.yml")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    ini = (EXAMPLE / "uwsgi.ini").read_text()
    for line in ("stats = 127.0.0.1:9191", "stats-http = true", "processes = 4"):
        assert line in ini


def test_refused_config_costs_no_traffic(logdir, env):
    """A poller configuration the plugin refuses never costs a request: Envoy
    starts, the public listener proxies byte for byte, nothing is polled,
    and the refusal is logged (critical) naming the key and counted."""
    admin, public = free_port(), free_port()
    cfg = uwsgi_stats_config(admin, public, free_port(), env.app1.port,
                             {"targets": [{"name": "a", "cluster": "c", "clustr": "typo"}]}, {"c": free_port()},
                             wasm_path=wasm("uwsgi-stats"))
    e = Envoy("envoy-uwsgi-stats-badcfg", cfg, logdir, admin)
    try:
        e.wait_ready()
        wait_port(public, 10, e)
        for path in ("/refused", "/status/503", "/items/1"):
            got = http("GET", f"http://127.0.0.1:{public}{path}")
            want = http("GET", f"http://127.0.0.1:{env.app1.port}{path}")
            assert (got[0], got[2]) == (want[0], want[2]), path
        refusals = [line for line in e.log().splitlines() if "uwsgi-stats: invalid plugin configuration" in line]
        assert refusals and all("`targets[0].clustr`" in line or "clustr" in line for line in refusals), e.tail()
        assert all("critical" in line for line in refusals), refusals
        text = e.prometheus()
        assert value(text, "uwsgi_red_internal_errors_total", reason="config") == len(refusals)
        assert value(text, "uwsgi_up") == 0 and "uwsgi_up{" not in text
        assert e.poll() is None
    finally:
        e.stop()


def test_load_values_agree_with_stats_json(env):
    s = env
    ts, statuses = load(s, 480, "/slow?s=0.05")
    prev = {}
    saw_busy = False
    deadline = time.monotonic() + 60
    while any(t.is_alive() for t in ts) and time.monotonic() < deadline:
        text = prom(s)
        direct = stats_json(s.app1.stats_port)
        envoy_reqs = per_worker(text, "uwsgi_worker_requests_total", "app1")
        assert value(text, "uwsgi_workers", target="app1") == 4
        busy = per_worker(text, "uwsgi_worker_busy", "app1")
        idle = per_worker(text, "uwsgi_worker_idle", "app1")
        assert sorted(busy) == ["1", "2", "3", "4"]
        assert all(busy[w] + idle[w] == 1 for w in busy), (busy, idle)
        saw_busy |= sum(busy.values()) > 0
        for w in direct["workers"]:
            wid = str(w["id"])
            # Envoy lags the live document, never leads it, and never goes down.
            assert envoy_reqs[wid] <= w["requests"], (wid, envoy_reqs, w["requests"])
            assert envoy_reqs[wid] >= prev.get(wid, 0)
        prev = envoy_reqs
        time.sleep(0.3)
    for t in ts:
        t.join(30)
    assert len(statuses) == 480 and set(statuses) == {200}
    assert saw_busy, "never saw a busy worker under load"

    # Quiescent: Envoy equals the document exactly.
    def agree():
        text = prom(s)
        d = stats_json(s.app1.stats_port)
        for w in d["workers"]:
            wid = str(w["id"])
            pairs = [
                (value(text, "uwsgi_worker_requests_total", target="app1", worker_id=wid), w["requests"]),
                (value(text, "uwsgi_worker_transmitted_bytes_total", target="app1", worker_id=wid), w["tx"]),
                (value(text, "uwsgi_worker_respawn_count_total", target="app1", worker_id=wid), w["respawn_count"]),
                (value(text, "uwsgi_worker_average_response_time_microseconds", target="app1", worker_id=wid),
                 w["avg_rt"]),
                (value(text, "uwsgi_worker_rss_bytes", target="app1", worker_id=wid), w["rss"]),
                (value(text, "uwsgi_worker_app_requests_total", target="app1", worker_id=wid, app_id="0"),
                 w["apps"][0]["requests"]),
                (value(text, "uwsgi_worker_idle", target="app1", worker_id=wid), 1),
            ]
            if any(a != b for a, b in pairs):
                return False
        return sum(w["requests"] for w in d["workers"]) >= 480 and d
    d = wait_for(agree, 15, 0.5, "Envoy metrics equal to the stats JSON")
    text = prom(s)
    assert value(text, "uwsgi_worker_requests_total", target="app1") == sum(w["requests"] for w in d["workers"])
    # Same label values as uwsgi_exporter (socket name with its dots, uWSGI's proto name).
    assert value_of(text, "uwsgi_socket_max_queue_length",
                    {"target": "app1", "name": f"127.0.0.1:{s.app1.port}", "proto": "http11"}) == 100
    assert value(text, "uwsgi_version_info", target="app1", version="2.0.30") == 1
    assert all(w["rss"] > 0 for w in d["workers"])

    # The admin-only listener serves the snapshot (no vars) and exact-float text.
    snap = json.loads(get_text(f"http://127.0.0.1:{s.snapshot}/uwsgi/snapshot.json"))
    app1 = next(t for t in snap["targets"] if t["target"] == "app1")
    assert app1["up"] and not app1["stale"]
    assert len(app1["document"]["workers"]) == 4
    assert all("vars" not in c for w in app1["document"]["workers"] for c in w["cores"])
    exact = get_text(f"http://127.0.0.1:{s.snapshot}/uwsgi/metrics")
    w1 = d["workers"][0]
    assert value(exact, "uwsgi_worker_average_response_time_seconds", target="app1", worker_id=str(w1["id"])) == \
        pytest.approx(w1["avg_rt"] / 1e6, rel=1e-12)
    assert value_of(exact, "uwsgi_socket_max_queue_length",
                    {"target": "app1", "name": f"127.0.0.1:{s.app1.port}", "proto": "http11"}) == 100
    # ... and only there: the public listener proxies the path to the app like any other.
    status, _, body = through_envoy(s, "/uwsgi/snapshot.json")
    assert status == 200 and body.startswith(b"Hello GET /uwsgi/snapshot.json")
    assert http("GET", f"http://127.0.0.1:{s.snapshot}/other")[0] == 404


def test_two_targets_are_labelled(env):
    s = env
    d1, d2 = stats_json(s.app1.stats_port), stats_json(s.app2.stats_port)

    def labelled():
        text = prom(s)
        return (value(text, "uwsgi_workers", target="app2") == 2 and value(text, "uwsgi_workers", target="app1") == 4
                and per_worker(text, "uwsgi_worker_pid", "app1") == {str(w["id"]): w["pid"] for w in d1["workers"]}
                and per_worker(text, "uwsgi_worker_pid", "app2") == {str(w["id"]): w["pid"] for w in d2["workers"]})
    wait_for(labelled, 10, 0.5, "both targets with their own pids")
    text = prom(s)
    assert sorted(per_worker(text, "uwsgi_worker_busy", "app2")) == ["1", "2"]
    assert value(text, "uwsgi_up", target="app2") == 1


EXPECTED_FAULTS = {
    "closed": "connect",
    "hang": "timeout",
    "garbage": "not_json",
    "rawgarbage": "protocol",
    "truncated": "truncated",
}


def test_faults_are_counted_and_traffic_is_unchanged(env):
    s = env
    direct = http("GET", f"http://127.0.0.1:{s.app1.port}/fault-check")
    assert direct[0] == 200

    def all_faults_seen():
        text = prom(s)
        return all(value(text, "uwsgi_scrape_errors_total", target=t, reason=r) >= 2 and
                   value(text, "uwsgi_up", target=t) == 0 for t, r in EXPECTED_FAULTS.items())

    # Requests through Envoy while faulty targets are being polled.
    deadline = time.monotonic() + 20
    n = 0
    while time.monotonic() < deadline:
        status, _, body = through_envoy(s, "/fault-check")
        assert (status, body) == (direct[0], direct[2])
        n += 1
        if n % 10 == 0 and all_faults_seen():
            break
        time.sleep(0.05)
    text = prom(s)
    snap = json.loads(get_text(f"http://127.0.0.1:{s.snapshot}/uwsgi/snapshot.json"))
    errors = {t["target"]: t["last_error"] for t in snap["targets"]}
    for t, r in EXPECTED_FAULTS.items():
        assert errors[t].startswith(r + ":"), errors
        assert value(text, "uwsgi_up", target=t) == 0, t
        assert value(text, "uwsgi_scrape_errors_total", target=t, reason=r) >= 2, (t, r, [
            (l, v) for l, v in samples(text, "uwsgi_scrape_errors_total") if l.get("target") == t])
        assert value(text, "uwsgi_workers", target=t) == 0
    assert s.fakes["hang"].accepted >= 1

    # The invalid-JSON capture: recovered, with the repair counted.
    assert value(text, "uwsgi_up", target="invalid") == 1
    assert value(text, "uwsgi_stats_repairs_total", target="invalid") >= 1
    assert value(text, "uwsgi_stats_repaired_strings", target="invalid") == 1
    assert value(text, "uwsgi_workers", target="invalid") == 2
    snap = json.loads(get_text(f"http://127.0.0.1:{s.snapshot}/uwsgi/snapshot.json"))
    inv = next(t for t in snap["targets"] if t["target"] == "invalid")
    # The repaired string is cwd, a process detail the snapshot leaves out
    # by default (snapshot_process_details).
    assert "cwd" not in inv["document"] and inv["repairs"] == 1

    # 5 MB document: decoded, vars skipped.
    assert value(text, "uwsgi_up", target="huge") == 1
    assert value(text, "uwsgi_workers", target="huge") == 64
    assert value(text, "uwsgi_worker_requests_total", target="huge", worker_id="64") == 640
    assert value(text, "uwsgi_stats_document_bytes", target="huge") > 5_000_000
    assert "session=ccc" not in get_text(f"http://127.0.0.1:{s.snapshot}/uwsgi/snapshot.json")
    assert n >= 10
    assert s.envoy.poll() is None


def test_failed_poll_leaves_no_stale_values(env):
    s = env
    flip = s.fakes["flip"]
    wait_for(lambda: value(prom(s), "uwsgi_workers", target="flip") == 2, 10, what="flip target up")
    text = prom(s)
    assert value(text, "uwsgi_worker_idle", target="flip") == 2
    assert value(text, "uwsgi_worker_requests_total", target="flip") == 0
    flip.reply = HTTP_HEAD + b'{"version":"2.0.30","workers":[{"id":1,'
    wait_for(lambda: value(prom(s), "uwsgi_up", target="flip") == 0, 10, what="flip target down")
    text = prom(s)
    assert value(text, "uwsgi_workers", target="flip") == 0
    assert value(text, "uwsgi_worker_idle", target="flip") == 0
    assert value(text, "uwsgi_socket_max_queue_length", target="flip") == 0
    assert value(text, "uwsgi_scrape_errors_total", target="flip", reason="truncated") >= 1
    assert value(text, "uwsgi_scrape_last_success_timestamp_seconds", target="flip") > 1_600_000_000
    snap = json.loads(get_text(f"http://127.0.0.1:{s.snapshot}/uwsgi/snapshot.json"))
    f = next(t for t in snap["targets"] if t["target"] == "flip")
    assert not f["up"] and f["stale"] and f["last_error"].startswith("truncated")


def test_killed_worker_respawn_is_exported(env):
    s = env
    before = stats_json(s.app1.stats_port)
    w = before["workers"][1]
    wid = str(w["id"])
    os.kill(w["pid"], signal.SIGKILL)

    def respawned():
        d = stats_json(s.app1.stats_port)
        nw = next(x for x in d["workers"] if x["id"] == w["id"])
        return nw if nw["respawn_count"] > w["respawn_count"] and nw["pid"] != w["pid"] else None
    nw = wait_for(respawned, 20, 0.3, "uWSGI to respawn the killed worker")

    def exported():
        text = prom(s)
        # uWSGI keeps a worker's totals across a respawn; so must the export.
        return (value(text, "uwsgi_worker_respawn_count_total", target="app1", worker_id=wid) == nw["respawn_count"]
                and value(text, "uwsgi_worker_pid", target="app1", worker_id=wid) == nw["pid"]
                and value(text, "uwsgi_worker_requests_total", target="app1", worker_id=wid) == nw["requests"]
                and nw["requests"] >= w["requests"])
    wait_for(exported, 10, 0.3, "respawn_count in Envoy")
    assert value(prom(s), "uwsgi_workers", target="app1") == 4
    status, _, body = through_envoy(s, "/after-kill")
    assert status == 200 and body.startswith(b"Hello GET /after-kill")
