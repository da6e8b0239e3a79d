//! Benchmark baseline: the cheapest HTTP filter proxy-wasm allows, so the
//! red-filter's own cost can be separated from the cost of having a Wasm
//! filter at all. With the `instrument` feature it counts the VM entries
//! the host makes per request (every callback, and the context's drop on
//! `proxy_on_delete`) and publishes them as host gauges on a root tick,
//! like red-filter's instrumented build.
//!
//! Panic-free by construction like every plugin (it runs in the proxy).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

// No `proxy_wasm::set_log_level`: it only installs a `log` crate backend
// (nothing here logs through `log`; the SDK's only use is a `trace!`) and a
// panic hook that `-Cpanic=immediate-abort` never runs: code for nothing.
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

#[cfg(feature = "instrument")]
mod count {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    use proxy_wasm::hostcalls;
    use proxy_wasm::types::MetricType;

    static ENTRIES: AtomicU64 = AtomicU64::new(0);
    static REQUESTS: AtomicU64 = AtomicU64::new(0);

    pub fn entry() {
        ENTRIES.fetch_add(1, Relaxed);
    }

    pub fn request() {
        REQUESTS.fetch_add(1, Relaxed);
    }

    pub fn start() {
        let _ = hostcalls::set_tick_period(std::time::Duration::from_millis(200));
    }

    pub fn publish() {
        for (name, v) in [
            ("uwsgi_red_instrument_vm_entries", &ENTRIES),
            ("uwsgi_red_instrument_host_calls", &AtomicU64::new(0)),
            ("uwsgi_red_instrument_requests", &REQUESTS),
        ] {
            if let Ok(id) = hostcalls::define_metric(MetricType::Gauge, name) {
                let _ = hostcalls::record_metric(id, v.load(Relaxed));
            }
        }
    }
}

#[cfg(not(feature = "instrument"))]
mod count {
    pub fn entry() {}
    pub fn request() {}
    pub fn start() {}
    pub fn publish() {}
}

struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        count::start();
        true
    }

    fn on_tick(&mut self) {
        count::publish();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        count::entry();
        Some(Box::new(Noop))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Noop;

impl Context for Noop {
    fn on_done(&mut self) -> bool {
        count::entry();
        true
    }
}

impl Drop for Noop {
    fn drop(&mut self) {
        count::entry();
    }
}

impl HttpContext for Noop {
    fn on_http_request_headers(&mut self, _n: usize, _end_of_stream: bool) -> Action {
        count::entry();
        Action::Continue
    }

    fn on_http_request_body(&mut self, _size: usize, _end_of_stream: bool) -> Action {
        count::entry();
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _n: usize) -> Action {
        count::entry();
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _end_of_stream: bool) -> Action {
        count::entry();
        Action::Continue
    }

    fn on_http_response_body(&mut self, _size: usize, _end_of_stream: bool) -> Action {
        count::entry();
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _n: usize) -> Action {
        count::entry();
        Action::Continue
    }

    fn on_log(&mut self) {
        count::entry();
        count::request();
    }
}
