//! The processor's StatsD name budget: however many distinct names arrive,
//! exactly the budget's worth are rewritten; every later new name passes
//! through unchanged and is counted as a `name_budget` refusal.
// Not shipped (tests, benches, native tools): the workspace's panic-free
// lints (Cargo.toml [workspace.lints.clippy]) do not apply here.
#![allow(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, MetricsData, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum,
};
use otel_processor::metrics::rewrite;
use otel_processor::{load_config, process_metrics, NameBudget, OtelProcessorConfig, Refusal};
use prost::Message;
use uwsgi_red_core::statsd::budget::DEFAULT_MAX_NAMES;

fn sum(name: &str, v: i64) -> Metric {
    Metric {
        name: name.into(),
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

fn batch(metrics: Vec<Metric>) -> MetricsData {
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

/// A uWSGI custom worker metric: ours by name, distinct for every `i`.
fn name(i: usize) -> String {
    format!("uwsgi.worker.{}.custom_{i}", i % 7 + 1)
}

/// (metrics under the processor's scope, metrics left in the input's scope).
fn split(data: MetricsData) -> (Vec<Metric>, Vec<Metric>) {
    let (mut rewritten, mut kept) = (Vec::new(), Vec::new());
    for rm in data.resource_metrics {
        for sm in rm.scope_metrics {
            let ours = sm
                .scope
                .as_ref()
                .is_some_and(|s| s.name == otel_processor::SCOPE_NAME);
            if ours {
                rewritten.extend(sm.metrics);
            } else {
                kept.extend(sm.metrics);
            }
        }
    }
    (rewritten, kept)
}

#[test]
fn a_million_distinct_names_rewrite_exactly_the_budget() {
    const TOTAL: usize = 1_000_000;
    const PER_BATCH: usize = 10_000;
    let cfg = OtelProcessorConfig::default();
    let mut names = NameBudget::default();
    let (mut rewritten, mut kept, mut over) = (0usize, 0usize, 0u64);
    for start in (0..TOTAL).step_by(PER_BATCH) {
        let mut data = batch(
            (start..start + PER_BATCH)
                .map(|i| sum(&name(i), 1))
                .collect(),
        );
        over += rewrite(&cfg, &mut names, &mut data);
        let (r, k) = split(data);
        for m in &r {
            assert!(m.name.starts_with("uwsgi.worker.custom_"), "{}", m.name);
        }
        for (m, i) in k
            .iter()
            .zip((start..start + PER_BATCH).rev().take(k.len()).rev())
        {
            assert_eq!(*m, sum(&name(i), 1), "passed through unchanged");
        }
        rewritten += r.len();
        kept += k.len();
    }
    let cap = DEFAULT_MAX_NAMES;
    assert_eq!((rewritten, kept), (cap, TOTAL - cap));
    assert_eq!(over, (TOTAL - cap) as u64);
    assert_eq!(names.len(), cap);
    assert_eq!(names.overflow_total(), (TOTAL - cap) as u64);
    let held: usize = (0..cap).map(|i| name(i).len()).sum();
    assert_eq!(names.name_bytes(), held, "only the admitted names are held");

    // An admitted name is still rewritten once the budget is full; a new one
    // is not.
    let mut data = batch(vec![sum(&name(0), 5), sum(&name(TOTAL), 5)]);
    assert_eq!(rewrite(&cfg, &mut names, &mut data), 1);
    let (r, k) = split(data);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].name, "uwsgi.worker.custom_0");
    assert_eq!(k, [sum(&name(TOTAL), 5)]);
    assert_eq!(names.len(), cap);
}

#[test]
fn names_not_ours_never_touch_the_budget() {
    let cfg = OtelProcessorConfig::default();
    let mut names = NameBudget::new(1);
    let mut data = batch(
        (0..100)
            .map(|i| sum(&format!("other.metric_{i}"), 1))
            .collect(),
    );
    let before = data.clone();
    assert_eq!(rewrite(&cfg, &mut names, &mut data), 0);
    assert_eq!(data, before);
    assert!(names.is_empty());
}

#[test]
fn over_budget_metrics_are_a_counted_refusal_in_a_rewritten_batch() {
    let input = batch(vec![
        sum("app.gunicorn.request.status.200", 3),
        sum("app.gunicorn.request.status.404", 1),
        sum("app.gunicorn.request.status.500", 2),
        sum("app.gunicorn.request.status.200", 4),
    ])
    .encode_to_vec();
    let mut names = NameBudget::new(2);
    let out = process_metrics(&load_config(b"{}"), &mut names, &input);
    assert_eq!((out.refusal, out.refused), (Some(Refusal::NameBudget), 1));
    assert_eq!(
        out.status_reason.as_deref(),
        Some("1 metrics with new StatsD names over the 2-name budget passed through unchanged")
    );
    let (r, k) = split(MetricsData::decode(&out.payload[..]).expect("valid OTLP out"));
    assert_eq!(k, [sum("app.gunicorn.request.status.500", 2)]);
    let codes: Vec<i64> = r
        .iter()
        .flat_map(|m| match &m.data {
            Some(Data::Sum(s)) => s.data_points.clone(),
            _ => Vec::new(),
        })
        .map(|p| {
            match p
                .attributes
                .iter()
                .find(|a| a.key == "http.response.status_code")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
            {
                Some(any_value::Value::IntValue(c)) => *c,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(codes, [200, 404, 200]);
    // The next batch: the same three names, the same one refused.
    let out = process_metrics(&load_config(b"{}"), &mut names, &input);
    assert_eq!((out.refusal, out.refused), (Some(Refusal::NameBudget), 1));
    assert_eq!(names.overflow_total(), 2);
}
