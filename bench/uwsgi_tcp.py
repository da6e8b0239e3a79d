"""Envoy CPU per uwsgi connection with and without the uwsgi-tcp network
filter (tcp_proxy to a real uWSGI --socket in both cases).

The client sends the captured nginx packet (pkt_get_root.bin) on a fresh
connection per request, as nginx does, and reads the reply to EOF; N
connections per run, sequential, wrk-free. CPU = utime+stime of the Envoy
process (--concurrency 1) from /proc/<pid>/stat before/after the run (also
the nanosecond per-thread schedstat sum, for resolution), divided by N.
Envoy is pinned to core 0, client and uWSGI to core 1. Variants are
interleaved; medians of REPS runs.
"""
import os
import socket
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
from harness import DIST, OTEL_BUCKETS_US, Hosts, free_port, tcp_proxy_config, wait_port  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "3"))
N = int(os.environ.get("BENCH_CONNECTIONS", "3000"))
CLK = os.sysconf("SC_CLK_TCK")
PACKET = (ROOT / "core" / "tests" / "vectors" / "pkt_get_root.bin").read_bytes()
MULTI = (os.cpu_count() or 1) > 1


def cpu_stat(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def cpu_sched(pid):
    total = 0
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((t / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def bench_yaml(admin, port, upstream, with_filter):
    return tcp_proxy_config(admin, [("uwsgi_in", port, "uwsgi", with_filter)], [("uwsgi", upstream)],
                      DIST / "uwsgi-tcp.wasm", '{"route_patterns": ["/items/{id}"]}', OTEL_BUCKETS_US)


def one(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(PACKET)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    if not got.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected reply: {got[:100]!r}")


def run(env, n):
    for _ in range(100):  # warm-up: VM, metric definitions, upstream pool
        one(env.port)
    s0, c0 = cpu_stat(env.pid), cpu_sched(env.pid)
    deadline = time.monotonic() + 120
    done = 0
    while done < n and time.monotonic() < deadline:
        one(env.port)
        done += 1
    s1, c1 = cpu_stat(env.pid), cpu_sched(env.pid)
    return (s1 - s0) / done * 1e6, (c1 - c0) / done * 1e6


def main():
    if not (DIST / "uwsgi-tcp.wasm").exists():
        sys.exit("dist/uwsgi-tcp.wasm missing: run ./build.sh build")
    if MULTI:
        os.sched_setaffinity(0, {1})
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"uwsgi-tcp-bench-{os.getpid()}"
    envoys = {}
    with Hosts(tmp) as hosts:
        up = hosts.uwsgi("uwsgi", protocol="uwsgi", processes=2, timeout=30,
                         wrapper=("taskset", "-c", "1") if MULTI else ()).port
        for name, with_filter in (("without", False), ("with", True)):
            admin, port = free_port(), free_port()
            e = envoys[name] = hosts.envoy(f"envoy_{name}", bench_yaml(admin, port, up, with_filter), admin,
                                           port=port)
            if MULTI:
                os.system(f"taskset -a -p -c 0 {e.pid} >/dev/null")
            wait_port(port, 10, e)
        results = {"with": [], "without": []}
        for _ in range(REPS):
            for name in ("without", "with"):
                results[name].append(run(envoys[name], N))
        med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
               for k, v in results.items()}
        for k in ("without", "with"):
            print(f"  {k:8s} stat µs/conn: {[round(r[0], 1) for r in results[k]]}  "
                  f"schedstat µs/conn: {[round(r[1], 1) for r in results[k]]}", file=sys.stderr)
        w, wo = med["with"], med["without"]
        print(f"BENCH uwsgi_tcp_cpu_per_conn_without_us {wo[0]:.1f} us")
        print(f"BENCH uwsgi_tcp_cpu_per_conn_with_us {w[0]:.1f} us")
        print(f"BENCH uwsgi_tcp_overhead_us {w[0] - wo[0]:.1f} us")
        print(f"BENCH uwsgi_tcp_overhead_schedstat_us {w[1] - wo[1]:.1f} us")
        print(f"BENCH uwsgi_tcp_cpu_ratio {w[0] / wo[0]:.2f} x")


if __name__ == "__main__":
    main()
