//! red-filter: RED metrics at the proxy.
//!
//! The same module works as an Envoy HTTP filter (`envoy.filters.http.wasm`)
//! and as an access logger (`envoy.access_loggers.wasm`). Labels and the
//! record happen once per request, in `on_log`; the filter form notes the
//! clock when request and response headers pass (for duration and time to
//! first byte), the access-logger form reads Envoy's `request.duration`. Nothing here can change or fail the traffic: every
//! callback returns `Continue`, and every internal failure is counted.
//!
//! Exposition (`exposition` in the config): `host` records into the host's
//! metrics (Envoy `/stats/prometheus`); `self` keeps the counts in the
//! plugin, merged across worker VMs through shared data, and answers GET
//! `metrics_path` itself; `both` does both. The only request the filter
//! ever answers is that scrape, which is then counted nowhere.

mod metrics;
mod props;
mod selfserve;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use uwsgi_red_core::config::{Exposition, RedConfig, RedSettings, RequestFacts};

use metrics::{HostMetrics, Internal};
use selfserve::SelfServed;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RedRoot::default()) });
}}

struct State {
    settings: RedSettings,
    /// `host`/`both` mode.
    host: Option<HostMetrics>,
    /// `self`/`both` mode.
    local: Option<SelfServed>,
}

impl State {
    fn internal_error(&mut self, what: Internal) {
        if let Some(h) = &mut self.host {
            h.internal_error(what);
        }
        if let Some(l) = &mut self.local {
            l.internal_error(what);
        }
    }
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
                let host =
                    matches!(settings.exposition, Exposition::Host | Exposition::Both).then(|| {
                        let mut metrics = HostMetrics::new(settings.max_series, &scope);
                        metrics.define_static();
                        metrics
                    });
                let local = matches!(
                    settings.exposition,
                    Exposition::SelfServed | Exposition::Both
                )
                .then(|| {
                    let mut local = SelfServed::new(
                        settings.buckets.clone(),
                        settings.max_series,
                        &scope,
                        settings.metrics_path.clone(),
                    );
                    local.init();
                    local
                });
                if local.is_some() {
                    self.set_tick_period(Duration::from_millis(settings.flush_interval_ms));
                }
                self.state = Some(Rc::new(RefCell::new(State {
                    settings,
                    host,
                    local,
                })));
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
        Some(Box::new(RedStream {
            state,
            request_start_ns: None,
            response_headers_ns: None,
            scrape: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    /// Access-logger form: one VM entry per request; no time to first byte.
    fn on_log(&mut self) {
        if let Some(state) = &self.state {
            record(&mut state.borrow_mut(), duration_from_attributes());
        }
    }

    /// Self mode: this VM's counts reach shared data at least once a tick,
    /// which bounds how stale another VM's scrape can be.
    fn on_tick(&mut self) {
        if let Some(state) = &self.state {
            if let Some(local) = &mut state.borrow_mut().local {
                local.flush();
            }
        }
    }
}

struct RedStream {
    state: Rc<RefCell<State>>,
    request_start_ns: Option<u64>,
    response_headers_ns: Option<u64>,
    /// A scrape of `metrics_path` the filter answered itself: not traffic.
    scrape: bool,
}

impl Context for RedStream {}

impl HttpContext for RedStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.request_start_ns = now_ns();
        if selfserve::answer_scrape(&mut self.state.borrow_mut().local) {
            self.scrape = true;
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.response_headers_ns = now_ns();
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.scrape {
            return;
        }
        let mut state = self.state.borrow_mut();
        // The clock is a cheap host call; Envoy's `request.duration`
        // attribute costs a CEL evaluation. Fall back to it only when the
        // request-headers callback never ran (e.g. a codec-level reject).
        let timing = match (self.request_start_ns, now_ns()) {
            (Some(start), Some(end)) => Some(Timing {
                duration_ns: end.saturating_sub(start),
                ttfb_ns: self.response_headers_ns.map(|t| t.saturating_sub(start)),
            }),
            _ => duration_from_attributes(),
        };
        record(&mut state, timing);
    }
}

fn now_ns() -> Option<u64> {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
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

/// Reads what is left to know about the request (headers are plain map
/// lookups; only the route and cluster names need attributes) and records it.
fn record(state: &mut State, timing: Option<Timing>) {
    let Some(timing) = timing else {
        // No duration means Envoy is logging a request that never started
        // (e.g. a protocol error before headers); nothing to time.
        state.internal_error(Internal::MissingDuration);
        return;
    };
    let code = props::response_header(":status")
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(0);
    let method = props::request_header(":method").unwrap_or_default();
    let route_name = if state.settings.use_route_name {
        props::string(&["xds", "route_name"])
    } else {
        None
    };
    let path = if route_name.as_deref().is_some_and(|r| !r.is_empty()) {
        None
    } else {
        props::request_header(":path")
    };
    let upstream = if state.settings.service.is_none() {
        props::string(&["xds", "cluster_name"])
    } else {
        None
    };
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
    if let Some(local) = &mut state.local {
        let ns = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        local.record(
            labels.clone(),
            ns(timing.duration_ns),
            timing.ttfb_ns.map(ns),
        );
    }
    if let Some(host) = &mut state.host {
        host.record(
            labels,
            timing.duration_ns / 1000,
            timing.ttfb_ns.map(|t| t / 1000),
        );
    }
}
