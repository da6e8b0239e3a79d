//! `self`/`both` exposition: a per-VM delta, merged into proxy-wasm shared
//! data on every tick and before every scrape. The merge itself
//! (compare-and-swap loop, state format, cap) lives in
//! `uwsgi_red_core::red::shared`; this module only moves bytes between it
//! and the host.

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;
use uwsgi_red_core::prom::text::Format;
use uwsgi_red_core::red::histogram::Buckets;
use uwsgi_red_core::red::labels::LabelSet;
use uwsgi_red_core::red::shared::{
    self, CasWrite, Delta, FlushError, KvStore, SharedState, Versioned,
};

use crate::metrics::Internal;
use crate::props;

/// Answers the request with the merged metrics if it is a scrape (GET or
/// HEAD of exactly `metrics_path`, query ignored). Other methods on that
/// path pass through to the upstream and are counted like any request.
pub fn answer_scrape(local: &mut Option<SelfServed>) -> bool {
    let Some(local) = local else { return false };
    if !matches!(
        props::request_header(":method").as_deref(),
        Some("GET" | "HEAD")
    ) {
        return false;
    }
    let path = props::request_header(":path").unwrap_or_default();
    if path.split(['?', '#']).next() != Some(local.metrics_path.as_str()) {
        return false;
    }
    let accept = props::request_header("accept");
    let (content_type, body) = local.scrape(accept.as_deref());
    let headers = vec![
        ("content-type", content_type),
        ("cache-control", "no-store"),
    ];
    if hostcalls::send_http_response(200, headers, Some(body.as_bytes())).is_err() {
        local.internal_error(Internal::SendResponse);
        return false;
    }
    true
}

/// One shared-data key, through the proxy-wasm host calls.
struct HostKv<'a>(&'a str);

impl KvStore for HostKv<'_> {
    type Error = Status;

    fn get(&mut self) -> Result<Versioned, Status> {
        hostcalls::get_shared_data(self.0)
    }

    fn set(&mut self, value: &[u8], cas: Option<u32>) -> Result<CasWrite, Status> {
        match hostcalls::set_shared_data(self.0, Some(value), cas) {
            Ok(()) => Ok(CasWrite::Written),
            Err(Status::CasMismatch) => Ok(CasWrite::Mismatch),
            Err(e) => Err(e),
        }
    }
}

#[derive(Debug)]
pub struct SelfServed {
    delta: Delta,
    key: String,
    pub metrics_path: String,
}

impl SelfServed {
    /// `scope` separates filter instances sharing one VM id, as for the
    /// host-mode admission keys. No `/` of ours in the key: ngx_wasm_module
    /// reads what precedes one as a `shm_kv` zone name.
    pub fn new(buckets: Buckets, cap: usize, scope: &str, metrics_path: String) -> Self {
        Self {
            delta: Delta::new(buckets, cap),
            key: format!("uwsgi_red.red_filter.{scope}.state"),
            metrics_path,
        }
    }

    /// Creates the shared key (empty) before this VM records anything.
    pub fn init(&mut self) {
        if shared::ensure_created(&mut HostKv(&self.key), self.delta.buckets()).is_err() {
            self.delta.internal_error(Internal::SharedData.reason());
        }
    }

    pub fn record(&mut self, labels: LabelSet, duration_ns: i64, ttfb_ns: Option<i64>) {
        if self.delta.is_full_for(&labels) {
            // Let the shared state decide admission for a new label set;
            // if the flush fails the delta folds it into overflow.
            self.flush();
        }
        let secs = |ns: i64| ns.max(0) as f64 / 1e9;
        self.delta
            .record(labels, secs(duration_ns), ttfb_ns.map(secs));
    }

    pub fn internal_error(&mut self, what: Internal) {
        self.delta.internal_error(what.reason());
    }

    /// Merges the local delta into shared data. On failure the delta is
    /// kept (and the failure counted in it) for the next tick.
    pub fn flush(&mut self) -> Option<SharedState> {
        match shared::flush(&mut self.delta, &mut HostKv(&self.key)) {
            Ok(f) => {
                if f.reset.is_some() {
                    self.delta
                        .internal_error(Internal::SharedStateReset.reason());
                }
                Some(f.state)
            }
            Err(FlushError::Store(_) | FlushError::Contended) => {
                self.delta.internal_error(Internal::SharedData.reason());
                None
            }
        }
    }

    /// The scrape answer: this VM's delta flushed first, so the body holds
    /// every request this VM finished and every other VM's up to its last
    /// tick.
    pub fn scrape(&mut self, accept: Option<&str>) -> (&'static str, String) {
        let format = Format::negotiate(accept);
        let state = match self.flush() {
            Some(s) => s,
            None => shared::overlay(&self.delta, &mut HostKv(&self.key)),
        };
        (format.content_type(), state.encode_text(format))
    }
}
