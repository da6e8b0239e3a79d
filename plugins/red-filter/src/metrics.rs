//! Host metrics: Envoy stat ids per label set, with the cardinality cap
//! enforced across all worker VMs through shared data.

use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{MetricType, Status};
use uwsgi_red_core::envoy_name;
use uwsgi_red_core::red::labels::LabelSet;
use uwsgi_red_core::red::names;

/// Stat ids of one admitted label set.
#[derive(Debug, Clone, Copy)]
pub struct SeriesIds {
    pub requests: u32,
    pub errors: Option<u32>,
    pub duration: u32,
    pub ttfb: u32,
}

/// Why something inside the plugin went wrong; exported as the `reason`
/// label of `uwsgi_red_internal_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Internal {
    DefineMetric,
    RecordMetric,
    SharedData,
    /// Self mode: the stored state could not be decoded and was replaced.
    SharedStateReset,
    /// Self mode: the host refused the scrape's local response.
    SendResponse,
    MissingDuration,
}

impl Internal {
    pub fn reason(self) -> &'static str {
        match self {
            Internal::DefineMetric => "define_metric",
            Internal::RecordMetric => "record_metric",
            Internal::SharedData => "shared_data",
            Internal::SharedStateReset => "shared_state_reset",
            Internal::SendResponse => "send_response",
            Internal::MissingDuration => "missing_duration",
        }
    }
}

#[derive(Debug)]
pub struct HostMetrics {
    cap: usize,
    /// Label sets this VM knows are admitted (or are the overflow series).
    series: HashMap<LabelSet, SeriesIds>,
    /// Label sets this VM was refused, so a refused set costs no host call
    /// the second time.
    refused: std::collections::HashSet<LabelSet>,
    dropped: Option<u32>,
    internal: HashMap<Internal, u32>,
    key_prefix: String,
}

const SHARED_COUNT: &str = "count";

impl HostMetrics {
    /// `scope` separates the shared admission sets of several filter
    /// instances in one Envoy.
    pub fn new(cap: usize, scope: &str) -> Self {
        Self {
            cap,
            series: HashMap::new(),
            refused: std::collections::HashSet::new(),
            dropped: None,
            internal: HashMap::new(),
            key_prefix: format!("uwsgi_red.red_filter.{scope}."),
        }
    }

    /// Pre-defines the counters that must exist (at zero) before the first
    /// request, so dashboards and tests see them from the start.
    pub fn define_static(&mut self) {
        self.dropped = define(MetricType::Counter, names::DROPPED_LABEL_SETS_TOTAL).ok();
    }

    pub fn internal_error(&mut self, what: Internal) {
        let id = match self.internal.get(&what) {
            Some(id) => *id,
            None => {
                let name =
                    envoy_name::encode(names::INTERNAL_ERRORS_TOTAL, &[("reason", what.reason())]);
                match define(MetricType::Counter, &name) {
                    Ok(id) => {
                        self.internal.insert(what, id);
                        id
                    }
                    Err(_) => return,
                }
            }
        };
        let _ = hostcalls::increment_metric(id, 1);
    }

    /// Records one finished request; every failure is counted, none escapes.
    pub fn record(&mut self, labels: LabelSet, duration_us: u64, ttfb_us: Option<u64>) {
        let ids = match self.ids_for(labels) {
            Ok(ids) => ids,
            Err(e) => {
                self.internal_error(e);
                return;
            }
        };
        let mut failed = hostcalls::increment_metric(ids.requests, 1).is_err();
        if let Some(e) = ids.errors {
            failed |= hostcalls::increment_metric(e, 1).is_err();
        }
        failed |= hostcalls::record_metric(ids.duration, duration_us).is_err();
        if let Some(t) = ttfb_us {
            failed |= hostcalls::record_metric(ids.ttfb, t).is_err();
        }
        if failed {
            self.internal_error(Internal::RecordMetric);
        }
    }

    fn ids_for(&mut self, labels: LabelSet) -> Result<SeriesIds, Internal> {
        if let Some(ids) = self.series.get(&labels) {
            return Ok(*ids);
        }
        let admitted = !self.refused.contains(&labels) && self.admit(&labels)?;
        let key = if admitted {
            labels
        } else {
            // Bounded like everything else: forgetting refusals only costs a
            // shared-data lookup next time, never a wrong count.
            if self.refused.len() >= self.cap.saturating_mul(4).max(1024) {
                self.refused.clear();
            }
            self.refused.insert(labels.clone());
            if let Some(d) = self.dropped {
                let _ = hostcalls::increment_metric(d, 1);
            }
            let over = labels.overflow();
            if let Some(ids) = self.series.get(&over) {
                return Ok(*ids);
            }
            over
        };
        let ids = define_series(&key)?;
        self.series.insert(key, ids);
        Ok(ids)
    }

    /// Claims one of the `cap` process-wide series slots for a label set
    /// this VM has not seen, unless another VM already claimed it.
    fn admit(&mut self, labels: &LabelSet) -> Result<bool, Internal> {
        let series_key = format!("{}s.{}", self.key_prefix, series_key(labels));
        if let Ok((Some(_), _)) = hostcalls::get_shared_data(&series_key) {
            return Ok(true);
        }
        let count_key = format!("{}{}", self.key_prefix, SHARED_COUNT);
        // CAS loop: bounded, since every retry means another VM made progress.
        for _ in 0..64 {
            let (value, cas) =
                hostcalls::get_shared_data(&count_key).map_err(|_| Internal::SharedData)?;
            let count = value
                .as_deref()
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
                .unwrap_or(0);
            if count >= self.cap as u64 {
                return Ok(false);
            }
            match hostcalls::set_shared_data(&count_key, Some(&(count + 1).to_le_bytes()), cas) {
                Ok(()) => {
                    hostcalls::set_shared_data(&series_key, Some(b"1"), None)
                        .map_err(|_| Internal::SharedData)?;
                    return Ok(true);
                }
                Err(Status::CasMismatch) => continue,
                Err(_) => return Err(Internal::SharedData),
            }
        }
        Err(Internal::SharedData)
    }
}

fn series_key(l: &LabelSet) -> String {
    envoy_name::encode("", &l.pairs())
}

fn define(kind: MetricType, name: &str) -> Result<u32, Internal> {
    hostcalls::define_metric(kind, name).map_err(|_| Internal::DefineMetric)
}

fn define_series(l: &LabelSet) -> Result<SeriesIds, Internal> {
    let pairs = l.pairs();
    let errors = if l.is_error() {
        Some(define(
            MetricType::Counter,
            &envoy_name::encode(names::ERRORS_TOTAL, &pairs),
        )?)
    } else {
        None
    };
    Ok(SeriesIds {
        requests: define(
            MetricType::Counter,
            &envoy_name::encode(names::REQUESTS_TOTAL, &pairs),
        )?,
        errors,
        duration: define(
            MetricType::Histogram,
            &envoy_name::encode(names::DURATION_MICROSECONDS, &pairs),
        )?,
        ttfb: define(
            MetricType::Histogram,
            &envoy_name::encode(names::TTFB_MICROSECONDS, &pairs),
        )?,
    })
}
