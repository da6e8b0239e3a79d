//! `self`/`both` exposition: a per-VM delta, merged into proxy-wasm shared
//! data on every tick, before every scrape and when the VM is torn down.
//! The state (layout, CAS merge, never-wipe rules) lives in
//! `uwsgi_red_core::red::shared`; this module moves bytes to the host.

use std::borrow::Borrow;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use uwsgi_red_core::prom::Format;
use uwsgi_red_core::red::names::REASON_INVALID_TRACEPARENT;
use uwsgi_red_core::red::shared::{self, parse_traceparent, Delta, Layout, TraceId};
use uwsgi_red_core::red::Buckets;
use uwsgi_red_core::red::Decision;
use uwsgi_red_core::red::LabelSet;
use uwsgi_red_core::scrape_access::{is_page, maybe_page, ScrapeAccess};

use uwsgi_red_proxy_wasm::read;

use crate::facts::{self, Source};
use crate::metrics::{ProxyKv, REASON_SEND_RESPONSE};
use crate::props;

/// What the scrape check read from the request headers.
#[derive(Debug, Default)]
pub struct Checked {
    /// The request was a scrape and has been answered.
    pub answered: bool,
    /// `:path` as read for the check (bytes, as the client sent them),
    /// kept so `on_log` does not read it again (a host call and a guest
    /// allocation fewer per request).
    pub path: Option<Vec<u8>>,
    /// A header the scrape read (`accept`) was not UTF-8; the caller
    /// counts it in every exposition.
    pub invalid_utf8: bool,
}

/// Answers the request with the merged metrics if it is an allowed
/// scrape: GET or HEAD of exactly `metrics_path` (optionally with a query
/// string) as the client sent it, from an allowed address, with the token
/// when one is configured. Anything else passes on untouched and is
/// counted like any request, so an app's own page at that path keeps
/// working for everyone the filter does not answer.
/// `:path` first: almost every request is not a scrape, and then nothing
/// else is read here.
pub fn answer_scrape(local: &mut Option<SelfServed>, now_s: impl FnOnce() -> u64) -> Checked {
    let Some(local) = local else {
        return Checked::default();
    };
    let path = props::request_header_bytes(":path");
    let mut invalid_utf8 = false;
    let answered = path
        .as_deref()
        .is_some_and(|p| maybe_page(p, &local.metrics_path))
        && is_scrape(local)
        && serve(local, now_s(), &mut invalid_utf8);
    Checked {
        answered,
        path,
        invalid_utf8,
    }
}

/// The checks after the cheap `:path` look, in cost order. `request.path`
/// is the raw request target in both hosts (Envoy: the `:path` header;
/// ngx_wasm_module: `$request_uri`, where `:path` is nginx's decoded,
/// normalised URI, so `/metrics%3F` arrives there as `/metrics?`).
fn is_scrape(local: &SelfServed) -> bool {
    let access = &local.access;
    if access.serves_nobody() {
        return false;
    }
    let raw = props::bytes(&["request", "path"]);
    if !raw.is_some_and(|r| is_page(&r, &local.metrics_path)) {
        return false;
    }
    if !matches!(
        props::request_header_bytes(":method").as_deref(),
        Some(b"GET" | b"HEAD")
    ) {
        return false;
    }
    if !access.source_allowed(props::bytes(&["source", "address"]).as_deref()) {
        return false;
    }
    !access.needs_token()
        || access.token_allowed(props::request_header_bytes("authorization").as_deref())
}

fn serve(local: &mut SelfServed, now_s: u64, invalid_utf8: &mut bool) -> bool {
    let accept = props::request_header_bytes("accept").map(read::text);
    *invalid_utf8 = accept.as_ref().is_some_and(|a| a.invalid);
    let accept = accept.map(|a| a.value);
    let (content_type, body) = local.scrape(accept.as_deref(), now_s);
    let headers = vec![
        ("content-type", content_type),
        ("cache-control", "no-store"),
    ];
    // ngx_wasm_module appends a line feed to every local response body;
    // the page's own last one is left to it, so the bytes sent are the
    // page exactly (OpenMetrics allows nothing after `# EOF\n`).
    let body = if *local.host.get_or_insert_with(facts::probe) == Source::Nginx {
        body.strip_suffix('\n').unwrap_or(&body)
    } else {
        &body
    };
    if hostcalls::send_http_response(200, headers, Some(body.as_bytes())).is_err() {
        local.internal_error(REASON_SEND_RESPONSE);
        return false;
    }
    true
}

#[derive(Debug)]
pub struct SelfServed {
    delta: Delta,
    pub metrics_path: String,
    access: ScrapeAccess,
    /// Read `traceparent` and keep exemplars (config `exemplars`).
    exemplars: bool,
    /// Which host answers the scrape; probed on the first one.
    host: Option<Source>,
}

impl SelfServed {
    pub fn new(
        buckets: Buckets,
        namespace: &str,
        cap: usize,
        metrics_path: String,
        access: ScrapeAccess,
        exemplars: bool,
    ) -> Self {
        Self {
            delta: Delta::new(buckets, Layout::new(namespace, cap)),
            metrics_path,
            access,
            exemplars,
            host: None,
        }
    }

    /// Creates the shared keys (empty) before this VM records anything.
    pub fn init(&mut self, now_s: u64) {
        let layout = self.delta.layout().clone();
        let buckets = self.delta.buckets().clone();
        if let Err(e) = shared::ensure_created(&mut ProxyKv, &layout, &buckets, now_s) {
            self.delta.internal_error(e.reason());
        }
    }

    /// Owned or borrowed labels: a borrowed known series costs no
    /// allocation. `end_ns`: the clock when the request ended, if the
    /// caller read it (the exemplar's time; read here otherwise).
    pub fn record(
        &mut self,
        labels: impl Borrow<LabelSet>,
        decision: Decision,
        duration_ns: u64,
        ttfb_ns: Option<u64>,
        end_ns: Option<u64>,
    ) {
        let secs = |ns: u64| ns as f64 / 1e9;
        let trace_id = if self.exemplars {
            self.trace_id()
        } else {
            None
        };
        match trace_id {
            None => self.delta.record_ref(
                labels.borrow(),
                decision,
                secs(duration_ns),
                ttfb_ns.map(secs),
            ),
            Some(id) => {
                let time_ns = end_ns.or_else(now_ns).unwrap_or(0);
                self.delta.record_traced(
                    labels.borrow(),
                    decision,
                    secs(duration_ns),
                    ttfb_ns.map(secs),
                    id,
                    time_ns,
                );
            }
        }
    }

    /// The request's W3C `traceparent` (bytes, read only when exemplars
    /// are on). No header: none; an invalid one: counted, none.
    fn trace_id(&mut self) -> Option<TraceId> {
        let raw = props::request_header_bytes("traceparent")?;
        match parse_traceparent(&raw) {
            Ok(id) => Some(id),
            Err(_) => {
                self.delta.internal_error(REASON_INVALID_TRACEPARENT);
                None
            }
        }
    }

    pub fn internal_error(&mut self, reason: &'static str) {
        self.delta.internal_error(reason);
    }

    /// Merges the local delta into shared data; what fails stays in the
    /// delta (with its reason counted) for the next tick.
    pub fn flush(&mut self, now_s: u64) {
        shared::flush(&mut self.delta, &mut ProxyKv, now_s);
    }

    /// The scrape answer: this VM's delta flushed first, then only stored
    /// values, so no worker's answer is ever lower than an earlier one.
    pub fn scrape(&mut self, accept: Option<&str>, now_s: u64) -> (&'static str, String) {
        let format = Format::negotiate(accept);
        self.flush(now_s);
        let layout = self.delta.layout().clone();
        let (state, problems) = shared::read(&mut ProxyKv, &layout, self.delta.buckets());
        for p in problems {
            self.delta.internal_error(p);
        }
        (format.content_type(), state.encode_text(format))
    }
}

/// The host clock, for an exemplar whose caller had no reading (the
/// access-logger form).
fn now_ns() -> Option<u64> {
    crate::count::host_call(false);
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
}
