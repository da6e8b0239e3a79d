//! red-filter: RED metrics at the proxy.
//!
//! The same module works as an Envoy HTTP filter (`envoy.filters.http.wasm`)
//! and as an access logger (`envoy.access_loggers.wasm`). Labels and the
//! record happen once per request, in `on_log` ([`facts`]); a repeated
//! request shape costs one lookup ([`Interner`]). The access-logger form
//! does everything in that one callback and takes Envoy's
//! `request.duration`; the filter form reads the host clock when request
//! headers pass, and when response headers pass only for time to first
//! byte (`time_to_first_byte`).
//! Nothing here can change or fail the traffic: every callback returns
//! `Continue`, and every internal failure is counted.
//!
//! Exposition (`exposition` in the config): `host` records into the host's
//! metrics (Envoy `/stats/prometheus`); `self` keeps the counts in the
//! plugin, merged across worker VMs through shared data, and answers GET
//! `metrics_path` itself; `both` does both. The only request the filter
//! ever answers is that scrape, which is then counted nowhere, and only
//! for an allowed client (`scrape_allow_cidrs`, `scrape_bearer_token`);
//! every other request to that path passes on to the upstream.

mod count;
mod facts;
mod metrics;
mod props;
mod selfserve;
mod stamp;
#[cfg(feature = "test-trap")]
mod trap;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use uwsgi_red_core::config::ConfigError;
use uwsgi_red_core::red::admission::{self, Admission, Admitter, Decision};
use uwsgi_red_core::red::fits_format;
use uwsgi_red_core::red::names::REASON_CONFIG;
use uwsgi_red_core::red::HostRecorder;
use uwsgi_red_core::red::Interner;
use uwsgi_red_core::red::RequestFacts;
use uwsgi_red_core::red::{Exposition, RedFilterConfig, RedFilterSettings};

use count::Counted;
use facts::{Source, View, Wanted};
use metrics::{ProxyKv, ProxyMetrics, REASON_MISSING_DURATION};
use selfserve::SelfServed;
use uwsgi_red_proxy_wasm::read::REASON_INVALID_UTF8;

// No `proxy_wasm::set_log_level`: it only installs a `log` crate backend
// (nothing here logs through `log`; the SDK's only use is a `trace!`) and a
// panic hook that `-Cpanic=immediate-abort` never runs: code for nothing.
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RedRoot::default()) });
}}

struct State {
    settings: RedFilterSettings,
    /// One admission decision per label set, shared by both expositions.
    admitter: Admitter,
    /// Label sets and decisions by raw request facts.
    interner: Interner,
    /// `host`/`both` mode.
    host: Option<HostRecorder>,
    /// `self`/`both` mode.
    local: Option<SelfServed>,
    /// How request facts are read; probed on the first request.
    source: Source,
}

impl State {
    fn internal_error(&mut self, reason: &'static str) {
        if let Some(h) = &mut self.host {
            h.internal_error(&mut Counted(ProxyMetrics), reason);
        }
        if let Some(l) = &mut self.local {
            l.internal_error(reason);
        }
    }
}

#[derive(Default)]
struct RedRoot {
    /// `None` after a refused configuration: every request passes through
    /// untouched and unmeasured.
    state: Option<Rc<RefCell<State>>>,
}

/// Labels the shared state must be able to hold: a configured label the
/// format cannot store is a configuration error, found before any count.
fn check_labels(settings: &RedFilterSettings) -> Result<(), ConfigError> {
    if let Some(s) = &settings.service {
        if !fits_format(s) {
            return Err(ConfigError::new("service", "too long for the shared state"));
        }
    }
    for (i, t) in settings.routes.templates().enumerate() {
        if !fits_format(t) {
            return Err(ConfigError::new(
                &format!("route_patterns[{i}]"),
                "too long for the shared state",
            ));
        }
    }
    Ok(())
}

/// The key namespace of this configuration: the instance (`service`) plus
/// everything that shapes the shared values (cap, bucket bounds).
fn namespace(settings: &RedFilterSettings) -> String {
    let bounds: Vec<u64> = settings
        .buckets
        .bounds()
        .iter()
        .map(|b| b.to_bits())
        .collect();
    admission::namespace(
        "red_filter",
        settings.service.as_deref().unwrap_or_default(),
        &(settings.max_series, bounds),
    )
}

fn now_s() -> u64 {
    now_ns().map_or(0, |ns| ns / 1_000_000_000)
}

impl RedRoot {
    fn start(&mut self, settings: RedFilterSettings) {
        let ns = namespace(&settings);
        let policy = Admission::new(&ns, settings.max_series);
        let mut host = matches!(settings.exposition, Exposition::Host | Exposition::Both)
            .then(HostRecorder::new);
        if let Some(h) = &mut host {
            h.start(&mut ProxyMetrics);
        }
        let mut local = matches!(
            settings.exposition,
            Exposition::SelfServed | Exposition::Both
        )
        .then(|| {
            SelfServed::new(
                settings.buckets.clone(),
                &ns,
                settings.max_series,
                settings.metrics_path.clone(),
                settings.scrape_access.clone(),
            )
        });
        if let Some(l) = &mut local {
            l.init(now_s());
            let _ = hostcalls::set_tick_period(Duration::from_millis(settings.flush_interval_ms));
        }
        if count::ON {
            let _ = hostcalls::set_tick_period(Duration::from_millis(count::PUBLISH_MS));
        }
        let mut state = State {
            settings,
            admitter: Admitter::new(policy.clone()),
            interner: Interner::default(),
            host,
            local,
            source: Source::Unprobed,
        };
        if let Err(e) = policy.ensure_created(&mut ProxyKv) {
            state.internal_error(e.reason());
        }
        self.state = Some(Rc::new(RefCell::new(state)));
    }
}

impl Context for RedRoot {
    /// The host tears the VM down (config update, worker exit): its last
    /// counts go to shared data first.
    fn on_done(&mut self) -> bool {
        self.flush();
        true
    }
}

impl RootContext for RedRoot {
    /// A refused configuration never costs a request: the plugin logs it
    /// (critical, naming the key), counts it, and then passes every request
    /// through untouched. This is the same in every host: in
    /// ngx_wasm_module returning `false` makes every worker exit, and in
    /// Envoy it would refuse the listener at startup.
    fn on_configure(&mut self, _size: usize) -> bool {
        // A host that reconfigures a live root context: what this VM
        // counted under the old configuration is stored before it goes.
        self.flush();
        let raw = self.get_plugin_configuration().unwrap_or_default();
        match RedFilterConfig::from_json(&raw).and_then(|s| check_labels(&s).map(|()| s)) {
            Ok(settings) => self.start(settings),
            Err(e) => {
                self.state = None;
                let _ = hostcalls::log(
                    LogLevel::Critical,
                    &format!("red-filter: {e}; passing traffic through unmeasured"),
                );
                HostRecorder::new().internal_error(&mut ProxyMetrics, REASON_CONFIG);
            }
        }
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        count::entry();
        Some(Box::new(RedStream {
            state: self.state.clone(),
            request_start_ns: None,
            response_headers_ns: None,
            path: None,
            scrape: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    /// Access-logger form: one VM entry per request; no time to first byte.
    fn on_log(&mut self) {
        count::entry();
        count::request();
        if let Some(state) = &self.state {
            record(&mut state.borrow_mut(), None, None);
        }
    }

    /// Self mode: this VM's counts reach shared data at least once a tick,
    /// which bounds how stale another VM's scrape can be.
    fn on_tick(&mut self) {
        self.flush();
        count::publish("uwsgi_red_instrument");
    }
}

impl RedRoot {
    fn flush(&mut self) {
        if let Some(state) = &self.state {
            if let Some(local) = &mut state.borrow_mut().local {
                local.flush(now_s());
            }
        }
    }
}

struct RedStream {
    state: Option<Rc<RefCell<State>>>,
    request_start_ns: Option<u64>,
    response_headers_ns: Option<u64>,
    /// `:path`, when the scrape check already read it.
    path: Option<Vec<u8>>,
    /// A scrape of `metrics_path` the filter answered itself: not traffic.
    scrape: bool,
}

impl Context for RedStream {
    fn on_done(&mut self) -> bool {
        count::entry();
        true
    }
}

/// `proxy_on_delete` drops the context: the last VM entry of a request.
impl Drop for RedStream {
    fn drop(&mut self) {
        count::entry();
    }
}

impl HttpContext for RedStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        count::entry();
        #[cfg(feature = "test-trap")]
        trap::on_request_headers();
        let Some(state) = &self.state else {
            return Action::Continue;
        };
        let mut state = state.borrow_mut();
        // Two clock reads (no guest allocation) cost less than reading the
        // `request.duration` attribute at the end (a host call, a CEL
        // attribute lookup and an allocation).
        let start = now_ns();
        self.request_start_ns = start;
        let checked = selfserve::answer_scrape(&mut state.local, || {
            start.map_or_else(now_s, |ns| ns / 1_000_000_000)
        });
        self.path = checked.path;
        if checked.invalid_utf8 {
            state.internal_error(REASON_INVALID_UTF8);
        }
        if checked.answered {
            self.scrape = true;
            return Action::Pause;
        }
        stamp::apply(state.settings.request_start, &mut stamp::Proxy, start);
        Action::Continue
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        count::entry();
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        count::entry();
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        count::entry();
        if self.request_start_ns.is_some()
            && self
                .state
                .as_ref()
                .is_some_and(|s| s.borrow().settings.time_to_first_byte)
        {
            self.response_headers_ns = now_ns();
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        count::entry();
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        count::entry();
        Action::Continue
    }

    fn on_log(&mut self) {
        count::entry();
        if self.scrape {
            return;
        }
        count::request();
        let Some(state) = &self.state else { return };
        let mut state = state.borrow_mut();
        record(
            &mut state,
            Some(Clock {
                start_ns: self.request_start_ns,
                response_headers_ns: self.response_headers_ns,
            }),
            self.path.take(),
        );
    }
}

/// The clock readings of the filter form.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start_ns: Option<u64>,
    response_headers_ns: Option<u64>,
}

fn now_ns() -> Option<u64> {
    count::host_call(false);
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
}

/// Which facts this configuration needs.
fn wanted(settings: &RedFilterSettings) -> Wanted {
    Wanted {
        route_name: settings.use_route_name,
        upstream: settings.service.is_none(),
        upstream_address: settings.upstream_label,
    }
}

fn ensure_source(state: &mut State) -> Source {
    if state.source == Source::Unprobed {
        state.source = facts::probe();
    }
    state.source
}

/// Duration and time to first byte: the filter's clock, else (access
/// logger, or no request-headers callback, e.g. a codec-level reject) the
/// host's `request.duration` attribute.
fn timing(clock: Option<Clock>) -> Option<Timing> {
    let start = clock.and_then(|c| c.start_ns);
    let ttfb_ns = ttfb(clock);
    if let Some(start) = start {
        if let Some(end) = now_ns() {
            return Some(Timing {
                duration_ns: end.saturating_sub(start),
                ttfb_ns,
            });
        }
    }
    duration_from_attributes()
}

/// Time to first byte: needs both clock readings.
fn ttfb(clock: Option<Clock>) -> Option<u64> {
    match clock.map(|c| (c.start_ns, c.response_headers_ns)) {
        Some((Some(s), Some(r))) => Some(r.saturating_sub(s)),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    duration_ns: u64,
    ttfb_ns: Option<u64>,
}

fn duration_from_attributes() -> Option<Timing> {
    let d = props::nanos(&["request", "duration"])?;
    Some(Timing {
        duration_ns: u64::try_from(d).unwrap_or(0),
        ttfb_ns: None,
    })
}

/// Reads the request's facts (`path`: already read by the filter) and
/// records them.
fn record(state: &mut State, clock: Option<Clock>, path: Option<Vec<u8>>) {
    let source = ensure_source(state);
    let want = wanted(&state.settings);
    facts::with(source, want, path, |view| record_view(state, &view, clock));
}

fn record_view(state: &mut State, view: &View<'_>, clock: Option<Clock>) {
    if view.invalid_utf8 {
        // Counted, then measured like any request under the U+FFFD text.
        state.internal_error(REASON_INVALID_UTF8);
    }
    let Some(timing) = timing(clock) else {
        // No duration means Envoy is logging a request that never started
        // (e.g. a protocol error before headers); nothing to time.
        state.internal_error(REASON_MISSING_DURATION);
        return;
    };
    let facts = RequestFacts {
        method: view.method,
        path: view.path.unwrap_or("/"),
        route_name: view.route_name,
        code: view.code,
        upstream: view.upstream,
        upstream_address: view.upstream_address,
    };
    let State {
        settings,
        admitter,
        interner,
        host,
        local,
        ..
    } = state;
    // A request shape seen before: its labels and final admission
    // decision come from one lookup, no normalising or allocating.
    let fresh;
    let (labels, decision) = match interner.get(&facts, || settings.labels(&facts, "http")) {
        Some(e) => {
            let d = match e.decision {
                Some(d) => d,
                None => {
                    let d = admitter.decide(&mut Counted(ProxyKv), &e.labels);
                    if matches!(d, Decision::Admitted | Decision::Refused) {
                        e.decision = Some(d);
                    }
                    d
                }
            };
            (&e.labels, d)
        }
        None => {
            fresh = settings.labels(&facts, "http");
            let d = admitter.decide(&mut Counted(ProxyKv), &fresh);
            (&fresh, d)
        }
    };
    if let Some(local) = local {
        local.record(labels, decision, timing.duration_ns, timing.ttfb_ns);
    }
    if let Some(host) = host {
        host.record_ref(
            &mut Counted(ProxyMetrics),
            labels,
            decision,
            timing.duration_ns / 1000,
            timing.ttfb_ns.map(|t| t / 1000),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_to_first_byte_is_on_unless_configured_off() {
        assert!(
            RedFilterConfig::from_json(b"{}")
                .unwrap()
                .time_to_first_byte
        );
        let off = RedFilterConfig::from_json(br#"{"time_to_first_byte":false}"#).unwrap();
        assert!(!off.time_to_first_byte);
        assert_eq!(
            RedFilterConfig::from_json(br#"{"time_to_first_byte":"no"}"#)
                .unwrap_err()
                .path,
            "time_to_first_byte"
        );
    }

    #[test]
    fn only_the_facts_the_configuration_uses_are_read() {
        let w = wanted(&RedFilterConfig::from_json(b"{}").unwrap());
        assert!(w.route_name && w.upstream);
        let fixed =
            RedFilterConfig::from_json(br#"{"service":"shop","use_route_name":false}"#).unwrap();
        let w = wanted(&fixed);
        assert!(!w.route_name && !w.upstream && !w.upstream_address);
        let on = RedFilterConfig::from_json(br#"{"upstream_label":true}"#).unwrap();
        assert!(wanted(&on).upstream_address);
    }

    #[test]
    fn ttfb_needs_both_readings() {
        let clock = |start_ns, response_headers_ns| {
            Some(Clock {
                start_ns,
                response_headers_ns,
            })
        };
        assert_eq!(ttfb(clock(Some(10), Some(25))), Some(15));
        assert_eq!(ttfb(clock(Some(30), Some(25))), Some(0), "clock steps back");
        assert_eq!(ttfb(clock(Some(10), None)), None, "time_to_first_byte off");
        assert_eq!(ttfb(clock(None, Some(25))), None);
        assert_eq!(ttfb(None), None, "access logger");
    }
}
