//! Shared core of uwsgi-red. Plain Rust with no host code, so the same logic
//! runs natively (CLI, tests, benches) and inside every Wasm plugin.

pub mod config;
pub mod envoy_name;
pub mod logs;
pub mod prom;
pub mod red;
pub mod stats;
pub mod statsd;
pub mod uwsgi;
