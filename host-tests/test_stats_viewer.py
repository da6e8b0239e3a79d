"""Browser stats viewer (plugins/stats-viewer): the JS API under Node over
every stats vector, and the page end to end in real headless Chromium
against a real uWSGI (4 workers, --stats-http) that the test stops and
restarts while the page polls it.
"""
import os
import re
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import CACHE, ROOT, APPS, Proc, free_port, uwsgi_bin, wait_port

PLUGIN = ROOT / "plugins" / "stats-viewer"
WWW = PLUGIN / "www"
VECTORS = ROOT / "core" / "tests" / "vectors"
NODE_PKG = CACHE / "stats-viewer" / "node-pkg" / "stats_viewer.js"


def node_bin():
    found = shutil.which("node")
    if not found:
        pytest.fail("node not found; install Node.js >= 20 (apt-get install nodejs)")
    return found


def require_viewer_build():
    for p in (WWW / "pkg" / "stats_viewer.js", WWW / "pkg" / "stats_viewer_bg.wasm", NODE_PKG):
        if not p.exists():
            pytest.fail(f"{p} missing: run ./build.sh build (scripts/build.d/viewer.sh) first")


def require_browser():
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("/usr/bin/chromium missing; run scripts/setup.d/browser.sh (apt-get install chromium)")
    if not (PLUGIN / "node_modules" / "playwright-core" / "package.json").exists():
        pytest.fail("playwright-core missing; run scripts/setup.d/browser.sh (npm ci in plugins/stats-viewer)")


# uWSGI's stats show its working directory (`cwd`), and so does the
# screenshot in docs/: a neutral one, not this checkout's path.
NEUTRAL_CWD = Path("/tmp/app")


def start_uwsgi(logdir, name, http_port, stats_port):
    NEUTRAL_CWD.mkdir(exist_ok=True)
    p = Proc(name, [uwsgi_bin(), "--master", "--processes", "4", "--http-socket", f"127.0.0.1:{http_port}",
                    "--wsgi-file", str(APPS / "app.py"), "--stats", f"127.0.0.1:{stats_port}", "--stats-http",
                    "--die-on-term", "--disable-logging"], logdir, cwd=str(NEUTRAL_CWD))
    wait_port(http_port, 20, p)
    wait_port(stats_port, 20, p)
    return p


@pytest.fixture(scope="module")
def page_server(logdir):
    require_viewer_build()
    port = free_port()
    p = Proc("viewer-http", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(WWW),
                             str(port)], logdir)
    wait_port(port, 20, p)
    yield f"http://127.0.0.1:{port}/"
    p.stop()


def test_js_api_over_every_vector():
    require_viewer_build()
    r = subprocess.run([node_bin(), "--test", str(PLUGIN / "tests")], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "VIEWER_NODE_PKG": str(NODE_PKG)})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    passed = int(re.search(r"^# pass (\d+)", out, re.M).group(1))
    failed = int(re.search(r"^# fail (\d+)", out, re.M).group(1))
    # 10 captures x (.bin, .json) + coverage, load interval, errors, snapshot, JS parity, every view/rates field.
    assert (passed, failed) == (26, 0), out[-2000:]


def run_e2e(argv, env, on_control, timeout):
    """Runs the node e2e script, answering its CONTROL lines; returns (rc, lines).

    Lines come through a reader thread and a queue: select() on the pipe
    would miss a CONTROL line that arrived in the same read as the STEP line
    before it (it sits in Python's buffer, the fd looks idle), and node then
    waits for an answer that never comes (seen once as an e2e timeout).
    """
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, env=env, cwd=str(PLUGIN))
    q = queue.Queue()

    def pump():
        for ln in proc.stdout:
            q.put(ln)
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    lines = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("e2e timed out:\n" + "\n".join(lines[-40:]))
            try:
                line = q.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                break
            line = line.rstrip("\n")
            lines.append(line)
            print(line)
            if line.startswith("CONTROL "):
                on_control(line.split(" ", 1)[1])
                proc.stdin.write("ok\n")
                proc.stdin.flush()
        return proc.wait(30), lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_page_end_to_end_in_headless_chromium(logdir, page_server):
    require_browser()
    http_port, stats_port = free_port(), free_port()
    uw = {"p": start_uwsgi(logdir, "uwsgi-viewer", http_port, stats_port)}
    stats_url = f"http://127.0.0.1:{stats_port}"
    artifacts = Path(logdir) / "viewer-artifacts"
    artifacts.mkdir(exist_ok=True)
    docs_png = PLUGIN / "docs" / "viewer.png"

    def control(cmd):
        if cmd == "stop":
            uw["p"].stop()
        elif cmd == "start":
            uw["p"] = start_uwsgi(logdir, "uwsgi-viewer-2", http_port, stats_port)
        else:
            raise AssertionError(f"unknown control {cmd!r}")

    env = {**os.environ, "VIEWER_PAGE_URL": page_server, "VIEWER_STATS_URL": stats_url,
           "VIEWER_APP_URL": f"http://127.0.0.1:{http_port}", "VIEWER_VECTORS": str(VECTORS),
           "VIEWER_ARTIFACTS": str(artifacts), "VIEWER_DOCS_SCREENSHOT": str(docs_png)}
    try:
        rc, lines = run_e2e([node_bin(), str(PLUGIN / "e2e" / "viewer.e2e.mjs")], env, control, timeout=240)
    finally:
        uw["p"].stop()
    text = "\n".join(lines)
    assert rc == 0 and "E2E ok" in lines, text[-4000:]
    assert [l for l in lines if l.startswith("CONTROL")] == ["CONTROL stop", "CONTROL start"]
    total = float(re.search(r"^E2E req/s total=([\d.]+)", text, re.M).group(1))
    assert total > 0
    assert re.search(r"^BENCH viewer_wasm_vs_js_ratio [\d.]+ x$", text, re.M), text[-2000:]
    png = (artifacts / "viewer.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert docs_png.read_bytes() == png
