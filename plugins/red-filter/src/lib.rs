//! red-filter: RED metrics at the proxy.
//!
//! The same module works as an Envoy HTTP filter (`envoy.filters.http.wasm`)
//! and as an access logger (`envoy.access_loggers.wasm`). All the work
//! happens once per request, in `on_log`, from Envoy attributes; the filter
//! form additionally notes the time of the response headers to measure time
//! to first byte. Nothing here can change or fail the traffic: every
//! callback returns `Continue`, and every internal failure is counted.

mod metrics;
mod props;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use uwsgi_red_core::config::{RedConfig, RedSettings, RequestFacts};

use metrics::{HostMetrics, Internal};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RedRoot::default()) });
}}

struct State {
    settings: RedSettings,
    metrics: HostMetrics,
}

#[derive(Default)]
struct RedRoot {
    state: Option<Rc<RefCell<State>>>,
}

impl Context for RedRoot {}

impl RootContext for RedRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
        match RedConfig::from_json(&raw) {
            Ok(settings) => {
                let scope = settings.service.clone().unwrap_or_default();
                let mut metrics = HostMetrics::new(settings.max_series, &scope);
                metrics.define_static();
                self.state = Some(Rc::new(RefCell::new(State { settings, metrics })));
                true
            }
            Err(e) => {
                // Returning false makes Envoy reject the filter config: a
                // typo must be loud, never a silent default.
                let _ = hostcalls::log(LogLevel::Critical, &format!("red-filter: {e}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let state = self.state.clone()?;
        Some(Box::new(RedStream { state, response_headers_ns: None }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    /// Access-logger form: one VM entry per request; no time to first byte.
    fn on_log(&mut self) {
        if let Some(state) = &self.state {
            record(&mut state.borrow_mut(), None);
        }
    }
}

struct RedStream {
    state: Rc<RefCell<State>>,
    response_headers_ns: Option<i64>,
}

impl Context for RedStream {}

impl HttpContext for RedStream {
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.response_headers_ns = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_nanos()).ok());
        Action::Continue
    }

    fn on_log(&mut self) {
        record(&mut self.state.borrow_mut(), self.response_headers_ns);
    }
}

/// Reads the request's attributes and records it. `response_headers_ns` is
/// the wall-clock time the response headers passed the filter, if known.
fn record(state: &mut State, response_headers_ns: Option<i64>) {
    let Some(duration_ns) = props::int64(&["request", "duration"]) else {
        // No duration means Envoy is logging a request that never started
        // (e.g. a protocol error before headers); nothing to time.
        state.metrics.internal_error(Internal::MissingDuration);
        return;
    };
    let code = props::int64(&["response", "code"]).and_then(|c| u16::try_from(c).ok()).unwrap_or(0);
    let method = props::string(&["request", "method"]).unwrap_or_default();
    let route_name = if state.settings.use_route_name { props::string(&["xds", "route_name"]) } else { None };
    let path = if route_name.as_deref().is_some_and(|r| !r.is_empty()) {
        None
    } else {
        props::string(&["request", "path"])
    };
    let upstream =
        if state.settings.service.is_none() { props::string(&["xds", "cluster_name"]) } else { None };
    let ttfb_us = response_headers_ns.and_then(|t| {
        let start = props::int64(&["request", "time"])?;
        u64::try_from(t.saturating_sub(start) / 1000).ok()
    });
    let labels = state.settings.labels(
        &RequestFacts {
            method: &method,
            path: path.as_deref().unwrap_or("/"),
            route_name: route_name.as_deref(),
            code,
            upstream: upstream.as_deref(),
        },
        "http",
    );
    let duration_us = u64::try_from(duration_ns / 1000).unwrap_or(0);
    state.metrics.record(labels, duration_us, ttfb_us);
}
