"""Starting the real hosts (uWSGI, gunicorn, Envoy, nginx, Prometheus) on
free loopback ports, each stopped by PID; `Hosts` stops everything it
started, in reverse order, when its `with` block (or fixture) ends."""
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from .client import get_text
from .envoy import Envoy
from .paths import APPS, ROOT
from .procs import Proc, fail, free_port, require_binary, gunicorn_bin, nginx_bin, prometheus_bin, registry_bin, uwsgi_bin, wait_port
from .render import Sub, render

# protocol -> uWSGI options. "http" is what the examples use: http-socket
# plus "Connection: close" (no 4 s stall for responses without
# Content-Length as with http11-socket, no reused closing connections as with
# a bare http-socket; see examples/envoy-red/uwsgi.ini).
UWSGI_SOCKETS = {
    "http": ("--http-socket", "--add-header", "Connection: close"),
    "http-plain": ("--http-socket",),
    "http11": ("--http11-socket",),
    "uwsgi": ("--socket",),
}


def start_uwsgi(logdir, name, *, port=None, protocol="http", processes=2, threads=None, stats=False,
                memory_report=False, app=None, logging=False, extra=(), wrapper=(), timeout=20):
    """uWSGI master + `processes` workers serving `app` (default
    host-tests/apps/app.py) on 127.0.0.1:port. protocol: "http" (the
    examples' http-socket + Connection: close), "http-plain" (bare
    --http-socket), "http11" (--http11-socket, keep-alive), "uwsgi"
    (--socket). stats=True adds --stats with --stats-http on its own port.
    Returns the Proc with .port and .stats_port (None without stats)."""
    port = port or free_port()
    stats_port = free_port() if stats else None
    sock, *sock_opts = UWSGI_SOCKETS[protocol]
    argv = [*wrapper, uwsgi_bin(), "--master", "--processes", str(processes),
            sock, f"127.0.0.1:{port}", *sock_opts, "--wsgi-file", str(app or APPS / "app.py"),
            "--die-on-term"]
    if threads:
        argv += ["--threads", str(threads)]
    if stats:
        argv += ["--stats", f"127.0.0.1:{stats_port}", "--stats-http"]
    if memory_report:
        argv += ["--memory-report"]
    if not logging:
        argv += ["--disable-logging"]
    p = Proc(name, [*argv, *extra], logdir)
    try:
        wait_port(port, timeout, p)
        if stats:
            wait_port(stats_port, timeout, p)
    except BaseException:
        p.stop()
        raise
    p.port, p.stats_port = port, stats_port
    return p


def start_uwsgi_ini(logdir, name, example_ini, substitutions, port, stats_port=None, extra=(), timeout=30):
    """uWSGI from an example .ini (checked substitutions for its sockets),
    plus `extra` command-line options (e.g. another --socket). The example's
    `%d` (its own folder) is pointed at the example's folder, since the
    rendered copy lives in logdir."""
    example_ini = Path(example_ini)
    subs = list(substitutions) + [Sub("%d", f"{example_ini.parent}/", None)]
    ini = Path(logdir) / f"{name}.ini"
    ini.write_text(render(example_ini, subs))
    p = Proc(name, [uwsgi_bin(), "--ini", str(ini), *extra], logdir)
    try:
        wait_port(port, timeout, p)
        if stats_port:
            wait_port(stats_port, timeout, p)
    except BaseException:
        p.stop()
        raise
    p.port, p.stats_port = port, stats_port
    return p


def start_gunicorn(logdir, name, *, port=None, workers=2, app="app:application", chdir=None, extra=(),
                   timeout=20):
    port = port or free_port()
    p = Proc(name, [gunicorn_bin(), "-w", str(workers), "-b", f"127.0.0.1:{port}", "--chdir",
                    str(chdir or APPS), *extra, app], logdir)
    try:
        wait_port(port, timeout, p)
    except BaseException:
        p.stop()
        raise
    p.port = port
    return p


def start_envoy(logdir, name, config_yaml, admin_port, *, concurrency=1, extra_args=(), wait=True, **attrs):
    """Envoy ready (/ready == LIVE); extra keyword attrs (e.g. listen_port)
    are set on the returned Envoy for the caller's convenience."""
    env = Envoy(name, config_yaml, logdir, admin_port, concurrency=concurrency, extra_args=extra_args)
    for k, v in attrs.items():
        setattr(env, k, v)
    if wait:
        try:
            env.wait_ready()
        except BaseException:
            env.stop()
            raise
    return env


def nginx_globals():
    """-g directives: foreground, and as root keep workers as root (nobody
    cannot enter pytest's 0700 temp dirs)."""
    return "daemon off;" + (" user root;" if os.geteuid() == 0 else "")


def start_nginx(logdir, name, conf_text, port, timeout=15):
    """nginx with its own prefix under logdir; `conf_text` must not set
    `daemon` (it is given with -g)."""
    prefix = Path(logdir) / f"{name}-prefix"
    for d in ("logs", "tmp"):
        (prefix / d).mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(conf_text)
    p = Proc(name, [nginx_bin(), "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", nginx_globals()], logdir)
    try:
        wait_port(port, timeout, p)
    except BaseException:
        p.stop(timeout=5)
        raise
    p.port, p.prefix = port, prefix
    return p


def start_prometheus(logdir, name, config_text, *, port=None, extra=(), timeout=30):
    """Prometheus with its TSDB under logdir, ready (/-/ready) on 127.0.0.1:port."""
    port = port or free_port()
    cfg = Path(logdir) / f"{name}.yml"
    cfg.write_text(config_text)
    data = Path(logdir) / f"{name}-data"
    p = Proc(name, [prometheus_bin(), f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                    f"--web.listen-address=127.0.0.1:{port}", *extra], logdir)
    try:
        wait_port(port, timeout, p)
        deadline = time.monotonic() + timeout
        while True:
            try:
                get_text(f"http://127.0.0.1:{port}/-/ready", timeout=2)
                break
            except (AssertionError, OSError):
                if time.monotonic() > deadline or p.poll() is not None:
                    raise RuntimeError(f"prometheus not ready:\n{p.tail()}") from None
                time.sleep(0.2)
    except BaseException:
        p.stop()
        raise
    p.port = port
    return p


def start_registry(logdir, name, *, port=None, timeout=20):
    """A Docker/OCI distribution registry (Debian docker-registry) with its
    storage under logdir, on 127.0.0.1:port, ready when /v2/ answers."""
    port = port or free_port()
    cfg = Path(logdir) / f"{name}.yml"
    cfg.write_text(f"version: 0.1\nlog: {{level: warn}}\n"
                   f"storage: {{filesystem: {{rootdirectory: {Path(logdir) / (name + '-data')}}}}}\n"
                   f"http: {{addr: 127.0.0.1:{port}}}\n")
    p = Proc(name, [registry_bin(), "serve", str(cfg)], logdir)
    try:
        wait_port(port, timeout, p)
        get_text(f"http://127.0.0.1:{port}/v2/", timeout=5)
    except BaseException:
        p.stop()
        raise
    p.port = port
    return p


def influxd_bin():
    return require_binary("influxd", "apt-get install influxdb")


def telegraf_bin():
    """Telegraf with the few plugins the tests use, built once into the cache
    by scripts/setup.d/telegraf.sh (./build.sh test runs it)."""
    script = ROOT / "scripts" / "setup.d" / "telegraf.sh"
    path = subprocess.run(["bash", str(script), "--path"], capture_output=True, text=True, check=True).stdout.strip()
    if not os.access(path, os.X_OK):
        fail(f"telegraf not built at {path}; build it with: bash {script} (./build.sh test does this)")
    return path


def influx_query(port, q, db=None, timeout=10):
    """One InfluxQL statement through the 1.x HTTP API; returns its series
    ([] when none). An error in the answer raises."""
    params = {"q": q, "epoch": "ns"}
    if db:
        params["db"] = db
    url = f"http://127.0.0.1:{port}/query?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = json.loads(r.read())
    (result,) = body["results"]
    if "error" in result:
        raise AssertionError(f"InfluxQL {q!r}: {result['error']}")
    return result.get("series", [])


def start_influxdb(logdir, name, *, port=None, timeout=30):
    """InfluxDB 1.x (Debian's influxd) with its meta, data and WAL under
    logdir, HTTP API on 127.0.0.1:port and its RPC bind on another loopback
    port; ready when /ping answers 204. Usage reporting and the internal
    monitor database are off."""
    port = port or free_port()
    rpc = free_port()
    base = Path(logdir) / f"{name}-data"
    cfg = Path(logdir) / f"{name}.conf"
    cfg.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{base / 'meta'}"
[data]
  dir = "{base / 'data'}"
  wal-dir = "{base / 'wal'}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
""")
    p = Proc(name, [influxd_bin(), "run", "-config", str(cfg)], logdir)
    try:
        wait_port(port, timeout, p)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 204:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or p.poll() is not None:
                raise RuntimeError(f"influxd not ready:\n{p.tail()}")
            time.sleep(0.2)
    except BaseException:
        p.stop()
        raise
    p.port = port
    return p


def start_telegraf(logdir, name, config_text, *, once=False, input_errors=0, timeout=60):
    """Telegraf with `config_text` (written to logdir). once=True: one
    gather and flush (`--once`), waited for, failing with its log on a
    non-zero exit unless exactly `input_errors` gathers failed (Telegraf
    then exits 1 saying how many); otherwise the agent runs until stopped
    by PID."""
    cfg = Path(logdir) / f"{name}.conf"
    cfg.write_text(config_text)
    argv = [telegraf_bin(), "--config", str(cfg)]
    if once:
        argv.append("--once")
    p = Proc(name, argv, logdir)
    if once:
        try:
            rc = p.p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.stop()
            raise RuntimeError(f"telegraf --once still running after {timeout}s:\n{p.tail()}") from None
        p.stop()
        expected = input_errors and f"input plugins recorded {input_errors} errors" in p.log()
        if rc != 0 and not (rc == 1 and expected):
            raise RuntimeError(f"telegraf --once exited with {rc}:\n{p.tail()}")
    return p


class Hosts:
    """Starts hosts into one log folder and stops them all by PID, newest
    first, on exit (also on errors and Ctrl-C).

        with Hosts(logdir) as h:
            up = h.uwsgi("app", stats=True)
            env = h.envoy("proxy", red_filter_config(...), admin)
    """

    def __init__(self, logdir):
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.procs = []

    def add(self, proc):
        self.procs.append(proc)
        return proc

    def uwsgi(self, name, **kw):
        return self.add(start_uwsgi(self.logdir, name, **kw))

    def uwsgi_ini(self, name, example_ini, substitutions, port, **kw):
        return self.add(start_uwsgi_ini(self.logdir, name, example_ini, substitutions, port, **kw))

    def gunicorn(self, name, **kw):
        return self.add(start_gunicorn(self.logdir, name, **kw))

    def envoy(self, name, config_yaml, admin_port, **kw):
        return self.add(start_envoy(self.logdir, name, config_yaml, admin_port, **kw))

    def nginx(self, name, conf_text, port, **kw):
        return self.add(start_nginx(self.logdir, name, conf_text, port, **kw))

    def prometheus(self, name, config_text, **kw):
        return self.add(start_prometheus(self.logdir, name, config_text, **kw))

    def registry(self, name, **kw):
        return self.add(start_registry(self.logdir, name, **kw))

    def influxdb(self, name, **kw):
        return self.add(start_influxdb(self.logdir, name, **kw))

    def telegraf(self, name, config_text, **kw):
        """A Telegraf agent, stopped with the others (once=True: see start_telegraf)."""
        p = start_telegraf(self.logdir, name, config_text, **kw)
        return p if kw.get("once") else self.add(p)

    def proc(self, name, argv, port=None, timeout=20, **kw):
        """Any other child process; waits for `port` when given."""
        p = self.add(Proc(name, argv, self.logdir, **kw))
        if port:
            wait_port(port, timeout, p)
            p.port = port
        return p

    def stop(self, proc):
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self):
        while self.procs:
            self.procs.pop().stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop_all()
