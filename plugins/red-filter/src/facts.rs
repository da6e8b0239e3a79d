//! The facts of one finished request, one host call per fact.
//!
//! Measured and dropped: Envoy's foreign function `expr_evaluate` can
//! return all of them from one CEL list expression (one host call, one
//! guest allocation: 2 VM entries per request in the access logger instead
//! of 5), but evaluating the expression costs Envoy more CPU than the four
//! or five map and attribute reads it replaces (+8 to +12 µs per request,
//! every interleaved rep; see the README's Cost section).
//!
//! ngx_wasm_module has no `xds.*` attributes (each read would log an error
//! and find nothing), so the module asks once per VM for `ngx.pid`, a
//! property only nginx has, and skips them there.

use uwsgi_red_proxy_wasm::read;

use crate::props;

/// Which host this VM runs in; decided on the first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Unprobed,
    Envoy,
    Nginx,
}

/// What the labels and the histogram need from one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View<'a> {
    pub method: &'a str,
    pub path: Option<&'a str>,
    pub route_name: Option<&'a str>,
    pub upstream: Option<&'a str>,
    /// The backend address that answered (`upstream_label`).
    pub upstream_address: Option<&'a str>,
    /// 0 when no response was sent.
    pub code: u16,
    /// A value read held bytes that are not UTF-8 (shown as U+FFFD).
    pub invalid_utf8: bool,
}

/// Which facts the configuration needs beyond method, path and status.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub route_name: bool,
    pub upstream: bool,
    pub upstream_address: bool,
}

/// The backend address that answered, `host:port`. Envoy's
/// `upstream.address` is exactly that. ngx_wasm_module's `upstream.address`
/// holds the host without the port (and dereferences the peer name without
/// a check when no peer was chosen), so nginx's own `$upstream_addr` is read
/// instead: it lists every try, and the last one answered.
fn upstream_address(source: Source) -> Option<Vec<u8>> {
    match source {
        Source::Nginx => props::bytes(&["ngx", "upstream_addr"])
            .map(|v| uwsgi_red_core::red::last_upstream_addr(&v).to_vec()),
        _ => props::bytes(&["upstream", "address"]),
    }
}

/// One probe per VM, never per request.
pub fn probe() -> Source {
    if props::bytes(&["ngx", "pid"]).is_some() {
        Source::Nginx
    } else {
        Source::Envoy
    }
}

/// Calls `f` with this request's facts; `read_path` is `:path` when the
/// caller already has it.
pub fn with<R>(
    source: Source,
    w: Wanted,
    read_path: Option<Vec<u8>>,
    f: impl FnOnce(View<'_>) -> R,
) -> R {
    let mut invalid = false;
    let mut text = |b: Option<Vec<u8>>| {
        let t = read::text(b?);
        invalid |= t.invalid;
        Some(t.value)
    };
    let method = text(props::request_header_bytes(":method")).unwrap_or_default();
    let code = props::response_header_bytes(":status")
        .and_then(|c| props::status_code(&c))
        .unwrap_or(0);
    let xds = source != Source::Nginx;
    let route_name = if w.route_name && xds {
        text(props::bytes(&["xds", "route_name"]))
    } else {
        None
    };
    let path = if route_name.as_deref().is_some_and(|r| !r.is_empty()) {
        None
    } else {
        text(read_path.or_else(|| props::request_header_bytes(":path")))
    };
    let upstream = if w.upstream && xds {
        text(props::bytes(&["xds", "cluster_name"]))
    } else {
        None
    };
    let upstream_address = if w.upstream_address {
        text(upstream_address(source))
    } else {
        None
    };
    f(View {
        method: &method,
        upstream_address: upstream_address.as_deref(),
        path: path.as_deref(),
        route_name: route_name.as_deref(),
        upstream: upstream.as_deref(),
        code,
        invalid_utf8: invalid,
    })
}
