"""dist/otel-processor.wasm under wasmtime (PyPI) playing the otelwasm host:
the host imports of module `opentelemetry.io/wasm` are provided here, the
exports are called with OTLP protobuf fixtures built with opentelemetry-proto.
Fast; the real Collector test is test_otel_collector.py.
"""
import json
import os
import tempfile

import wasmtime  # noqa: E402  (PIP_NEEDS in build.sh)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData  # noqa: E402
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData  # noqa: E402

from conftest import wasm  # noqa: E402

HOST_MODULE = "opentelemetry.io/wasm"
_ENGINE = wasmtime.Engine()
_MODULES = {}


class Guest:
    """One instance of the processor with a fake otelwasm host around it."""

    def __init__(self, plugin_config):
        path = wasm("otel-processor")
        if path not in _MODULES:
            _MODULES[path] = wasmtime.Module.from_file(_ENGINE, path)
        self.module = _MODULES[path]
        self.store = wasmtime.Store(_ENGINE)
        wasi = wasmtime.WasiConfig()
        fd, self.stderr_path = tempfile.mkstemp(prefix="otel-guest-stderr-")
        os.close(fd)
        wasi.stderr_file = self.stderr_path
        self.store.set_wasi(wasi)
        self.config = plugin_config
        self.payload = b""
        self.result = None
        self.reason = None
        self.fetches = []  # (limit, returned) of every current* call
        linker = wasmtime.Linker(_ENGINE)
        linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        read_ty = wasmtime.FuncType([i32, i32], [i32])
        set_ty = wasmtime.FuncType([i32, i32], [])
        for name in ("currentMetrics", "currentLogs"):
            linker.define_func(HOST_MODULE, name, read_ty,
                               lambda c, b, l: self._give(c, b, l, self.payload, "payload"), access_caller=True)
        linker.define_func(HOST_MODULE, "getPluginConfig", read_ty,
                           lambda c, b, l: self._give(c, b, l, self.config, "config"), access_caller=True)
        for name in ("setResultMetrics", "setResultLogs"):
            linker.define_func(HOST_MODULE, name, set_ty, self._set_result, access_caller=True)
        linker.define_func(HOST_MODULE, "setResultStatusReason", set_ty, self._set_reason, access_caller=True)
        self.instance = linker.instantiate(self.store, self.module)
        self.exports = self.instance.exports(self.store)
        if "_initialize" in self.exports:
            self.exports["_initialize"](self.store)

    # otelwasm's rule: copy when it fits, else return 0 (the guest retries).
    def _give(self, caller, buf, limit, payload, what):
        n = len(payload) if len(payload) <= limit else 0
        if n:
            caller["memory"].write(caller, payload, buf)
        if what == "payload":
            self.fetches.append((limit, n))
        return n

    def _set_result(self, caller, buf, n):
        self.result = bytes(caller["memory"].read(caller, buf, buf + n))

    def _set_reason(self, caller, buf, n):
        self.reason = bytes(caller["memory"].read(caller, buf, buf + n)).decode()

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def call(self, export, payload):
        self.payload, self.result, self.reason = payload, None, None
        status = self.exports[export](self.store)
        return status, self.result, self.reason


def gunicorn_batch(n_status_metrics=1, value=3):
    md = MetricsData()
    rm = md.resource_metrics.add()
    sm = rm.scope_metrics.add()
    for i in range(n_status_metrics):
        m = sm.metrics.add()
        m.name = "app.gunicorn.request.status.200" if i % 2 == 0 else "app.gunicorn.request.status.502"
        m.sum.aggregation_temporality = 1
        m.sum.is_monotonic = True
        dp = m.sum.data_points.add()
        dp.as_int = value
        dp.time_unix_nano = 1000 + i
    other = sm.metrics.add()
    other.name = "unrelated.metric"
    other.gauge.data_points.add().as_double = 1.5
    return md


def test_module_shape():
    imports = {(i.module, i.name) for i in _module().imports}
    ours = {n for m, n in imports if m == HOST_MODULE}
    assert ours == {"currentMetrics", "currentLogs", "getPluginConfig", "setResultMetrics", "setResultLogs",
                    "setResultStatusReason"}
    assert {m for m, _ in imports} <= {HOST_MODULE, "wasi_snapshot_preview1"}
    exports = {e.name for e in _module().exports}
    # Exactly these: no `_initialize` (otelwasm calls it only when exported).
    assert exports == {"memory", "getSupportedTelemetry", "processMetrics", "processLogs"}
    g = Guest(b"{}")
    assert g.exports["getSupportedTelemetry"](g.store) == 0b11  # metrics | logs


def _module():
    Guest(b"{}")
    return next(iter(_MODULES.values()))


def test_metrics_rewritten_through_the_abi():
    g = Guest(json.dumps({"services": {"app": "shop"}}).encode())
    status, result, reason = g.call("processMetrics", gunicorn_batch(2).SerializeToString())
    assert (status, reason) == (0, None)
    out = MetricsData.FromString(result)
    assert [m.name for rm in out.resource_metrics for sm in rm.scope_metrics for m in sm.metrics] \
        == ["unrelated.metric", "http.server.request.count"]
    rewritten = out.resource_metrics[1]
    assert {kv.key: kv.value.string_value for kv in rewritten.resource.attributes} == {"service.name": "shop"}
    pts = rewritten.scope_metrics[0].metrics[0].sum.data_points
    got = [({kv.key: (kv.value.int_value or kv.value.string_value) for kv in p.attributes}, p.as_int) for p in pts]
    assert got == [({"http.response.status_code": 200}, 3),
                   ({"http.response.status_code": 502, "error.type": "502"}, 3)]


def test_payload_larger_than_guest_buffer_is_grown_and_retried():
    g = Guest(b"{}")
    batch = gunicorn_batch(6000).SerializeToString()
    assert len(batch) > 64 * 1024
    status, result, reason = g.call("processMetrics", batch)
    assert (status, reason) == (0, None)
    assert g.fetches == [(64 * 1024, 0), (256 * 1024, 0), (1024 * 1024, len(batch))]
    out = MetricsData.FromString(result)
    n = sum(len(m.sum.data_points) for rm in out.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
            if m.name == "http.server.request.count")
    assert n == 6000
    # The grown buffer is kept: the next call fits at once.
    g.fetches.clear()
    g.call("processMetrics", batch)
    assert g.fetches == [(1024 * 1024, len(batch))]


def test_garbage_passes_through_with_status_reason():
    g = Guest(b"{}")
    garbage = b"\x0a\xff\xff\xff\xff\x0fgarbage"
    for export in ("processMetrics", "processLogs"):
        status, result, reason = g.call(export, garbage)
        assert (status, result) == (0, garbage)
        assert reason and "passed through" in reason


def test_unknown_config_key_is_named_and_data_passes():
    g = Guest(b'{"uwsgi_prefix": ["x"]}')
    batch = gunicorn_batch(1).SerializeToString()
    status, result, reason = g.call("processMetrics", batch)
    assert (status, result) == (0, batch)
    assert "uwsgi_prefix" in reason


def test_absent_plugin_config_is_null():
    g = Guest(b"null")
    status, result, reason = g.call("processMetrics", gunicorn_batch(1).SerializeToString())
    assert (status, reason) == (0, None)
    assert "http.server.request.count" in str(MetricsData.FromString(result))


def test_logs_through_the_abi():
    g = Guest(b"{}")
    ld = LogsData()
    sl = ld.resource_logs.add().scope_logs.add()
    lines = ['127.0.0.1 - - [22/Nov/2026:04:12:31 +0000] "GET /error HTTP/1.1" 500 6 "-" "curl/7.88.1"',
             "Traceback (most recent call last):"]
    for line in lines:
        sl.log_records.add().body.CopyFrom(AnyValue(string_value=line))
    status, result, reason = g.call("processLogs", ld.SerializeToString())
    assert (status, reason) == (0, None)
    recs = LogsData.FromString(result).resource_logs[0].scope_logs[0].log_records
    a0 = {kv.key: kv.value for kv in recs[0].attributes}
    assert a0["http.response.status_code"].int_value == 500 and a0["error.type"].string_value == "500"
    assert a0["url.path"].string_value == "/error" and a0["uwsgi_red.log.parsed"].bool_value
    assert [KeyValue(key=kv.key, value=kv.value) for kv in recs[1].attributes] \
        == [KeyValue(key="uwsgi_red.log.parsed", value=AnyValue(bool_value=False))]
    assert recs[1].body.string_value == lines[1]


MIB = 1024 * 1024


def test_batch_over_rewrite_limit_passes_through_unchanged():
    """Regression: a batch over the 64 MiB buffer used to come back EMPTY."""
    g = Guest(b"{}")
    big = b"\x0a" + b"\x00" * (64 * MIB)  # size alone refuses it: not decoded
    status, result, reason = g.call("processMetrics", big)
    assert status == 0 and result == big
    assert "over the 64 MiB rewrite limit" in reason
    assert [lim for lim, _ in g.fetches] == [64 * 1024 * 4 ** i for i in range(7)]
    assert g.fetches[-1] == (256 * MIB, len(big))
    assert g.stderr().splitlines() == [
        f"uwsgi-red otel-processor: metrics batch refused (too_big, 1 so far): {reason}"]
    # The next, small batch is rewritten as usual.
    status, result, reason = g.call("processMetrics", gunicorn_batch(1).SerializeToString())
    assert (status, reason) == (0, None) and "http.server.request.count" in str(MetricsData.FromString(result))


def test_unreadable_batch_is_never_answered_empty():
    """The host answers 0 for an empty batch and for one larger than any
    buffer: the guest cannot tell them apart, so it sets no result and
    returns an error status (otelwasm then keeps or fails the batch, never
    replaces it with nothing)."""
    g = Guest(b"{}")
    status, result, reason = g.call("processLogs", b"")
    assert (status, result) == (1, None)
    assert "empty or larger than that" in reason and "left to the host" in reason
    assert g.fetches[-1] == (256 * MIB, 0)
    assert "(unreadable, 1 so far)" in g.stderr()


def test_refusals_go_to_stderr_rate_limited():
    g = Guest(b'{"servces": {}}')
    batch = gunicorn_batch(1).SerializeToString()
    for _ in range(5):
        status, result, reason = g.call("processMetrics", batch)
        assert (status, result) == (0, batch) and "servces" in reason
    lines = g.stderr().splitlines()
    # 1st, 2nd and 4th refusal of a reason are written, with the count.
    assert [l.split("(", 1)[1].split(")")[0] for l in lines] == \
        ["config_rejected, 1 so far", "config_rejected, 2 so far", "config_rejected, 4 so far"]
    assert all("`servces`" in l for l in lines)
