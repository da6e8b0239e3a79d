//! Prometheus text exposition (version 0.0.4).

mod float;
pub mod text;

pub use text::{format_value, Format, HistogramCounts, MetricType, TextEncoder, TextExemplar};
