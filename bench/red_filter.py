"""Envoy CPU per request with no filter, a no-op Wasm filter and red-filter
(as HTTP filter and as access logger), on a direct_response route and on an
upstream (uWSGI) route. One run prints every figure and the ratios.

CPU = utime+stime of the Envoy process (--concurrency 1) over a bounded wrk
run, divided by the requests wrk completed. Envoy is pinned to core 0, wrk
(and uWSGI) to core 1. Medians of REPS runs, variants interleaved.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "host-tests"))
from harness import DIST, Hosts, free_port, red_filter_config  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
CONNS = 8
VARIANTS = os.environ.get("BENCH_VARIANTS", "none,noop,http,access_log").split(",")
PLUGIN_CONFIG = json.loads(os.environ.get("BENCH_PLUGIN_CONFIG", '{"route_patterns": ["/users/{id}"]}'))
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def wrk(url, seconds):
    cores = "1" if os.cpu_count() and os.cpu_count() > 1 else "0"
    out = subprocess.run(["taskset", "-c", cores, shutil.which("wrk"), "-t1", f"-c{CONNS}", f"-d{seconds}s", url],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"(\d+) requests in", out)
    if not m:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"  note: {url}: {out.strip().splitlines()[-3:]}", file=sys.stderr)
    return int(m.group(1))


def measure(env, path):
    url = f"http://127.0.0.1:{env.listen_port}{path}"
    wrk(url, 1)  # warm-up: VM start, metric definitions, connection pools
    before = cpu_seconds(env.pid)
    n = wrk(url, SECONDS)
    after = cpu_seconds(env.pid)
    return (after - before) / n * 1e6, n


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk (./build.sh bench installs it)")
    envs = {}
    with Hosts(tempfile.mkdtemp(prefix="bench-red-")) as hosts:
        # http11 keep-alive upstream, as in the published figures (these routes send Content-Length).
        up = hosts.uwsgi("bench-uwsgi", protocol="http11", processes=2, threads=16,
                         wrapper=("taskset", "-c", "1")).port
        for kind in VARIANTS:
            listen, admin = free_port(), free_port()
            envs[kind] = hosts.envoy(f"bench-envoy-{kind}", red_filter_config(listen, admin, up, PLUGIN_CONFIG,
                                                                              filter_kind=kind),
                                     admin, listen_port=listen)
            os.sched_setaffinity(envs[kind].pid, {0})
        results = {(k, r): [] for k in VARIANTS for r in ("direct", "upstream")}
        for rep in range(REPS):
            for route, path in (("direct", "/healthz"), ("upstream", "/users/42")):
                for kind in VARIANTS:
                    us, n = measure(envs[kind], path)
                    results[(kind, route)].append(us)
                    print(f"  rep {rep + 1} {route:8} {kind:10} {us:7.1f} us/req ({n} req)", file=sys.stderr)
        med = {k: statistics.median(v) for k, v in results.items()}
        print("\nEnvoy CPU per request (µs, median of %d runs of %ds, wrk -c%d):" % (REPS, SECONDS, CONNS))
        print(f"{'variant':<22}{'direct_response':>16}{'upstream':>12}")
        names = {"none": "no filter", "noop": "no-op Wasm filter", "http": "red-filter (HTTP)",
                 "access_log": "red-filter (access log)"}
        for kind in VARIANTS:
            print(f"{names[kind]:<22}{med[(kind, 'direct')]:>16.1f}{med[(kind, 'upstream')]:>12.1f}")
        red_over = med[("http", "direct")] - med[("none", "direct")]
        noop_over = med[("noop", "direct")] - med[("none", "direct")]
        al_over = med[("access_log", "direct")] - med[("none", "direct")]
        print(f"ratios: red/no-filter direct {med[('http', 'direct')] / med[('none', 'direct')]:.2f}x, "
              f"red/no-op direct {med[('http', 'direct')] / med[('noop', 'direct')]:.2f}x, "
              f"red/no-filter upstream {med[('http', 'upstream')] / med[('none', 'upstream')]:.2f}x")
        print(f"BENCH red_filter_overhead_us {red_over:.1f} us")
        print(f"BENCH noop_filter_overhead_us {noop_over:.1f} us")
        print(f"BENCH red_access_log_overhead_us {al_over:.1f} us")
        print(f"BENCH red_filter_upstream_ratio {med[('http', 'upstream')] / med[('none', 'upstream')]:.2f} x")
        print(f"BENCH red_filter_wasm_bytes {(DIST / 'red-filter.wasm').stat().st_size} bytes")


if __name__ == "__main__":
    main()
