"""PromQL through a real Prometheus' HTTP API, for the tests that check what
users will query (dashboards, rules, scale-out)."""
import json
import math
from urllib.parse import urlencode

from harness import EXAMPLES, free_port, get_text, render


class PromQLError(AssertionError):
    pass


def api(port, path, params):
    body = json.loads(get_text(f"http://127.0.0.1:{port}{path}?{urlencode(params, doseq=True)}"))
    if body.get("status") != "success":
        raise PromQLError(f"{path} {params}: {body}")
    return body["data"]


def query(port, expr, at=None):
    """Instant query: [(labels without __name__, float value)], sorted by labels."""
    params = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    data = api(port, "/api/v1/query", params)
    if data["resultType"] == "scalar":
        return [({}, float(data["result"][1]))]
    out = []
    for r in data["result"]:
        labels = {k: v for k, v in r["metric"].items() if k != "__name__"}
        out.append((labels, float(r["value"][1])))
    return sorted(out, key=lambda lv: sorted(lv[0].items()))


def by(port, expr, label, at=None):
    """{value of `label`: sample value} of an instant query."""
    return {labels.get(label, ""): v for labels, v in query(port, expr, at)}


def scalar(port, expr, at=None):
    """The single sample of a query (fails on 0 or several)."""
    res = query(port, expr, at)
    if len(res) != 1:
        raise PromQLError(f"{expr}: expected one sample, got {res}")
    return res[0][1]


def label_values(port, label, match):
    """Grafana's label_values(match, label) through /api/v1/series."""
    data = api(port, "/api/v1/series", {"match[]": match})
    return sorted({s[label] for s in data if label in s})


def finite(v):
    return not (math.isnan(v) or math.isinf(v))


def example_prometheus_config(envoy_admin_ports, collector_port, collector_red_port=None):
    """examples/prometheus/prometheus.yml with 1 s scrapes and evaluations,
    these Envoy admin ports and Collector exporter ports (StatsD-derived,
    request-log-derived), and the example's rules loaded from their folder."""
    targets = ", ".join(f'"127.0.0.1:{p}"' for p in envoy_admin_ports)
    return render(EXAMPLES / "prometheus" / "prometheus.yml", [
        ("scrape_interval: 15s", "scrape_interval: 1s"),
        ("evaluation_interval: 15s", "evaluation_interval: 1s"),
        ('["127.0.0.1:9901", "127.0.0.1:9911"]', f"[{targets}]"),
        ('["127.0.0.1:9464", "127.0.0.1:9465"]',
         f'["127.0.0.1:{collector_port}", "127.0.0.1:{collector_red_port or free_port()}"]'),
        ("- rules/", f"- {EXAMPLES / 'prometheus' / 'rules'}/", 4),
    ])


def quantile(q, buckets):
    """PromQL histogram_quantile's interpolation over [(upper bound, cumulative
    count)], +Inf last: the oracle the tests compare Prometheus and the
    dashboards with."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:  # rank 0 over an empty first bucket
                return bound
            return prev_bound + (bound - prev_bound) * ((rank - prev_count) / (count - prev_count))
        prev_bound, prev_count = bound, count
    raise AssertionError(buckets)
