//! Host-mode recording shared by red-filter and uwsgi-tcp: label sets to
//! host metrics, after the one admission decision of [`super::admission`].
//! Written against small traits so every host failure is injected natively:
//! [`MetricsHost`] for the metric calls and [`SeriesNames`] for how a host
//! names one series. Core knows no host's naming scheme (Envoy's tag
//! encoding lives with the proxy-wasm adapters).

use std::hash::RandomState;

use litemap::LiteMap;

use super::admission::Decision;
use super::labels::LabelSet;
use super::maps::HashMap;
use super::names::{self, REASON_DEFINE, REASON_RECORD};
use crate::prom::text::MetricType;

/// The host refused a metric call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError;

/// The host's metric calls (proxy-wasm `define_metric`, `increment_metric`,
/// `record_metric`).
pub trait MetricsHost {
    fn define(&mut self, kind: MetricType, name: &str) -> Result<u32, HostError>;
    fn increment(&mut self, id: u32, by: u64) -> Result<(), HostError>;
    fn record(&mut self, id: u32, value: u64) -> Result<(), HostError>;
}

/// How a host names one series: a metric name plus its labels, in the
/// order given. A host without a label API (Envoy) encodes the labels into
/// the name; distinct label sets must get distinct names.
pub trait SeriesNames {
    fn series_name(&self, metric: &'static str, labels: &[(&'static str, &str)]) -> String;
}

/// Host stat ids of one label set.
#[derive(Debug, Clone, Copy)]
struct SeriesIds {
    requests: u32,
    errors: Option<u32>,
    duration: u32,
    ttfb: u32,
}

/// One VM's host-mode state.
#[derive(Debug, Default)]
pub struct HostRecorder {
    /// SipHash for string keys: see [`super::maps`].
    series: HashMap<LabelSet, SeriesIds, RandomState>,
    /// By (status class, protocol): a handful, so a sorted list.
    overflow: LiteMap<(&'static str, &'static str), SeriesIds>,
    dropped: Option<u32>,
    /// By reason: a handful, so a sorted list.
    internal: LiteMap<&'static str, u32>,
}

impl HostRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Defines the counters that must exist (at zero) from the start.
    pub fn start<H: MetricsHost + SeriesNames>(&mut self, host: &mut H) {
        match host.define(MetricType::Counter, names::DROPPED_LABEL_SETS_TOTAL) {
            Ok(id) => self.dropped = Some(id),
            Err(_) => self.internal_error(host, REASON_DEFINE),
        }
    }

    /// True when this VM already has ids for the set (admitted before).
    pub fn knows(&self, labels: &LabelSet) -> bool {
        self.series.contains_key(labels)
    }

    /// Counts one finished request under `decision`. Whatever the host
    /// refuses, the request ends in some series if the host can count at
    /// all, and every failure is counted by reason.
    pub fn record<H: MetricsHost + SeriesNames>(
        &mut self,
        host: &mut H,
        labels: LabelSet,
        decision: Decision,
        duration_us: u64,
        ttfb_us: Option<u64>,
    ) {
        self.record_ref(host, &labels, decision, duration_us, ttfb_us);
    }

    /// [`record`](Self::record) for a borrowed label set: a known series
    /// costs one map lookup and no allocation.
    pub fn record_ref<H: MetricsHost + SeriesNames>(
        &mut self,
        host: &mut H,
        labels: &LabelSet,
        decision: Decision,
        duration_us: u64,
        ttfb_us: Option<u64>,
    ) {
        let ids = match decision {
            Decision::Admitted => match self.ids(host, labels) {
                Ok(ids) => Ok(ids),
                // The host would not define this series: its class's
                // overflow series still counts the request.
                Err(_) => {
                    self.increment_dropped(host);
                    self.overflow_ids(host, labels)
                }
            },
            Decision::Refused => {
                self.increment_dropped(host);
                self.overflow_ids(host, labels)
            }
            Decision::Undecided(u) => {
                self.increment_dropped(host);
                self.internal_error(host, u.reason());
                self.overflow_ids(host, labels)
            }
        };
        let Ok(ids) = ids else {
            return self.internal_error(host, REASON_DEFINE);
        };
        let mut ok = host.increment(ids.requests, 1).is_ok();
        if let Some(e) = ids.errors {
            ok &= host.increment(e, 1).is_ok();
        }
        ok &= host.record(ids.duration, duration_us).is_ok();
        if let Some(t) = ttfb_us {
            ok &= host.record(ids.ttfb, t).is_ok();
        }
        if !ok {
            self.internal_error(host, REASON_RECORD);
        }
    }

    /// The overflow series of `labels`' status class and protocol, kept
    /// apart so folding a request allocates nothing once it exists.
    fn overflow_ids<H: MetricsHost + SeriesNames>(
        &mut self,
        host: &mut H,
        labels: &LabelSet,
    ) -> Result<SeriesIds, HostError> {
        let k = (labels.code_class, labels.protocol);
        if let Some(ids) = self.overflow.get(&k) {
            return Ok(*ids);
        }
        let ids = define_series(host, &labels.overflow())?;
        self.overflow.insert(k, ids);
        Ok(ids)
    }

    fn increment_dropped<H: MetricsHost + SeriesNames>(&mut self, host: &mut H) {
        if let Some(d) = self.dropped {
            if host.increment(d, 1).is_err() {
                self.internal_error(host, REASON_RECORD);
            }
        }
    }

    fn ids<H: MetricsHost + SeriesNames>(
        &mut self,
        host: &mut H,
        key: &LabelSet,
    ) -> Result<SeriesIds, HostError> {
        if let Some(ids) = self.series.get(key) {
            return Ok(*ids);
        }
        let ids = define_series(host, key)?;
        self.series.insert(key.clone(), ids);
        Ok(ids)
    }

    /// Counts an internal failure; a host that cannot even count that is
    /// past helping, and traffic is never affected either way.
    pub fn internal_error<H: MetricsHost + SeriesNames>(
        &mut self,
        host: &mut H,
        reason: &'static str,
    ) {
        let id = match self.internal.get(reason) {
            Some(id) => *id,
            None => {
                let name = host.series_name(names::INTERNAL_ERRORS_TOTAL, &[("reason", reason)]);
                let Ok(id) = host.define(MetricType::Counter, &name) else {
                    return;
                };
                self.internal.insert(reason, id);
                id
            }
        };
        let _ = host.increment(id, 1);
    }
}

fn define_series<H: MetricsHost + SeriesNames>(
    host: &mut H,
    l: &LabelSet,
) -> Result<SeriesIds, HostError> {
    let pairs = l.pairs();
    let pairs: Vec<(&'static str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut define = |kind, metric| {
        let name = host.series_name(metric, &pairs);
        host.define(kind, &name)
    };
    let errors = if l.is_error() {
        Some(define(MetricType::Counter, names::ERRORS_TOTAL)?)
    } else {
        None
    };
    Ok(SeriesIds {
        requests: define(MetricType::Counter, names::REQUESTS_TOTAL)?,
        errors,
        duration: define(MetricType::Histogram, names::DURATION_MICROSECONDS)?,
        ttfb: define(MetricType::Histogram, names::TTFB_MICROSECONDS)?,
    })
}
