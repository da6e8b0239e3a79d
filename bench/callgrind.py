"""Instructions per request of a host process under callgrind (bench/red_filter.py,
bench/nginx_red.py, bench/nginx_uwsgi_stats.py).

On a shared 2-core machine CPU time per request swings by ±5 µs between runs;
instruction counts repeat to a few instructions, so they explain a change where
the µs cannot. The host starts under `valgrind --tool=callgrind
--instr-atstart=no`, answers a first request, gets a warm-up (VM start, metric
definitions, interning), and only then is counting switched on through `vgdb`
around a fixed number of keep-alive requests.
"""
import http.client
import re
import subprocess
import time
from pathlib import Path

from harness import ROOT

START_DEADLINE_S = 300
WARMUP = 50
TOTALS = re.compile(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS")


def valgrind_argv(out, separate_threads=False):
    """The valgrind prefix for a host command; its dumps go to `out`/cg.out*."""
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--smc-check=all-non-file"]
    if separate_threads:
        argv.append("--separate-threads=yes")
    return argv + [f"--callgrind-out-file={Path(out) / 'cg.out'}"]


def get(conn, path, headers=None):
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        raise RuntimeError(f"{path}: status {r.status}")


def per_request(name, proc, log, port, path, requests, dumps, headers=None):
    """Instructions per request on `path` of the callgrind-wrapped `proc`
    (stopped here): the largest of the `dumps` files (a glob in the dump
    directory; with separate threads the worker thread runs every request, the
    others only timers). `headers` go with every request."""
    out = Path(log).parent
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                get(conn, path, headers)
                break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{name}: host under valgrind did not answer; see {log}")
            time.sleep(1)
        for _ in range(WARMUP):
            get(conn, path, headers)

        def vgdb(*cmd):
            subprocess.run(["vgdb", f"--pid={proc.pid}", *cmd], check=True, capture_output=True, timeout=120)
        vgdb("instrumentation", "on")
        for _ in range(requests):
            get(conn, path, headers)
        vgdb("instrumentation", "off")
        vgdb("dump")
        conn.close()
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    totals = []
    for f in sorted(out.glob(dumps)):
        text = subprocess.run(["callgrind_annotate", str(f)], capture_output=True, text=True, cwd=ROOT).stdout
        m = TOTALS.search(text)
        if m:
            totals.append(int(m.group(1).replace(",", "")))
    if not totals:
        raise RuntimeError(f"{name}: no callgrind dump in {out}")
    return max(totals) / requests
