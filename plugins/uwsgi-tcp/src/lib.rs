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

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MetricType, PeerType};
use uwsgi_red_core::envoy_name;
use uwsgi_red_core::red::cardinality::CardinalityLimiter;
use uwsgi_red_core::red::labels::LabelSet;
use uwsgi_red_core::red::names;
use uwsgi_red_core::uwsgi::config::{UwsgiFilterConfig, UwsgiFilterSettings};
use uwsgi_red_core::uwsgi::{ConnectionTracker, Event, Exchange, DECODE_ERRORS_TOTAL};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

fn now_us() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as u64)
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    hostcalls::define_metric(kind, name).ok()
}

/// Host metric ids of one label set.
#[derive(Debug, Clone, Copy)]
struct SeriesIds {
    requests: Option<u32>,
    errors: Option<u32>,
    duration: Option<u32>,
    ttfb: Option<u32>,
}

/// Per-VM (so per Envoy worker) metric state shared by all connections.
#[derive(Debug)]
struct Metrics {
    settings: UwsgiFilterSettings,
    limiter: CardinalityLimiter<LabelSet>,
    series: HashMap<LabelSet, SeriesIds>,
    reasons: HashMap<&'static str, Option<u32>>,
    dropped: Option<u32>,
}

impl Metrics {
    fn new(settings: UwsgiFilterSettings) -> Self {
        Self {
            limiter: CardinalityLimiter::new(settings.red.max_series),
            settings,
            series: HashMap::new(),
            reasons: HashMap::new(),
            dropped: define(MetricType::Counter, names::DROPPED_LABEL_SETS_TOTAL),
        }
    }

    fn record(&mut self, ev: Event) {
        match ev {
            Event::Completed(ex) => self.completed(&ex),
            other => {
                if let Some(reason) = other.reason() {
                    let id = *self.reasons.entry(reason).or_insert_with(|| {
                        define(
                            MetricType::Counter,
                            &envoy_name::encode(DECODE_ERRORS_TOTAL, &[("reason", reason)]),
                        )
                    });
                    increment(id);
                }
            }
        }
    }

    fn completed(&mut self, ex: &Exchange) {
        let red = &self.settings.red;
        let labels = ex.labels(&red.routes, red.service.as_deref());
        let key = if self.limiter.admit(&labels) {
            labels
        } else {
            increment(self.dropped);
            labels.overflow()
        };
        let is_error = key.is_error();
        let ids = *self.series.entry(key).or_insert_with_key(|k| {
            let pairs = k.pairs();
            let name = |n: &str| envoy_name::encode(n, &pairs);
            SeriesIds {
                requests: define(MetricType::Counter, &name(names::REQUESTS_TOTAL)),
                errors: define(MetricType::Counter, &name(names::ERRORS_TOTAL)),
                duration: define(MetricType::Histogram, &name(names::DURATION_MICROSECONDS)),
                ttfb: define(MetricType::Histogram, &name(names::TTFB_MICROSECONDS)),
            }
        });
        increment(ids.requests);
        if is_error {
            increment(ids.errors);
        }
        if let Some(id) = ids.duration {
            let _ = hostcalls::record_metric(id, ex.duration_us());
        }
        if let (Some(id), Some(t)) = (ids.ttfb, ex.ttfb_us()) {
            let _ = hostcalls::record_metric(id, t);
        }
    }
}

fn increment(id: Option<u32>) {
    if let Some(id) = id {
        // A failed metric update must never affect traffic.
        let _ = hostcalls::increment_metric(id, 1);
    }
}

#[derive(Default)]
struct Root {
    metrics: Option<Rc<RefCell<Metrics>>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match UwsgiFilterConfig::from_json(&bytes) {
            Ok(settings) => {
                self.metrics = Some(Rc::new(RefCell::new(Metrics::new(settings))));
                true
            }
            Err(e) => {
                // Refusing the config makes Envoy reject the listener: a
                // typo is loud at deploy time instead of silently measuring
                // with defaults.
                proxy_wasm::hostcalls::log(LogLevel::Error, &format!("uwsgi-tcp: {e}")).ok();
                false
            }
        }
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        let metrics = self.metrics.clone()?;
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

#[derive(Debug)]
struct Connection {
    tracker: ConnectionTracker,
    metrics: Rc<RefCell<Metrics>>,
    events: Vec<Event>,
}

fn fetch(kind: BufferType) -> impl FnMut(usize, usize) -> Option<Vec<u8>> {
    move |start, len| hostcalls::get_buffer(kind, start, len).ok().flatten()
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
