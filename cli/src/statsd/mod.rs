//! `uwsgi-red statsd`: datagrams -> what the Collector's statsd receiver
//! hands the processor ([`receiver`]) -> what the processor emits (its own
//! `process_metrics`, not a copy) -> JSON lines ([`output`]).

pub mod line;
pub mod output;
pub mod receiver;

use opentelemetry_proto::tonic::metrics::v1::MetricsData;
use prost::Message;
use uwsgi_red_core::statsd::{classify, map, Instrument, Outcome};

/// What `uwsgi-red statsd` prints: the JSON lines, and the processor's
/// status reason when it refused some metrics but still emitted the batch
/// (more distinct StatsD names than its name budget).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    pub lines: String,
    pub warning: Option<String>,
}

/// The processor's metrics for `text` (one StatsD line per line; empty lines
/// skipped) under processor configuration `config` (its `plugin_config`
/// JSON). `Err` names the first bad line, or the refused configuration.
pub fn run(text: &str, config: &[u8]) -> Result<Emitted, String> {
    let cfg = otel_processor::load_config(config);
    if let Err(e) = &cfg {
        return Err(format!("processor configuration: {e}"));
    }
    let mut lines = Vec::new();
    for (n, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        lines.push(line::parse(l).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    if lines.is_empty() {
        return Err("no StatsD line".into());
    }
    let prefixes = cfg.as_ref().map_or(&[][..], |c| &c.uwsgi_prefixes[..]);
    let batch =
        receiver::aggregate_with(&lines, &|name| running_total(name, prefixes)).encode_to_vec();
    // One budget for the one "batch" of this file, as a fresh processor has.
    let mut names = otel_processor::NameBudget::default();
    let out = otel_processor::process_metrics(&cfg, &mut names, &batch);
    let warning = match (out.refusal, out.status_reason) {
        (
            Some(otel_processor::Refusal::NameBudget | otel_processor::Refusal::UwsgiInterval),
            reason,
        ) => reason,
        (_, Some(reason)) => return Err(reason),
        (_, None) => None,
    };
    let data = MetricsData::decode(&out.payload[..]).map_err(|e| e.to_string())?;
    Ok(Emitted {
        lines: output::lines(&data),
        warning,
    })
}

/// Whether the processor reads this StatsD counter as a running total
/// (uWSGI's `|c` values are totals since the worker started, and a few are
/// levels), not as an increment: the mapping the processor itself applies.
fn running_total(name: &str, uwsgi_prefixes: &[String]) -> bool {
    classify(name, uwsgi_prefixes).is_some_and(|(_, m)| {
        matches!(map(&m), Outcome::Rewrite(mp)
            if matches!(mp.instrument, Instrument::AbsoluteCounter | Instrument::Gauge))
    })
}
