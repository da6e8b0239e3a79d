"""CPU per poll of the 1 MB stats document (testdata/fixtures/stats_64x16_load.json)
by uwsgi-stats in nginx (examples/nginx-wasm/nginx-uwsgi-stats.conf, 4 workers,
one target through the example's stats relay) beside Envoy
(examples/envoy-uwsgi-stats, the bootstrap singleton), both polling a fake stats
server every 500 ms. CPU is the hosts' own user+system time (/proc/<pid>/stat:
all nginx workers, the relay included; the Envoy process) over the window
divided by the polls the fake server answered, minus the same figure for the
2-worker idle vector: what the 1 MB costs per poll beyond a minimal poll.
Then the request path: instructions per request (callgrind, one nginx process
with `master_process off`, CG_REQUESTS keep-alive requests to a `return 200`
location) with red-filter alone and with red-filter + uwsgi-stats; the poll
interval is an hour there, so no tick falls in the measured window and the
difference is what uwsgi-stats' HTTP context costs every request (it only
looks at `:path`). BENCH_CALLGRIND=0 skips it, BENCH_ONLY_CALLGRIND=1 runs
only it.
Prints:
  BENCH nginx_uwsgi_stats_poll_cpu_1mb_ms <v> ms
  BENCH envoy_uwsgi_stats_poll_cpu_1mb_ms <v> ms
  BENCH nginx_uwsgi_stats_request_path_instructions <with - without> instructions
"""
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
import shutil  # noqa: E402
import subprocess  # noqa: E402

import callgrind  # noqa: E402  (bench/callgrind.py)
from harness import (ROOT, Sub, free_port, nginx_globals, render, uwsgi_stats_config, value,  # noqa: E402
                     wait_for, wasm)
from nginx_wasm import nginx_wasm_bin  # noqa: E402
from harness.envoy import Envoy  # noqa: E402
from nginx_wasm import NginxWasm  # noqa: E402
from test_nginx_uwsgi_stats import PLUGIN_LINE, RELAY_LOCATIONS, relay_locations  # noqa: E402
from test_uwsgi_stats import HTTP_HEAD, VECTORS, FakeStats  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CLK = os.sysconf("SC_CLK_TCK")
COMMON = {"interval_ms": 500, "timeout_ms": 400}


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK


def window(fake, pids):
    wait_for(lambda: fake.accepted >= 2, 60, what="polls")
    polls, cpu = fake.accepted, cpu_seconds(pids())
    time.sleep(SECONDS)
    return (cpu_seconds(pids()) - cpu) / max(fake.accepted - polls, 1) * 1e3


def nginx_ms(logdir, doc):
    fake = FakeStats(doc)
    port, relay = free_port(), free_port()
    plugin = {"mode": "nginx", "targets": [{"name": "t", "cluster": f"127.0.0.1:{relay}", "path": "/t"}],
              **COMMON}
    conf = render(ROOT / "examples" / "nginx-wasm" / "nginx-uwsgi-stats.conf", [
        ("listen 127.0.0.1:8080 reuseport;", f"listen 127.0.0.1:{port} reuseport;"),
        ("listen 127.0.0.1:9190;", f"listen 127.0.0.1:{relay};"),
        ("pid /tmp/nginx-uwsgi-stats.pid;", f"pid {logdir}/nginx-bench-{port}-prefix/nginx.pid;"),
        # Where NginxWasm looks for the "module loaded" lines.
        ("error_log /tmp/nginx-uwsgi-stats-error.log info;",
         f"error_log {logdir}/nginx-bench-{port}-prefix/error.log info;"),
        Sub(PLUGIN_LINE, f"proxy_wasm uwsgi_stats '{json.dumps(plugin)}';"),
        Sub(RELAY_LOCATIONS, relay_locations({"t": fake.port})),
    ])
    n = NginxWasm(logdir, f"nginx-bench-{port}", port, conf_text=conf)
    try:
        n.wait_loaded(at_least=4, timeout=120)
        return window(fake, n.workers)
    finally:
        n.stop()
        fake.close()


def envoy_ms(logdir, doc):
    fake = FakeStats(doc)
    admin = free_port()
    cfg = uwsgi_stats_config(admin, free_port(), free_port(), free_port(),
                             {"targets": [{"name": "t", "cluster": "uwsgi_stats_t"}], **COMMON},
                             {"uwsgi_stats_t": fake.port}, wasm_path=wasm("uwsgi-stats"))
    e = Envoy(f"envoy-bench-{admin}", cfg, logdir, admin)
    try:
        e.wait_ready()
        wait_for(lambda: value(e.prometheus(), "uwsgi_up", target="t") == 1, 30, what="envoy poll")
        return window(fake, lambda: [e.pid])
    finally:
        e.stop()
        fake.close()


CG_REQUESTS = 300
EXAMPLE = ROOT / "examples" / "nginx-wasm" / "nginx-uwsgi-stats.conf"


def instructions(logdir, with_stats):
    out = Path(logdir) / f"cg-{int(with_stats)}"
    out.mkdir()
    port = free_port()
    plugin = {"mode": "nginx", "targets": [{"name": "t", "cluster": f"127.0.0.1:{free_port()}"}],
              "interval_ms": 3_600_000, "timeout_ms": 800}
    subs = [
        ("worker_processes 4;", "worker_processes 1;"),
        ("listen 127.0.0.1:8080 reuseport;", f"listen 127.0.0.1:{port} reuseport;"),
        ("listen 127.0.0.1:9190;", f"listen 127.0.0.1:{free_port()};"),
        ("pid /tmp/nginx-uwsgi-stats.pid;", f"pid {out}/nginx.pid;"),
        ("error_log /tmp/nginx-uwsgi-stats-error.log info;", f"error_log {out}/error.log info;"),
        ("        location = /metrics {",
         '        location = /direct {\n            return 200 "ok\\n";\n        }\n\n        location = /metrics {'),
        Sub(PLUGIN_LINE, f"proxy_wasm uwsgi_stats '{json.dumps(plugin)}';" if with_stats else ""),
    ]
    conf = out / "nginx.conf"
    conf.write_text(render(EXAMPLE, subs))
    with open(out / "nginx.log", "w") as log:
        proc = subprocess.Popen([*callgrind.valgrind_argv(out), nginx_wasm_bin(), "-p", str(out), "-e", "stderr",
                                 "-c", str(conf), "-g", nginx_globals() + " master_process off;"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return callgrind.per_request(f"stats={with_stats}", proc, out / "nginx.log", port, "/direct", CG_REQUESTS,
                                 "cg.out*")


def request_path():
    if os.environ.get("BENCH_CALLGRIND", "1") != "1" or not (shutil.which("valgrind") and shutil.which("vgdb")):
        print("  note: callgrind skipped (BENCH_CALLGRIND=0 or no valgrind/vgdb)", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as d:
        without, with_ = instructions(d, False), instructions(d, True)
    print(f"# instructions per request: red-filter {without:.0f}, red-filter + uwsgi-stats {with_:.0f}")
    print(f"BENCH nginx_uwsgi_stats_request_path_instructions {with_ - without:.0f} instructions")


def main():
    if os.environ.get("BENCH_ONLY_CALLGRIND") == "1":
        request_path()
        return
    big = HTTP_HEAD + (ROOT / "testdata" / "fixtures" / "stats_64x16_load.json").read_bytes()
    small = (VECTORS / "stats_a_2proc_idle_http.bin").read_bytes()
    with tempfile.TemporaryDirectory() as d:
        logdir = Path(d)
        n = nginx_ms(logdir, big) - nginx_ms(logdir, small)
        e = envoy_ms(logdir, big) - envoy_ms(logdir, small)
    print(f"# {len(big)} byte document, {SECONDS} s windows, 500 ms interval")
    print(f"BENCH nginx_uwsgi_stats_poll_cpu_1mb_ms {n:.2f} ms")
    print(f"BENCH envoy_uwsgi_stats_poll_cpu_1mb_ms {e:.2f} ms")
    request_path()


if __name__ == "__main__":
    main()
