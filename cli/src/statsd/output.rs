//! The processor's output batch as one JSON object per data point.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, MetricsData};
use serde_json::{json, Map, Value};

use crate::logs::json_value;

fn attrs(kvs: &[KeyValue]) -> Value {
    let mut m = Map::new();
    for kv in kvs {
        m.insert(
            kv.key.clone(),
            kv.value.as_ref().map_or(Value::Null, json_value),
        );
    }
    Value::Object(m)
}

fn temporality(t: i32) -> &'static str {
    if t == AggregationTemporality::Cumulative as i32 {
        "cumulative"
    } else if t == AggregationTemporality::Delta as i32 {
        "delta"
    } else {
        "unspecified"
    }
}

fn number(v: Option<Number>) -> Value {
    match v {
        Some(Number::AsInt(i)) => json!(i),
        Some(Number::AsDouble(d)) => json!(d),
        None => Value::Null,
    }
}

pub fn lines(data: &MetricsData) -> String {
    let mut out = String::new();
    for rm in &data.resource_metrics {
        let resource = attrs(rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]));
        for sm in &rm.scope_metrics {
            let scope = sm.scope.as_ref().map_or("", |s| s.name.as_str());
            for m in &sm.metrics {
                let base = json!({
                    "resource": resource, "scope": scope,
                    "name": m.name, "unit": m.unit,
                });
                let mut push = |extra: Value| {
                    let mut o = base.clone();
                    if let (Some(o), Value::Object(e)) = (o.as_object_mut(), extra) {
                        o.extend(e);
                    }
                    out.push_str(&o.to_string());
                    out.push('\n');
                };
                match &m.data {
                    Some(Data::Sum(s)) => {
                        for p in &s.data_points {
                            push(
                                json!({"type": "sum", "temporality": temporality(s.aggregation_temporality),
                                "monotonic": s.is_monotonic, "attributes": attrs(&p.attributes),
                                "value": number(p.value)}),
                            );
                        }
                    }
                    Some(Data::Gauge(g)) => {
                        for p in &g.data_points {
                            push(json!({"type": "gauge", "attributes": attrs(&p.attributes),
                                "value": number(p.value)}));
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        for p in &h.data_points {
                            push(
                                json!({"type": "histogram", "temporality": temporality(h.aggregation_temporality),
                                "attributes": attrs(&p.attributes), "count": p.count, "sum": p.sum,
                                "min": p.min, "max": p.max, "bounds": p.explicit_bounds,
                                "bucket_counts": p.bucket_counts}),
                            );
                        }
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        for p in &h.data_points {
                            push(json!({"type": "exponential_histogram",
                                "temporality": temporality(h.aggregation_temporality),
                                "attributes": attrs(&p.attributes), "count": p.count, "sum": p.sum,
                                "scale": p.scale}));
                        }
                    }
                    Some(Data::Summary(s)) => {
                        for p in &s.data_points {
                            push(
                                json!({"type": "summary", "attributes": attrs(&p.attributes),
                                "count": p.count, "sum": p.sum}),
                            );
                        }
                    }
                    None => push(json!({"type": null})),
                }
            }
        }
    }
    out
}
