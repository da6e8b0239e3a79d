"""The demo's terminal view, computed from one Envoy /stats/prometheus
scrape: RED per route from red-filter, workers and listen queue from
uwsgi-stats. Pure functions of the scraped text (and the previous scrape,
for rates), so they are easy to check."""
import math
from collections import defaultdict

RED_REQ = "uwsgi_red_requests_total"
RED_ERR = "uwsgi_red_errors_total"
RED_BUCKET = "uwsgi_red_request_duration_microseconds_bucket"


def quantile_bound(q, buckets):
    """Upper bound (seconds) of the bucket holding quantile q, from
    cumulative (le_seconds, count) pairs. Interpolating inside a bucket (as
    PromQL's histogram_quantile does) would invent precision: with the 5 ms
    first bucket every fast request would read as 2.5 ms."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0
    if total == 0:
        return math.nan
    for le, c in buckets:
        if c >= q * total:
            return le
    return math.inf


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
    """Workers (busy/idle, requests, average response time) and the listen
    queue, as uwsgi-stats exported them for `target`."""
    st = {"up": None, "queue": None, "workers": defaultdict(dict)}
    for name, labels, v in samples:
        if labels.get("target") != target:
            continue
        if name == "uwsgi_up":
            st["up"] = v
        elif name == "uwsgi_listen_queue_length":
            st["queue"] = v
        elif "worker_id" in labels and "core_id" not in labels and "app_id" not in labels:
            w = st["workers"][labels["worker_id"]]
            if name == "uwsgi_worker_busy":
                w["busy"] = v
            elif name == "uwsgi_worker_requests_total":
                w["requests"] = v
            elif name == "uwsgi_worker_average_response_time_microseconds":
                w["avg_rt"] = v / 1e6
    return st


def fmt_ms(seconds):
    if math.isnan(seconds):
        return "-"
    if math.isinf(seconds):
        return ">10000"
    return f"{seconds * 1e3:g}"


def render_view(samples, prev_rows, dt):
    """Lines of the view; rates are per second since the previous scrape."""
    rows = red_by_route(samples)
    out = ["RED at the proxy (http: red-filter; uwsgi: nginx -> uwsgi-tcp)",
           f"  {'proto':<6} {'route':<30} {'req/s':>7} {'requests':>9} {'errors':>7} {'err %':>6} "
           f"{'p50 ≤ms':>8} {'p95 ≤ms':>8}"]
    for (proto, route), r in sorted(rows.items(), key=lambda kv: (kv[0][0], -kv[1]["req"])):
        if not r["req"]:
            continue
        prev = prev_rows.get((proto, route), {}).get("req", 0.0) if prev_rows else r["req"]
        rate = (r["req"] - prev) / dt if dt > 0 else 0.0
        b = list(r["buckets"].items())
        out.append(f"  {proto:<6} {route[:30]:<30} {rate:>7.1f} {int(r['req']):>9} {int(r['err']):>7} "
                   f"{100.0 * r['err'] / r['req']:>6.1f} {fmt_ms(quantile_bound(0.5, b)):>8} "
                   f"{fmt_ms(quantile_bound(0.95, b)):>8}")
    st = uwsgi_state(samples)
    out.append("")
    if st["up"] is None:
        out.append("uWSGI (uwsgi-stats in the same Envoy): waiting for the first poll")
        return out, rows
    ws = st["workers"]
    busy = sum(1 for w in ws.values() if w.get("busy") == 1)
    out.append(f"uWSGI (uwsgi-stats in the same Envoy): up={int(st['up'])}  workers busy {busy} / idle "
               f"{len(ws) - busy}  listen queue {int(st['queue'] or 0)}")
    for wid in sorted(ws, key=int):
        w = ws[wid]
        out.append(f"  worker {wid:>2} {'busy' if w.get('busy') == 1 else 'idle':<5} "
                   f"requests {int(w.get('requests', 0)):>6}  avg_rt {w.get('avg_rt', 0.0) * 1e3:7.2f} ms")
    return out, rows
