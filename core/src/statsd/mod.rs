//! StatsD metric names from gunicorn (`--statsd-host`) and uWSGI
//! (`--stats-push statsd:...`) as a StatsD receiver (e.g. the OpenTelemetry
//! Collector's) names them, and their mapping to OpenTelemetry HTTP semantic
//! conventions. Pure functions over names and numbers: the OTLP plumbing
//! lives in the plugin.
//!
//! Bounds: classification is linear in the name and allocates nothing;
//! names over `names::MAX_NAME_BYTES` or with characters an instrument name
//! cannot hold are not recognised (passed through). The number of distinct
//! names a process rewrites is capped by `budget::NameBudget` (overflow
//! passed through unchanged and counted), so memory is at most
//! `max_names × MAX_NAME_BYTES` of name text.

pub mod budget;
mod config;
mod exphist;
pub mod names;
pub mod semconv;

pub use budget::{Admission, NameBudget};
pub use config::{OtelProcessorConfig, OTEL_KEYS};
pub use exphist::to_explicit;
pub use names::{classify, GunicornMetric, Source, StatsdMetric, UwsgiMetric};
pub use semconv::{error_type, map, AttrValue, Instrument, Mapping, Outcome};
