"""Reading Prometheus text exposition with prometheus_client's parser."""


def parse_prometheus(text):
    """[(name, labels dict, value)]."""
    from prometheus_client.parser import text_string_to_metric_families
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.append((s.name, dict(s.labels), s.value))
    return out


def samples(text, name, **match):
    """Samples of one metric name whose labels include `match`."""
    return [(lab, v) for n, lab, v in parse_prometheus(text)
            if n == name and all(lab.get(k) == str(x) for k, x in match.items())]


def value(text, name, **match):
    """Sum of matching samples (0 when none)."""
    return sum(v for _, v in samples(text, name, **match))
