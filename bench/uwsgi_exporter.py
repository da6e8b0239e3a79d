"""uwsgi_exporter against our stats path on the same 1 MB document
(testdata/fixtures/stats_64x16_load.json), CPU time per scrape.

The exporter is not installed by the project scripts: the Go module proxy
answers 403 for github.com/timonwong/uwsgi_exporter, so `go install` cannot
fetch it on a fresh machine. Build it from a source checkout
(`GOFLAGS=-mod=mod go build -o uwsgi_exporter ./cmd/uwsgi_exporter`; its
dependencies do come from the proxy) and name the binary:

  UWSGI_EXPORTER_BIN=/path/to/uwsgi_exporter PYTHONPATH=host-tests python bench/uwsgi_exporter.py

Without UWSGI_EXPORTER_BIN (as in `./build.sh bench` on a fresh machine) it
says so in one comment line and measures nothing.

The exporter reads the document through its `file://` stats reader, so a
scrape is its whole pipeline (read, JSON decode, collect, Prometheus text)
minus any socket to uWSGI; its CPU time comes from /proc/<pid>/stat over
SCRAPES scrapes after a warm-up. Ours is `stats::scrape` (decode + map +
Prometheus text) measured as in bench/stats_1mb.py. The exporter also pays
its HTTP server for each scrape, which ours does not here: a few tens of
µs against tens of ms, so it does not move the ratio. Prints:
  BENCH uwsgi_exporter_1mb_cpu_ms <v> ms
  BENCH stats_1mb_cpu_ms <v> ms
  BENCH uwsgi_exporter_vs_ours_cpu_ratio <exporter / ours> x
"""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import stats_1mb  # noqa: E402  (same document, same native binary)

SCRAPES = 30
DEADLINE_S = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); index 11, 12 after the comm.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read()
    if b"uwsgi_worker_requests_total" not in body:
        sys.exit("the exporter's answer has no uwsgi_worker_requests_total: it did not read the document")
    return len(body)


def exporter_cpu_ms(binary):
    port = free_port()
    proc = subprocess.Popen([binary, f"--stats.uri=file://{stats_1mb.DOC}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                scrape(url)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit("uwsgi_exporter did not answer")
                time.sleep(0.1)
        for _ in range(3):
            scrape(url)
        before = cpu_s(proc.pid)
        for _ in range(SCRAPES):
            if time.monotonic() > deadline:
                sys.exit("uwsgi_exporter scrapes ran past the deadline")
            scrape(url)
        return (cpu_s(proc.pid) - before) / SCRAPES * 1e3
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main():
    binary = os.environ.get("UWSGI_EXPORTER_BIN")
    if not binary:
        print("# uwsgi_exporter: not measured (set UWSGI_EXPORTER_BIN; see bench/uwsgi_exporter.py)")
        return
    if not Path(binary).is_file():
        sys.exit(f"UWSGI_EXPORTER_BIN={binary} is not a file")
    stats_1mb.build()
    theirs = exporter_cpu_ms(binary)
    ours = stats_1mb.native_cpu_ms("1mb")
    print(f"BENCH uwsgi_exporter_1mb_cpu_ms {theirs:.2f} ms")
    print(f"BENCH stats_1mb_cpu_ms {ours:.3f} ms")
    print(f"BENCH uwsgi_exporter_vs_ours_cpu_ratio {theirs / ours:.1f} x")


if __name__ == "__main__":
    main()
