//! OpenTelemetry Collector Wasm processor (otelwasm guest ABI) for uWSGI and
//! gunicorn: StatsD metrics to HTTP semantic conventions, request-log lines
//! to structured attributes. Protocol knowledge lives in `uwsgi-red-core`;
//! this crate is the OTLP plumbing (`metrics`, `logs`) and the ABI (`abi`).
// A panic aborts the Wasm instance and with it the Collector's batch: none
// may be reachable from any input (the workspace's panic-free lints,
// root Cargo.toml).

#[cfg(target_arch = "wasm32")]
mod abi;
pub mod logs;
pub mod metrics;
pub mod otlp;
pub mod status;

pub use logs::LogSeries;
pub use status::Refusal;
pub use uwsgi_red_core::statsd::NameBudget;
pub use uwsgi_red_core::statsd::OtelProcessorConfig;

/// Instrumentation scope of everything this processor creates.
pub const SCOPE_NAME: &str = "uwsgi-red/otel-processor";
pub const SCOPE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Batches larger than this are passed through unchanged instead of being
/// decoded: decoding costs several times the encoded size in guest memory,
/// which is 32-bit (4 GiB at most).
pub const MAX_REWRITE_BYTES: usize = 64 * 1024 * 1024;

/// What a process call hands back: the payload to forward and, when
/// something was off, why. The payload is the input itself on any batch
/// refusal; on `Refusal::NameBudget` it is the rewritten batch in which the
/// `refused` metrics kept their original names.
#[derive(Debug)]
pub struct Outcome {
    pub payload: Vec<u8>,
    pub status_reason: Option<String>,
    /// Set whenever `status_reason` is: the kind, for counting.
    pub refusal: Option<Refusal>,
    /// How many refusals of that kind (1 for a batch; the metrics refused
    /// for `NameBudget`), 0 without a refusal.
    pub refused: u64,
}

impl Outcome {
    fn unchanged(input: &[u8]) -> Self {
        Outcome {
            payload: input.to_vec(),
            status_reason: None,
            refusal: None,
            refused: 0,
        }
    }

    fn rewritten(payload: Vec<u8>) -> Self {
        Outcome {
            payload,
            status_reason: None,
            refusal: None,
            refused: 0,
        }
    }
}

/// Config as cached by the guest: a bad config is remembered as its error.
pub type LoadedConfig = Result<OtelProcessorConfig, String>;

pub fn load_config(json: &[u8]) -> LoadedConfig {
    OtelProcessorConfig::from_json(json).map_err(|e| e.to_string())
}

/// The input back, with why.
pub fn pass_through(input: &[u8], refusal: Refusal, reason: String) -> Outcome {
    Outcome {
        payload: input.to_vec(),
        status_reason: Some(reason),
        refusal: Some(refusal),
        refused: 1,
    }
}

fn config_rejected(signal: &str, input: &[u8], e: &str) -> Outcome {
    pass_through(
        input,
        Refusal::ConfigRejected,
        format!("plugin_config rejected, {signal} passed through unchanged: {e}"),
    )
}

fn too_big(signal: &str, input: &[u8]) -> Option<Outcome> {
    (input.len() > MAX_REWRITE_BYTES).then(|| {
        pass_through(
            input,
            Refusal::TooBig,
            format!(
                "{signal} batch of {} bytes is over the {} MiB rewrite limit, passed through unchanged",
                input.len(),
                MAX_REWRITE_BYTES / (1024 * 1024)
            ),
        )
    })
}

/// OTLP `MetricsData` bytes in, rewritten bytes out (fail-open). `names` is
/// the processor's budget of StatsD names to rewrite, kept across batches.
pub fn process_metrics(config: &LoadedConfig, names: &mut NameBudget, input: &[u8]) -> Outcome {
    let cfg = match config {
        Ok(c) if c.rewrite_metrics => c,
        Ok(_) => return Outcome::unchanged(input),
        Err(e) => return config_rejected("metrics", input, e),
    };
    if let Some(out) = too_big("metrics", input) {
        return out;
    }
    match otlp::decode_metrics(input) {
        Ok(mut data) => {
            let kept = metrics::rewrite_all(cfg, names, &mut data);
            let mut out = Outcome::rewritten(otlp::encode(&data));
            let summed = (kept.summed_pushes > 0).then(|| {
                format!(
                    "{} uWSGI counters passed through unchanged: the statsd receiver aggregated them over {:.3} s, \
not shorter than uWSGI's push period ({} s, uwsgi_push_period_seconds), so it may have added several running \
totals together; set the receiver's aggregation_interval below the push period",
                    kept.summed_pushes,
                    kept.longest_interval_nanos as f64 / 1e9,
                    cfg.uwsgi_push_period_seconds
                )
            });
            if kept.over_budget > 0 {
                let mut reason = format!(
                    "{} metrics with new StatsD names over the {}-name budget passed through unchanged",
                    kept.over_budget,
                    names.max_names()
                );
                // One kind per batch is counted; the other is still said.
                if let Some(s) = summed {
                    reason.push_str("; also: ");
                    reason.push_str(&s);
                }
                out.status_reason = Some(reason);
                out.refusal = Some(Refusal::NameBudget);
                out.refused = kept.over_budget;
            } else if let Some(s) = summed {
                out.status_reason = Some(s);
                out.refusal = Some(Refusal::UwsgiInterval);
                out.refused = kept.summed_pushes;
            }
            out
        }
        Err(e) => pass_through(
            input,
            Refusal::Undecodable,
            format!("metrics passed through unchanged: {e}"),
        ),
    }
}

/// OTLP `LogsData` bytes in, annotated bytes out (fail-open). `series` is
/// the processor's admission state for request-log label sets, kept across
/// batches.
pub fn process_logs(config: &LoadedConfig, series: &mut LogSeries, input: &[u8]) -> Outcome {
    let cfg = match config {
        Ok(c) if c.parse_logs => c,
        Ok(_) => return Outcome::unchanged(input),
        Err(e) => return config_rejected("logs", input, e),
    };
    if let Some(out) = too_big("logs", input) {
        return out;
    }
    match otlp::decode_logs(input) {
        Ok(mut data) => {
            logs::annotate(cfg, series, &mut data);
            Outcome::rewritten(otlp::encode(&data))
        }
        Err(e) => pass_through(
            input,
            Refusal::Undecodable,
            format!("logs passed through unchanged: {e}"),
        ),
    }
}
