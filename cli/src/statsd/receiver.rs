//! One aggregation interval of the Collector's statsd receiver, as configured
//! in `examples/otel-collector/config.yaml` (`is_monotonic_counter: true`,
//! timings and histograms as exponential histograms of at most 160 buckets):
//! the OTLP batch the processor is handed for these lines.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Metric,
    MetricsData, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};

use super::line::{Kind, Line};

/// The receiver's `max_size` in the example configuration.
const MAX_BUCKETS: i32 = 160;
const MAX_SCALE: i32 = 20;
const MIN_SCALE: i32 = -10;

#[derive(Debug)]
enum Agg {
    Counter(i64),
    Gauge(f64),
    /// (value, weight) of every observation.
    Observations(Vec<(f64, u64)>),
}

#[derive(Debug)]
struct Series {
    name: String,
    tags: Vec<(String, String)>,
    agg: Agg,
}

/// Aggregates `lines` in first-seen order of (name, type, tags).
pub fn aggregate(lines: &[Line<'_>]) -> MetricsData {
    aggregate_with(lines, &|_| false)
}

/// [`aggregate`], except that a counter for which `running_total(name)`
/// holds keeps its last value instead of the sum: a sender that pushes
/// running totals with `|c` (uWSGI `--stats-push`) once per push period
/// puts one push in each receiver interval (the interval being the
/// shorter), and what reaches Prometheus is the latest push, not a sum
/// over the pushes of a capture.
pub fn aggregate_with(lines: &[Line<'_>], running_total: &dyn Fn(&str) -> bool) -> MetricsData {
    let mut series: Vec<Series> = Vec::new();
    // Index by key so a long capture stays linear.
    let mut index = std::collections::HashMap::new();
    for l in lines {
        let mut tags: Vec<(String, String)> = l
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tags.sort();
        let class = match l.kind {
            Kind::Counter => 0,
            Kind::Gauge => 1,
            _ => 2,
        };
        let key = (l.name.to_string(), class, tags.clone());
        let i = *index.entry(key).or_insert_with(|| {
            series.push(Series {
                name: l.name.to_string(),
                tags,
                agg: match class {
                    0 => Agg::Counter(0),
                    1 => Agg::Gauge(0.0),
                    _ => Agg::Observations(Vec::new()),
                },
            });
            series.len() - 1
        });
        let Some(s) = series.get_mut(i) else { continue };
        match &mut s.agg {
            // One push per interval: the latest running total.
            Agg::Counter(c) if running_total(l.name) => *c = (l.value / l.sample_rate) as i64,
            // The receiver scales each increment by its sample rate and
            // truncates it to an integer.
            Agg::Counter(c) => *c = c.saturating_add((l.value / l.sample_rate) as i64),
            Agg::Gauge(g) if l.relative => *g += l.value,
            Agg::Gauge(g) => *g = l.value,
            Agg::Observations(o) => o.push((l.value, (1.0 / l.sample_rate).round() as u64)),
        }
    }
    let metrics = series.into_iter().map(to_metric).collect();
    MetricsData {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn attrs(tags: &[(String, String)]) -> Vec<KeyValue> {
    tags.iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.clone())),
            }),
            ..Default::default()
        })
        .collect()
}

fn to_metric(s: Series) -> Metric {
    let attributes = attrs(&s.tags);
    let data = match s.agg {
        Agg::Counter(c) => Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes,
                value: Some(Value::AsInt(c)),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        }),
        Agg::Gauge(g) => Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes,
                value: Some(Value::AsDouble(g)),
                ..Default::default()
            }],
        }),
        Agg::Observations(o) => Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![exponential(&o, attributes)],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        }),
    };
    Metric {
        name: s.name,
        data: Some(data),
        ..Default::default()
    }
}

/// OpenTelemetry exponential bucket index of `v > 0` at `scale`: bucket `i`
/// holds `(base^i, base^(i+1)]` with `base = 2^(2^-scale)`.
fn index(v: f64, scale: i32) -> i64 {
    (v.log2() * 2f64.powi(scale)).ceil() as i64 - 1
}

fn exponential(obs: &[(f64, u64)], attributes: Vec<KeyValue>) -> ExponentialHistogramDataPoint {
    let count: u64 = obs.iter().map(|(_, w)| w).sum();
    let sum: f64 = obs.iter().map(|(v, w)| v * *w as f64).sum();
    let min = obs.iter().map(|(v, _)| *v).fold(f64::INFINITY, f64::min);
    let max = obs
        .iter()
        .map(|(v, _)| *v)
        .fold(f64::NEG_INFINITY, f64::max);
    let zero_count: u64 = obs.iter().filter(|(v, _)| *v == 0.0).map(|(_, w)| w).sum();
    // The largest scale at which each sign's range fits in MAX_BUCKETS.
    let fits = |scale: i32, sign: f64| {
        let idx: Vec<i64> = obs
            .iter()
            .filter(|(v, _)| *v * sign > 0.0)
            .map(|(v, _)| index(v.abs(), scale))
            .collect();
        match (idx.iter().min(), idx.iter().max()) {
            (Some(lo), Some(hi)) => hi - lo < i64::from(MAX_BUCKETS),
            _ => true,
        }
    };
    let mut scale = MAX_SCALE;
    while scale > MIN_SCALE && !(fits(scale, 1.0) && fits(scale, -1.0)) {
        scale -= 1;
    }
    let buckets = |sign: f64| -> Option<Buckets> {
        let idx: Vec<(i64, u64)> = obs
            .iter()
            .filter(|(v, _)| *v * sign > 0.0)
            .map(|(v, w)| (index(v.abs(), scale), *w))
            .collect();
        let lo = idx.iter().map(|(i, _)| *i).min()?;
        let hi = idx.iter().map(|(i, _)| *i).max()?;
        let mut counts = vec![0u64; usize::try_from(hi - lo + 1).ok()?];
        for (i, w) in idx {
            if let Some(c) = usize::try_from(i - lo).ok().and_then(|j| counts.get_mut(j)) {
                *c += w;
            }
        }
        Some(Buckets {
            offset: i32::try_from(lo).ok()?,
            bucket_counts: counts,
        })
    };
    ExponentialHistogramDataPoint {
        attributes,
        count,
        sum: Some(sum),
        scale,
        zero_count,
        positive: buckets(1.0),
        negative: buckets(-1.0),
        min: Some(min),
        max: Some(max),
        ..Default::default()
    }
}
