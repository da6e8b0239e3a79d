"""The generated JSON Schemas (dist/<plugin>.schema.json, `uwsgi-red
schema`) and the plugins' own parsers (`uwsgi-red check-config`) agree on
every committed plugin configuration and on the whole config fuzz corpus
(fuzz/corpus/config_<plugin>/): both accept, or both refuse and the schema
names the key check-config names. The one allowed difference: check-config
refuses what the schema cannot state, and then only at a key whose schema
`description` says what else is checked (template syntax, increasing
buckets, byte lengths, unique target names), or for input that is not one
JSON document as JSON Schema sees it (invalid UTF-8, a repeated key, NaN, a
lone surrogate, over 1 MiB).
"""
import json
import re
import subprocess
from collections import Counter

import jsonschema
import pytest

from harness import DIST, EXAMPLES, ROOT, cli_bin

PLUGINS = ("red-filter", "uwsgi-tcp", "uwsgi-stats", "otel-processor")
# Module file name -> plugin, to find the plugin of an Envoy config block.
MODULES = {f"{p}.wasm": p for p in PLUGINS}


def schema(plugin):
    path = DIST / f"{plugin}.schema.json"
    if not path.exists():
        pytest.fail(f"{path} missing: run ./build.sh build (scripts/build.d/uwsgi-red-cli.sh)")
    s = json.loads(path.read_text())
    jsonschema.Draft4Validator.check_schema(s)
    # The shipped file is exactly what the CLI prints now.
    out = subprocess.run([cli_bin(), "schema", plugin], capture_output=True, check=True, timeout=30).stdout
    assert json.loads(out) == s
    return s


def check_config(plugin, data):
    r = subprocess.run([cli_bin(), "check-config", plugin, "-"], input=data, capture_output=True, timeout=30)
    assert r.returncode in (0, 1), r.stderr
    if r.returncode == 0:
        return None
    m = re.search(rb"invalid plugin configuration at `([^`]*)`", r.stderr)
    assert m, r.stderr
    return m.group(1).decode().lstrip(".")


class NotJson(ValueError):
    pass


def load(data):
    """The document as JSON Schema sees it, with what serde_json refuses
    (and Python's json would take) refused."""
    if len(data) > 1 << 20:
        raise NotJson("over 1 MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotJson("not UTF-8") from None
    if not text.strip():
        return {}  # an empty document means "all defaults" to every parser

    def pairs(items):
        keys = [k for k, _ in items]
        dup = [k for k in keys if keys.count(k) > 1]
        if dup:
            raise NotJson(f"repeated key {dup[0]}")
        return dict(items)

    def no_constant(c):
        raise NotJson(c)
    doc = json.loads(text, object_pairs_hook=pairs, parse_constant=no_constant)

    def walk(v):
        if isinstance(v, str) and any(0xD800 <= ord(ch) <= 0xDFFF for ch in v):
            raise NotJson("lone surrogate")
        for x in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()):
            walk(x)
        if isinstance(v, dict):
            for k in v:
                walk(k)
    walk(doc)
    return doc


def named_keys(errors):
    """Every key path the schema's errors name (oneOf branches included)."""
    out = set()
    stack = list(errors)
    while stack:
        e = stack.pop()
        stack.extend(e.context or ())
        path = ".".join(f"[{p}]" if isinstance(p, int) else p for p in e.absolute_path).replace(".[", "[")
        if e.validator == "additionalProperties":
            for k in re.findall(r"'([^']*)'", e.message.split("(")[-1]):
                out.add(f"{path}.{k}" if path else k)
        elif e.validator == "required":
            k = re.match(r"'([^']*)'", e.message).group(1)
            out.add(f"{path}.{k}" if path else k)
        out.add(path)
    return out


def beyond_schema(s, key):
    """Whether the schema says the parser checks more at `key` (or at the
    list or object holding it)."""
    node, said = s, False
    for part in re.findall(r"[^.\[\]]+", key):
        if part.isdigit():
            node = node.get("items", {})
            continue
        props = node.get("properties") or {}
        for branch in node.get("oneOf", []):
            props = {**branch.get("properties", {}), **props}
        if part not in props:
            return False
        node = props[part]
        said = said or "(also checked: " in node.get("description", "")
    return said


def agree(plugin, s, data, where):
    refused_at = check_config(plugin, data)
    try:
        doc = load(data)
    except (NotJson, ValueError) as e:
        # JSON Schema validates JSON values; this input is not one for it.
        assert refused_at is not None, (where, e)
        return "both refuse (not a JSON value to a schema)"
    errors = list(jsonschema.Draft4Validator(s).iter_errors(doc))
    if not errors and refused_at is None:
        return "both accept"
    elif errors and refused_at is not None:
        named = named_keys(errors)
        # The same key, or the parser names a list where the schema names
        # its item (or the other way round).
        same = any(n == refused_at or n.startswith(refused_at + "[") or refused_at.startswith(n + "[")
                   for n in named if n or not refused_at)
        assert same, (where, refused_at, named)
        return "both refuse, same key"
    elif refused_at is not None:
        assert beyond_schema(s, refused_at) or refused_at == "", (where, refused_at)
        return "check-config refuses beyond the schema"
    pytest.fail(f"{where}: the schema refuses what {plugin} accepts: {[e.message for e in errors]}")


def committed_configs():
    """(plugin, JSON text, where) of every plugin configuration in the
    examples: Envoy `configuration` values, the Collector's plugin_config,
    nginx's `proxy_wasm` arguments, the mesh/gateway manifests' plugin
    configs."""
    out = []
    for path in sorted(EXAMPLES.rglob("envoy.yaml")):
        text = path.read_text()
        for m in re.finditer(r"value: '(\{.*?\})'\n(?P<rest>(?:.*\n){0,60})", text):
            mod = re.search(r"(?:filename|uri): [^\n]*?([a-z-]+\.wasm)", m.group("rest"))
            assert mod, f"{path}: no module after the configuration at {m.start()}"
            out.append((MODULES[mod.group(1)], m.group(1).replace("''", "'"), f"{path.relative_to(ROOT)}"))
    # The Collector's YAML, read as JSON (yaml2json of the test control plane).
    xds = subprocess.run(["bash", str(ROOT / "scripts" / "setup.d" / "xds.sh")], capture_output=True, text=True,
                         timeout=900)
    assert xds.returncode == 0, xds.stderr
    otel = subprocess.run([xds.stdout.split()[-1], "yaml2json", str(EXAMPLES / "otel-collector" / "config.yaml")],
                          capture_output=True, text=True, check=True, timeout=30).stdout

    def walk(v):
        if isinstance(v, dict):
            if "plugin_config" in v:
                out.append(("otel-processor", json.dumps(v["plugin_config"]), "examples/otel-collector/config.yaml"))
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(json.loads(otel))
    # nginx (ngx_wasm_module): `module <name> …/<file>.wasm;`, then
    # `proxy_wasm <name> '<JSON>';` wherever a filter is attached.
    for path in sorted(EXAMPLES.rglob("*.conf")):
        text = path.read_text()
        modules = dict(re.findall(r"^\s*module (\w+) [^;\n]*?([a-z-]+\.wasm);", text, re.M))
        for name, conf in re.findall(r"^\s*proxy_wasm (\w+) '(\{.*\})';", text, re.M):
            out.append((MODULES[modules[name]], conf, f"{path.relative_to(ROOT)}"))
    for rel, key in (("istio/red-filter.yaml", "pluginConfig"), ("istio/traffic-extension.yaml", "pluginConfig"),
                     ("envoy-gateway/envoy-extension-policy.yaml", "config"), ("kong/kong.yaml", "config")):
        m = re.search(rf"^\s*{key}: (\{{.*\}})$", (EXAMPLES / rel).read_text(), re.M)
        assert m, rel
        out.append(("red-filter", m.group(1), f"examples/{rel}"))
    return out


def test_committed_configurations_agree():
    configs = committed_configs()
    assert {p for p, _, _ in configs} == set(PLUGINS), configs
    got = Counter()
    for plugin, text, where in configs:
        s = schema(plugin)
        assert check_config(plugin, text.encode()) is None, where
        got[agree(plugin, s, text.encode(), where)] += 1
    print("\nSCHEMA committed:", len(configs), "configurations:", dict(got))
    assert got == {"both accept": len(configs)}


@pytest.mark.parametrize("plugin", PLUGINS)
def test_fuzz_corpus_agrees(plugin):
    s = schema(plugin)
    files = sorted((ROOT / "fuzz" / "corpus" / f"config_{plugin.replace('-', '_')}").iterdir())
    assert files
    got = Counter(agree(plugin, s, f.read_bytes(), str(f.relative_to(ROOT))) for f in files)
    print(f"\nSCHEMA {plugin}: {len(files)} corpus files: {dict(got)}")
    assert sum(got.values()) == len(files)


def test_schema_names_what_the_parser_names():
    """Hand-made refusals, one per kind of key, on each side."""
    cases = {
        "red-filter": [b'{"max_seris": 1}', b'{"max_series": 0}', b'{"max_series": 1.0}',
                       b'{"exposition": "all"}', b'{"metrics_path": "metrics"}', b'{"service": ""}',
                       b'{"route_patterns": "/a"}', b'{"use_route_name": null}', b'[]'],
        "uwsgi-tcp": [b'{"head_limit": 1}', b'{"use_route_name": true}', b'{"service": 7}'],
        "uwsgi-stats": [b'{"targets": []}', b'{"targets": [{"name": "a"}]}', b'{"mode": "admin", "targets": []}',
                        b'{"targets": [{"name": "a", "cluster": "c"}], "interval_ms": 5}'],
        "otel-processor": [b'{"uwsgi_prefixes": [""]}', b'{"gunicorn_duration_field": "T"}',
                           b'{"services": {"a": 1}}'],
    }
    for plugin, docs in cases.items():
        s = schema(plugin)
        for d in docs:
            assert agree(plugin, s, d, d.decode()) != "both accept", d
    # otelwasm hands the processor `null` for an absent plugin_config.
    assert agree("otel-processor", schema("otel-processor"), b"null", "null") == "both accept"
