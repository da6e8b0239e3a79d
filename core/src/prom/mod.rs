//! Prometheus text exposition (version 0.0.4).

pub mod float;
pub mod text;
