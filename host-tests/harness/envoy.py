"""Envoy: the process, and the one place its configurations are rendered.

Configurations come from the examples through checked substitutions
(render.py), or, for test-only topologies (raw tcp_proxy listeners), from
the builders below that use the same stats_tags/cluster snippets as the
examples.
"""
import json
import re
import subprocess
import time
from pathlib import Path

from .client import get_text
from .paths import DIST, EXAMPLES
from .procs import Proc, envoy_bin, wait_port
from .render import RenderError, Sub, render

RED_TAGS = ("method", "code", "code_class", "route", "service", "protocol", "upstream", "reason")
# red-filter's default buckets_seconds in µs (Envoy histograms are integers): OpenTelemetry's
# http.server.request.duration buckets with 0.5, 1 and 2.5 ms below them (name kept for callers).
OTEL_BUCKETS_US = (500, 1000, 2500, 5000, 10000, 25000, 50000, 75000, 100000, 250000, 500000, 750000, 1000000, 2500000,
                   5000000, 7500000, 10000000)


class Envoy(Proc):
    """Envoy with its config written to <log_dir>/<name>.yaml."""

    def __init__(self, name, config_yaml, log_dir, admin_port, concurrency=1, extra_args=()):
        self.config_path = Path(log_dir) / f"{name}.yaml"
        self.config_path.write_text(config_yaml)
        self.admin_port = admin_port
        argv = [envoy_bin(), "-c", str(self.config_path), "--concurrency", str(concurrency),
                # base-id keeps parallel Envoys' shared memory apart.
                "--base-id", str(admin_port), "--log-level", "info", *extra_args]
        super().__init__(name, argv, log_dir)

    def wait_ready(self, timeout=30):
        wait_port(self.admin_port, timeout, self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if get_text(f"http://127.0.0.1:{self.admin_port}/ready", timeout=2).strip() == "LIVE":
                    return self
            except (AssertionError, OSError):
                pass
            if self.poll() is not None:
                raise RuntimeError(f"envoy exited: {self.tail()}")
            time.sleep(0.1)
        raise TimeoutError(f"envoy not ready: {self.tail()}")

    def prometheus(self):
        return get_text(f"http://127.0.0.1:{self.admin_port}/stats/prometheus")

    def stats_json(self):
        return json.loads(get_text(f"http://127.0.0.1:{self.admin_port}/stats?format=json"))


def envoy_validate(config_path, cwd=None):
    """`envoy --mode validate`: (ok, output)."""
    r = subprocess.run([envoy_bin(), "--mode", "validate", "-c", str(config_path)], cwd=cwd,
                       capture_output=True, text=True, timeout=120)
    return r.returncode == 0, r.stdout + r.stderr


def yaml_single_quoted(s):
    """A YAML single-quoted scalar (the examples' form for plugin JSON)."""
    return "'" + s.replace("'", "''") + "'"


_CAP_BLOCK = re.compile(r"^(?P<indent> *)capability_restriction_config:\n(?:(?P=indent)  .*\n)+", re.M)


def capability_block(example, indent):
    """The `capability_restriction_config` block of an example config,
    re-indented: test-only topologies run a module with exactly the
    Proxy-Wasm capabilities its example allows."""
    m = _CAP_BLOCK.search(Path(example).read_text())
    if m is None:
        raise RenderError(f"{example}: no capability_restriction_config block")
    old = len(m.group("indent"))
    return "".join(indent + line[old:] + "\n" for line in m.group(0).splitlines())


def plugin_config_sub(prefix, config):
    """Sub replacing the one `value: '{<prefix>...}'` plugin configuration line."""
    text = config if isinstance(config, str) else json.dumps(config)
    return Sub(re.compile(r"value: '\{" + re.escape(prefix) + r"[^\n]*\}'"), "value: " + yaml_single_quoted(text))


# ------------------------------------------------------------ examples/envoy-red

RED_EXAMPLE = EXAMPLES / "envoy-red" / "envoy.yaml"
_RED_WASM_FILTER = re.compile(
    r"          - name: envoy\.filters\.http\.wasm\n"
    r"            typed_config:\n"
    r"              \"@type\": type\.googleapis\.com/envoy\.extensions\.filters\.http\.wasm\.v3\.Wasm\n"
    r"              config:\n(?P<config>.*?)"
    r"(?=          - name: envoy\.filters\.http\.router\n)", re.S)


def red_filter_config(listen_port, admin_port, upstream_port, plugin_config=None, wasm_path=None,
                      filter_kind="http", extra_routes=""):
    """examples/envoy-red/envoy.yaml with test ports and the built module.
    filter_kind: "http" (red-filter as HTTP filter), "access_log" (the same
    module and config as an access logger), "noop" (dist/noop-filter.wasm in
    its place), "none" (no Wasm). extra_routes: YAML route entries inserted
    before the catch-all route."""
    wasm_path = str(wasm_path or (DIST / ("noop-filter.wasm" if filter_kind == "noop" else "red-filter.wasm")))
    subs = [("port_value: 10000", f"port_value: {listen_port}"),
            ("port_value: 9901", f"port_value: {admin_port}"),
            ("port_value: 8000", f"port_value: {upstream_port}"),
            ("filename: dist/red-filter.wasm", f"filename: {wasm_path}")]
    if plugin_config is not None:
        subs.append(plugin_config_sub("", plugin_config))
    if extra_routes:
        catch_all = "              - match: {prefix: \"/\"}\n"
        subs.append((catch_all, extra_routes.rstrip("\n") + "\n" + catch_all))
    text = render(RED_EXAMPLE, subs)
    if filter_kind in ("http", "noop"):
        return text
    if filter_kind == "none":
        return render(text, [Sub(_RED_WASM_FILTER, "")])
    if filter_kind == "access_log":
        m = _RED_WASM_FILTER.search(text)
        if m is None:
            raise RenderError(f"{RED_EXAMPLE}: Wasm HTTP filter block not found")
        access_log = ("          access_log:\n"
                      "          - name: envoy.access_loggers.wasm\n"
                      "            typed_config:\n"
                      "              \"@type\": "
                      "type.googleapis.com/envoy.extensions.access_loggers.wasm.v3.WasmAccessLog\n"
                      "              config:\n" + m.group("config"))
        return render(text, [Sub(_RED_WASM_FILTER, ""),
                             ("          http_filters:\n", access_log + "          http_filters:\n")])
    raise ValueError(f"filter_kind {filter_kind!r}")


# ------------------------------------------------------ examples/envoy-uwsgi-stats

STATS_EXAMPLE = EXAMPLES / "envoy-uwsgi-stats" / "envoy.yaml"


def uwsgi_stats_config(admin_port, public_port, snapshot_port, app_port, poller_config=None,
                       stats_clusters=None, wasm_path=None):
    """examples/envoy-uwsgi-stats/envoy.yaml with test ports, the built
    module, the given poller config, and (when given) one STATIC cluster per
    stats target {cluster_name: port} instead of the example's."""
    subs = [("port_value: 9901", f"port_value: {admin_port}"),
            ("port_value: 10000", f"port_value: {public_port}"),
            ("port_value: 9902", f"port_value: {snapshot_port}"),
            ("port_value: 9090", f"port_value: {app_port}"),
            # the poller singleton and the admin-mode filter share one module
            ("filename: dist/uwsgi-stats.wasm", f"filename: {wasm_path or DIST / 'uwsgi-stats.wasm'}", 2)]
    if poller_config is not None:
        subs.append(plugin_config_sub('"targets"', poller_config))
    if stats_clusters is not None:
        subs.append(Sub(re.compile(r"  # One cluster per uWSGI stats server.*\Z", re.S),
                        "".join(cluster_yaml(n, p, connect_timeout="0.5s") for n, p in stats_clusters.items())))
    return render(STATS_EXAMPLE, subs)


# ---------------------------------------------------- examples/nginx-envoy-uwsgi

TCP_EXAMPLE = EXAMPLES / "nginx-envoy-uwsgi" / "envoy.yaml"


def uwsgi_tcp_example_config(admin_port, listen_port, uwsgi_port, wasm_path=None, plugin_config=None):
    """examples/nginx-envoy-uwsgi/envoy.yaml with test ports, the built
    module and (when given) another plugin configuration."""
    subs = [("port_value: 9901", f"port_value: {admin_port}"),
            ("port_value: 9090", f"port_value: {listen_port}"),
            ("port_value: 3031", f"port_value: {uwsgi_port}"),
            ("filename: dist/uwsgi-tcp.wasm", f"filename: {wasm_path or DIST / 'uwsgi-tcp.wasm'}")]
    if plugin_config is not None:
        subs.append(plugin_config_sub("", plugin_config))
    return render(TCP_EXAMPLE, subs)


# ------------------------------------------------------------- builders

# The stats_tags rule for label {k}, as Envoy reads it. Generated by
# uwsgi_red_envoy_name::stats_tag_regex, whose tests check this line.
STATS_TAG_REGEX = r"({k}=\.=(.*?);\.;)"


def stats_tags_yaml(tags=RED_TAGS, indent="  "):
    """stats_tags entries turning the plugins' `key=.=value;.;` name
    encoding back into Prometheus labels (the same rules as the examples)."""
    return "".join(f'{indent}- {{tag_name: {k}, regex: "{yaml_double_quoted_body(STATS_TAG_REGEX.format(k=k))}"}}\n'
                   for k in tags)


def envoy_label_value(raw):
    """A label value as Envoy host mode shows it (uwsgi_red_envoy_name's
    escape, mirrored): `;`, `=`, `\\`, control characters and bytes that are
    not valid UTF-8 become `\\xHH`, the rest is kept."""
    out = []
    for ch in bytes(raw).decode("utf-8", "surrogateescape"):
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:  # one byte that is not valid UTF-8
            out.append("\\x%02X" % (o - 0xDC00))
        elif ch in ";=\\" or o < 0x20 or 0x7F <= o <= 0x9F:
            out.extend("\\x%02X" % b for b in ch.encode())
        else:
            out.append(ch)
    return "".join(out)


def yaml_double_quoted_body(s):
    """The inside of a YAML double-quoted scalar holding s."""
    return s.replace("\\", "\\\\").replace('"', '\\"')


def cluster_yaml(name, port, connect_timeout="1s", extra=""):
    """One STATIC loopback cluster as a `clusters:` list entry."""
    return (f"  - name: {name}\n    type: STATIC\n    connect_timeout: {connect_timeout}\n{extra}"
            f"    load_assignment:\n      cluster_name: {name}\n      endpoints:\n      - lb_endpoints:\n"
            f"        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}\n")


def tcp_proxy_config(admin, listeners, clusters, wasm_path, plugin_config, buckets_us=OTEL_BUCKETS_US,
                     flush_interval=None):
    """Bootstrap with tcp_proxy listeners, optionally behind the uwsgi-tcp
    network filter. listeners: (name, port, cluster, with_filter);
    clusters: (name, port)."""
    if not isinstance(plugin_config, str):
        plugin_config = json.dumps(plugin_config)
    ls = ""
    for name, port, cluster, with_filter in listeners:
        filt = f"""
      - name: envoy.filters.network.wasm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
          config:
            name: uwsgi_tcp
            root_id: uwsgi_tcp
            failure_policy: FAIL_RELOAD
            configuration:
              "@type": type.googleapis.com/google.protobuf.StringValue
              value: {yaml_single_quoted(plugin_config)}
{capability_block(TCP_EXAMPLE, " " * 12)}            vm_config:
              vm_id: uwsgi_tcp
              runtime: envoy.wasm.runtime.v8
              code: {{local: {{filename: {wasm_path}}}}}""" if with_filter else ""
        ls += f"""
  - name: {name}
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:{filt}
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: {name}
          cluster: {cluster}"""
    cs = "".join(cluster_yaml(n, p) for n, p in clusters)
    flush = f"stats_flush_interval: {flush_interval}\n" if flush_interval else ""
    return f"""admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
stats_config:
  stats_tags:
{stats_tags_yaml()}  histogram_bucket_settings:
  - match: {{suffix: "_microseconds"}}
    buckets: [{", ".join(str(b) for b in buckets_us)}]
{flush}static_resources:
  listeners:{ls}
  clusters:
{cs}"""


# ------------------------------------------------------------- examples/demo

DEMO_EXAMPLE = EXAMPLES / "demo" / "envoy.yaml"


def demo_config(listen_port, admin_port, app_port, stats_port, dist=None):
    """examples/demo/envoy.yaml (red-filter + the uwsgi-stats singleton in
    one Envoy) with test ports and the built modules."""
    dist = Path(dist or DIST)
    return render(DEMO_EXAMPLE, [("port_value: 10000", f"port_value: {listen_port}"),
                                 ("port_value: 9901", f"port_value: {admin_port}"),
                                 ("port_value: 9090", f"port_value: {app_port}"),
                                 ("port_value: 9191", f"port_value: {stats_port}"),
                                 ("filename: dist/red-filter.wasm", f"filename: {dist / 'red-filter.wasm'}"),
                                 ("filename: dist/uwsgi-stats.wasm", f"filename: {dist / 'uwsgi-stats.wasm'}")])
