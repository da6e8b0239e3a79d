"""Why the examples run uWSGI with http-socket + "Connection: close":
measures, for each uWSGI socket setting, how long a response without
Content-Length takes straight from uWSGI (http11-socket holds it until its
4 s socket timeout), and how many requests of a bounded concurrent mix
through Envoy come back 503 (a bare http-socket closes connections Envoy
then reuses). Prints BENCH lines; nothing here is asserted.
"""
import collections
import http.client
import os
import socket
import sys
import tempfile
import threading
import time

from harness import Hosts, free_port, red_filter_config  # noqa: E402

N = int(os.environ.get("BENCH_REQUESTS", "4000"))
CLIENTS = 4
MIX = ["/nocl", "/stream", "/users/1", "/notfound"]
VARIANTS = {"http11": "http11", "http_plain": "http-plain", "http_close": "http"}


def direct_seconds(port, path="/nocl"):
    """One HTTP/1.1 request read until the server closes (or 10 s)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        try:
            while s.recv(65536):
                pass
        except socket.timeout:
            pass
    return time.monotonic() - t0


def through_envoy(port, n):
    got, lock = collections.Counter(), threading.Lock()

    def client(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        for i in range(k):
            try:
                c.request("GET", MIX[i % len(MIX)])
                r = c.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                status = "error"
            with lock:
                got[status] += 1
        c.close()
    threads = [threading.Thread(target=client, args=(n // CLIENTS,)) for _ in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return got, time.monotonic() - t0


def main():
    with Hosts(tempfile.mkdtemp(prefix="bench-uwsgi-sockets-")) as hosts:
        for name, protocol in VARIANTS.items():
            app = hosts.uwsgi(f"uwsgi-{name}", protocol=protocol, processes=2)
            print(f"BENCH uwsgi_{name}_nocl_response_s {direct_seconds(app.port):.3f} s")
            if protocol == "http11":
                hosts.stop(app)  # through Envoy every /nocl would wait 4 s: nothing more to learn
                continue
            listen, admin = free_port(), free_port()
            env = hosts.envoy(f"envoy-{name}", red_filter_config(listen, admin, app.port), admin, concurrency=2)
            got, took = through_envoy(listen, N)
            sent = sum(got.values())
            print(f"  {name}: {dict(got)} in {took:.1f}s", file=sys.stderr)
            print(f"BENCH uwsgi_{name}_envoy_503_per_10k {got[503] * 10000 / sent:.1f} requests")
            hosts.stop(env)
            hosts.stop(app)


if __name__ == "__main__":
    main()
