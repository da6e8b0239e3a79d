//! OpenTelemetry Collector Wasm processor (otelwasm guest ABI) for uWSGI and
//! gunicorn: StatsD metrics to HTTP semantic conventions, request-log lines
//! to structured attributes. Protocol knowledge lives in `uwsgi-red-core`;
//! this crate is the OTLP plumbing (`metrics`, `logs`) and the ABI (`abi`).

#[cfg(target_arch = "wasm32")]
mod abi;
pub mod config;
pub mod logs;
pub mod metrics;
pub mod otlp;

pub use config::ProcessorConfig;

/// Instrumentation scope of everything this processor creates.
pub const SCOPE_NAME: &str = "uwsgi-red/otel-processor";
pub const SCOPE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a process call hands back: the payload to forward and, when
/// something was off, why. The payload is the input itself on any failure.
#[derive(Debug)]
pub struct Outcome {
    pub payload: Vec<u8>,
    pub status_reason: Option<String>,
}

/// Config as cached by the guest: a bad config is remembered as its error.
pub type LoadedConfig = Result<ProcessorConfig, String>;

pub fn load_config(json: &[u8]) -> LoadedConfig {
    ProcessorConfig::from_json(json).map_err(|e| e.to_string())
}

fn pass_through(input: &[u8], reason: String) -> Outcome {
    Outcome {
        payload: input.to_vec(),
        status_reason: Some(reason),
    }
}

/// OTLP `MetricsData` bytes in, rewritten bytes out (fail-open).
pub fn process_metrics(config: &LoadedConfig, input: &[u8]) -> Outcome {
    let cfg = match config {
        Ok(c) if c.rewrite_metrics => c,
        Ok(_) => {
            return Outcome {
                payload: input.to_vec(),
                status_reason: None,
            }
        }
        Err(e) => {
            return pass_through(
                input,
                format!("config rejected, metrics passed through: {e}"),
            )
        }
    };
    match otlp::decode_metrics(input) {
        Ok(mut data) => {
            metrics::rewrite(cfg, &mut data);
            Outcome {
                payload: otlp::encode(&data),
                status_reason: None,
            }
        }
        Err(e) => pass_through(input, format!("metrics passed through unchanged: {e}")),
    }
}

/// OTLP `LogsData` bytes in, annotated bytes out (fail-open).
pub fn process_logs(config: &LoadedConfig, input: &[u8]) -> Outcome {
    let cfg = match config {
        Ok(c) if c.parse_logs => c,
        Ok(_) => {
            return Outcome {
                payload: input.to_vec(),
                status_reason: None,
            }
        }
        Err(e) => return pass_through(input, format!("config rejected, logs passed through: {e}")),
    };
    match otlp::decode_logs(input) {
        Ok(mut data) => {
            logs::annotate(cfg, &mut data);
            Outcome {
                payload: otlp::encode(&data),
                status_reason: None,
            }
        }
        Err(e) => pass_through(input, format!("logs passed through unchanged: {e}")),
    }
}
