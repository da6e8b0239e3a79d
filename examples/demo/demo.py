"""uwsgi-red demo: real uWSGI behind a real Envoy with red-filter.

Starts uWSGI (2 workers) and Envoy 1.40 with dist/red-filter.wasm on
loopback, drives a bounded mixed load, prints a RED table per
route/method/status from Envoy's /stats/prometheus, then stops everything
(at the end, or on Ctrl-C). Run it with ./build.sh demo.
"""
import argparse
import http.client
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host-tests"))
from conftest import APPS, Envoy, Proc, free_port, parse_prometheus, uwsgi_bin, wait_port  # noqa: E402
from envoy_red import render  # noqa: E402

PLUGIN_CONFIG = {"route_patterns": ["/users/{id}", "/users/{id}/orders/{order_id}"], "max_series": 1000}


def workload(rnd):
    """One request of a realistic mix: mostly reads, some writes, misses,
    failures and slow calls."""
    r = rnd.random()
    if r < 0.45:
        return "GET", f"/users/{rnd.randint(1, 5000)}"
    if r < 0.60:
        return "GET", f"/users/{rnd.randint(1, 500)}/orders/{uuid.uuid4()}"
    if r < 0.70:
        return "POST", "/items"
    if r < 0.78:
        return "GET", "/notfound"
    if r < 0.83:
        return "GET", "/error"
    if r < 0.86:
        return "GET", "/slow?s=0.12"
    if r < 0.88:
        return "PURGE", "/cache"
    return "GET", "/healthz"


def drive(port, count, seed, sent):
    rnd = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    for _ in range(count):
        method, path = workload(rnd)
        try:
            conn.request(method, path, body=b"x" if method == "POST" else None)
            resp = conn.getresponse()
            resp.read()
            sent[resp.status] += 1
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            sent["failed"] += 1
    conn.close()


def quantile_bound(q, buckets):
    """Upper bound of the bucket holding quantile q, from cumulative
    (le_seconds, count) pairs. Interpolating inside a bucket (as PromQL's
    histogram_quantile does) would invent precision: with the 5 ms first
    bucket every fast request would read as 2.5 ms."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    for le, c in buckets:
        if c >= q * total:
            return le
    return float("inf")


def red_table(text):
    rows = defaultdict(lambda: {"req": 0, "err": 0, "sum": 0.0, "buckets": defaultdict(float)})
    for name, labels, v in parse_prometheus(text):
        if not name.startswith("uwsgi_red_"):
            continue
        key = (labels.get("route", ""), labels.get("method", ""), labels.get("code", ""))
        if name == "uwsgi_red_requests_total":
            rows[key]["req"] += v
        elif name == "uwsgi_red_errors_total":
            rows[key]["err"] += v
        elif name == "uwsgi_red_request_duration_microseconds_sum":
            rows[key]["sum"] += v / 1e6
        elif name == "uwsgi_red_request_duration_microseconds_bucket":
            rows[key]["buckets"][float(labels["le"]) / 1e6] += v
    lines = [f"{'route':<32} {'method':<7} {'code':>4} {'requests':>9} {'errors':>7} {'mean ms':>8} "
             f"{'p50 ≤ms':>8} {'p95 ≤ms':>8}"]
    for (route, method, code), r in sorted(rows.items(), key=lambda kv: -kv[1]["req"]):
        if not r["req"]:
            continue
        b = list(r["buckets"].items())
        lines.append(f"{route[:32]:<32} {method:<7} {code:>4} {int(r['req']):>9} {int(r['err']):>7} "
                     f"{r['sum'] / r['req'] * 1e3:>8.2f} {quantile_bound(0.5, b) * 1e3:>8g} {quantile_bound(0.95, b) * 1e3:>8g}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=2000, help="total requests (bounded)")
    ap.add_argument("--hold", type=float, default=None,
                    help="seconds to keep running after the table (default: until Ctrl-C on a terminal, 0 otherwise)")
    args = ap.parse_args()
    hold = args.hold if args.hold is not None else (600.0 if sys.stdin.isatty() else 0.0)
    logdir = Path(tempfile.mkdtemp(prefix="uwsgi-red-demo-"))
    procs = []
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        up, listen, admin = free_port(), free_port(), free_port()
        print(f"starting uWSGI (2 workers, http11-socket 127.0.0.1:{up}) ...")
        uw = Proc("uwsgi", [uwsgi_bin(), "--master", "--processes", "2", "--threads", "16", "--http11-socket", f"127.0.0.1:{up}",
                            "--wsgi-file", str(APPS / "app.py"), "--die-on-term", "--disable-logging"], logdir)
        procs.append(uw)
        wait_port(up, 20, uw)
        print(f"starting Envoy with dist/red-filter.wasm (listener 127.0.0.1:{listen}, admin 127.0.0.1:{admin}) ...")
        env = Envoy("envoy", render(listen, admin, up, PLUGIN_CONFIG), logdir, admin, concurrency=2)
        procs.append(env)
        env.wait_ready()
        sent = defaultdict(int)
        threads = [threading.Thread(target=drive, args=(listen, args.requests // 4, seed, sent)) for seed in range(4)]
        t0 = time.monotonic()
        print(f"driving {args.requests // 4 * 4} requests over 4 connections ...")
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - t0
        print(f"done in {took:.1f}s; responses by status: {dict(sorted(sent.items(), key=str))}")
        time.sleep(2.2)  # one stats flush (1 s) so histograms are published
        text = env.prometheus()
        print("\nRED at the proxy (from Envoy /stats/prometheus):\n")
        print(red_table(text))
        counted = sum(v for n, _, v in parse_prometheus(text) if n == "uwsgi_red_requests_total")
        print(f"\nrequests sent: {sum(v for k, v in sent.items() if k != 'failed')}, requests counted: {int(counted)}")
        print(f"\nmetrics:  http://127.0.0.1:{admin}/stats/prometheus   (try: curl -s ... | grep uwsgi_red_)")
        print(f"app:      http://127.0.0.1:{listen}/users/42")
        print(f"logs:     {logdir}")
        if hold > 0:
            print(f"\nrunning for up to {hold:.0f}s; Ctrl-C stops everything")
            stop.wait(hold)
    finally:
        for p in reversed(procs):
            p.stop()
        print("stopped uWSGI and Envoy")


if __name__ == "__main__":
    main()
