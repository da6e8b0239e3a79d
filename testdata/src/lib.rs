//! Test data shared by core's tests, the benches (criterion and the Wasm
//! bench programs) and fuzz, as a crate: the one place that knows where the
//! files are, so no user needs `#[path]` or `include_bytes!("../../..")`.
//! Constants only (no file system at run time), so it builds for Wasm too.
//!
//! - [`STATS_1MB`]: the 1 MB stats capture (`fixtures/`, captured by
//!   `fixtures/capture_stats_1mb.py`; the Python benches read the same file);
//! - [`stats`]: generated adversarial stats documents;
//! - [`vectors`]: captured protocol vectors of `core/tests/vectors/` as
//!   bytes, and that directory's path for tests that walk all of them.
// Not shipped (test data only): the workspace's panic-free
// lints (Cargo.toml [workspace.lints.clippy]) do not apply here.
#![allow(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

pub mod stats;
pub mod vectors;

/// 64 workers × 16 threads under load, `--enable-metrics --memory-report`
/// (`fixtures/capture_stats_1mb.py`).
pub const STATS_1MB: &[u8] = include_bytes!("../fixtures/stats_64x16_load.json");
