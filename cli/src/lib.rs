//! Library side of the `uwsgi-red` CLI: the offline checks (config, logs,
//! StatsD) as functions, so the binary stays argument plumbing and the fuzz
//! targets can reach the StatsD line parser.
// Not shipped (tests, benches, native tools): the workspace's panic-free
// lints (Cargo.toml [workspace.lints.clippy]) do not apply here.
#![allow(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

pub mod check_config;
pub mod logs;
pub mod statsd;
