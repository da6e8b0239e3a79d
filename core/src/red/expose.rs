//! The RED families as text, shared by the in-memory aggregate and the
//! self-served endpoint so both expose the same names, help and buckets.

use super::aggregate::Series;
use super::histogram::Buckets;
use super::labels::LabelSet;
use super::names;
use crate::prom::text::{Format, MetricType, TextEncoder};

/// Writes every RED family. `internal` holds `(reason, count)` pairs for
/// `uwsgi_red_internal_errors_total`; the family is left out when `None`.
pub fn encode<'a>(
    format: Format,
    buckets: &Buckets,
    series: impl Iterator<Item = (&'a LabelSet, &'a Series)>,
    dropped: u64,
    internal: Option<&[(&str, u64)]>,
    started_s: Option<u64>,
) -> String {
    let mut e = TextEncoder::with_format(format);
    let pairs: Vec<_> = series.map(|(l, s)| (l.pairs(), s)).collect();
    e.family(
        names::REQUESTS_TOTAL,
        "Requests seen by the proxy, by bounded label set.",
        MetricType::Counter,
    );
    for (l, s) in &pairs {
        e.sample(names::REQUESTS_TOTAL, l, s.requests as f64);
    }
    e.family(
        names::ERRORS_TOTAL,
        "Requests answered 5xx or not answered at all.",
        MetricType::Counter,
    );
    for (l, s) in &pairs {
        e.sample(names::ERRORS_TOTAL, l, s.errors as f64);
    }
    e.family(
        names::DURATION_SECONDS,
        "First request byte to last response byte, seen at the proxy.",
        MetricType::Histogram,
    );
    for (l, s) in &pairs {
        e.histogram(names::DURATION_SECONDS, l, buckets.bounds(), &s.duration);
    }
    e.family(
        names::TTFB_SECONDS,
        "First request byte to first response byte, seen at the proxy.",
        MetricType::Histogram,
    );
    for (l, s) in &pairs {
        e.histogram(names::TTFB_SECONDS, l, buckets.bounds(), &s.ttfb);
    }
    e.family(
        names::DROPPED_LABEL_SETS_TOTAL,
        "Requests folded into the overflow series by the cardinality cap.",
        MetricType::Counter,
    );
    e.sample::<&str>(names::DROPPED_LABEL_SETS_TOTAL, &[], dropped as f64);
    if let Some(internal) = internal {
        e.family(
            names::INTERNAL_ERRORS_TOTAL,
            "Failures inside the plugin (never visible to traffic), by reason.",
            MetricType::Counter,
        );
        for (reason, n) in internal {
            e.sample(
                names::INTERNAL_ERRORS_TOTAL,
                &[("reason", reason)],
                *n as f64,
            );
        }
    }
    if let Some(t) = started_s {
        e.family(
            names::STATE_START_TIME_SECONDS,
            "When the shared state these counters live in was created (Unix seconds); a new value means every counter restarted.",
            MetricType::Gauge,
        );
        e.sample::<&str>(names::STATE_START_TIME_SECONDS, &[], t as f64);
    }
    e.finish()
}
