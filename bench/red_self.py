"""red-filter `self` exposition: what it costs next to `host` mode, and how
long a scrape of 1 000 series takes.

1. Envoy CPU per request (utime+stime of the Envoy process, --concurrency 1,
   pinned to core 0; wrk on core 1) over bounded wrk runs on the
   direct_response route, red-filter in `host` and in `self` mode (default
   1 s tick), variants interleaved, medians of REPS runs.
2. Scrape latency: an Envoy in `self` mode holding 1 000 series (1 000
   distinct paths, ids not collapsed, cap 1 000), then SCRAPES sequential
   GETs of the plugin's /metrics over one keep-alive connection; median
   wall time per scrape, client included.

Prints `BENCH self_mode_overhead_us <self - host> us`,
`BENCH self_scrape_1k_series_ms <v> ms` and the figures behind them.
"""
import http.client
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
from conftest import Envoy, free_port  # noqa: E402
from envoy_red import render  # noqa: E402
from red_filter import cpu_seconds, measure  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "3"))
SCRAPES = int(os.environ.get("BENCH_SCRAPES", "50"))
SERIES = 1000
CONFIG = {"route_patterns": ["/users/{id}"]}


def start(logdir, name, config):
    listen, admin = free_port(), free_port()
    # The upstream port is closed: only the direct_response route and the
    # 503s of the series fill-up are used.
    env = Envoy(name, render(listen, admin, free_port(), config), logdir, admin, concurrency=1)
    env.wait_ready()
    env.listen_port = listen
    os.sched_setaffinity(env.pid, {0})
    return env


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return r.status, body


def cpu_per_request(logdir):
    envs = {mode: start(logdir, f"bench-self-{mode}", dict(CONFIG, exposition=mode)) for mode in ("host", "self")}
    try:
        res = {m: [] for m in envs}
        for rep in range(REPS):
            for mode, env in envs.items():
                us, n = measure(env, "/healthz")
                res[mode].append(us)
                print(f"  rep {rep + 1} {mode:5} {us:6.1f} us/req ({n} req)", file=sys.stderr)
        return {m: statistics.median(v) for m, v in res.items()}
    finally:
        for env in envs.values():
            env.stop()


def scrape_latency(logdir):
    env = start(logdir, "bench-self-scrape", {"exposition": "self", "max_series": SERIES, "use_route_name": False,
                                              "collapse_ids": False, "flush_interval_ms": 1000})
    try:
        conn = http.client.HTTPConnection("127.0.0.1", env.listen_port, timeout=30)
        for i in range(SERIES):
            get(conn, f"/bench/route{i}")
        status, body = get(conn, "/metrics")
        series = body.count(b"\nuwsgi_red_requests_total{")
        assert status == 200 and series == SERIES, (status, series)
        times = []
        cpu0 = cpu_seconds(env.pid)
        for _ in range(SCRAPES):
            t0 = time.perf_counter()
            status, body = get(conn, "/metrics")
            times.append(time.perf_counter() - t0)
            assert status == 200
        # Envoy's own CPU (one worker, pinned): what a scrape costs the proxy,
        # without the client's reading time.
        cpu_ms = (cpu_seconds(env.pid) - cpu0) / SCRAPES * 1e3
        conn.close()
        return statistics.median(times) * 1e3, len(body), cpu_ms
    finally:
        env.stop()


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk (./build.sh bench installs it)")
    logdir = Path(tempfile.mkdtemp(prefix="bench-red-self-"))
    cpu = cpu_per_request(logdir)
    ms, size, cpu_ms = scrape_latency(logdir)
    print(f"\nEnvoy CPU per request, direct_response route (µs, median of {REPS}): "
          f"host {cpu['host']:.1f}, self {cpu['self']:.1f}, self/host {cpu['self'] / cpu['host']:.2f}x")
    print(f"scrape of {SERIES} series: {ms:.2f} ms median of {SCRAPES}, {size} bytes, Envoy CPU {cpu_ms:.2f} ms")
    print(f"BENCH self_mode_overhead_us {cpu['self'] - cpu['host']:.1f} us")
    print(f"BENCH self_mode_cpu_ratio {cpu['self'] / cpu['host']:.2f} x")
    print(f"BENCH self_scrape_1k_series_ms {ms:.2f} ms")
    print(f"BENCH self_scrape_1k_series_cpu_ms {cpu_ms:.2f} ms")


if __name__ == "__main__":
    main()
