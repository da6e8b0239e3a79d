//! StatsD metric names from gunicorn (`--statsd-host`) and uWSGI
//! (`--stats-push statsd:...`) as a StatsD receiver (e.g. the OpenTelemetry
//! Collector's) names them, and their mapping to OpenTelemetry HTTP semantic
//! conventions. Pure functions over names and numbers: the OTLP plumbing
//! lives in the plugin.

// Panic-free by construction: no indexing, slicing, unwrapping or
// overflowing arithmetic on input-driven values (tests opt out).
#![deny(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

pub mod exphist;
pub mod names;
pub mod semconv;

pub use names::{classify, GunicornMetric, Source, StatsdMetric, UwsgiMetric};
pub use semconv::{map, AttrValue, Instrument, Mapping, Outcome};
