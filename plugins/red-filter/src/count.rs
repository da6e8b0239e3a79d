//! What a request costs, counted from inside the module (cargo feature
//! `instrument`; without it every function here is empty and compiles
//! away). A VM entry is every call from the host into the module: each
//! proxy-wasm callback, and one `proxy_on_memory_allocate` for every value a
//! host call returns. Host calls are the module's calls out. The totals are
//! published as host gauges on the root tick, outside any request, so the
//! bench reads them from the host's stats without changing what it counts.

#[cfg(feature = "instrument")]
mod on {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    use proxy_wasm::hostcalls;
    use proxy_wasm::types::MetricType;

    static ENTRIES: AtomicU64 = AtomicU64::new(0);
    static HOST_CALLS: AtomicU64 = AtomicU64::new(0);
    static REQUESTS: AtomicU64 = AtomicU64::new(0);

    pub fn entry() {
        ENTRIES.fetch_add(1, Relaxed);
    }

    pub fn host_call(returned_value: bool) {
        HOST_CALLS.fetch_add(1, Relaxed);
        if returned_value {
            entry();
        }
    }

    pub fn request() {
        REQUESTS.fetch_add(1, Relaxed);
    }

    /// Gauges `<prefix>_vm_entries`, `_host_calls`, `_requests` (totals).
    pub fn publish(prefix: &str) {
        for (name, v) in [
            ("vm_entries", &ENTRIES),
            ("host_calls", &HOST_CALLS),
            ("requests", &REQUESTS),
        ] {
            if let Ok(id) = hostcalls::define_metric(MetricType::Gauge, &format!("{prefix}_{name}"))
            {
                let _ = hostcalls::record_metric(id, v.load(Relaxed));
            }
        }
    }
}

#[cfg(not(feature = "instrument"))]
mod on {
    pub fn entry() {}
    pub fn host_call(_returned_value: bool) {}
    pub fn request() {}
    pub fn publish(_prefix: &str) {}
}

pub use on::{entry, host_call, publish, request};

/// How often the instrumented build publishes its totals.
pub const PUBLISH_MS: u64 = 200;

/// True in the instrumented build.
pub const ON: bool = cfg!(feature = "instrument");

/// The module's metric and shared-data calls, counted one host call each
/// (plus a VM entry for every shared-data value returned).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counted<T>(pub T);

impl<T: uwsgi_red_core::red::host::MetricsHost> uwsgi_red_core::red::host::MetricsHost
    for Counted<T>
{
    fn define(
        &mut self,
        kind: uwsgi_red_core::prom::text::MetricType,
        name: &str,
    ) -> Result<u32, uwsgi_red_core::red::host::HostError> {
        host_call(false);
        self.0.define(kind, name)
    }

    fn increment(&mut self, id: u32, by: u64) -> Result<(), uwsgi_red_core::red::host::HostError> {
        host_call(false);
        self.0.increment(id, by)
    }

    fn record(&mut self, id: u32, value: u64) -> Result<(), uwsgi_red_core::red::host::HostError> {
        host_call(false);
        self.0.record(id, value)
    }
}

/// Naming is guest work, not a host call: passed through uncounted.
impl<T: uwsgi_red_core::red::host::SeriesNames> uwsgi_red_core::red::host::SeriesNames
    for Counted<T>
{
    fn series_name(&self, metric: &'static str, labels: &[(&'static str, &str)]) -> String {
        self.0.series_name(metric, labels)
    }
}

impl<T: uwsgi_red_core::red::kv::KvStore> uwsgi_red_core::red::kv::KvStore for Counted<T> {
    fn get(
        &mut self,
        key: &str,
    ) -> Result<uwsgi_red_core::red::kv::Versioned, uwsgi_red_core::red::kv::KvError> {
        let r = self.0.get(key);
        host_call(matches!(r, Ok((Some(_), _))));
        r
    }

    fn set(
        &mut self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<uwsgi_red_core::red::kv::CasWrite, uwsgi_red_core::red::kv::KvError> {
        host_call(false);
        self.0.set(key, value, cas)
    }
}
