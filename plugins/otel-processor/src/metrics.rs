//! Rewrites gunicorn/uWSGI StatsD metrics (as the Collector's statsd
//! receiver emits them) into OpenTelemetry HTTP semantic conventions; every
//! other metric is left exactly where and as it was.

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, MetricsData,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use uwsgi_red_core::statsd::to_explicit;
use uwsgi_red_core::statsd::{
    classify, map, Admission, AttrValue, Instrument, Mapping, NameBudget, Outcome,
};

use crate::otlp::{int_value, set_attr, str_value};
use crate::OtelProcessorConfig;

const SERVICE_NAME: &str = "service.name";

/// Metrics a rewrite left as they were, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// New StatsD names refused by the name budget.
    pub over_budget: u64,
    /// uWSGI counters (running totals sent with `|c`) aggregated by the
    /// receiver over an interval not shorter than uWSGI's push period: the
    /// receiver may have added several pushes together, so the value is no
    /// running total any more.
    pub summed_pushes: u64,
    /// The longest such interval, in nanoseconds.
    pub longest_interval_nanos: u64,
}

/// Rewrites `data` in place; returns how many metrics kept their original
/// name because `names` refused them (a new name with the budget full).
pub fn rewrite(cfg: &OtelProcessorConfig, names: &mut NameBudget, data: &mut MetricsData) -> u64 {
    rewrite_all(cfg, names, data).over_budget
}

/// [`rewrite`], with every reason a metric was left as it was.
pub fn rewrite_all(
    cfg: &OtelProcessorConfig,
    names: &mut NameBudget,
    data: &mut MetricsData,
) -> Kept {
    let mut kept_by = Kept::default();
    let mut out = Vec::with_capacity(data.resource_metrics.len());
    for mut rm in std::mem::take(&mut data.resource_metrics) {
        // service.name -> rewritten metrics, in first-seen order of names.
        let mut services: BTreeMap<String, MetricGroup> = BTreeMap::new();
        for sm in &mut rm.scope_metrics {
            let mut kept = Vec::with_capacity(sm.metrics.len());
            for metric in std::mem::take(&mut sm.metrics) {
                match route(cfg, names, metric) {
                    Routed::Keep(m) => kept.push(m),
                    Routed::OverBudget(m) => {
                        kept_by.over_budget = kept_by.over_budget.saturating_add(1);
                        kept.push(m);
                    }
                    Routed::SummedPushes(m, interval) => {
                        kept_by.summed_pushes = kept_by.summed_pushes.saturating_add(1);
                        kept_by.longest_interval_nanos =
                            kept_by.longest_interval_nanos.max(interval);
                        kept.push(m);
                    }
                    Routed::Drop => {}
                    Routed::Rewritten(service, m) => services.entry(service).or_default().merge(m),
                }
            }
            sm.metrics = kept;
        }
        rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
        let base_resource = rm.resource.clone();
        let schema_url = rm.schema_url.clone();
        if !rm.scope_metrics.is_empty() {
            out.push(rm);
        }
        for (service, group) in services {
            let metrics = group.metrics;
            let mut resource = base_resource.clone().unwrap_or_default();
            set_attr(&mut resource.attributes, SERVICE_NAME, str_value(service));
            out.push(ResourceMetrics {
                resource: Some(Resource { ..resource }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: crate::SCOPE_NAME.to_string(),
                        version: crate::SCOPE_VERSION.to_string(),
                        ..Default::default()
                    }),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: schema_url.clone(),
            });
        }
    }
    data.resource_metrics = out;
    kept_by
}

enum Routed {
    Keep(Metric),
    /// Ours by name, but a new name with the budget full: kept as it was,
    /// and counted.
    OverBudget(Metric),
    /// A uWSGI `|c` sum over a receiver interval (ns) not shorter than the
    /// push period: kept as it was, and counted.
    SummedPushes(Metric, u64),
    Drop,
    Rewritten(String, Metric),
}

fn route(cfg: &OtelProcessorConfig, names: &mut NameBudget, metric: Metric) -> Routed {
    let Some((source, m)) = classify(&metric.name, &cfg.uwsgi_prefixes) else {
        return Routed::Keep(metric);
    };
    // Every rewritten name is an output series of its own: past the budget a
    // name is treated as not ours, so memory and output stay bounded however
    // many distinct names arrive.
    match names.admit(&metric.name) {
        Admission::Admitted => {}
        Admission::Overflow => return Routed::OverBudget(metric),
        // classify already refuses names this long; kept as not ours.
        Admission::TooLong => return Routed::Keep(metric),
    }
    match map(&m) {
        Outcome::Redundant if cfg.keep_redundant => Routed::Keep(metric),
        Outcome::Redundant => Routed::Drop,
        Outcome::Rewrite(_)
            if source.server() == "uwsgi" && summed_interval(cfg, &metric).is_some() =>
        {
            let interval = summed_interval(cfg, &metric).unwrap_or_default();
            Routed::SummedPushes(metric, interval)
        }
        Outcome::Rewrite(mapping) => {
            let service = cfg.service_for(source.prefix(), source.server());
            match convert(cfg, &mapping, metric) {
                Ok(new) => Routed::Rewritten(service, new),
                // A data shape the mapping has no meaning for stays as it was.
                Err(unchanged) => Routed::Keep(unchanged),
            }
        }
    }
}

/// The receiver interval of a uWSGI counter when it is too long to hold a
/// single push: uWSGI sends running totals with `|c`, the receiver adds up
/// every `|c` of an interval, and an interval at least as long as the push
/// period may hold two pushes. Gauges (`|g`) keep their last value and are
/// never affected; a point without a start time cannot be judged.
fn summed_interval(cfg: &OtelProcessorConfig, metric: &Metric) -> Option<u64> {
    let Some(Data::Sum(s)) = &metric.data else {
        return None;
    };
    let period = cfg.uwsgi_push_period_nanos();
    s.data_points
        .iter()
        .filter(|p| p.start_time_unix_nano != 0)
        .map(|p| p.time_unix_nano.saturating_sub(p.start_time_unix_nano))
        .filter(|&interval| interval >= period)
        .max()
}

/// The rewritten metrics of one service, in first-seen order, with an index
/// from (name, unit) to the first metric of that identity so that merging is
/// one hash lookup per metric, not a scan of every name seen so far.
#[derive(Debug, Default)]
struct MetricGroup {
    metrics: Vec<Metric>,
    first: HashMap<(String, String), usize>,
    /// Existing metrics a merge looked at (at most one per merge).
    examined: usize,
}

impl MetricGroup {
    /// Same name, unit and shape: one metric with both data point lists.
    fn merge(&mut self, m: Metric) {
        let key = (m.name.clone(), m.unit.clone());
        let Some(existing) = self.first.get(&key).and_then(|&i| self.metrics.get_mut(i)) else {
            self.first.insert(key, self.metrics.len());
            self.metrics.push(m);
            return;
        };
        self.examined = self.examined.saturating_add(1);
        match (&mut existing.data, m.data) {
            (Some(Data::Sum(a)), Some(Data::Sum(b)))
                if a.aggregation_temporality == b.aggregation_temporality
                    && a.is_monotonic == b.is_monotonic =>
            {
                a.data_points.extend(b.data_points)
            }
            (Some(Data::Gauge(a)), Some(Data::Gauge(b))) => a.data_points.extend(b.data_points),
            (Some(Data::Histogram(a)), Some(Data::Histogram(b)))
                if a.aggregation_temporality == b.aggregation_temporality =>
            {
                a.data_points.extend(b.data_points)
            }
            (Some(Data::Summary(a)), Some(Data::Summary(b))) => a.data_points.extend(b.data_points),
            // Another shape under the same name stays a metric of its own.
            (_, data) => self.metrics.push(Metric { data, ..m }),
        }
    }
}

/// The rewritten metric, or the input back when its data shape has no
/// meaning for the mapping. Consumes the input: no data point is copied.
// The Err side hands the caller's own metric back; boxing it would cost an
// allocation per pass-through metric to satisfy a size heuristic.
#[allow(clippy::result_large_err)]
fn convert(cfg: &OtelProcessorConfig, mp: &Mapping, mut metric: Metric) -> Result<Metric, Metric> {
    let data = match (mp.instrument, metric.data.take()) {
        (Instrument::DeltaCounter, Some(Data::Sum(mut s))) => {
            rescale_points(&mut s.data_points, mp);
            s.is_monotonic = true;
            Data::Sum(s)
        }
        (Instrument::AbsoluteCounter, Some(Data::Sum(mut s))) => {
            rescale_points(&mut s.data_points, mp);
            // The running total since the worker started: no known start.
            if s.aggregation_temporality != AggregationTemporality::Cumulative as i32 {
                s.data_points
                    .iter_mut()
                    .for_each(|p| p.start_time_unix_nano = 0);
            }
            s.aggregation_temporality = AggregationTemporality::Cumulative as i32;
            s.is_monotonic = true;
            Data::Sum(s)
        }
        (
            Instrument::Gauge,
            Some(
                Data::Sum(Sum {
                    mut data_points, ..
                })
                | Data::Gauge(Gauge { mut data_points }),
            ),
        ) => {
            rescale_points(&mut data_points, mp);
            data_points
                .iter_mut()
                .for_each(|p| p.start_time_unix_nano = 0);
            Data::Gauge(Gauge { data_points })
        }
        (Instrument::Duration, Some(Data::ExponentialHistogram(h))) => {
            let bounds = cfg.bounds();
            let data_points = h
                .data_points
                .into_iter()
                .map(|mut p| {
                    add_attrs(&mut p.attributes, mp);
                    let (pos_off, pos) = p
                        .positive
                        .as_ref()
                        .map_or((0, &[][..]), |b| (b.offset, &b.bucket_counts[..]));
                    let neg = p
                        .negative
                        .as_ref()
                        .map_or(&[][..], |b| &b.bucket_counts[..]);
                    HistogramDataPoint {
                        bucket_counts: to_explicit(
                            p.scale,
                            p.zero_count,
                            pos_off,
                            pos,
                            neg,
                            mp.scale,
                            bounds,
                        ),
                        attributes: p.attributes,
                        start_time_unix_nano: p.start_time_unix_nano,
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum.map(|s| apply(s, mp.scale)),
                        explicit_bounds: bounds.to_vec(),
                        exemplars: Vec::new(),
                        flags: p.flags,
                        min: p.min.map(|v| apply(v, mp.scale)),
                        max: p.max.map(|v| apply(v, mp.scale)),
                    }
                })
                .collect();
            Data::Histogram(Histogram {
                data_points,
                aggregation_temporality: h.aggregation_temporality,
            })
        }
        (Instrument::Duration, Some(Data::Histogram(mut h))) => {
            for p in &mut h.data_points {
                add_attrs(&mut p.attributes, mp);
                p.sum = p.sum.map(|s| apply(s, mp.scale));
                p.min = p.min.map(|v| apply(v, mp.scale));
                p.max = p.max.map(|v| apply(v, mp.scale));
                p.explicit_bounds
                    .iter_mut()
                    .for_each(|b| *b = apply(*b, mp.scale));
            }
            Data::Histogram(h)
        }
        (Instrument::Duration, Some(Data::Summary(mut s))) => {
            for p in &mut s.data_points {
                add_attrs(&mut p.attributes, mp);
                p.sum = apply(p.sum, mp.scale);
                p.quantile_values
                    .iter_mut()
                    .for_each(|q| q.value = apply(q.value, mp.scale));
            }
            Data::Summary(s)
        }
        (_, data) => {
            metric.data = data;
            return Err(metric);
        }
    };
    Ok(Metric {
        name: mp.name.clone(),
        description: mp.description.to_string(),
        unit: mp.unit.to_string(),
        metadata: Vec::new(),
        data: Some(data),
    })
}

fn add_attrs(attrs: &mut Vec<KeyValue>, mp: &Mapping) {
    for (k, v) in &mp.attributes {
        let v = match v {
            AttrValue::Int(i) => int_value(*i),
            AttrValue::Str(s) => str_value(s.clone()),
        };
        set_attr(attrs, k, v);
    }
}

fn rescale_points(pts: &mut [NumberDataPoint], mp: &Mapping) {
    for p in pts {
        add_attrs(&mut p.attributes, mp);
        p.value = p.value.map(|v| scale(v, mp.scale));
    }
}

fn scale(v: Value, s: f64) -> Value {
    #[allow(clippy::float_cmp)] // exactly 1.0 is the "no conversion" marker
    if s == 1.0 {
        return v;
    }
    match v {
        Value::AsDouble(d) => Value::AsDouble(apply(d, s)),
        Value::AsInt(i) => Value::AsDouble(apply(i as f64, s)),
    }
}

/// Unit conversion. Down-scaling divides by the exact power of ten so that
/// 63241 us is 0.063241 s, not 0.06324099999999999.
fn apply(v: f64, s: f64) -> f64 {
    if s < 1.0 {
        v / (1.0 / s).round()
    } else {
        v * s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(name: &str, v: i64) -> Metric {
        Metric {
            name: name.to_string(),
            unit: "{request}".to_string(),
            data: Some(Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    value: Some(Value::AsInt(v)),
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        }
    }

    // Regression: merging scanned every name seen so far (quadratic in
    // distinct names). Each merge now looks at one existing metric at most.
    #[test]
    fn merge_is_one_lookup_per_metric() {
        let mut g = MetricGroup::default();
        let n = 20_000;
        for i in 0..n {
            g.merge(sum(&format!("m{i}"), 1));
        }
        assert_eq!((g.metrics.len(), g.examined), (n, 0));
        for i in 0..n {
            g.merge(sum(&format!("m{i}"), 2));
        }
        assert_eq!((g.metrics.len(), g.examined), (n, n));
        let points: usize = g
            .metrics
            .iter()
            .map(|m| match &m.data {
                Some(Data::Sum(s)) => s.data_points.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(points, 2 * n);
    }

    #[test]
    fn other_shape_under_same_name_stays_separate_and_order_is_kept() {
        let mut g = MetricGroup::default();
        g.merge(sum("a", 1));
        g.merge(sum("b", 1));
        let mut gauge = sum("a", 3);
        gauge.data = Some(Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint::default()],
        }));
        g.merge(gauge);
        g.merge(sum("a", 2));
        let names: Vec<(&str, bool)> = g
            .metrics
            .iter()
            .map(|m| (m.name.as_str(), matches!(m.data, Some(Data::Gauge(_)))))
            .collect();
        assert_eq!(names, [("a", false), ("b", false), ("a", true)]);
        match &g.metrics.first().and_then(|m| m.data.as_ref()) {
            Some(Data::Sum(s)) => assert_eq!(s.data_points.len(), 2),
            other => panic!("{other:?}"),
        }
    }
}
