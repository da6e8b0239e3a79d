//! The proxy-wasm side of the core's host traits: Envoy/nginx metric calls
//! ([`MetricsHost`]) and shared data ([`KvStore`]). Everything that decides
//! (admission, folding, counting failures) is core code tested natively.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{MetricType as HostKind, Status};
use uwsgi_red_core::prom::text::MetricType;
use uwsgi_red_core::red::host::{HostError, MetricsHost};
use uwsgi_red_core::red::kv::{CasWrite, KvError, KvStore, Versioned};

/// Plugin-side `reason`s of `uwsgi_red_internal_errors_total`.
pub const REASON_SEND_RESPONSE: &str = "send_response";
pub const REASON_MISSING_DURATION: &str = "missing_duration";

#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyMetrics;

impl MetricsHost for ProxyMetrics {
    fn define(&mut self, kind: MetricType, name: &str) -> Result<u32, HostError> {
        let kind = match kind {
            MetricType::Counter => HostKind::Counter,
            MetricType::Histogram => HostKind::Histogram,
            MetricType::Gauge | MetricType::Untyped => HostKind::Gauge,
        };
        hostcalls::define_metric(kind, name).map_err(|_| HostError)
    }

    fn increment(&mut self, id: u32, by: u64) -> Result<(), HostError> {
        let by = i64::try_from(by).unwrap_or(i64::MAX);
        hostcalls::increment_metric(id, by).map_err(|_| HostError)
    }

    fn record(&mut self, id: u32, value: u64) -> Result<(), HostError> {
        hostcalls::record_metric(id, value).map_err(|_| HostError)
    }
}

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
