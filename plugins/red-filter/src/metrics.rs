//! red-filter's own `reason`s of `uwsgi_red_internal_errors_total`; the
//! proxy-wasm host glue is shared with the other plugins
//! (`uwsgi-red-proxy-wasm`), and everything that decides (admission,
//! folding, counting failures) is core code tested natively.

pub use uwsgi_red_proxy_wasm::{ProxyKv, ProxyMetrics};

/// Plugin-side `reason`s of `uwsgi_red_internal_errors_total`.
pub const REASON_SEND_RESPONSE: &str = "send_response";
pub const REASON_MISSING_DURATION: &str = "missing_duration";
