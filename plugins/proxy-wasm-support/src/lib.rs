//! The proxy-wasm side of the core's host traits, shared by red-filter,
//! uwsgi-tcp and uwsgi-stats: host metric calls ([`ProxyMetrics`] for
//! [`MetricsHost`]), series names ([`ProxyMetrics`] for [`SeriesNames`]:
//! Envoy's tag-encoded stat names, see [`envoy_name`]) and shared data
//! ([`ProxyKv`] for [`KvStore`]).
//!
//! Host values (headers, properties) are read as bytes through [`read`].
//!
//! Core knows no host; this crate is the one place that maps proxy-wasm
//! statuses onto the core's error types, so every plugin treats a failing
//! host the same way (counted by the core, never fatal to traffic).

pub mod read;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType as HostKind, Status};
use uwsgi_red_core::prom::MetricType;
use uwsgi_red_core::red::{CasWrite, KvError, KvStore, Versioned};
use uwsgi_red_core::red::{HostError, MetricsHost, SeriesNames};

/// Envoy stat names carrying labels (`key=.=value;.;metric`), and the
/// `stats_tags` rules that turn them back into labels.
pub use uwsgi_red_envoy_name as envoy_name;

/// proxy-wasm metric calls (`proxy_define_metric` & co.).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyMetrics;

impl MetricsHost for ProxyMetrics {
    fn define(&mut self, kind: MetricType, name: &str) -> Result<u32, HostError> {
        let kind = match kind {
            MetricType::Counter => HostKind::Counter,
            MetricType::Histogram => HostKind::Histogram,
            MetricType::Gauge | MetricType::Untyped => HostKind::Gauge,
        };
        hostcalls::define_metric(kind, name).map_err(|e| {
            // Rare (a host without metric support, or a name it refuses) and
            // otherwise invisible: the core only counts it.
            let _ = hostcalls::log(LogLevel::Warn, &format!("define_metric {name}: {e:?}"));
            HostError
        })
    }

    fn increment(&mut self, id: u32, by: u64) -> Result<(), HostError> {
        let by = i64::try_from(by).unwrap_or(i64::MAX);
        hostcalls::increment_metric(id, by).map_err(|_| HostError)
    }

    fn record(&mut self, id: u32, value: u64) -> Result<(), HostError> {
        hostcalls::record_metric(id, value).map_err(|_| HostError)
    }
}

/// proxy-wasm hosts have no label API: labels go into the stat name in
/// [`envoy_name`]'s encoding, which the example bootstraps' `stats_tags`
/// undo. (ngx_wasm_module takes the same names; the nginx examples serve
/// metrics themselves instead.)
impl SeriesNames for ProxyMetrics {
    fn series_name(&self, metric: &'static str, labels: &[(&'static str, &str)]) -> String {
        envoy_name::encode(metric, labels)
    }
}

/// proxy-wasm shared data (`proxy_get/set_shared_data` with CAS).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyKv;

impl KvStore for ProxyKv {
    fn get(&mut self, key: &str) -> Result<Versioned, KvError> {
        hostcalls::get_shared_data(key).map_err(|_| KvError::Unavailable)
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<CasWrite, KvError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(CasWrite::Written),
            Err(Status::CasMismatch) => Ok(CasWrite::Mismatch),
            // Envoy has no size limit of its own; ngx_wasm_module reports
            // a full `shm_kv` zone this way (when it does not trap).
            Err(Status::InternalFailure) => Err(KvError::TooLarge),
            Err(_) => Err(KvError::Unavailable),
        }
    }
}
