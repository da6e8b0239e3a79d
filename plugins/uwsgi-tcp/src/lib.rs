//! Envoy network (L4) filter for the uwsgi protocol: placed before
//! `tcp_proxy` between nginx (`uwsgi_pass`) and uWSGI (`--socket`), it
//! measures each request (rate, errors, duration, time to first byte) and
//! publishes the RED families as Envoy host metrics with tag-encoded labels.
//!
//! Thin adapter: protocol and exchange logic live in
//! `uwsgi_red_core::uwsgi`; this crate moves host bytes in and metrics out.
//! It never changes, delays or closes traffic: every callback returns
//! `Continue`, and the only bytes it copies are a request head that arrived
//! split (bounded by `head_limit`) and the first bytes of a response.
//!
//! `max_series` is process-wide (all worker VMs), decided by the core's
//! one admission policy over proxy-wasm shared data, like red-filter's.
//! A refused configuration is logged (critical, naming the key) and
//! counted; the filter then passes every byte through unmeasured.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, PeerType};
use uwsgi_red_core::prom::MetricType;
use uwsgi_red_core::red::admission::{self, Admission, Admitter, Decision};
use uwsgi_red_core::red::names::REASON_CONFIG;
use uwsgi_red_core::red::{HostRecorder, MetricsHost, SeriesNames};
use uwsgi_red_core::uwsgi::{
    ConnectionTracker, Event, Exchange, DECODE_ERRORS_TOTAL, DECODE_ERROR_REASONS,
};
use uwsgi_red_core::uwsgi::{UwsgiTcpConfig, UwsgiTcpSettings};
use uwsgi_red_proxy_wasm::read::REASON_INVALID_UTF8;
use uwsgi_red_proxy_wasm::{ProxyKv, ProxyMetrics};

// No `proxy_wasm::set_log_level`: it only installs a `log` crate backend
// (nothing here logs through `log`; the SDK's only use is a `trace!`) and a
// panic hook that `-Cpanic=immediate-abort` never runs: code for nothing.
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

fn now_us() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_micros()).ok())
        .unwrap_or(0)
}

/// Per-VM (so per Envoy worker) metric state shared by all connections.
#[derive(Debug)]
struct Metrics {
    settings: UwsgiTcpSettings,
    admitter: Admitter,
    recorder: HostRecorder,
    reasons: HashMap<&'static str, Option<u32>>,
}

impl Metrics {
    fn new(settings: UwsgiTcpSettings) -> Self {
        let red = &settings.red;
        let ns = admission::namespace(
            "uwsgi_tcp",
            red.service.as_deref().unwrap_or_default(),
            &red.max_series,
        );
        let policy = Admission::new(&ns, red.max_series);
        let mut recorder = HostRecorder::new();
        recorder.start(&mut ProxyMetrics);
        if let Err(e) = policy.ensure_created(&mut ProxyKv) {
            recorder.internal_error(&mut ProxyMetrics, e.reason());
        }
        // Every reason exists at 0 from the start (Prometheus' advice for
        // known label values), so the first error is a visible increase.
        let reasons = DECODE_ERROR_REASONS
            .iter()
            .map(|&reason| (reason, define_reason(reason)))
            .collect();
        Self {
            admitter: Admitter::new(policy),
            settings,
            recorder,
            reasons,
        }
    }

    fn record(&mut self, ev: Event) {
        match ev {
            Event::Completed(ex) => self.completed(&ex),
            other => {
                if let Some(reason) = other.reason() {
                    let id = *self
                        .reasons
                        .entry(reason)
                        .or_insert_with(|| define_reason(reason));
                    if let Some(id) = id {
                        // A failed metric update must never affect traffic.
                        let _ = ProxyMetrics.increment(id, 1);
                    }
                }
            }
        }
    }

    fn completed(&mut self, ex: &Exchange) {
        if ex.invalid_utf8 {
            // Counted, then recorded like any request under the U+FFFD text.
            self.recorder
                .internal_error(&mut ProxyMetrics, REASON_INVALID_UTF8);
        }
        let red = &self.settings.red;
        let labels = ex.labels(&red.routes, red.service.as_deref());
        let decision = if self.recorder.knows(&labels) {
            Decision::Admitted
        } else {
            self.admitter.decide(&mut ProxyKv, &labels)
        };
        self.recorder.record(
            &mut ProxyMetrics,
            labels,
            decision,
            ex.duration_us(),
            ex.ttfb_us(),
        );
    }
}

fn define_reason(reason: &str) -> Option<u32> {
    ProxyMetrics
        .define(
            MetricType::Counter,
            &ProxyMetrics.series_name(DECODE_ERRORS_TOTAL, &[("reason", reason)]),
        )
        .ok()
}

#[derive(Default)]
struct Root {
    metrics: Option<Rc<RefCell<Metrics>>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match UwsgiTcpConfig::from_json(&bytes) {
            Ok(settings) => {
                self.metrics = Some(Rc::new(RefCell::new(Metrics::new(settings))));
            }
            Err(e) => {
                // A refused configuration never costs a request: loud in
                // the log, counted, and every byte passes unmeasured
                // (refusing it would take the listener down with it).
                self.metrics = None;
                let _ = hostcalls::log(
                    LogLevel::Critical,
                    &format!("uwsgi-tcp: {e}; passing traffic through unmeasured"),
                );
                HostRecorder::new().internal_error(&mut ProxyMetrics, REASON_CONFIG);
            }
        }
        true
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        let Some(metrics) = self.metrics.clone() else {
            return Some(Box::new(Passthrough));
        };
        let (head_limit, response_limit) = {
            let m = metrics.borrow();
            (m.settings.head_limit, m.settings.response_head_limit)
        };
        Some(Box::new(Connection {
            tracker: ConnectionTracker::new(head_limit, response_limit),
            metrics,
            events: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

impl std::fmt::Debug for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Root")
            .field("configured", &self.metrics.is_some())
            .finish()
    }
}

/// A connection after a refused configuration: every callback's default
/// is `Continue`, so bytes flow untouched.
#[derive(Debug)]
struct Passthrough;

impl Context for Passthrough {}
impl StreamContext for Passthrough {}

#[derive(Debug)]
struct Connection {
    tracker: ConnectionTracker,
    metrics: Rc<RefCell<Metrics>>,
    events: Vec<Event>,
}

fn fetch(kind: BufferType) -> impl FnMut(usize, usize) -> Option<Vec<u8>> {
    move |start, len| hostcalls::get_buffer(kind, start, len).ok().flatten()
}

/// Test-only (cargo feature `test-trap`, never in a shipped module): a
/// chunk of downstream data containing this marker traps the VM, so host
/// tests can show what Envoy's `failure_policy` does with a failed VM.
#[cfg(feature = "test-trap")]
fn test_trap(data_size: usize) {
    const MARKER: &[u8] = b"x-uwsgi-red-test-trap";
    let data = fetch(BufferType::DownstreamData)(0, data_size).unwrap_or_default();
    if data.windows(MARKER.len()).any(|w| w == MARKER) {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
    }
}

impl Connection {
    fn flush(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let mut m = self.metrics.borrow_mut();
        for ev in self.events.drain(..) {
            m.record(ev);
        }
    }
}

impl Connection {
    /// Envoy reports the end of a connection more than once (downstream
    /// close, then log); only the first one counts.
    fn close(&mut self) {
        if !self.tracker.is_closed() {
            self.tracker.on_close(now_us(), &mut self.events);
            self.flush();
        }
    }
}

impl Context for Connection {}

impl StreamContext for Connection {
    fn on_downstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "test-trap")]
        test_trap(data_size);
        if !self.tracker.is_passthrough() {
            let now = now_us();
            self.tracker.on_downstream(
                data_size,
                end_of_stream,
                now,
                fetch(BufferType::DownstreamData),
                &mut self.events,
            );
            self.flush();
        }
        Action::Continue
    }

    fn on_upstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        if !self.tracker.is_passthrough() {
            let now = now_us();
            self.tracker.on_upstream(
                data_size,
                end_of_stream,
                now,
                fetch(BufferType::UpstreamData),
                &mut self.events,
            );
            self.flush();
        }
        Action::Continue
    }

    fn on_upstream_close(&mut self, _peer_type: PeerType) {
        self.tracker.on_upstream(
            0,
            true,
            now_us(),
            fetch(BufferType::UpstreamData),
            &mut self.events,
        );
        self.flush();
    }

    fn on_downstream_close(&mut self, _peer_type: PeerType) {
        self.close();
    }

    fn on_log(&mut self) {
        self.close();
    }
}
