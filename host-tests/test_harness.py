"""The harness's own promises: a substitution that no longer matches its
example fails loudly, and every example renders with the stated counts."""
import re

import pytest

from harness import (RenderError, Sub, red_filter_config, render, tcp_proxy_config, uwsgi_stats_config,
                     uwsgi_tcp_example_config)


def test_substitution_counts_are_exact():
    text = "a: 1\nb: 1\nc: 2\n"
    assert render(text, [("c: 2", "c: 3")]) == "a: 1\nb: 1\nc: 3\n"
    assert render(text, [("1", "9", 2)]) == "a: 9\nb: 9\nc: 2\n"
    assert render(text, [Sub(re.compile(r"[ab]: 1"), "x", 2)]) == "x\nx\nc: 2\n"
    assert render(text, [Sub(": ", "=", None)]) == "a=1\nb=1\nc=2\n"
    with pytest.raises(RenderError, match=r"expected '1' 1 time\(s\), found 2"):
        render(text, [("1", "9")])
    with pytest.raises(RenderError, match=r"expected 'd: 4' at least once, found 0"):
        render(text, [Sub("d: 4", "", None)])


def test_regex_replacement_is_literal():
    # A plugin config holding backslashes must not be read as a group reference.
    assert render("v: 'x'\n", [Sub(re.compile(r"'x'"), r"'\1\\d'")]) == "v: '\\1\\\\d'\n"


def test_example_file_errors_name_the_file():
    with pytest.raises(RenderError, match=r"examples/envoy-red/envoy.yaml: expected 'port_value: 4242' 1 time"):
        render("examples/envoy-red/envoy.yaml", [("port_value: 4242", "port_value: 2")])


@pytest.mark.parametrize("kind", ["http", "access_log", "noop", "none"])
def test_red_filter_config_kinds(kind):
    cfg = red_filter_config(20001, 20002, 20003, {"service": "it's"}, filter_kind=kind)
    for port in (20001, 20002, 20003):
        assert cfg.count(f"port_value: {port}") == 1
    assert "dist/red-filter.wasm" not in cfg.replace("/dist/red-filter.wasm", "")
    assert cfg.count("envoy.filters.http.wasm") == (1 if kind in ("http", "noop") else 0)
    assert cfg.count("envoy.access_loggers.wasm") == (1 if kind == "access_log" else 0)
    wasm_lines = [ln.strip() for ln in cfg.splitlines() if "filename:" in ln]
    assert len(wasm_lines) == (0 if kind == "none" else 1)
    if kind != "none":
        # YAML single quotes doubled inside the plugin JSON
        assert "value: '{\"service\": \"it''s\"}'" in cfg
        assert wasm_lines[0].endswith("noop-filter.wasm}}" if kind == "noop" else "red-filter.wasm}}")


def test_other_envoy_configs_render():
    cfg = uwsgi_stats_config(1001, 1002, 1003, 1004, {"targets": [{"name": "a", "cluster": "s_a"}]},
                             {"s_a": 1005})
    assert cfg.count("uwsgi-stats.wasm") == 2 and "port_value: 9191" not in cfg and "cluster_name: s_a" in cfg
    assert "port_value: 3031" not in uwsgi_tcp_example_config(1, 2, 1003)
    tcp = tcp_proxy_config(1, [("l", 2, "c", True)], [("c", 3)], "/m.wasm", {"head_limit": 1})
    assert "value: '{\"head_limit\": 1}'" in tcp and "cluster_name: c" in tcp
