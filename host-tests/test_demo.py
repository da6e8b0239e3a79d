"""./build.sh demo's script, run as a user would (bounded, non-interactive)
and interrupted with Ctrl-C: it counts exactly what it sent, shows RED per
route and uWSGI's workers, says where to look next, and leaves nothing
running."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

from harness import ROOT, wasm

DEMO = ROOT / "examples" / "demo" / "demo.py"
# demo.py imports the harness from host-tests, as ./build.sh demo runs it.
DEMO_ENV = {**os.environ, "PYTHONPATH": str(ROOT / "host-tests")}


def closed(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def ports(out):
    """Every port the demo said it started something on."""
    found = [re.search(r"listener 127\.0\.0\.1:(\d+), admin 127\.0\.0\.1:(\d+)", out),
             re.search(r"http-socket 127\.0\.0\.1:(\d+), stats server 127\.0\.0\.1:(\d+), "
                       r"uwsgi socket 127\.0\.0\.1:(\d+)", out),
             re.search(r"starting nginx 127\.0\.0\.1:(\d+) -> Envoy with uwsgi-tcp \(admin 127\.0\.0\.1:(\d+)\)", out)]
    assert all(found), out[-2000:]
    return [int(p) for m in found for p in m.groups()]


def test_bounded_run_counts_exactly_and_cleans_up():
    wasm("red-filter"), wasm("uwsgi-stats"), wasm("uwsgi-tcp")
    r = subprocess.run([sys.executable, str(DEMO), "--seconds", "6", "--requests", "1200", "--plain", "--hold", "0"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=DEMO_ENV)
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-3000:]
    m = re.search(r"answered (\d+) requests \((\d+) failed\), counted (\d+) \(red-filter (\d+), uwsgi-tcp (\d+)\)",
                  out)
    assert m, out[-3000:]
    answered, failed, counted, red, tcp = (int(x) for x in m.groups())
    assert (answered, failed, counted) == (1200, 0, 1200) and red + tcp == 1200 and red > 0 and tcp > 0
    for proto in ("http", "uwsgi"):  # RED per route from both plugins in the view
        assert re.search(rf"^  {proto} +/users/\{{id\}} +\d", out, re.M), proto
    # Latency as an interpolated quantile with the bucket it falls in: the
    # burst's /slow?s=0.4 requests sit in the (250, 500] ms bucket or above.
    slow = re.search(r"^  http +/slow +[\d.]+ +\d+ +\d+ +[\d.]+  ([\d.]+) \(([\d.]+)–([\d.inf]+)\)", out, re.M)
    assert slow, out[-3000:]
    p50, lo, hi = (float(x) for x in slow.groups())
    assert lo < p50 <= hi and lo >= 250, slow.group(0)
    assert re.search(r"workers busy \d / idle \d  listen queue \d+", out)
    last = out.split("answered")[0].rsplit("RED at the proxy", 1)[1]
    workers = re.findall(r"^  worker +\d +(?:busy|idle) +requests +\d+  mean +([\d.]+|-) ms  busy +(\d+ %|-)",
                         last, re.M)
    assert len(workers) == 4, last
    # Queue time and utilisation: the bursts (8 slow requests on 4 workers)
    # make requests wait for a worker, which proxy mean - app mean shows.
    sat = re.findall(r"^saturation, last \d+s: proxy mean ([\d.]+) ms - app mean ([\d.]+) ms = queue ([\d.]+) ms "
                     r"per request; utilisation (\d+) % of 4 workers", out, re.M)
    assert sat, out[-3000:]
    assert max(float(q) for _, _, q, _ in sat) > 1.0, sat
    assert max(int(u) for *_, u in sat) > 0, sat
    assert "avg_rt is left out: it is (avg + rt) / 2, not a mean" in out
    # Per request from uWSGI's log: every request that reached uWSGI carried
    # a stamp (red-filter's t=<µs> or nginx's t=${msec}), none skewed.
    logq = re.findall(r"^queue from uWSGI's log \(tmicros - X-Request-Start\), last 5s: mean ([\d.]+) ms, "
                      r"p95 ([\d.]+) ms over (\d+) requests \(stamped by red-filter (\d+), by nginx t=\$\{msec\} "
                      r"(\d+); no stamp (\d+), unreadable (\d+), skewed (\d+)\)$", out, re.M)
    assert logq, out[-3000:]
    assert any(int(us) > 0 and int(ms) > 0 for *_, us, ms, _, _, _ in logq), logq
    assert all((missing, bad, skewed) == ("0", "0", "0") for *_, missing, bad, skewed in logq), logq
    assert max(float(mean) for mean, *_ in logq) > 1.0, logq
    # Over the whole run the two ways agree: every request that reached
    # uWSGI is counted by the proxies, by uWSGI and in its log.
    m = re.search(r"^queue over the whole run: proxy mean ([\d.]+) ms - app mean ([\d.]+) ms = ([\d.-]+) ms "
                  r"\((\d+) requests at the proxies, (\d+) in uWSGI\); from uWSGI's log ([\d.]+) ms "
                  r"\((\d+) stamped requests\)$", out, re.M)
    assert m, out[-3000:]
    stats_q, log_q = float(m.group(3)), float(m.group(6))
    assert m.group(4) == m.group(5) == m.group(7), m.group(0)
    assert stats_q > 1.0 and abs(stats_q - log_q) <= max(2.0, 0.25 * log_q), m.group(0)
    for hint in ("/stats/prometheus", "./build.sh viewer", "?target=http://127.0.0.1:",
                 "histogram_quantile(0.95, sum by (le, route) (rate(uwsgi_red_request_duration_microseconds_bucket"):
        assert hint in out
    assert out.rstrip().endswith("stopped uWSGI, Envoy and nginx")
    assert all(closed(p) for p in ports(out))


def test_ctrl_c_stops_everything():
    wasm("red-filter"), wasm("uwsgi-stats"), wasm("uwsgi-tcp")
    p = subprocess.Popen([sys.executable, str(DEMO), "--seconds", "60", "--plain", "--hold", "0"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=DEMO_ENV)
    out = ""
    try:
        deadline = time.monotonic() + 60
        while "RED at the proxy" not in out and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            out += line
        assert "RED at the proxy" in out, out[-3000:]
        p.send_signal(signal.SIGINT)
        rest, _ = p.communicate(timeout=30)
        out += rest
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert p.returncode == 0, out[-3000:]
    assert "Ctrl-C: stopping uWSGI, Envoy and nginx" in out and out.rstrip().endswith("stopped uWSGI, Envoy and nginx")
    assert all(closed(port) for port in ports(out))
