"""Apps that answer without Content-Length (Django without CommonMiddleware,
streaming responses) through the example uWSGI configurations.

With --http11-socket (uWSGI 2.0.30) such a response gets neither chunked
encoding nor a close and ends only at uWSGI's 4 s socket timeout; a bare
--http-socket closes without saying so and Envoy answers sporadic 503s.
The examples use http-socket + "Connection: close" (reasons and numbers in
examples/envoy-red/uwsgi.ini). These tests hold them to it: uWSGI closes
each such response itself, Envoy re-frames it as chunked on a kept-alive
client connection, a bounded concurrent mix gets no 503, and red-filter
(and uwsgi-tcp behind nginx) count every request exactly.

Client timeouts are 3 s, below uWSGI's 4 s socket timeout: a stalled
response shows up as a timeout, not as a slow pass.
"""
import http.client
import socket
import threading
from collections import Counter

import pytest

from harness import (EXAMPLES, free_port, get_text, red_filter_config, render, uwsgi_tcp_example_config, value,
                     wait_for, wasm)

STALL_GUARD = 3.0
BODIES = {"/nocl": b"no content-length\n", "/stream": b"".join(b"chunk %d\n" % i for i in range(5))}
INIS = {  # example -> (socket address in its uwsgi.ini, stats address or None)
    "envoy-red": ("127.0.0.1:8000", None),
    "envoy-uwsgi-stats": ("127.0.0.1:9090", "127.0.0.1:9191"),
}


def example_uwsgi(hosts, example):
    addr, stats = INIS[example]
    port = free_port()
    subs = [(addr, f"127.0.0.1:{port}")]
    stats_port = None
    if stats:
        stats_port = free_port()
        subs.append((stats, f"127.0.0.1:{stats_port}"))
    return hosts.uwsgi_ini(f"stall-{example}", EXAMPLES / example / "uwsgi.ini", subs, port=port,
                           stats_port=stats_port)


def raw_get(port, path):
    """(head, body) of one HTTP/1.1 request, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=STALL_GUARD) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                pytest.fail(f"GET {path}: connection still open after {STALL_GUARD}s (the http11 stall); "
                            f"got {data[:200]!r}")
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode().lower(), body


def envoy_counter(env, name):
    """One Envoy counter (0 when Envoy has not created it)."""
    text = get_text(f"http://127.0.0.1:{env.admin_port}/stats?filter=^{name}$").strip()
    return int(text.split(": ")[1]) if text else 0


@pytest.mark.parametrize("example", sorted(INIS))
def test_uwsgi_closes_responses_without_content_length(hosts, example):
    app = example_uwsgi(hosts, example)
    for _ in range(3):
        for path, want in BODIES.items():
            head, body = raw_get(app.port, path)
            assert head.startswith("http/1.1 200")
            assert "content-length" not in head and "transfer-encoding" not in head
            assert "\r\nconnection: close" in head
            assert body == want


@pytest.fixture(scope="module")
def red_stack(hosts):
    wasm("red-filter")
    app = example_uwsgi(hosts, "envoy-red")
    listen, admin = free_port(), free_port()
    env = hosts.envoy("stall-envoy", red_filter_config(listen, admin, app.port), admin, concurrency=2,
                      listen_port=listen)
    return env


def test_envoy_chunks_them_on_a_kept_alive_connection_and_counts_exactly(red_stack):
    env = red_stack
    before = env.prometheus()
    conn = http.client.HTTPConnection("127.0.0.1", env.listen_port, timeout=STALL_GUARD)
    sent = Counter()
    first_sock = None
    for i in range(20):
        path = "/nocl" if i % 2 else "/stream"
        conn.request("GET", path)
        r = conn.getresponse()
        assert r.status == 200
        assert r.getheader("Transfer-Encoding") == "chunked" and r.getheader("Content-Length") is None
        assert r.read() == BODIES[path]
        assert not r.will_close
        first_sock = first_sock or conn.sock
        assert conn.sock is first_sock, "Envoy closed the client connection"
        sent[path] += 1
    conn.close()

    def counted():
        text = env.prometheus()
        got = {p: value(text, "uwsgi_red_requests_total", route=p, code="200") -
               value(before, "uwsgi_red_requests_total", route=p, code="200") for p in BODIES}
        return got if got == dict(sent) else None
    assert wait_for(counted, 10, what="red-filter counts") == {"/nocl": 10, "/stream": 10}


def test_concurrent_mix_gets_no_503(red_stack):
    """The sporadic 503s of a bare http-socket come from Envoy reusing a
    connection uWSGI is closing; "Connection: close" prevents the reuse."""
    env = red_stack
    mix = [("/nocl", 200), ("/stream", 200), ("/users/1", 200), ("/notfound", 404)]
    before = env.prometheus()
    got, lock = Counter(), threading.Lock()

    def client(n):
        c = http.client.HTTPConnection("127.0.0.1", env.listen_port, timeout=STALL_GUARD)
        for i in range(n):
            path, _ = mix[i % len(mix)]
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            with lock:
                got[(path, r.status)] += 1
        c.close()
    threads = [threading.Thread(target=client, args=(200,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert got == Counter({(p, s): 200 for p, s in mix})
    assert envoy_counter(env, "cluster.uwsgi_app.upstream_rq_503") == 0
    assert envoy_counter(env, "cluster.uwsgi_app.upstream_rq_200") >= 600

    routes = {"/nocl": "/nocl", "/stream": "/stream", "/users/1": "/users/{id}", "/notfound": "/notfound"}

    def counted():
        text = env.prometheus()
        got = {(p, s): value(text, "uwsgi_red_requests_total", route=routes[p], code=str(s)) -
               value(before, "uwsgi_red_requests_total", route=routes[p], code=str(s)) for p, s in mix}
        return got if all(v == 200 for v in got.values()) else None
    wait_for(counted, 10, what="red-filter counts of the mix")


def test_nginx_uwsgi_tcp_example_ends_them_and_counts_exactly(hosts):
    """nginx -> Envoy (uwsgi-tcp) -> uWSGI --socket: the uwsgi protocol ends
    each response with a close, so nothing stalls there either."""
    wasm("uwsgi-tcp")
    ex = EXAMPLES / "nginx-envoy-uwsgi"
    up = free_port()
    hosts.uwsgi_ini("stall-uwsgi-socket", ex / "uwsgi.ini", [("127.0.0.1:3031", f"127.0.0.1:{up}")], port=up)
    admin, envoy_port, nginx_port = free_port(), free_port(), free_port()
    env = hosts.envoy("stall-envoy-tcp", uwsgi_tcp_example_config(admin, envoy_port, up), admin)
    conf = render(ex / "nginx.conf", [("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{nginx_port};"),
                                      ("uwsgi_pass 127.0.0.1:9090;", f"uwsgi_pass 127.0.0.1:{envoy_port};")])
    hosts.nginx("stall-nginx", conf, nginx_port)
    conn = http.client.HTTPConnection("127.0.0.1", nginx_port, timeout=STALL_GUARD)
    for i in range(10):
        path = "/nocl" if i % 2 else "/stream"
        conn.request("GET", path)
        r = conn.getresponse()
        assert r.status == 200 and r.read() == BODIES[path]
    conn.close()

    def counted():
        text = env.prometheus()
        return all(value(text, "uwsgi_red_requests_total", route=p, code="200") == 5 for p in BODIES)
    wait_for(counted, 10, what="uwsgi-tcp counts")
