//! Shared core of uwsgi-red. Plain Rust with no host code, so the same logic
//! runs natively (CLI, tests, benches) and inside every Wasm plugin.
//!
//! Domains (`red`, `stats`, `uwsgi`, `statsd`, `logs`) each re-export at
//! their root what the plugins use (`uwsgi_red_core::red::HostRecorder`);
//! `config` and `prom` are machinery that knows no domain. Which module may
//! use which is a table checked by `core/tests/module_deps.rs`.
//!
//! Panic-free by construction, for every module of the crate: this code
//! decodes input the plugins do not control and runs inside the user's proxy
//! and collector, built with `panic = "abort"`, where one panic kills the VM
//! and its metrics. No indexing, slicing, unwrapping or overflowing
//! arithmetic on input-driven values: the workspace denies those lints
//! (root Cargo.toml); tests may unwrap and index (clippy.toml).

pub mod config;
pub mod lease;
pub mod logs;
pub mod prom;
pub mod red;
pub mod scrape_access;
pub mod stats;
pub mod statsd;
pub mod uwsgi;
