//! Library side of the `uwsgi-red` CLI: the offline checks (config, logs,
//! StatsD) as functions, so the binary stays argument plumbing and the fuzz
//! targets can reach the StatsD line parser.

pub mod check_config;
pub mod logs;
pub mod statsd;
