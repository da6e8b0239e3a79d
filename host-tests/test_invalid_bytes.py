"""Bytes that are not UTF-8, sent raw (sockets, not an HTTP client that
would refuse them), in every value a plugin reads: the path, the method,
the headers (`accept`, `traceparent`, the authority, `x-forwarded-*`), the
upstream's response head (status reason, a header value) and, for
uwsgi-tcp, the uwsgi packet vars.

proxy-wasm 0.2's string getters unwrap `String::from_utf8`, so one such
byte used to trap the VM. Here, in the real hosts:
- the client gets what it gets without the filter (a listener without the
  filter, or the upstream's own answer: status and body);
- every request the filter sees is counted, exactly, each value that was
  not UTF-8 also as `uwsgi_red_internal_errors_total{reason="invalid_utf8"}`;
- no VM trapped (the host log has no Wasm failure) and the VM keeps
  counting afterwards.
And Envoy's `failure_policy: FAIL_RELOAD` (the examples' setting): a VM
trapped on purpose (dist/red-filter-trap.wasm, cargo feature `test-trap`)
is replaced and counting resumes; only the trapping request is lost.
"""
import json
import re
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest

from harness import (APPS, DIST, ROOT, Envoy, Proc, free_port, red_filter_config, samples, tcp_proxy_config, value,
                     wait_for, wait_port, wasm)
from nginx_wasm import NginxWasm, example_plugin_config
from test_uwsgi_tcp import packet

RAW_UPSTREAM = APPS / "raw_upstream.py"
REQ = "uwsgi_red_requests_total"
INTERNAL = "uwsgi_red_internal_errors_total"
INVALID = {"reason": "invalid_utf8"}
# What a Wasm VM failure looks like in Envoy's and ngx_wasm_module's logs.
VM_FAILURE = re.compile(r"unreachable|wasm trap|Wasm VM failed|failed: Uncaught|panicked", re.I)
FLUSH_MS = 200
RED_CONFIG = {"route_patterns": ["/users/{id}"], "max_series": 1000, "exposition": "both",
              "flush_interval_ms": FLUSH_MS}
TRAP_HEADER = b"x-uwsgi-red-test-trap"
TRAP_WASM = DIST / "red-filter-trap.wasm"
TCP_TRAP_WASM = DIST / "uwsgi-tcp-trap.wasm"


def start_raw_upstream(logdir, name):
    port = free_port()
    p = Proc(name, [sys.executable, str(RAW_UPSTREAM), str(port)], logdir)
    wait_port(port, 10, p)
    p.port = port
    return p


# ------------------------------------------------------------ raw HTTP/1.1

def read_all(s, timeout):
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def dechunk(body):
    out, rest = bytearray(), body
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out += rest[:n]
        rest = rest[n + 2:]
    return bytes(out)


def raw_http(port, method, target, headers=(), host=b"127.0.0.1", timeout=10):
    """One request written byte for byte; (status, headers, body)."""
    req = (method + b" " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n"
           + b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"Connection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        data = read_all(s, timeout)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1]) if lines[0].startswith(b"HTTP/") else None
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = dechunk(body)
    return status, hdrs, body


def h2_frame(ftype, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman: any
    bytes go on the wire as given."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def h2_request(port, headers, timeout=10):
    """One request on a fresh cleartext HTTP/2 connection (prior
    knowledge), headers HPACK-encoded byte for byte: (status, body), status
    200 when the response starts with the static-table `:status: 200`,
    "other" for any other response head, None when the stream got no
    response (reset or connection closed)."""
    block = b"".join(hpack_literal(k, v) for k, v in headers)
    # END_STREAM | END_HEADERS on stream 1.
    out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b"") + h2_frame(1, 0x5, 1, block)
    status, body, buf = None, b"", b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                return status, body
            buf += chunk
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                n, ftype, flags = int.from_bytes(buf[:3], "big"), buf[3], buf[4]
                stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                payload, buf = buf[9:9 + n], buf[9 + n:]
                if ftype == 4 and not flags & 1:
                    s.sendall(h2_frame(4, 1, 0, b""))  # SETTINGS ack
                elif stream != 1:
                    if ftype == 7:  # GOAWAY
                        return status, body
                elif ftype == 1:
                    if status is None:
                        status = 200 if payload[:1] == b"\x88" else "other"
                    if flags & 1:
                        return status, body
                elif ftype == 0:
                    body += payload
                    if flags & 1:
                        return status, body
                elif ftype == 3:  # RST_STREAM
                    return status, body
    raise TimeoutError("no complete HTTP/2 response")


def h2_headers(method, path, authority=b"127.0.0.1", extra=()):
    return [(b":method", method), (b":scheme", b"http"), (b":path", path), (b":authority", authority), *extra]


def upstream_answer(method, target):
    """The raw upstream's status and body for a request it received as sent."""
    return 200, b"seen " + method + b" " + target + b"\n"


# (name, method, target, headers, host): one HTTP/1.1 request each.
CASES = [
    ("path", b"GET", b"/caf\xff", (), b"127.0.0.1"),
    ("path-query", b"GET", b"/users/7?q=\xfe\xff", (), b"127.0.0.1"),
    ("path-utf8-cut", b"GET", b"/a\xe2\x82", (), b"127.0.0.1"),
    ("method", b"G\xffT", b"/m", (), b"127.0.0.1"),
    ("accept", b"GET", b"/accept", ((b"Accept", b"text/plain\xff"),), b"127.0.0.1"),
    ("traceparent", b"GET", b"/tp", ((b"traceparent", b"00-\xff\xfe0af7651916cd43dd8448eb211c80319c-01"),),
     b"127.0.0.1"),
    ("authority", b"GET", b"/host", (), b"h\xff.example"),
    ("x-forwarded", b"GET", b"/xf", ((b"X-Forwarded-For", b"10.0.0.\xff"), (b"X-Forwarded-Proto", b"ht\xfftp"),
                                      (b"X-Forwarded-Host", b"f\xff.example"), (b"User-Agent", b"\xff"),
                                      (b"Referer", b"/r\xff")), b"127.0.0.1"),
    ("response-head", b"GET", b"/badhead", (), b"127.0.0.1"),
    ("percent", b"GET", b"/caf%FF", (), b"127.0.0.1"),
]


def vm_failures(log):
    return [line for line in log.splitlines() if VM_FAILURE.search(line)]


# ------------------------------------------------------------------ Envoy

def start_red_envoy(logdir, name, upstream, filter_kind="http", wasm_path=None, plugin_config=None):
    listen, admin = free_port(), free_port()
    cfg = red_filter_config(listen, admin, upstream, plugin_config or RED_CONFIG, wasm_path=wasm_path,
                            filter_kind=filter_kind)
    env = Envoy(name, cfg, logdir, admin)
    env.wait_ready()
    env.listen_port = listen
    return env


@pytest.fixture(scope="module")
def envoys(logdir):
    wasm("red-filter")
    procs = []
    try:
        up = start_raw_upstream(logdir, "bytes-upstream")
        procs.append(up)
        with_filter = start_red_envoy(logdir, "bytes-envoy-red", up.port)
        procs.append(with_filter)
        without = start_red_envoy(logdir, "bytes-envoy-none", up.port, filter_kind="none")
        procs.append(without)
        yield {"up": up, "red": with_filter, "none": without}
    finally:
        for p in reversed(procs):
            p.stop()


def self_page(env, accept=None):
    headers = ((b"Accept", accept),) if accept else ()
    status, hdrs, body = raw_http(env.listen_port, b"GET", b"/metrics", headers)
    assert status == 200, body[:300]
    return hdrs, body.decode()


# Envoy's HTTP/1 codec answers 400 itself to a request line or Host with a
# byte outside ASCII (with or without the filter); the filter then logs a
# request without headers: method `_OTHER`, code 400, route `/`.
ENVOY_H1_REFUSED = {"path", "path-query", "path-utf8-cut", "method", "authority"}

# Over HTTP/2 a `:path` byte outside ASCII reaches the filters and the
# upstream; a bad `:method` or `:authority` gets the stream reset by the
# codec (no response, no filter runs).
# (name, headers, the filter reads a value that is not UTF-8)
H2_CASES = [
    ("h2-path", h2_headers(b"GET", b"/caf\xff"), True),
    ("h2-path-query", h2_headers(b"GET", b"/users/7?q=\xfe\xff"), True),
    ("h2-method", h2_headers(b"G\xffT", b"/m"), True),
    ("h2-authority", h2_headers(b"GET", b"/h", authority=b"h\xff"), False),
    ("h2-headers", h2_headers(b"GET", b"/hh", extra=[(b"accept", b"text/plain\xff"),
                                                     (b"traceparent", b"00-\xff\xfe-01"),
                                                     (b"x-forwarded-for", b"10.0.0.\xff"),
                                                     (b"x-forwarded-host", b"f\xff")]), False),
    ("h2-response-head", h2_headers(b"GET", b"/badhead"), False),
]
H2_RESET = {"h2-method", "h2-authority"}


def test_envoy_red_filter_passes_invalid_bytes_through_and_counts_them(envoys):
    red, none = envoys["red"], envoys["none"]
    counted, refused, expected_invalid = 0, 0, 0
    for name, method, target, headers, host in CASES:
        got = raw_http(red.listen_port, method, target, headers, host)
        want = raw_http(none.listen_port, method, target, headers, host)
        assert (got[0], got[2]) == (want[0], want[2]), name
        if name in ENVOY_H1_REFUSED:
            assert got[0] == 400, (name, got)
            refused += 1
        else:
            assert (got[0], got[2]) == upstream_answer(method, target), name
        if name == "response-head":
            assert got[1][b"x-bad"] == b"\xfe\xff caf\xc3", "the header reached the client unchanged"
        counted += 1
    for name, headers, invalid in H2_CASES:
        got = h2_request(red.listen_port, headers)
        assert got == h2_request(none.listen_port, headers), name
        if name in H2_RESET:
            assert got == (None, b""), (name, got)
            continue
        h = dict(headers)
        assert got == upstream_answer(h[b":method"], h[b":path"]), name
        counted += 1
        expected_invalid += invalid
    # The scrape the filter answers itself, with an Accept it cannot decode
    # (this trapped the VM): answered in the text format, not counted as
    # traffic, counted as invalid.
    hdrs, text = self_page(red, b"text/plain\xff")
    assert hdrs[b"content-type"].startswith(b"text/plain"), hdrs
    expected_invalid += 1
    # The VM is alive and still counting.
    for i in range(5):
        assert raw_http(red.listen_port, b"GET", f"/users/{i}".encode())[0] == 200
    counted += 5

    text = wait_for(lambda: (t := self_page(red)[1]) and value(t, REQ) == counted and t, 10,
                    what=f"{counted} requests in the self-served page")
    assert value(text, INTERNAL, **INVALID) == expected_invalid
    assert value(text, REQ, method="_OTHER", code="400", route="/") == refused
    routes = Counter()
    for labels, v in samples(text, REQ):
        routes[labels["route"]] += v
    # U+FFFD in place of each invalid sequence; the query is dropped as ever.
    assert routes["/caf\ufffd"] == 1, routes
    assert routes["/users/{id}"] == 6, routes
    host = wait_for(lambda: (t := red.prometheus()) and value(t, REQ) == counted and t, 10,
                    what="host counters")
    assert value(host, INTERNAL, **INVALID) == expected_invalid
    assert vm_failures(red.log()) == [], red.tail()


# ------------------------------------------------------------------ nginx

@pytest.fixture(scope="module")
def nginx(logdir):
    wasm("red-filter")
    procs = []
    try:
        up = start_raw_upstream(logdir, "bytes-nginx-upstream")
        procs.append(up)
        ng = NginxWasm(logdir, "bytes-nginx", free_port(), upstream=up.port)
        procs.append(ng)
        ng.wait_loaded(ng.workers_expected)
        yield ng
    finally:
        for p in reversed(procs):
            p.stop()


def nginx_scrape(ng):
    status, _, body = raw_http(ng.port, b"GET", b"/metrics")
    assert status == 200, body[:300]
    return body.decode()


# ngx_wasm_module hands the filter nginx's decoded path: `%FF` arrives as
# the byte 0xff. A request line nginx refuses (a method byte outside A-Z)
# still runs the filter's log phase: counted as `_OTHER`, 400, route `/`.
NGINX_INVALID_PATH = {"path", "path-query", "path-utf8-cut", "percent"}
NGINX_REFUSED = {"method"}


def test_nginx_passes_invalid_bytes_through_and_counts_them(nginx):
    ng = nginx
    expected_invalid = 0
    for name, method, target, headers, host in CASES:
        got = raw_http(ng.port, method, target, headers, host)
        if name in NGINX_REFUSED:
            # Refused by nginx's request-line parser before any module runs:
            # the same 400 with or without the filter.
            assert got[0] == 400, got
            continue
        assert (got[0], got[2]) == upstream_answer(method, target), name
        if name == "response-head":
            assert got[1][b"x-bad"] == b"\xfe\xff caf\xc3"
        expected_invalid += name in NGINX_INVALID_PATH
    status, hdrs, body = raw_http(ng.port, b"GET", b"/metrics", ((b"Accept", b"text/plain\xff"),))
    assert status == 200 and hdrs[b"content-type"].startswith(b"text/plain"), (status, hdrs)
    expected_invalid += 1
    for i in range(6):
        assert raw_http(ng.port, b"GET", f"/users/{i}".encode())[0] == 200
    seen = len(CASES) + 6

    text = wait_for(lambda: (t := nginx_scrape(ng)) and value(t, REQ) == seen and t,
                    10, what=f"{seen} requests counted")
    assert value(text, INTERNAL, **INVALID) == expected_invalid
    assert value(text, REQ, method="_OTHER", code="400", route="/") == len(NGINX_REFUSED)
    routes = Counter()
    for labels, v in samples(text, REQ):
        routes[labels["route"]] += v
    assert routes["/caf\ufffd"] == 2 and routes["/a\ufffd"] == 1, routes
    assert routes["/users/{id}"] == 7, routes
    # nginx's own record agrees: every request but the scrapes.
    logged = [line for line in ng.access_log() if '"GET /metrics ' not in line]
    assert len(logged) == seen, logged
    assert vm_failures(ng.error_log()) == [], ng.error_log()[-3000:]


# -------------------------------------------------------------- uwsgi-tcp

TCP_CONFIG = {"max_series": 1000}


def uwsgi_request(method, uri, host=b"localhost", server_name=b"localhost", extra=()):
    return packet([("REQUEST_METHOD", method), ("REQUEST_URI", uri), ("PATH_INFO", uri.split(b"?")[0]),
                   ("QUERY_STRING", b""), ("CONTENT_LENGTH", b""), ("SERVER_PROTOCOL", b"HTTP/1.1"),
                   ("SERVER_NAME", server_name), ("HTTP_HOST", host), *extra])


# (name, packet, a var the filter reads is not UTF-8)
TCP_CASES = [
    ("path", uwsgi_request(b"GET", b"/caf\xff"), True),
    ("method", uwsgi_request(b"G\xffT", b"/m"), True),
    ("host", uwsgi_request(b"GET", b"/h", host=b"h\xff", server_name=b""), True),
    ("server-name", uwsgi_request(b"GET", b"/s", server_name=b"s\xfe"), True),
    ("headers", uwsgi_request(b"GET", b"/hdr", extra=[("HTTP_ACCEPT", b"text/plain\xff"),
                                                       ("HTTP_TRACEPARENT", b"00-\xff-01"),
                                                       ("HTTP_X_FORWARDED_FOR", b"10.0.0.\xff")]), False),
    ("response-head", uwsgi_request(b"GET", b"/badhead"), False),
]


def uwsgi_exchange(port, data, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return read_all(s, timeout)


def test_envoy_uwsgi_tcp_passes_invalid_bytes_through_and_counts_them(logdir):
    wasm_path = wasm("uwsgi-tcp")
    procs = []
    try:
        up = start_raw_upstream(logdir, "bytes-tcp-upstream")
        procs.append(up)
        admin, with_f, without = free_port(), free_port(), free_port()
        cfg = tcp_proxy_config(admin, [("with_filter", with_f, "raw", True), ("without", without, "raw", False)],
                               [("raw", up.port)], wasm_path, TCP_CONFIG)
        env = Envoy("bytes-envoy-tcp", cfg, logdir, admin)
        procs.append(env)
        env.wait_ready()
        invalid = 0
        for name, data, bad in TCP_CASES:
            got = uwsgi_exchange(with_f, data)
            assert got == uwsgi_exchange(without, data), name
            assert got.startswith(b"HTTP/1.1 200 O"), (name, got[:80])
            invalid += bad
        for i in range(4):
            assert uwsgi_exchange(with_f, uwsgi_request(b"GET", f"/users/{i}".encode())).startswith(b"HTTP/1.1 200")
        sent = len(TCP_CASES) + 4
        text = wait_for(lambda: (t := env.prometheus()) and value(t, REQ) >= sent and t, 10,
                        what="uwsgi-tcp counts")
        assert value(text, REQ) == sent
        assert value(text, INTERNAL, **INVALID) == invalid
        assert vm_failures(env.log()) == [], env.tail()
    finally:
        for p in reversed(procs):
            p.stop()


# ---------------------------------------------------- FAIL_RELOAD, a real trap

def build_trap_modules():
    """red-filter and uwsgi-tcp with the test-only `test-trap` feature,
    built once per session into their own target dir, copied to
    dist/red-filter-trap.wasm and dist/uwsgi-tcp-trap.wasm (never a shipped
    name)."""
    global _trap_modules
    if _trap_modules is None:
        target = ROOT / "target" / "test-trap"
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--target", "wasm32-unknown-unknown",
                        "--target-dir", str(target), "-p", "red-filter", "-p", "uwsgi-tcp",
                        "--features", "red-filter/test-trap,uwsgi-tcp/test-trap"], cwd=ROOT, check=True, timeout=900)
        out = target / "wasm32-unknown-unknown" / "release"
        TRAP_WASM.write_bytes((out / "red_filter.wasm").read_bytes())
        TCP_TRAP_WASM.write_bytes((out / "uwsgi_tcp.wasm").read_bytes())
        _trap_modules = (TRAP_WASM, TCP_TRAP_WASM)
    return _trap_modules


_trap_modules = None


def wasm_stats(env, name="red"):
    """Envoy's counters of the plugin's VM reloads and the V8 runtime."""
    return {k: v for k, v in ((s["name"], s.get("value")) for s in env.stats_json()["stats"] if "name" in s)
            if k.startswith((f"wasm.{name}.vm_reload", "wasm.envoy.wasm.runtime.v8."))}


def test_envoy_fail_reload_replaces_a_trapped_vm_and_counting_resumes(logdir, envoys):
    """What FAIL_RELOAD does, measured: the request whose callback traps is
    answered 503 by Envoy (not counted: its VM is gone). A later request
    creates a fresh VM (`wasm.red.vm_reload_success`); reloads are attempted
    at most once per backoff interval (`reload_config.backoff`, 1 s base,
    jittered), and a request arriving while the VM is failed inside that
    interval is answered 503 by Envoy without the filter
    (`wasm.red.vm_reload_backoff`). Host counters live in Envoy and
    self-served counts in shared data, so nothing recorded (and flushed)
    before the trap is lost; every request answered 200 is counted, exactly."""
    assert "failure_policy: FAIL_RELOAD" in red_filter_config(1, 2, 3), "the example uses FAIL_RELOAD"
    trap, _ = build_trap_modules()
    env = start_red_envoy(logdir, "bytes-envoy-trap", envoys["up"].port, wasm_path=trap)
    try:
        ok, refused = 0, 0
        for i in range(7):
            assert raw_http(env.listen_port, b"GET", f"/users/{i}".encode())[0] == 200
            ok += 1
        for _ in range(2):
            # Past a flush: the self-served state holds everything so far.
            time.sleep(3 * FLUSH_MS / 1000)
            assert raw_http(env.listen_port, b"GET", b"/users/99", ((TRAP_HEADER, b"1"),))[0] == 503
            deadline = time.monotonic() + 15
            while (status := raw_http(env.listen_port, b"GET", b"/users/1")[0]) != 200:
                assert status == 503 and time.monotonic() < deadline, status
                refused += 1
                time.sleep(0.1)
            ok += 1
            for i in range(10):
                assert raw_http(env.listen_port, b"GET", f"/users/{i}".encode())[0] == 200
                ok += 1
        host = wait_for(lambda: (t := env.prometheus()) and value(t, REQ) >= ok and t, 10,
                        what=f"{ok} requests counted")
        assert value(host, REQ) == ok
        assert value(self_page(env)[1], REQ) == ok
        stats = wasm_stats(env)
        print(f"FAIL_RELOAD: 2 traps -> 503 each; {refused} requests answered 503 inside the reload backoff; "
              f"counted {ok} == answered 200; {stats}")
        assert len(vm_failures(env.log())) == 2, vm_failures(env.log())
        assert stats["wasm.red.vm_reload_success"] == 2, stats
        assert stats["wasm.red.vm_reload_backoff"] == refused, stats
        assert stats["wasm.red.vm_reload_failure"] == 0, stats
    finally:
        env.stop()


def test_envoy_fail_reload_replaces_a_trapped_uwsgi_tcp_vm(logdir):
    """The same for the network filter: the connection whose data traps the
    VM is closed by Envoy (the client gets no answer, nothing is counted);
    a later connection gets a fresh VM and every exchange it carries is
    counted."""
    _, trap = build_trap_modules()
    procs = []
    try:
        up = start_raw_upstream(logdir, "bytes-tcp-trap-upstream")
        procs.append(up)
        admin, listen = free_port(), free_port()
        cfg = tcp_proxy_config(admin, [("with_filter", listen, "raw", True)], [("raw", up.port)], trap, TCP_CONFIG)
        assert "failure_policy: FAIL_RELOAD" in cfg
        env = Envoy("bytes-envoy-tcp-trap", cfg, logdir, admin)
        procs.append(env)
        env.wait_ready()
        ok = 0
        for i in range(5):
            assert uwsgi_exchange(listen, uwsgi_request(b"GET", f"/users/{i}".encode())).startswith(b"HTTP/1.1 200")
            ok += 1
        time.sleep(1.2)
        trapped = uwsgi_exchange(listen, uwsgi_request(b"GET", b"/t", extra=[("HTTP_X_UWSGI_RED_TEST_TRAP",
                                                                                b"x-uwsgi-red-test-trap")]))
        assert trapped == b"", "the trapping connection is closed unanswered"
        # Within the reload backoff Envoy resets the connection (fails
        # closed, counted in vm_reload_backoff); then one reload, and every
        # connection after it is answered and counted.
        resets, deadline = 0, time.monotonic() + 15
        while True:
            try:
                if uwsgi_exchange(listen, uwsgi_request(b"GET", b"/users/1")).startswith(b"HTTP/1.1 200"):
                    break
            except ConnectionResetError:
                pass
            resets += 1
            assert time.monotonic() < deadline, resets
            time.sleep(0.1)
        ok += 1
        for i in range(10):
            assert uwsgi_exchange(listen, uwsgi_request(b"GET", f"/users/{i}".encode())).startswith(b"HTTP/1.1 200")
            ok += 1
        stats = wasm_stats(env, "uwsgi_tcp")
        print(f"uwsgi-tcp FAIL_RELOAD: {resets} connections reset inside the reload backoff; {stats}")
        assert resets == stats["wasm.uwsgi_tcp.vm_reload_backoff"], (resets, stats)
        text = wait_for(lambda: (t := env.prometheus()) and value(t, REQ) >= ok and t, 10, what=f"{ok} counted")
        assert value(text, REQ) == ok
        assert len(vm_failures(env.log())) == 1, vm_failures(env.log())
        assert stats["wasm.uwsgi_tcp.vm_reload_success"] == 1, stats
    finally:
        for p in reversed(procs):
            p.stop()
