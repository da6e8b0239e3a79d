"""The demo's terminal view, computed from the Envoys' /stats/prometheus
scrapes: RED per route from red-filter and uwsgi-tcp, uWSGI's workers and
listen queue from uwsgi-stats, and what the two say together: the time
requests wait for a worker (queue), and how busy the workers are. Pure
functions of the scraped samples (and of earlier scrapes, for rates and
windows), so they are easy to check."""
import math
import re
from collections import defaultdict

RED_REQ = "uwsgi_red_requests_total"
RED_ERR = "uwsgi_red_errors_total"
RED_DUR = "uwsgi_red_request_duration_microseconds"
RED_BUCKET = RED_DUR + "_bucket"
WINDOW_S = 5.0  # rates, means and utilisation over the last few scrapes
# The two fields of the documented uWSGI log format the queue needs:
# %(tmicros), the request start after accept() in µs since the epoch, and
# %(var.HTTP_X_REQUEST_START), the proxy's stamp ("-" when absent).
LOG_FIELDS = re.compile(rb" tmicros=(\d+) x_request_start=(\S+)\s*$")
SKEW_TOLERANCE_US = 10_000  # a stamp later than the start by more is a clock problem, not a queue


def stamp_us(raw):
    """X-Request-Start as µs since the epoch: `t=` optional, seconds with a
    fraction, or an integer whose digit count says s/ms/µs (as the APM
    agents read it). None when absent or unreadable."""
    v = raw[2:] if raw.startswith(b"t=") else raw
    if not re.fullmatch(rb"\d{10}(\.\d{1,6})?|\d{13}|\d{16}", v):
        return None
    if b"." in v:
        whole, frac = v.split(b".")
        return int(whole) * 1_000_000 + int(frac.ljust(6, b"0"))
    return int(v) * {10: 1_000_000, 13: 1000, 16: 1}[len(v)]


def queue_from_log(line):
    """(start_us, queue_s or None, kind) of one request-log line: queue =
    tmicros - stamp, clamped at 0 within SKEW_TOLERANCE_US; kind is "us"
    (red-filter's t=<µs>), "ms" (nginx's t=${msec}), "missing",
    "unparsable" or "skewed". None for a line without the fields."""
    m = LOG_FIELDS.search(line)
    if not m:
        return None
    start, raw = int(m.group(1)), m.group(2)
    if raw == b"-":
        return start, None, "missing"
    t = stamp_us(raw)
    if t is None:
        return start, None, "unparsable"
    if t - start > SKEW_TOLERANCE_US:
        return start, None, "skewed"
    return start, max(0, start - t) / 1e6, "ms" if b"." in raw else "us"


def log_queue_line(entries, now_us):
    """One line: mean and p95 queue over the entries of the last WINDOW_S."""
    recent = [e for e in entries if now_us - e[0] <= WINDOW_S * 1e6]
    qs = sorted(q for _, q, _ in recent if q is not None)
    kinds = defaultdict(int)
    for _, _, k in recent:
        kinds[k] += 1
    if not qs:
        return f"queue from uWSGI's log (tmicros - X-Request-Start), last {WINDOW_S:g}s: no stamped request"
    p95 = qs[min(len(qs) - 1, math.ceil(0.95 * len(qs)) - 1)]
    return (f"queue from uWSGI's log (tmicros - X-Request-Start), last {WINDOW_S:g}s: mean "
            f"{fmt_ms(sum(qs) / len(qs))} ms, p95 {fmt_ms(p95)} ms over {len(qs)} requests (stamped by "
            f"red-filter {kinds['us']}, by nginx t=${{msec}} {kinds['ms']}; no stamp {kinds['missing']}, "
            f"unreadable {kinds['unparsable']}, skewed {kinds['skewed']})")


def quantile(q, buckets):
    """(value, lower, upper) in seconds: the q-quantile interpolated inside
    its bucket as PromQL's histogram_quantile does, with the bucket it falls
    in, from cumulative (le_seconds, count) pairs. The interpolation assumes
    the requests spread evenly within the bucket: only the bucket is
    measured, so both are shown. Above the last bound: (last bound, last
    bound, inf), as PromQL answers."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0
    if total == 0:
        return math.nan, math.nan, math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for le, c in buckets:
        if c >= rank and c > 0:
            if math.isinf(le):
                return lower, lower, le
            value = lower + (le - lower) * (rank - below) / (c - below) if c > below else le
            return value, lower, le
        lower, below = le, c
    return lower, lower, math.inf


def red_by_route(samples):
    """{(protocol, route): {"req", "err", "buckets": {le_seconds: count}}}
    summed over methods and codes (protocol: http from red-filter, uwsgi
    from uwsgi-tcp)."""
    rows = defaultdict(lambda: {"req": 0.0, "err": 0.0, "buckets": defaultdict(float)})
    for name, labels, v in samples:
        key = (labels.get("protocol", ""), labels.get("route", ""))
        if name == RED_REQ:
            rows[key]["req"] += v
        elif name == RED_ERR:
            rows[key]["err"] += v
        elif name == RED_BUCKET:
            rows[key]["buckets"][float(labels["le"]) / 1e6] += v
    return rows


def uwsgi_state(samples, target="app"):
    """Workers (busy/idle, requests, running time) and the listen queue, as
    uwsgi-stats exported them for `target`."""
    st = {"up": None, "queue": None, "polled": None, "workers": defaultdict(dict)}
    for name, labels, v in samples:
        if labels.get("target") != target:
            continue
        if name == "uwsgi_up":
            st["up"] = v
        elif name == "uwsgi_listen_queue_length":
            st["queue"] = v
        elif name == "uwsgi_scrape_last_success_timestamp_seconds":
            st["polled"] = v
        elif "worker_id" in labels and "core_id" not in labels and "app_id" not in labels:
            w = st["workers"][labels["worker_id"]]
            if name == "uwsgi_worker_busy":
                w["busy"] = v
            elif name == "uwsgi_worker_requests_total":
                w["requests"] = v
            elif name == "uwsgi_worker_running_time_microseconds":
                w["running"] = v / 1e6
    return st


def proxy_totals(samples):
    """(seconds, requests) the proxies measured for requests that reached
    uWSGI (red-filter's direct-response routes have service="unknown")."""
    s = n = 0.0
    for name, labels, v in samples:
        if labels.get("service") == "unknown":
            continue
        if name == RED_DUR + "_sum":
            s += v / 1e6
        elif name == RED_DUR + "_count":
            n += v
    return s, n


def snapshot(samples, t):
    """What the windowed figures need from one scrape at monotonic time t."""
    st = uwsgi_state(samples)
    proxy_s, proxy_n = proxy_totals(samples)
    return {"t": t, "rows": red_by_route(samples), "st": st, "proxy_s": proxy_s, "proxy_n": proxy_n,
            "polled": st["polled"] if st["polled"] is not None else t,
            "workers": {wid: (w.get("running", 0.0), w.get("requests", 0.0)) for wid, w in st["workers"].items()}}


def window_start(history, now):
    """The oldest snapshot at most WINDOW_S older than `now` (else the oldest)."""
    for snap in history:
        if now - snap["t"] <= WINDOW_S + 0.5:
            return snap
    return history[0] if history else None


def fmt_ms(seconds):
    """Milliseconds, three significant digits, never an exponent."""
    if math.isnan(seconds):
        return "-"
    if math.isinf(seconds):
        return "inf"
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else ("0" if ms < 0.001 else f"{ms:.3g}")


def fmt_quantile(q, buckets):
    """"0.75 (0.5–1)": the interpolated quantile and its bucket, in ms."""
    v, lo, hi = quantile(q, buckets)
    if math.isnan(v):
        return "-"
    return f"{fmt_ms(v)} ({fmt_ms(lo)}–{fmt_ms(hi)})"


def saturation(cur, old):
    """Means over the window between two snapshots: proxy mean, app mean
    (Δrunning_time/Δrequests over every worker), queue = proxy − app
    (clamped at 0), utilisation = Δrunning_time / (Δt × workers), and per
    worker (mean, utilisation)."""
    out = {"proxy": math.nan, "app": math.nan, "queue": math.nan, "util": math.nan, "workers": {}}
    if old is None:
        return out
    dn = cur["proxy_n"] - old["proxy_n"]
    if dn > 0:
        out["proxy"] = (cur["proxy_s"] - old["proxy_s"]) / dn
    dt = cur["polled"] - old["polled"]
    run = req = 0.0
    for wid, (r, n) in cur["workers"].items():
        r0, n0 = old["workers"].get(wid, (r, n))
        run, req = run + (r - r0), req + (n - n0)
        out["workers"][wid] = ((r - r0) / (n - n0) if n > n0 else math.nan,
                               (r - r0) / dt if dt > 0 else math.nan)
    if req > 0:
        out["app"] = run / req
    if cur["workers"] and dt > 0:
        out["util"] = run / (dt * len(cur["workers"]))
    if not (math.isnan(out["proxy"]) or math.isnan(out["app"])):
        out["queue"] = max(0.0, out["proxy"] - out["app"])
    return out


def render_view(samples, history, now, log_entries=None, now_us=None):
    """Lines of the view and the history to pass next time (snapshots of
    the last WINDOW_S seconds); `log_entries` are queue_from_log results
    (start_us, queue_s, kind) and now_us the wall clock in µs."""
    cur = snapshot(samples, now)
    old = window_start(history, now)
    rows, prev_rows, dt = cur["rows"], (old or cur)["rows"], now - (old or cur)["t"]
    out = ["RED at the proxy (http: red-filter; uwsgi: nginx -> uwsgi-tcp); latency since start, ms: "
           "quantile interpolated in its bucket (bucket bounds)",
           f"  {'proto':<6} {'route':<30} {'req/s':>7} {'requests':>9} {'errors':>7} {'err %':>6}  "
           f"{'p50 ms (bucket)':<20} {'p95 ms (bucket)':<20}"]
    for (proto, route), r in sorted(rows.items(), key=lambda kv: (kv[0][0], -kv[1]["req"])):
        if not r["req"]:
            continue
        prev = prev_rows.get((proto, route), {}).get("req", r["req"])
        rate = (r["req"] - prev) / dt if dt > 0 else 0.0
        b = list(r["buckets"].items())
        out.append(f"  {proto:<6} {route[:30]:<30} {rate:>7.1f} {int(r['req']):>9} {int(r['err']):>7} "
                   f"{100.0 * r['err'] / r['req']:>6.1f}  {fmt_quantile(0.5, b):<20} {fmt_quantile(0.95, b):<20}")
    st = cur["st"]
    out.append("")
    history = [s for s in history if now - s["t"] <= WINDOW_S + 0.5] + [cur]
    if st["up"] is None:
        out.append("uWSGI (uwsgi-stats in the same Envoy): waiting for the first poll")
        return out, history
    ws = st["workers"]
    busy = sum(1 for w in ws.values() if w.get("busy") == 1)
    sat = saturation(cur, old)
    span = cur["polled"] - (old or cur)["polled"]
    out.append(f"uWSGI (uwsgi-stats in the same Envoy): up={int(st['up'])}  workers busy {busy} / idle "
               f"{len(ws) - busy}  listen queue {int(st['queue'] or 0)}")
    out.append(f"saturation, last {span:.0f}s: proxy mean {fmt_ms(sat['proxy'])} ms - app mean "
               f"{fmt_ms(sat['app'])} ms = queue {fmt_ms(sat['queue'])} ms per request; "
               f"utilisation {fmt_pct(sat['util'])} of {len(ws)} workers")
    if log_entries is not None and now_us is not None:
        out.append(log_queue_line(log_entries, now_us))
    for wid in sorted(ws, key=int):
        w = ws[wid]
        mean, util = sat["workers"].get(wid, (math.nan, math.nan))
        out.append(f"  worker {wid:>2} {'busy' if w.get('busy') == 1 else 'idle':<5} "
                   f"requests {int(w.get('requests', 0)):>6}  mean {fmt_ms(mean):>7} ms  busy {fmt_pct(util):>5}")
    out.append("  (mean = Δrunning_time/Δrequests, busy = Δrunning_time/Δt, both over the window; uWSGI's "
               "avg_rt is left out: it is (avg + rt) / 2, not a mean)")
    return out, history


def fmt_pct(x):
    return "-" if math.isnan(x) else f"{100.0 * x:.0f} %"
