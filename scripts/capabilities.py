#!/usr/bin/env python3
"""The Proxy-Wasm capabilities a module needs: what Envoy's
`capability_restriction_config.allowed_capabilities` must list for the
module to work, and nothing more.

Envoy (proxy-wasm-cpp-host) checks a capability by its bare name:
- every host call the module imports (`env.proxy_*`, and WASI functions
  such as `fd_write` from `wasi_snapshot_preview1`): one not listed is
  linked to a stub that logs "Attempted call to restricted proxy-wasm
  capability: <name>" and fails;
- every `proxy_on_*` callback the module exports: one not listed is never
  called (the host does what it does for a module without that callback:
  continue). `proxy_on_memory_allocate` (the allocator) and the
  `proxy_abi_version_*` markers are not capabilities.

The import section alone over-states what a Rust module calls: the
proxy-wasm SDK's context traits have a default method for every host call
(HTTP and gRPC calls, shared queues, header and body mutation …), and trait
objects keep them all linked. So the list is the module's imports and
exports minus every host call in DENIABLE and every callback in CALLBACKS
whose SDK API the plugin's Rust sources (its crate and the shared
proxy-wasm support crate) never name. A plugin that starts using one names
it in its source, the list grows, and the test that compares each Envoy
example with this list (host-tests/test_capabilities.py) fails until the
example says so. The host tests' exact counts check the other direction.

  capabilities.py MODULE.wasm [SRC_DIR...]            one name per line, sorted
  capabilities.py --yaml INDENT MODULE.wasm [SRC_DIR...]   the YAML block
"""
import re
import sys
from pathlib import Path

# Exports the host looks up without a capability check.
NOT_CAPABILITIES = {"proxy_on_memory_allocate"}

# Host calls that only the named SDK APIs make (proxy-wasm 0.2: traits.rs,
# hostcalls.rs); the SDK never makes them on its own.
DENIABLE = {
    "proxy_http_call": ["dispatch_http_call"],
    "proxy_grpc_call": ["dispatch_grpc_call"],
    "proxy_grpc_stream": ["open_grpc_stream"],
    "proxy_grpc_send": ["send_grpc_stream_message"],
    "proxy_grpc_cancel": ["cancel_grpc_call", "cancel_grpc_stream"],
    "proxy_grpc_close": ["close_grpc_stream"],
    "proxy_get_status": ["get_grpc_status"],
    "proxy_register_shared_queue": ["register_shared_queue"],
    "proxy_resolve_shared_queue": ["resolve_shared_queue"],
    "proxy_enqueue_shared_queue": ["enqueue_shared_queue"],
    "proxy_dequeue_shared_queue": ["dequeue_shared_queue"],
    "proxy_call_foreign_function": ["call_foreign_function"],
    "proxy_set_property": ["set_property"],
    "proxy_set_buffer_bytes": [r"set_http_(request|response)_body", "set_downstream_data", "set_upstream_data",
                               "set_buffer"],
    "proxy_set_header_map_pairs": [r"set_http_(request|response)_(headers|trailers)(_bytes)?", r"set_map(_bytes)?"],
    "proxy_replace_header_map_value": [r"set_http_(request|response)_(header|trailer)(_bytes)?",
                                       r"set_map_value(_bytes)?"],
    "proxy_remove_header_map_value": [r"remove_http_(request|response)_(header|trailer)",
                                      r"set_http_(request|response)_(header|trailer)(_bytes)?",
                                      r"remove_map_value", r"set_map_value(_bytes)?"],
    "proxy_add_header_map_value": [r"add_http_(request|response)_(header|trailer)(_bytes)?", r"add_map_value(_bytes)?"],
    "proxy_send_local_response": ["send_http_response", "send_grpc_response"],
    "proxy_continue_stream": [r"resume_http_(request|response)", "resume_downstream", "resume_upstream"],
    "proxy_close_stream": [r"reset_http_(request|response)", "close_downstream", "close_upstream"],
    "proxy_set_tick_period_milliseconds": ["set_tick_period"],
}

# Callbacks and the SDK trait methods that receive them. Not listed (always
# allowed): proxy_on_context_create, proxy_on_vm_start, proxy_on_configure,
# proxy_on_done and proxy_on_delete, through which the SDK creates, starts,
# configures and frees every context whatever the plugin implements.
CALLBACKS = {
    "proxy_on_request_headers": ["on_http_request_headers"],
    "proxy_on_request_body": ["on_http_request_body"],
    "proxy_on_request_trailers": ["on_http_request_trailers"],
    "proxy_on_response_headers": ["on_http_response_headers"],
    "proxy_on_response_body": ["on_http_response_body"],
    "proxy_on_response_trailers": ["on_http_response_trailers"],
    "proxy_on_log": ["on_log"],
    "proxy_on_tick": ["on_tick"],
    "proxy_on_new_connection": ["on_new_connection"],
    "proxy_on_downstream_data": ["on_downstream_data"],
    "proxy_on_upstream_data": ["on_upstream_data"],
    "proxy_on_downstream_connection_close": ["on_downstream_close"],
    "proxy_on_upstream_connection_close": ["on_upstream_close"],
    "proxy_on_http_call_response": ["on_http_call_response"],
    "proxy_on_grpc_receive_initial_metadata": ["on_grpc_stream_initial_metadata"],
    "proxy_on_grpc_receive_trailing_metadata": ["on_grpc_stream_trailing_metadata"],
    "proxy_on_grpc_receive": ["on_grpc_call_response", "on_grpc_stream_message"],
    "proxy_on_grpc_close": ["on_grpc_stream_close", "on_grpc_call_response"],
    "proxy_on_queue_ready": ["on_queue_ready"],
    "proxy_on_foreign_function": ["on_foreign_function"],
}
WASI_MODULES = {"wasi_snapshot_preview1", "wasi_unstable"}


def _leb(data, i):
    """Unsigned LEB128 at i: (value, next index)."""
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, i
        shift += 7


def _name(data, i):
    n, i = _leb(data, i)
    return data[i:i + n].decode("utf-8"), i + n


def imports_exports(data):
    """([(module, name, kind)], [(name, kind)]) of a Wasm binary."""
    if data[:4] != b"\0asm":
        raise ValueError("not a Wasm module")
    imports, exports = [], []
    i = 8
    while i < len(data):
        sid = data[i]
        size, i = _leb(data, i + 1)
        end = i + size
        if sid == 2:  # imports
            count, j = _leb(data, i)
            for _ in range(count):
                module, j = _name(data, j)
                name, j = _name(data, j)
                kind = data[j]
                j += 1
                if kind == 0:  # function: type index
                    _, j = _leb(data, j)
                elif kind == 1:  # table: reftype + limits
                    j += 1
                    flags, j = _leb(data, j)
                    _, j = _leb(data, j)
                    if flags & 1:
                        _, j = _leb(data, j)
                elif kind == 2:  # memory: limits
                    flags, j = _leb(data, j)
                    _, j = _leb(data, j)
                    if flags & 1:
                        _, j = _leb(data, j)
                elif kind == 3:  # global: valtype + mutability
                    j += 2
                else:
                    raise ValueError(f"import kind {kind}")
                imports.append((module, name, kind))
        elif sid == 7:  # exports
            count, j = _leb(data, i)
            for _ in range(count):
                name, j = _name(data, j)
                kind = data[j]
                _, j = _leb(data, j + 1)
                exports.append((name, kind))
        i = end
    return imports, exports


def _source_text(src_dirs):
    return "\n".join(p.read_text(errors="replace") for d in src_dirs for p in sorted(Path(d).rglob("*.rs")))


def _named(text, apis, call):
    """Whether the sources name any of `apis`: called (`name(`, `::name(`)
    when `call`, else implemented (`fn name(`)."""
    for api in apis:
        pat = rf"\b(?:{api})\s*\(" if call else rf"\bfn\s+(?:{api})\s*\("
        if re.search(pat, text):
            return True
    return False


def capabilities(data, src_dirs=()):
    """Sorted capability names the module uses; with the plugin's Rust
    source directories, without the SDK-linked ones the sources never use."""
    imports, exports = imports_exports(data)
    text = _source_text(src_dirs) if src_dirs else None
    caps = set()
    for module, name, kind in imports:
        if kind != 0:
            continue
        if module == "env" and name.startswith("proxy_"):
            caps.add(name)
        elif module in WASI_MODULES:
            caps.add(name)
        else:
            raise ValueError(f"import {module}.{name} is neither Proxy-Wasm nor WASI")
    for name, kind in exports:
        if kind == 0 and name.startswith("proxy_on_") and name not in NOT_CAPABILITIES:
            caps.add(name)
    if text is not None:
        caps = {c for c in caps
                if not (c in DENIABLE and not _named(text, DENIABLE[c], call=True))
                and not (c in CALLBACKS and not _named(text, CALLBACKS[c], call=False))}
    return sorted(caps)


def yaml_block(caps, indent):
    pad = " " * indent
    return (f"{pad}capability_restriction_config:\n{pad}  allowed_capabilities:\n"
            + "".join(f"{pad}    {c}: {{}}\n" for c in caps))


def main(argv):
    if len(argv) >= 2 and argv[1] != "--yaml":
        print("\n".join(capabilities(Path(argv[1]).read_bytes(), argv[2:])))
        return 0
    if len(argv) >= 4 and argv[1] == "--yaml":
        sys.stdout.write(yaml_block(capabilities(Path(argv[3]).read_bytes(), argv[4:]), int(argv[2])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
