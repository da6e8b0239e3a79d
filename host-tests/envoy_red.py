"""Renders examples/envoy-red/envoy.yaml for tests, the demo and the bench,
so the example users copy is the configuration that gets exercised."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "envoy-red" / "envoy.yaml"


def render(listen_port, admin_port, upstream_port, plugin_config=None, wasm_path=None,
           filter_kind="http", extra_routes=""):
    """filter_kind: "http" (red-filter as HTTP filter), "access_log" (as an
    access logger), "noop" (the no-op Wasm filter), "none" (no Wasm)."""
    text = EXAMPLE.read_text()
    text = text.replace("port_value: 10000", f"port_value: {listen_port}")
    text = text.replace("port_value: 9901", f"port_value: {admin_port}")
    text = text.replace("port_value: 8000", f"port_value: {upstream_port}")
    wasm = wasm_path or str(ROOT / "dist" / "red-filter.wasm")
    text = text.replace("filename: dist/red-filter.wasm", f"filename: {wasm}")
    if plugin_config is not None:
        start = text.index("value: '{")
        end = text.index("}'", start) + 2
        text = text[:start] + "value: '" + json.dumps(plugin_config) + "'" + text[end:]
    if extra_routes:
        text = text.replace("              - match: {prefix: \"/\"}", extra_routes + "              - match: {prefix: \"/\"}")
    head, sep, rest = text.partition("          http_filters:\n")
    wasm_block, router_sep, tail = rest.partition("          - name: envoy.filters.http.router\n")
    if filter_kind == "none":
        wasm_block = ""
    elif filter_kind == "noop":
        wasm_block = wasm_block.replace(wasm, str(ROOT / "dist" / "noop-filter.wasm"))
    elif filter_kind == "access_log":
        # Same plugin config, loaded as an access logger of the HCM.
        cfg = wasm_block.split("              config:\n", 1)[1]
        access_log = ("          access_log:\n"
                      "          - name: envoy.access_loggers.wasm\n"
                      "            typed_config:\n"
                      "              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.wasm.v3.WasmAccessLog\n"
                      "              config:\n" + cfg)
        head = head + access_log
        wasm_block = ""
    return head + sep + wasm_block + router_sep + tail
