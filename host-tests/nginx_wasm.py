"""nginx + Kong's ngx_wasm_module as a host for red-filter, shared by
host-tests/test_nginx_wasm.py and bench/nginx_red.py.

The binary comes from scripts/setup.d/nginx-wasm.sh (the project's prebuilt
nginx 1.27.4 + ngx_wasm_module + Wasmtime 26, or $UWSGI_RED_NGINX_WASM).
Configurations are examples/nginx-wasm/nginx.conf with checked
substitutions: ports and pid/log paths always, the plugin configuration or
the module only where a test or the bench says so.
"""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from harness import ROOT, Proc, Sub, fail, nginx_globals, render, wait_port

EXAMPLE = "examples/nginx-wasm/nginx.conf"
SETUP = ROOT / "scripts" / "setup.d" / "nginx-wasm.sh"
PLUGIN_LINE = re.compile(r"proxy_wasm red '(\{.*\})';")
LOADED = re.compile(r'\[wasm\] successfully loaded "red" module')

_bin = None


def nginx_wasm_bin():
    """Path of the nginx with ngx_wasm_module, provided (copied into the
    cache) by the setup script; its message says how to get one if missing."""
    global _bin
    if _bin is None:
        r = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            fail(f"nginx with ngx_wasm_module unavailable ({SETUP.relative_to(ROOT)}):\n{r.stderr.strip()}")
        _bin = r.stdout.strip().splitlines()[-1]
    return _bin


def example_plugin_config():
    """The example's red-filter configuration, parsed."""
    m = PLUGIN_LINE.findall((ROOT / EXAMPLE).read_text())
    assert len(m) == 1, m
    return json.loads(m[0])


def render_example(prefix, listen, upstream, plugin_config=None, extra=()):
    """The example with its ports and pid/log paths moved into `prefix`;
    `plugin_config` (a dict) replaces the proxy_wasm JSON, `extra` are more
    harness substitutions (each checked like the rest)."""
    subs = [("listen 127.0.0.1:8080 reuseport;", f"listen 127.0.0.1:{listen} reuseport;"),
            ("server 127.0.0.1:8001;", f"server 127.0.0.1:{upstream};"),
            ("pid /tmp/nginx-red.pid;", f"pid {prefix}/nginx.pid;"),
            ("error_log /tmp/nginx-red-error.log info;", f"error_log {prefix}/error.log info;"),
            ("access_log /tmp/nginx-red-access.log red_check;", f"access_log {prefix}/access.log red_check;")]
    if plugin_config is not None:
        # json.dumps never emits a single quote, the config's delimiter.
        subs.append(Sub(PLUGIN_LINE, f"proxy_wasm red '{json.dumps(plugin_config)}';"))
    return render(EXAMPLE, [*subs, *extra])


class NginxWasm(Proc):
    """One nginx master (foreground) with its own prefix under logdir.

    Started from the repository root: the example's module path
    (dist/red-filter.wasm) is relative to the working directory. Startup
    messages go to stderr (-e stderr; the compiled-in prefix does not exist
    here), the rest to the error log the config names."""

    def __init__(self, logdir, name, port, conf_text=None, *, upstream=None, plugin_config=None, extra=()):
        self.prefix = Path(logdir) / f"{name}-prefix"
        self.prefix.mkdir(parents=True, exist_ok=True)
        if conf_text is None:
            conf_text = render_example(self.prefix, port, upstream, plugin_config, extra)
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(conf_text)
        self.port = port
        self.workers_expected = int(re.search(r"^worker_processes (\d+);", conf_text, re.M).group(1))
        argv = [nginx_wasm_bin(), "-p", str(self.prefix), "-e", "stderr", "-c", str(self.conf),
                "-g", nginx_globals()]
        super().__init__(name, argv, logdir, cwd=str(ROOT))

    @property
    def error_log_path(self):
        return self.prefix / "error.log"

    @property
    def access_log_path(self):
        return self.prefix / "access.log"

    def error_log(self):
        p = self.error_log_path
        return p.read_text(errors="replace") if p.exists() else ""

    def access_log(self):
        p = self.access_log_path
        return p.read_text(errors="replace").splitlines() if p.exists() else []

    def workers(self):
        """PIDs of the master's current children (its worker processes)."""
        try:
            kids = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except FileNotFoundError:
            return []
        return [int(k) for k in kids]

    def loaded_count(self):
        return len(LOADED.findall(self.error_log()))

    def wait_loaded(self, at_least, timeout=90):
        """Until `at_least` worker processes (over the master's life) have
        compiled the Wasm module: before that, accepted connections wait
        in the kernel queue. Wasmtime compiles per worker, seconds each."""
        wait_port(self.port, timeout, self)
        deadline = time.monotonic() + timeout
        while self.loaded_count() < at_least:
            if self.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: Wasm module loaded in {self.loaded_count()} of {at_least} "
                                   f"workers after {timeout}s:\n{self.error_log()[-3000:]}")
            time.sleep(0.1)
        return self

    def reload(self, timeout=90):
        """SIGHUP (= nginx -s reload): new workers with a fresh shm_kv zone;
        returns once they have loaded the module and the old ones exited."""
        old = set(self.workers())
        before = self.loaded_count()
        os.kill(self.pid, signal.SIGHUP)
        self.wait_loaded(before + self.workers_expected, timeout)
        deadline = time.monotonic() + timeout
        while old & set(self.workers()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"old workers {old & set(self.workers())} still running")
            time.sleep(0.05)
