//! Rewrites gunicorn/uWSGI StatsD metrics (as the Collector's statsd
//! receiver emits them) into OpenTelemetry HTTP semantic conventions; every
//! other metric is left exactly where and as it was.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, MetricsData,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use uwsgi_red_core::statsd::exphist::to_explicit;
use uwsgi_red_core::statsd::{classify, map, AttrValue, Instrument, Mapping, Outcome};

use crate::otlp::{int_value, set_attr, str_value};
use crate::ProcessorConfig;

const SERVICE_NAME: &str = "service.name";

pub fn rewrite(cfg: &ProcessorConfig, data: &mut MetricsData) {
    let mut out = Vec::with_capacity(data.resource_metrics.len());
    for mut rm in std::mem::take(&mut data.resource_metrics) {
        // service.name -> rewritten metrics, in first-seen order of names.
        let mut services: BTreeMap<String, Vec<Metric>> = BTreeMap::new();
        for sm in &mut rm.scope_metrics {
            let mut kept = Vec::with_capacity(sm.metrics.len());
            for metric in std::mem::take(&mut sm.metrics) {
                match route(cfg, metric) {
                    Routed::Keep(m) => kept.push(m),
                    Routed::Drop => {}
                    Routed::Rewritten(service, m) => {
                        merge_into(services.entry(service).or_default(), m)
                    }
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
        for (service, metrics) in services {
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
}

enum Routed {
    Keep(Metric),
    Drop,
    Rewritten(String, Metric),
}

fn route(cfg: &ProcessorConfig, metric: Metric) -> Routed {
    let Some((source, m)) = classify(&metric.name, &cfg.uwsgi_prefixes) else {
        return Routed::Keep(metric);
    };
    match map(&m) {
        Outcome::Redundant if cfg.keep_redundant => Routed::Keep(metric),
        Outcome::Redundant => Routed::Drop,
        Outcome::Rewrite(mapping) => {
            let service = cfg.service_for(source.prefix(), source.server());
            match convert(cfg, &mapping, &metric) {
                Some(new) => Routed::Rewritten(service, new),
                // A data shape the mapping has no meaning for stays as it was.
                None => Routed::Keep(metric),
            }
        }
    }
}

/// Same name, unit and shape: one metric with both data point lists.
fn merge_into(group: &mut Vec<Metric>, m: Metric) {
    if let Some(existing) = group
        .iter_mut()
        .find(|e| e.name == m.name && e.unit == m.unit)
    {
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
            (_, data) => group.push(Metric { data, ..m }),
        }
        return;
    }
    group.push(m);
}

fn convert(cfg: &ProcessorConfig, mp: &Mapping, metric: &Metric) -> Option<Metric> {
    let data = match (mp.instrument, metric.data.as_ref()?) {
        (Instrument::DeltaCounter, Data::Sum(s)) => Data::Sum(Sum {
            data_points: points(&s.data_points, mp),
            aggregation_temporality: s.aggregation_temporality,
            is_monotonic: true,
        }),
        (Instrument::AbsoluteCounter, Data::Sum(s)) => {
            let mut data_points = points(&s.data_points, mp);
            // The running total since the worker started: no known start.
            if s.aggregation_temporality != AggregationTemporality::Cumulative as i32 {
                data_points
                    .iter_mut()
                    .for_each(|p| p.start_time_unix_nano = 0);
            }
            Data::Sum(Sum {
                data_points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })
        }
        (
            Instrument::Gauge,
            Data::Sum(Sum { data_points, .. }) | Data::Gauge(Gauge { data_points }),
        ) => {
            let mut data_points = points(data_points, mp);
            data_points
                .iter_mut()
                .for_each(|p| p.start_time_unix_nano = 0);
            Data::Gauge(Gauge { data_points })
        }
        (Instrument::Duration, Data::ExponentialHistogram(h)) => {
            let bounds = cfg.bounds();
            let data_points = h
                .data_points
                .iter()
                .map(|p| {
                    let (pos_off, pos) = p
                        .positive
                        .as_ref()
                        .map_or((0, &[][..]), |b| (b.offset, &b.bucket_counts[..]));
                    let neg = p
                        .negative
                        .as_ref()
                        .map_or(&[][..], |b| &b.bucket_counts[..]);
                    HistogramDataPoint {
                        attributes: with_attrs(&p.attributes, mp),
                        start_time_unix_nano: p.start_time_unix_nano,
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum.map(|s| apply(s, mp.scale)),
                        bucket_counts: to_explicit(
                            p.scale,
                            p.zero_count,
                            pos_off,
                            pos,
                            neg,
                            mp.scale,
                            bounds,
                        ),
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
        (Instrument::Duration, Data::Histogram(h)) => Data::Histogram(Histogram {
            data_points: h
                .data_points
                .iter()
                .map(|p| HistogramDataPoint {
                    attributes: with_attrs(&p.attributes, mp),
                    sum: p.sum.map(|s| apply(s, mp.scale)),
                    min: p.min.map(|v| apply(v, mp.scale)),
                    max: p.max.map(|v| apply(v, mp.scale)),
                    explicit_bounds: p
                        .explicit_bounds
                        .iter()
                        .map(|b| apply(*b, mp.scale))
                        .collect(),
                    ..p.clone()
                })
                .collect(),
            aggregation_temporality: h.aggregation_temporality,
        }),
        (Instrument::Duration, Data::Summary(s)) => {
            let mut out = s.clone();
            for p in &mut out.data_points {
                p.attributes = with_attrs(&p.attributes, mp);
                p.sum = apply(p.sum, mp.scale);
                p.quantile_values
                    .iter_mut()
                    .for_each(|q| q.value = apply(q.value, mp.scale));
            }
            Data::Summary(Summary {
                data_points: out.data_points,
            })
        }
        _ => return None,
    };
    Some(Metric {
        name: mp.name.clone(),
        description: mp.description.to_string(),
        unit: mp.unit.to_string(),
        metadata: Vec::new(),
        data: Some(data),
    })
}

fn with_attrs(attrs: &[KeyValue], mp: &Mapping) -> Vec<KeyValue> {
    let mut out = attrs.to_vec();
    for (k, v) in &mp.attributes {
        let v = match v {
            AttrValue::Int(i) => int_value(*i),
            AttrValue::Str(s) => str_value(s.clone()),
        };
        set_attr(&mut out, k, v);
    }
    out
}

fn points(pts: &[NumberDataPoint], mp: &Mapping) -> Vec<NumberDataPoint> {
    pts.iter()
        .map(|p| NumberDataPoint {
            attributes: with_attrs(&p.attributes, mp),
            value: p.value.map(|v| scale(v, mp.scale)),
            ..p.clone()
        })
        .collect()
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
