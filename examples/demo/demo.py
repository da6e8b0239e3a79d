"""uwsgi-red demo: the whole product on loopback, in under two minutes.

uWSGI (4 workers, stats server; examples/envoy-uwsgi-stats/uwsgi.ini) behind
Envoy 1.40 running red-filter (RED per route at the proxy) and the
uwsgi-stats singleton (uWSGI's own view: workers, listen queue) in one
process (examples/demo/envoy.yaml); the same uWSGI also behind nginx ->
Envoy with uwsgi-tcp (examples/nginx-envoy-uwsgi). Bounded mixed traffic
with a burst of slow requests every few seconds (more than the workers, so
requests queue for one), a live view redrawn once a second (RED per route,
queue time and utilisation), then where to look next. Ctrl-C stops
everything at any point. Run it with ./build.sh demo.
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
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
from harness import (EXAMPLES, Hosts, demo_config, free_port, parse_prometheus, render,  # noqa: E402
                     uwsgi_tcp_example_config, wasm)
from view import RED_REQ, WINDOW_S, proxy_totals, queue_from_log, render_view, uwsgi_state  # noqa: E402

TOTAL_LIMIT_S = 120.0  # the whole demo, start to stop
CLIENTS = 6  # more than the 4 workers, so the listen queue can show something
VIA_NGINX = 2  # of them go nginx -> Envoy (uwsgi-tcp) -> uWSGI's uwsgi socket
# After 1 s and then every BURST_EVERY_S, BURST concurrent slow requests: twice the 4 workers,
# so half of them and the clients' next requests wait in uWSGI's listen
# queue for BURST_SLOW_S. That wait is the queue time the view shows.
BURST, BURST_EVERY_S, BURST_SLOW_S = 8, 4.0, 0.4
PLUGIN_CONFIG = {"route_patterns": ["/users/{id}", "/users/{id}/orders/{order_id}"], "max_series": 1000}
# red-filter stamps each request with X-Request-Start: t=<µs> ("keep": an
# outer proxy's stamp would win); nginx's example stamps t=${msec}. uWSGI
# logs its own start beside it in the documented format, so the demo reads
# each request's queue time from uWSGI's request log.
RED_CONFIG_LINE = ('\'{"route_patterns": ["/users/{id}", "/users/{id}/orders/{order_id}"], "max_series": 1000}\'',
                   '\'{"route_patterns": ["/users/{id}", "/users/{id}/orders/{order_id}"], "max_series": 1000, '
                   '"request_start": "keep"}\'')
LOG_FORMAT = ("[pid: %(pid)|app: -|req: -/-] %(addr) (%(user)) {%(vars) vars in %(pktsize) bytes} [%(ctime)] "
              "%(method) %(uri) => generated %(rsize) bytes in %(micros) micros (%(proto) %(status)) %(headers) "
              "headers in %(hsize) bytes (%(switches) switches on core %(core)) tmicros=%(tmicros) "
              "x_request_start=%(var.HTTP_X_REQUEST_START)")


class RequestLog:
    """uWSGI's request log, read incrementally: the queue_from_log entries
    of the last WINDOW_S seconds."""

    def __init__(self, path):
        self.path, self.offset, self.partial, self.entries = path, 0, b"", []
        self.all = []  # every entry, for the whole run's figure

    def read(self, now_us):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.entries
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        new = [e for e in map(queue_from_log, lines) if e]
        self.all += new
        self.entries += new
        self.entries = [e for e in self.entries if now_us - e[0] <= (WINDOW_S + 1) * 1e6]
        return self.entries


def workload(rnd):
    """One request of a realistic mix: mostly reads, some writes, misses,
    failures, slow calls, and responses without Content-Length."""
    r = rnd.random()
    if r < 0.40:
        return "GET", f"/users/{rnd.randint(1, 5000)}"
    if r < 0.52:
        return "GET", f"/users/{rnd.randint(1, 500)}/orders/{uuid.uuid4()}"
    if r < 0.60:
        return "POST", "/items"
    if r < 0.67:
        return "GET", "/notfound"
    if r < 0.72:
        return "GET", "/error"
    if r < 0.76:
        return "GET", "/slow?s=0.3"
    if r < 0.82:
        return "GET", "/stream"
    if r < 0.86:
        return "GET", "/nocl"
    if r < 0.88:
        return "PURGE", "/cache"
    return "GET", "/healthz"


class Traffic:
    """CLIENTS keep-alive clients (spread over `ports`) until `requests`
    are sent, `seconds` pass, or stop is set."""

    def __init__(self, ports, requests, seconds, stop):
        self.ports, self.stop = ports, stop
        self.deadline = time.monotonic() + seconds
        self.left = requests
        self.lock = threading.Lock()
        self.status = Counter()
        self.threads = [threading.Thread(target=self.client, args=(seed, ports[seed % len(ports)]), daemon=True)
                        for seed in range(CLIENTS)]
        self.threads.append(threading.Thread(target=self.bursts, args=(ports[0],), daemon=True))

    def take(self):
        with self.lock:
            if self.left <= 0 or self.stop.is_set() or time.monotonic() > self.deadline:
                return False
            self.left -= 1
            return True

    def client(self, seed, port):
        rnd = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        while self.take():
            method, path = workload(rnd)
            try:
                conn.request(method, path, body=b"x" if method == "POST" else None)
                resp = conn.getresponse()
                resp.read()
                key = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                key = "failed"
            with self.lock:
                self.status[key] += 1
        conn.close()

    def one(self, port, method, path):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            resp.read()
            key = resp.status
        except (OSError, http.client.HTTPException):
            key = "failed"
        finally:
            conn.close()
        with self.lock:
            self.status[key] += 1

    def bursts(self, port):
        """BURST slow requests at once, every BURST_EVERY_S, each on its own
        connection (counted within `requests` like the rest)."""
        delay = 1.0  # the first one early: a short run sees it too
        while not self.stop.wait(delay):
            delay = BURST_EVERY_S
            burst = [threading.Thread(target=self.one, args=(port, "GET", f"/slow?s={BURST_SLOW_S}"), daemon=True)
                     for _ in range(BURST) if self.take()]
            if not burst:
                return
            for t in burst:
                t.start()
            for t in burst:
                t.join()

    def start(self):
        for t in self.threads:
            t.start()

    def running(self):
        return any(t.is_alive() for t in self.threads)

    def answered(self):
        with self.lock:
            return sum(v for k, v in self.status.items() if k != "failed")


def draw(lines, live):
    if live:
        sys.stdout.write("\x1b[H\x1b[2J" + "\n".join(lines) + "\n")
    else:
        print("\n".join(lines), end="\n\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=25.0, help="traffic duration (at most 60)")
    ap.add_argument("--requests", type=int, default=6000, help="request cap (bounded load)")
    ap.add_argument("--hold", type=float, default=None,
                    help="seconds to keep the stack up afterwards (default: on a terminal, until two minutes "
                         "from the start; otherwise 0)")
    ap.add_argument("--plain", action="store_true", help="print each view instead of redrawing the screen")
    args = ap.parse_args()
    t_start = time.monotonic()
    seconds = max(1.0, min(args.seconds, 60.0))
    live = sys.stdout.isatty() and not args.plain
    hold = args.hold if args.hold is not None else (TOTAL_LIMIT_S if sys.stdin.isatty() else 0.0)
    stop = threading.Event()
    # Ctrl-C, kill, or the terminal closing: stop cleanly (the hosts run in
    # their own sessions and would outlive an uncaught signal).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    logdir = Path(tempfile.mkdtemp(prefix="uwsgi-red-demo-"))
    with Hosts(logdir) as hosts:
        wasm("red-filter"), wasm("uwsgi-stats"), wasm("uwsgi-tcp")
        app_port, stats_port, sock_port = free_port(), free_port(), free_port()
        print(f"starting uWSGI: 4 workers, http-socket 127.0.0.1:{app_port}, stats server 127.0.0.1:{stats_port}, "
              f"uwsgi socket 127.0.0.1:{sock_port}")
        reqlog = RequestLog(logdir / "uwsgi-requests.log")
        hosts.uwsgi_ini("uwsgi", EXAMPLES / "envoy-uwsgi-stats" / "uwsgi.ini",
                        [("127.0.0.1:9090", f"127.0.0.1:{app_port}"), ("127.0.0.1:9191", f"127.0.0.1:{stats_port}")],
                        port=app_port, stats_port=stats_port,
                        extra=("--socket", f"127.0.0.1:{sock_port}", "--log-format", LOG_FORMAT,
                               "--req-logger", f"file:{reqlog.path}"))
        listen, admin = free_port(), free_port()
        print(f"starting Envoy with red-filter + uwsgi-stats: listener 127.0.0.1:{listen}, admin 127.0.0.1:{admin}")
        env = hosts.envoy("envoy", render(demo_config(listen, admin, app_port, stats_port), [RED_CONFIG_LINE]), admin,
                          concurrency=2)
        tcp_listen, tcp_admin, nginx_port = free_port(), free_port(), free_port()
        print(f"starting nginx 127.0.0.1:{nginx_port} -> Envoy with uwsgi-tcp (admin 127.0.0.1:{tcp_admin})")
        envs = [env, hosts.envoy("envoy-uwsgi-tcp", uwsgi_tcp_example_config(tcp_admin, tcp_listen, sock_port,
                                                                             plugin_config=PLUGIN_CONFIG), tcp_admin)]
        ex = EXAMPLES / "nginx-envoy-uwsgi"
        hosts.nginx("nginx", render(ex / "nginx.conf", [("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{nginx_port};"),
                                                        ("uwsgi_pass 127.0.0.1:9090;",
                                                         f"uwsgi_pass 127.0.0.1:{tcp_listen};")]), nginx_port)
        ports = [listen] * (CLIENTS - VIA_NGINX) + [nginx_port] * VIA_NGINX
        traffic = Traffic(ports, args.requests, seconds, stop)
        traffic.start()
        history = []
        header = (f"uwsgi-red demo: {args.requests} requests at most, {seconds:g}s of traffic, {CLIENTS} clients "
                  f"and a burst of {BURST} x {BURST_SLOW_S:g}s every {BURST_EVERY_S:g}s; Ctrl-C stops")
        while not stop.is_set():
            busy = traffic.running()
            stop.wait(1.0)
            now = time.monotonic()
            samples = [s for e in envs for s in parse_prometheus(e.prometheus())]
            now_us = time.time_ns() // 1000
            lines, history = render_view(samples, history, now, reqlog.read(now_us), now_us)
            status = dict(sorted(traffic.status.items(), key=str))
            draw([header, f"t={now - t_start:4.0f}s  responses by status: {status}", "", *lines], live)
            if not busy:
                break
        if stop.is_set():
            print("\nCtrl-C: stopping uWSGI, Envoy and nginx", flush=True)
        else:
            summary(envs, traffic, listen, stats_port, logdir, reqlog)
            left = min(hold, TOTAL_LIMIT_S - (time.monotonic() - t_start)) if hold > 0 else 0.0
            if left > 0:
                print(f"\nkeeping everything up for {left:.0f}s more; Ctrl-C stops it now", flush=True)
                stop.wait(left)
    print("stopped uWSGI, Envoy and nginx")


def summary(envs, traffic, listen, stats_port, logdir, reqlog):
    """Exact count check, the queue time of the whole run by both ways, and
    where to look next."""
    time.sleep(1.2)  # one stats flush so the histograms hold the last requests
    counted = [int(sum(v for n, _, v in parse_prometheus(e.prometheus()) if n == RED_REQ)) for e in envs]
    print(f"\nanswered {traffic.answered()} requests ({traffic.status['failed']} failed), "
          f"counted {sum(counted)} (red-filter {counted[0]}, uwsgi-tcp {counted[1]})")
    # The whole run: once uwsgi-stats has polled after the last request (its
    # request count reaches what the proxies forwarded), within a few polls.
    deadline = time.monotonic() + 5.0
    while True:
        samples = [s for e in envs for s in parse_prometheus(e.prometheus())]
        proxy_s, proxy_n = proxy_totals(samples)
        workers = uwsgi_state(samples)["workers"].values()
        app_s = sum(w.get("running", 0.0) for w in workers)
        app_n = sum(w.get("requests", 0.0) for w in workers)
        if app_n >= proxy_n or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    reqlog.read(time.time_ns() // 1000)
    logged = [q for _, q, _ in reqlog.all if q is not None]
    if proxy_n and app_n and logged:
        print(f"queue over the whole run: proxy mean {1e3 * proxy_s / proxy_n:.2f} ms - app mean "
              f"{1e3 * app_s / app_n:.2f} ms = {1e3 * (proxy_s / proxy_n - app_s / app_n):.2f} ms "
              f"({int(proxy_n)} requests at the proxies, {int(app_n)} in uWSGI); from uWSGI's log "
              f"{1e3 * sum(logged) / len(logged):.2f} ms ({len(logged)} stamped requests)")
    admin, tcp_admin = (e.admin_port for e in envs)
    print(f"""
Where to look next (while this runs):
  Envoy metrics (RED + uWSGI):  curl -s http://127.0.0.1:{admin}/stats/prometheus | grep -E '^uwsgi_'
  uwsgi protocol (uwsgi-tcp):   curl -s http://127.0.0.1:{tcp_admin}/stats/prometheus | grep -E '^uwsgi_red'
  uWSGI stats viewer:           ./build.sh viewer, then open
                                http://127.0.0.1:8089/?target=http://127.0.0.1:{stats_port}
  Prometheus:                   examples/prometheus/prometheus.yml scrapes the example Envoys' admin
                                ports 9901 and 9911; for this demo, make its `envoy` job's targets
                                ["127.0.0.1:{admin}", "127.0.0.1:{tcp_admin}"] (ports change every run).
                                The dashboards in examples/grafana/ chart e.g.
    sum by (route) (rate(uwsgi_red_requests_total[1m]))
    histogram_quantile(0.95, sum by (le, route) (rate(uwsgi_red_request_duration_microseconds_bucket[5m]))) / 1e6
  Try it:                       curl -s http://127.0.0.1:{listen}/users/42
  Logs:                         {logdir} (uwsgi-requests.log: uWSGI's request log with tmicros= and
                                x_request_start=, the per-request queue time's source)""", flush=True)


if __name__ == "__main__":
    main()
