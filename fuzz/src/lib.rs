//! Properties checked by the cargo-fuzz targets, one module per decoder.
//!
//! The targets in `fuzz_targets/` are one-line wrappers around these
//! `check` functions, so the same properties run on stable too: the
//! `regressions` test replays the seed corpus and every committed crasher
//! through them without libFuzzer.

pub mod config;
pub mod envoy_name;
pub mod gunicorn_log;
pub mod otlp;
pub mod rng;
pub mod shared_state;
pub mod stats_document;
pub mod statsd_line;
pub mod text;
pub mod uwsgi_head;
pub mod uwsgi_log;
pub mod uwsgi_response;
pub mod uwsgi_tracker;

/// A target's property check: panics on a violation.
pub type Check = fn(&[u8]);

/// Every target by name, as `build.sh fuzz` and the regression test know them.
pub const TARGETS: &[(&str, Check)] = &[
    ("uwsgi_head", uwsgi_head::check),
    ("uwsgi_response", uwsgi_response::check),
    ("uwsgi_tracker", uwsgi_tracker::check),
    ("stats_document", stats_document::check),
    ("statsd_line", statsd_line::check),
    ("uwsgi_log", uwsgi_log::check),
    ("gunicorn_log", gunicorn_log::check),
    ("config_red_filter", config::red_filter),
    ("config_uwsgi_tcp", config::uwsgi_tcp),
    ("config_uwsgi_stats", config::uwsgi_stats),
    ("config_otel_processor", config::otel_processor),
    ("shared_state", shared_state::check),
    ("otlp_metrics", otlp::metrics),
    ("otlp_logs", otlp::logs),
    ("envoy_name", envoy_name::check),
];

/// Runs target `name` on one input (panics on a property violation, like
/// the fuzz target itself). Unknown names panic: a typo must not pass.
pub fn run(name: &str, data: &[u8]) {
    let (_, check) = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    check(data);
}
