//! `uwsgi-red statsd`: datagrams -> what the Collector's statsd receiver
//! hands the processor ([`receiver`]) -> what the processor emits (its own
//! `process_metrics`, not a copy) -> JSON lines ([`output`]).

pub mod line;
pub mod output;
pub mod receiver;

use opentelemetry_proto::tonic::metrics::v1::MetricsData;
use prost::Message;

/// The processor's metrics for `text` (one StatsD line per line; empty lines
/// skipped) under processor configuration `config` (its `plugin_config`
/// JSON). `Err` names the first bad line, or the refused configuration.
pub fn run(text: &str, config: &[u8]) -> Result<String, String> {
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
    let batch = receiver::aggregate(&lines).encode_to_vec();
    // One batch, as one processor instance would see it first.
    let mut names = otel_processor::NameBudget::default();
    let out = otel_processor::process_metrics(&cfg, &mut names, &batch);
    if let Some(reason) = out.status_reason {
        return Err(reason);
    }
    let data = MetricsData::decode(&out.payload[..]).map_err(|e| e.to_string())?;
    Ok(output::lines(&data))
}
