"""Kept for existing callers: the renderer is harness.red_filter_config."""
from harness.envoy import RED_EXAMPLE as EXAMPLE  # noqa: F401
from harness.envoy import red_filter_config


def render(listen_port, admin_port, upstream_port, plugin_config=None, wasm_path=None,
           filter_kind="http", extra_routes=""):
    return red_filter_config(listen_port, admin_port, upstream_port, plugin_config, wasm_path, filter_kind,
                             extra_routes)
