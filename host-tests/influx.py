"""InfluxDB line protocol as Telegraf's `outputs.file` writes it, read back
for the Telegraf comparisons (host-tests/test_telegraf.py, test_influxdb.py
and bench/telegraf_uwsgi.py)."""


def _split(s, sep):
    """Split on `sep` outside double quotes and not after a backslash."""
    out, cur, quoted, i = [], [], False, 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i:i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c == sep and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def _unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            out.append(s[i + 1])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _field(v):
    if v.startswith('"'):
        return _unescape(v[1:-1])
    if v.endswith(("i", "u")):
        return int(v[:-1])
    if v in ("true", "false"):
        return v == "true"
    return float(v)


def parse_line(line):
    """(measurement, {tag: value}, {field: value}, timestamp or None).
    Integer fields (`12i`) come back as int, floats as float, strings as str."""
    parts = _split(line.strip(), " ")
    head, fields = parts[0], parts[1]
    ts = int(parts[2]) if len(parts) > 2 else None
    name, *tags = _split(head, ",")
    tag_map = {}
    for t in tags:
        k, v = _split(t, "=")
        tag_map[_unescape(k)] = _unescape(v)
    field_map = {}
    for f in _split(fields, ","):
        k, v = _split(f, "=")
        field_map[_unescape(k)] = _field(v)
    return _unescape(name), tag_map, field_map, ts


def parse_lines(text):
    return [parse_line(line) for line in text.splitlines() if line.strip() and not line.startswith("#")]
