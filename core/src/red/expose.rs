//! The RED families as text, shared by the in-memory aggregate and the
//! self-served endpoint so both expose the same names, help and buckets.

use std::collections::BTreeMap;

use super::aggregate::Series;
use super::histogram::Buckets;
use super::labels::LabelSet;
use super::names;
use super::shared::{Exemplar, Exemplars, TRACE_ID_LABEL};
use crate::prom::text::{Format, MetricType, TextEncoder, TextExemplar};

/// Writes every RED family. `internal` holds `(reason, count)` pairs for
/// `uwsgi_red_internal_errors_total`; the family is left out when `None`.
/// `exemplars` (self mode): in OpenMetrics each duration bucket line
/// carries the latest request's trace id of that bucket, and
/// `uwsgi_red_requests_total` the series' latest one, with value 1 (the
/// increment that request made). Prometheus text never shows them.
pub fn encode<'a>(
    format: Format,
    buckets: &Buckets,
    series: impl Iterator<Item = (&'a LabelSet, &'a Series)>,
    dropped: u64,
    internal: Option<&[(&str, u64)]>,
    started_s: Option<u64>,
    exemplars: &BTreeMap<LabelSet, Exemplars>,
) -> String {
    let mut e = TextEncoder::with_format(format);
    let exemplars = if format == Format::OpenMetrics {
        exemplars
    } else {
        &BTreeMap::new()
    };
    let pairs: Vec<_> = series
        .map(|(l, s)| (l.pairs(), s, exemplars.get(l)))
        .collect();
    e.family(
        names::REQUESTS_TOTAL,
        "Requests seen by the proxy, by bounded label set.",
        MetricType::Counter,
    );
    for (l, s, x) in &pairs {
        match x.and_then(|x| x.latest()) {
            Some(latest) => with_text(latest, Some(1.0), |t| {
                e.sample_with_exemplar(names::REQUESTS_TOTAL, l, s.requests as f64, Some(t));
            }),
            None => e.sample(names::REQUESTS_TOTAL, l, s.requests as f64),
        }
    }
    e.family(
        names::ERRORS_TOTAL,
        "Requests answered 5xx or not answered at all.",
        MetricType::Counter,
    );
    for (l, s, _) in &pairs {
        e.sample(names::ERRORS_TOTAL, l, s.errors as f64);
    }
    e.family(
        names::DURATION_SECONDS,
        "First request byte to last response byte, seen at the proxy.",
        MetricType::Histogram,
    );
    for (l, s, x) in &pairs {
        match x {
            Some(x) => e.histogram_with_exemplars(
                names::DURATION_SECONDS,
                l,
                buckets.bounds(),
                &s.duration,
                |i, f| {
                    if let Some(ex) = x.get(i) {
                        with_text(ex, None, |t| f(t));
                    }
                },
            ),
            None => e.histogram(names::DURATION_SECONDS, l, buckets.bounds(), &s.duration),
        }
    }
    e.family(
        names::TTFB_SECONDS,
        "First request byte to first response byte, seen at the proxy.",
        MetricType::Histogram,
    );
    for (l, s, _) in &pairs {
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

/// Calls `f` with `x` as text: `{trace_id="<32 hex>"}`, its value (or
/// `value`) and its timestamp.
fn with_text(x: &Exemplar, value: Option<f64>, f: impl FnOnce(&TextExemplar<'_>)) {
    let id = x.trace_id.hex();
    let ts = super::shared::timestamp_text(x.time_ns);
    f(&TextExemplar {
        labels: &[(TRACE_ID_LABEL, &id)],
        value: value.unwrap_or(x.value),
        timestamp: Some(&ts),
    });
}
