//! The Collector processor's OTLP rewrite (metrics) and annotation (logs)
//! on arbitrary protobuf. Fail-open and bounded:
//! - any failure hands back the input bytes unchanged, with a reason (a
//!   name-budget refusal only keeps the refused metrics as they were);
//! - otherwise the output decodes; metrics the processor does not claim
//!   come out untouched (same name, same data); no data point is created
//!   (rewritten ones are moved or dropped as redundant); log records keep
//!   their number, order and bodies and each gets `uwsgi_red.log.parsed`;
//! - the output stays within a linear bound of the input.

use std::collections::HashSet;
use std::sync::OnceLock;

use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{Metric, MetricsData};
use otel_processor::logs::ATTR_PARSED;
use otel_processor::{
    load_config, process_logs, process_metrics, LoadedConfig, LogSeries, NameBudget, Refusal,
};
use prost::Message;
use uwsgi_red_core::statsd::{classify, map, Outcome};

const PREFIXES: [&str; 2] = ["uwsgi", "myapp"];

fn config() -> &'static LoadedConfig {
    static CONFIG: OnceLock<LoadedConfig> = OnceLock::new();
    CONFIG.get_or_init(|| load_config(br#"{"uwsgi_prefixes":["uwsgi","myapp"]}"#))
}

fn points(m: &Metric) -> usize {
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

fn all(d: &MetricsData) -> impl Iterator<Item = &Metric> {
    d.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
}

/// Small, so the fuzzer also reaches the per-metric name-budget refusal.
const NAME_BUDGET: usize = 8;

/// Metrics compared by their encoding: `NaN` values are legal OTLP and
/// `NaN != NaN` would make equal metrics look changed (a false alarm the
/// long run found: `regressions/otlp_metrics/nan-gauge-passes-through`).
fn encoded(v: Vec<Metric>) -> Vec<Vec<u8>> {
    v.iter().map(Message::encode_to_vec).collect()
}

pub fn metrics(data: &[u8]) {
    // A fresh budget per input: every input is judged on its own.
    let out = process_metrics(config(), &mut NameBudget::new(NAME_BUDGET), data);
    let Ok(input) = MetricsData::decode(data) else {
        assert_eq!(out.payload, data, "undecodable input passes through");
        assert!(out.status_reason.is_some());
        return;
    };
    // The per-metric refusals (a name over the budget, a uWSGI running
    // total the receiver summed over too long an interval) keep that metric
    // unchanged within a rewritten batch (they are claimed names, so the
    // checks below still hold); any other refusal hands the input back.
    let per_metric = matches!(
        out.refusal,
        Some(Refusal::NameBudget | Refusal::UwsgiInterval)
    );
    if out.status_reason.is_some() && !per_metric {
        assert_eq!(out.payload, data);
        return;
    }
    let output = MetricsData::decode(&out.payload[..]).expect("output decodes");
    let total = |d: &MetricsData| all(d).map(points).sum::<usize>();
    assert!(total(&output) <= total(&input), "data points created");
    // Unclaimed metrics, in order, exactly as they came in.
    let foreign = |d: &MetricsData| -> Vec<Metric> {
        all(d)
            .filter(|m| classify(&m.name, &PREFIXES).is_none())
            .cloned()
            .collect()
    };
    // Names a rewrite produces may collide with a foreign metric's name:
    // those are left out of the comparison.
    let produced: HashSet<String> = all(&input)
        .filter_map(|m| classify(&m.name, &PREFIXES))
        .filter_map(|(_, c)| match map(&c) {
            Outcome::Rewrite(mp) => Some(mp.name),
            Outcome::Redundant => None,
        })
        .collect();
    let keep = |v: Vec<Metric>| -> Vec<Metric> {
        v.into_iter()
            .filter(|m| !produced.contains(&m.name))
            .collect()
    };
    let (fi, fo) = (keep(foreign(&input)), keep(foreign(&output)));
    assert_eq!(encoded(fi), encoded(fo), "unclaimed metrics changed");
    assert!(
        out.payload.len() <= 512 * data.len() + 4096,
        "{} bytes from {}",
        out.payload.len(),
        data.len()
    );
}

pub fn logs(data: &[u8]) {
    let out = process_logs(config(), &mut LogSeries::default(), data);
    let Ok(input) = LogsData::decode(data) else {
        assert_eq!(out.payload, data, "undecodable input passes through");
        assert!(out.status_reason.is_some());
        return;
    };
    if out.status_reason.is_some() {
        assert_eq!(out.payload, data);
        return;
    }
    let output = LogsData::decode(&out.payload[..]).expect("output decodes");
    let records = |d: &LogsData| -> Vec<_> {
        d.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .cloned()
            .collect()
    };
    let (ri, ro) = (records(&input), records(&output));
    assert_eq!(ri.len(), ro.len());
    for (a, b) in ri.iter().zip(&ro) {
        assert_eq!(a.body, b.body);
        assert!(b.attributes.iter().any(|kv| kv.key == ATTR_PARSED));
    }
    assert!(
        out.payload.len() <= 4 * data.len() + 1024 * ri.len() + 1024,
        "{} bytes from {}",
        out.payload.len(),
        data.len()
    );
}
