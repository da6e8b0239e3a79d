"""Telegraf's `inputs.uwsgi` against our stats path on the same 1 MB document
(testdata/fixtures/stats_64x16_load.json), CPU time per scrape: the method of
bench/uwsgi_exporter.py.

Telegraf is the cached build of scripts/setup.d/telegraf.sh (built here when
missing). It runs as an agent gathering the document from a loopback server
every INTERVAL and writing line protocol to /dev/null (`outputs.file`), so a
scrape is its whole pipeline: read over TCP, JSON decode, metrics, line
protocol. Its CPU time comes from /proc/<pid>/stat over the gathers counted
by the server, after a warm-up. Ours is `stats::scrape` (decode + map +
Prometheus text) measured as in bench/stats_1mb.py. Prints:
  BENCH telegraf_uwsgi_1mb_cpu_ms <v> ms
  BENCH stats_1mb_cpu_ms <v> ms
  BENCH telegraf_uwsgi_vs_ours_cpu_ratio <telegraf / ours> x
"""
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import stats_1mb  # noqa: E402  (same document, same native binary)
from uwsgi_exporter import cpu_s  # noqa: E402  (utime + stime of a pid)

ROOT = Path(__file__).resolve().parent.parent
HTTP_HEAD = b"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n"
INTERVAL = "250ms"
WARMUP = 3
SCRAPES = 30
DEADLINE_S = 120


class Server:
    """Answers each connection with the document after reading the request
    (as uWSGI's --stats-http) and counts the answers."""

    def __init__(self, reply):
        self.reply, self.count = reply, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    got = b""
                    while b"\r\n\r\n" not in got:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        got += chunk
                    conn.sendall(self.reply)
                    self.count += 1
                except OSError:
                    pass


def telegraf_bin():
    return subprocess.run(["bash", str(ROOT / "scripts" / "setup.d" / "telegraf.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()


def telegraf_cpu_ms(binary):
    srv = Server(HTTP_HEAD + stats_1mb.DOC.read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "telegraf.conf"
        conf.write_text(f"""[agent]
  interval = "{INTERVAL}"
  flush_interval = "{INTERVAL}"
  omit_hostname = true
  metric_buffer_limit = 100000
[[inputs.uwsgi]]
  servers = ["http://127.0.0.1:{srv.port}"]
[[outputs.file]]
  files = ["/dev/null"]
  data_format = "influx"
""")
        log = open(Path(tmp) / "telegraf.log", "wb")
        proc = subprocess.Popen([binary, "--config", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + DEADLINE_S

            def wait(n):
                while srv.count < n:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        sys.exit(f"telegraf gathered {srv.count} documents, wanted {n}:\n"
                                 + (Path(tmp) / "telegraf.log").read_text(errors="replace")[-2000:])
                    time.sleep(0.01)
            wait(WARMUP)
            start, before = srv.count, cpu_s(proc.pid)
            wait(start + SCRAPES)
            # The last gather's decode and write finish after the answer: let it.
            time.sleep(0.3)
            done, after = srv.count, cpu_s(proc.pid)
            return (after - before) / (done - start) * 1e3
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()


def main():
    binary = telegraf_bin()
    if not Path(binary).is_file():
        sys.exit(f"scripts/setup.d/telegraf.sh printed {binary!r}, which is not a file")
    stats_1mb.build()
    theirs = telegraf_cpu_ms(binary)
    ours = stats_1mb.native_cpu_ms("1mb")
    print(f"BENCH telegraf_uwsgi_1mb_cpu_ms {theirs:.2f} ms")
    print(f"BENCH stats_1mb_cpu_ms {ours:.3f} ms")
    print(f"BENCH telegraf_uwsgi_vs_ours_cpu_ratio {theirs / ours:.1f} x")


if __name__ == "__main__":
    main()
