"""Least privilege in Envoy: every Envoy example (and the harness's
test-only topologies, which copy the example's block) lists in
`capability_restriction_config.allowed_capabilities` exactly the Proxy-Wasm
capabilities its module uses, as scripts/capabilities.py derives them from
the built module and the plugin's sources; and Envoy enforces the list: a
host call left out is refused and the count it would have made is missing.
The other host tests run the examples with these lists and check exact
counts, which shows the lists are sufficient.
"""
import re
import sys

import pytest

from conftest import DIST, ROOT, Envoy, free_port, http, value, wait_for, wasm
from harness import EXAMPLES, red_filter_config

sys.path.insert(0, str(ROOT / "scripts"))
import capabilities  # noqa: E402

SUPPORT_SRC = ROOT / "plugins" / "proxy-wasm-support" / "src"
ENVOY_EXAMPLES = ["envoy-red/envoy.yaml", "envoy-uwsgi-stats/envoy.yaml", "nginx-envoy-uwsgi/envoy.yaml",
                  "demo/envoy.yaml", "istio/uwsgi-stats.yaml"]
# YAML block style (the Envoy examples) or JSON (the Istio EnvoyFilter).
_BLOCK = re.compile(r"^(?P<i> *)capability_restriction_config:\n(?P<body>(?:(?P=i)  .*\n)+)", re.M)
_JSON = re.compile(r'"capability_restriction_config": \{"allowed_capabilities": \{(?P<body>[^}]*(?:\{\}[^}]*)*)\}\}')
_MODULE = re.compile(r"(?:filename: dist/|uwsgi-red/)(?P<m>[\w-]+?)(?:\.wasm|/blobs)")


def derived(module):
    return capabilities.capabilities((DIST / f"{module}.wasm").read_bytes(),
                                     [ROOT / "plugins" / module / "src", SUPPORT_SRC])


def example_lists(path):
    """[(module, [capability names])] of every capability block in the
    file, each paired with the first module the file names after it."""
    text = path.read_text()
    out = []
    for m in list(_BLOCK.finditer(text)) + list(_JSON.finditer(text)):
        names = re.findall(r"^\s*(\w+): \{\}\s*$", m.group("body"), re.M) or \
            re.findall(r'"(\w+)": \{\}', m.group("body"))
        module = _MODULE.search(text, m.end())
        assert module, f"{path}: no module after the capability block at {m.start()}"
        out.append((module.group("m"), names))
    return out


@pytest.mark.parametrize("example", ENVOY_EXAMPLES)
def test_example_allows_exactly_what_its_module_uses(example):
    path = EXAMPLES / example
    wasm_count = path.read_text().count("vm_config")
    lists = example_lists(path)
    assert len(lists) == wasm_count, f"{example}: {wasm_count} Wasm configs, {len(lists)} capability blocks"
    for module, names in lists:
        wasm(module)
        want = derived(module)
        assert sorted(names) == names, f"{example} ({module}): keep the list sorted"
        missing, extra = sorted(set(want) - set(names)), sorted(set(names) - set(want))
        assert not missing and not extra, (
            f"{example} ({module}): the module uses {missing} that the example does not allow, and the example "
            f"allows {extra} that the module does not use; regenerate the block with "
            f"`python3 scripts/capabilities.py --yaml INDENT dist/{module}.wasm plugins/{module}/src "
            f"plugins/proxy-wasm-support/src`")


def test_derivation_sees_the_sdk_calls_a_plugin_makes():
    """The derivation keeps what the sources use (uwsgi-stats polls with
    dispatch_http_call and answers with send_http_response) and drops what
    the SDK links but the plugin never calls (gRPC, shared queues, header
    and body mutation)."""
    stats, red, tcp = derived("uwsgi-stats"), derived("red-filter"), derived("uwsgi-tcp")
    assert {"proxy_http_call", "proxy_on_http_call_response", "proxy_send_local_response",
            "proxy_set_tick_period_milliseconds"} <= set(stats)
    imported = {n for mod, n, _ in capabilities.imports_exports((DIST / "red-filter.wasm").read_bytes())[0]}
    assert {"proxy_http_call", "proxy_grpc_call", "proxy_set_header_map_pairs"} <= imported
    for caps in (red, tcp):
        assert not {"proxy_http_call", "proxy_grpc_call", "proxy_enqueue_shared_queue", "proxy_set_property",
                    "proxy_set_buffer_bytes", "proxy_add_header_map_value", "proxy_continue_stream"} & set(caps)
    assert "proxy_send_local_response" not in tcp and "proxy_on_request_headers" not in tcp
    assert "proxy_on_downstream_data" in tcp and "proxy_on_log" in red


REQUESTS = 7


def run_red(tmp_path, name, cfg, admin):
    env = Envoy(name, cfg, tmp_path, admin)
    try:
        env.wait_ready()
        return env
    except BaseException:
        env.stop()
        raise


def test_a_capability_left_out_is_refused(tmp_path):
    """envoy-red with its list counts every request; the same config
    without `proxy_increment_metric`: Envoy refuses the call, logs it, and
    the request counter stays at 0: the list is enforced, not advisory.
    The SDK treats the refusal as an unexpected status and the VM traps on
    it, and under the example's `failure_policy: FAIL_RELOAD` Envoy answers
    the requests after the trap 503 until each reload: an incomplete list is
    an outage, which is why the lists are derived from the modules and
    compared exactly."""
    wasm("red-filter")
    counts = {}
    for variant in ("as shipped", "without proxy_increment_metric"):
        listen, admin = free_port(), free_port()
        cfg = red_filter_config(listen, admin, free_port())
        line = "                    proxy_increment_metric: {}\n"
        assert cfg.count(line) == 1
        if variant != "as shipped":
            cfg = cfg.replace(line, "")
        name = "caps-full" if variant == "as shipped" else "caps-cut"
        env = run_red(tmp_path, name, cfg, admin)
        try:
            codes = []
            for _ in range(REQUESTS):
                code, _, body = http("GET", f"http://127.0.0.1:{listen}/healthz")
                codes.append(code)
                if variant == "as shipped":
                    assert (code, body) == (200, b"ok\n"), variant
            if variant != "as shipped":
                # FAIL_RELOAD (the example's policy): the refused call traps
                # the VM in on_log, after the first answer; the next request,
                # inside the reload backoff (1 s base), is answered 503 by
                # Envoy itself, and so is every one until a reload.
                assert codes[:2] == [200, 503], codes
            requests = lambda: value(env.prometheus(), "uwsgi_red_requests_total")  # noqa: E731
            if variant == "as shipped":
                counts[variant] = wait_for(lambda: requests() == REQUESTS and requests(), 10,
                                           what=f"{REQUESTS} requests counted")
                assert "restricted" not in env.log()
            else:
                wait_for(lambda: "Attempted call to restricted proxy-wasm capability: proxy_increment_metric"
                         in env.log(), 10, what="Envoy refusing proxy_increment_metric")
                counts[variant] = requests()
        finally:
            env.stop()
    assert counts == {"as shipped": REQUESTS, "without proxy_increment_metric": 0}
