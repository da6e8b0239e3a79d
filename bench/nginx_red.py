"""nginx (ngx_wasm_module) CPU per request with no filter, the empty Wasm
filter (dist/noop-filter.wasm) and red-filter, all from
examples/nginx-wasm/nginx.conf in front of uWSGI over uwsgi_pass, on two
routes: `direct` (a `return 200` location the bench adds, so nginx does
little besides the filter: the BENCH figures) and `upstream` (/users/42 via
uwsgi_pass to uWSGI).

Same method as bench/red_filter.py for Envoy: CPU = utime+stime of the
nginx master and its one worker (`worker_processes 1` here, so the figure is
one process's work) over a bounded wrk run on /users/42, divided by the
requests wrk completed. nginx is pinned to core 0, wrk and uWSGI to core 1.
Variants are interleaved within each rep; figures are medians over REPS
reps, overheads the median of each rep's difference to its own no-filter
run; the order of the variants rotates from rep to rep. The
variants differ only in the filter: "none" keeps the wasm{} block (the
module is loaded) and drops the proxy_wasm line; "noop" loads
noop-filter.wasm under the same name with the same proxy_wasm line.
BENCH_ALT_DISTS="label=dir,..." adds "red_<label>" variants: another build's
red-filter.wasm (e.g. the previous commit's) timed in the same run.

Instructions, counted: CPU-time reps on a shared machine spread more than
the variants differ, so when valgrind is installed every variant also runs
once under callgrind (BENCH_CALLGRIND=0 skips it), as bench/red_filter.py
does for Envoy: one nginx process (`master_process off`, so the process
valgrind starts is the one that serves), instrumentation switched on through
vgdb only around CG_REQUESTS keep-alive requests to the `direct` route after
a warm-up, instructions divided by the requests. Wasmtime compiles the
module before the first request (Cranelift, no tiering), so the count
repeats to within a few hundred instructions per request from run to run
(nginx's own timers) and does not depend on machine load.
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
import callgrind  # noqa: E402  (bench/callgrind.py)
from harness import ROOT, Sub, free_port, nginx_globals, start_uwsgi, wasm  # noqa: E402
from nginx_wasm import PLUGIN_LINE, NginxWasm, nginx_wasm_bin, render_example  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
CONNS = 8
ROUTES = {r: p for r, p in (("direct", "/direct"), ("upstream", "/users/42"))
          if r in os.environ.get("BENCH_ROUTES", "direct,upstream").split(",")}
CLK = os.sysconf("SC_CLK_TCK")
ONE_WORKER = ("worker_processes 2;", "worker_processes 1;")
# The filter runs for `return` responses too (it is installed at server level).
DIRECT = ("        location = /metrics {",
          '        location = /direct {\n            return 200 "ok\\n";\n        }\n\n        location = /metrics {')
VARIANTS = {
    "none": [ONE_WORKER, DIRECT, Sub(PLUGIN_LINE, "")],
    "noop": [ONE_WORKER, DIRECT, ("module red dist/red-filter.wasm;", "module red dist/noop-filter.wasm;")],
    "red": [ONE_WORKER, DIRECT],
}
# Optional features, each on alone over the example's configuration (where
# each is off): what turning it on costs a request.
for _kind, _feature, _name in (("red_stamp", {"request_start": "keep"}, "red-filter, stamp keep"),
                               ("red_upstream", {"upstream_label": True}, "red-filter, upstream")):
    _cfg = {**json.loads(PLUGIN_LINE.search((ROOT / "examples/nginx-wasm/nginx.conf").read_text()).group(1)),
            **_feature}
    VARIANTS[_kind] = [ONE_WORKER, DIRECT, Sub(PLUGIN_LINE, f"proxy_wasm red '{json.dumps(_cfg)}';")]
NAMES = {"none": "no filter", "noop": "empty Wasm filter", "red": "red-filter", "red_stamp": "red, stamp keep",
         "red_upstream": "red, upstream"}
for _label, _dist in (i.split("=", 1) for i in os.environ.get("BENCH_ALT_DISTS", "").split(",") if i):
    VARIANTS[f"red_{_label}"] = [ONE_WORKER, DIRECT, ("module red dist/red-filter.wasm;",
                                                      f"module red {Path(_dist).resolve()}/red-filter.wasm;")]
    NAMES[f"red_{_label}"] = f"{_label}: red-filter"


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK


def wrk(url, seconds):
    cores = "1" if (os.cpu_count() or 1) > 1 else "0"
    out = subprocess.run(["taskset", "-c", cores, shutil.which("wrk"), "-t1", f"-c{CONNS}", f"-d{seconds}s", url],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"(\d+) requests in", out)
    if not m:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"  note: {url}: {out.strip().splitlines()[-3:]}", file=sys.stderr)
    return int(m.group(1))


def measure(ng, path):
    url = f"http://127.0.0.1:{ng.port}{path}"
    pids = [ng.pid, *ng.workers()]
    wrk(url, 1)  # warm-up: upstream keepalive connections, first ticks
    before = cpu_seconds(pids)
    n = wrk(url, SECONDS)
    return (cpu_seconds(pids) - before) / n * 1e6, n


CG_REQUESTS = int(os.environ.get("BENCH_CG_REQUESTS", "300"))


def instructions_per_request(logdir, kind, upstream):
    """nginx instructions per request on the direct route, under callgrind."""
    out = Path(logdir) / f"cg-{kind}"
    out.mkdir()
    port = free_port()
    conf = out / "nginx.conf"
    conf.write_text(render_example(out, port, upstream, extra=VARIANTS[kind]))
    with open(out / "nginx.log", "w") as log:
        proc = subprocess.Popen([*callgrind.valgrind_argv(out), nginx_wasm_bin(), "-p", str(out),
                                 "-e", "stderr", "-c", str(conf), "-g", nginx_globals() + " master_process off;"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return callgrind.per_request(kind, proc, out / "nginx.log", port, "/direct", CG_REQUESTS, "cg.out*")


def count_instructions(logdir, upstream):
    """Instructions per request for every variant ({} when skipped)."""
    if os.environ.get("BENCH_CALLGRIND", "1") != "1":
        return {}
    if not (shutil.which("valgrind") and shutil.which("vgdb")):
        print("  note: valgrind (with vgdb) not found: no instruction counts", file=sys.stderr)
        return {}
    counts = {}
    for kind in VARIANTS:
        counts[kind] = instructions_per_request(logdir, kind, upstream)
        print(f"  callgrind {kind:8} {counts[kind]:9.0f} instructions/req", file=sys.stderr)
    return counts


def print_instructions(counts):
    base = counts["none"]
    print(f"\nInstructions per request in the nginx process (callgrind, {CG_REQUESTS} keep-alive requests,"
          " direct route):")
    for kind in VARIANTS:
        print(f"{NAMES[kind]:<20}{counts[kind]:>10.0f}{counts[kind] - base:>+10.0f}")
    over = {k: v - base for k, v in counts.items()}
    print(f"BENCH nginx_red_overhead_instructions {over['red']:.0f} instructions")
    print(f"BENCH nginx_noop_overhead_instructions {over['noop']:.0f} instructions")
    print(f"BENCH nginx_red_vs_noop_instructions_ratio {over['red'] / over['noop']:.2f} x")
    for kind in VARIANTS:
        if kind.startswith("red_"):
            print(f"{NAMES[kind]}: {over[kind]:+.0f} instructions, {over[kind] / over['noop']:.2f}x the empty filter's")
    for kind in ("red_stamp", "red_upstream"):
        if kind in counts:
            print(f"BENCH nginx_{kind}_instructions_over_red {counts[kind] - counts['red']:.0f} instructions")


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk (./build.sh bench installs it)")
    wasm("red-filter")
    wasm("noop-filter")
    logdir = Path(tempfile.mkdtemp(prefix="bench-nginx-red-"))
    procs = []
    try:
        up = start_uwsgi(logdir, "bench-ngx-uwsgi", protocol="uwsgi", processes=2, threads=16,
                         wrapper=("taskset", "-c", "1"))
        procs.append(up)
        counts = count_instructions(logdir, up.port)
        hosts = {}
        for kind, subs in VARIANTS.items():
            ng = NginxWasm(logdir, f"bench-ngx-{kind}", free_port(), upstream=up.port, extra=subs)
            procs.append(ng)
            hosts[kind] = ng
        for ng in hosts.values():
            ng.wait_loaded(1)
            for pid in [ng.pid, *ng.workers()]:
                os.sched_setaffinity(pid, {0})
        results = {(k, r): [] for k in VARIANTS for r in ROUTES}
        kinds = list(hosts)
        for rep in range(REPS):
            # Rotate the order so no variant always runs in the same slot.
            order = kinds[rep % len(kinds):] + kinds[:rep % len(kinds)]
            for route, path in ROUTES.items():
                for kind in order:
                    ng = hosts[kind]
                    us, n = measure(ng, path)
                    results[(kind, route)].append(us)
                    print(f"  rep {rep + 1} {route:8} {kind:5} {us:7.1f} us/req ({n} req)", file=sys.stderr)
        med = {k: statistics.median(v) for k, v in results.items()}
        print(f"\nnginx CPU per request (µs, median of {REPS} runs of {SECONDS}s, wrk -c{CONNS}):")
        print(f"{'variant':<20}" + "".join(f"{r:>10}" for r in ROUTES))
        for kind in VARIANTS:
            print(f"{NAMES[kind]:<20}" + "".join(f"{med[(kind, r)]:>10.1f}" for r in ROUTES))

        def overhead(kind, route):
            # From each rep's own baseline: the absolute level drifts between
            # reps on a shared machine, the difference within a rep much less.
            return statistics.median(a - b for a, b in zip(results[(kind, route)], results[("none", route)]))
        red_over, noop_over = overhead("red", "direct"), overhead("noop", "direct")
        if "upstream" in ROUTES:
            up_red, up_noop = overhead("red", "upstream"), overhead("noop", "upstream")
            print(f"upstream route: red +{up_red:.1f} us, empty filter +{up_noop:.1f} us")
        print(f"BENCH nginx_red_overhead_us {red_over:.1f} us")
        print(f"BENCH nginx_noop_overhead_us {noop_over:.1f} us")
        # Meaningless when the empty filter's cost is within the noise.
        ratio = red_over / noop_over if noop_over > 0 else float("nan")
        print(f"BENCH nginx_red_vs_noop_ratio {ratio:.2f} x")
        for kind in VARIANTS:
            if kind.startswith("red_"):
                o = overhead(kind, "direct")
                print(f"{NAMES[kind]}: {o:+.1f} us over no filter, {o / noop_over:.2f}x the empty filter's")
        if counts:
            print_instructions(counts)
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    main()
