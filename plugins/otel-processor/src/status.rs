//! Why a batch was passed through, counted, and said where users look: the
//! status reason (for hosts that log it) and a stderr line (otelwasm drops
//! the reason when the status is OK, but hands the guest's fd 2 to the
//! Collector's stderr, so the line reaches the Collector log on any host).

use std::fmt;

/// What made the processor hand a batch back untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `plugin_config` was rejected; every batch passes through.
    ConfigRejected,
    /// The payload is not OTLP protobuf.
    Undecodable,
    /// Read, but over the rewrite limit (`MAX_REWRITE_BYTES`).
    TooBig,
    /// Could not be read at all: larger than the read limit, or the guest
    /// could not allocate the buffer. The host keeps the batch.
    Unreadable,
    /// One metric, not a batch: a new StatsD name after the processor's
    /// `NameBudget` is full. That metric passes through unchanged; the rest
    /// of the batch is rewritten.
    NameBudget,
    /// One metric: a uWSGI running total the statsd receiver aggregated over
    /// an interval not shorter than uWSGI's push period (it may have added
    /// pushes together). That metric passes through unchanged.
    UwsgiInterval,
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [
        Refusal::ConfigRejected,
        Refusal::Undecodable,
        Refusal::TooBig,
        Refusal::Unreadable,
        Refusal::NameBudget,
        Refusal::UwsgiInterval,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ConfigRejected => "config_rejected",
            Refusal::Undecodable => "undecodable",
            Refusal::TooBig => "too_big",
            Refusal::Unreadable => "unreadable",
            Refusal::NameBudget => "name_budget",
            Refusal::UwsgiInterval => "uwsgi_interval",
        }
    }

    fn index(self) -> usize {
        match self {
            Refusal::ConfigRejected => 0,
            Refusal::Undecodable => 1,
            Refusal::TooBig => 2,
            Refusal::Unreadable => 3,
            Refusal::NameBudget => 4,
            Refusal::UwsgiInterval => 5,
        }
    }

    /// What one refusal of this kind leaves untouched.
    fn unit(self) -> &'static str {
        match self {
            Refusal::NameBudget => "StatsD names",
            Refusal::UwsgiInterval => "uWSGI counters",
            _ => "batch",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Refusals per reason since the module was instantiated.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    counts: [u64; 6],
}

impl Counters {
    /// Counts one refusal and returns the new count for that reason.
    pub fn record(&mut self, r: Refusal) -> u64 {
        self.record_n(r, 1).1
    }

    /// Counts `n` refusals at once (metrics of one batch): the counts for
    /// that reason before and after.
    pub fn record_n(&mut self, r: Refusal, n: u64) -> (u64, u64) {
        match self.counts.get_mut(r.index()) {
            Some(c) => {
                let before = *c;
                *c = c.saturating_add(n);
                (before, *c)
            }
            None => (0, 0),
        }
    }

    pub fn get(&self, r: Refusal) -> u64 {
        self.counts.get(r.index()).copied().unwrap_or(0)
    }

    /// Log lines are written for the 1st, 2nd, 4th, 8th, … refusal of a
    /// reason: a misconfigured processor on a busy Collector says so at once
    /// without writing a line per batch.
    pub fn should_log(count: u64) -> bool {
        count.is_power_of_two()
    }

    /// `should_log` for a count that moved from `before` to `after` in one
    /// step: true when a power of two lies in `(before, after]`.
    pub fn should_log_range(before: u64, after: u64) -> bool {
        after > before && (before == 0 || after.ilog2() > before.ilog2())
    }
}

/// The stderr line for one refusal (no trailing newline).
pub fn log_line(signal: &str, r: Refusal, count: u64, reason: &str) -> String {
    let unit = r.unit();
    format!("uwsgi-red otel-processor: {signal} {unit} refused ({r}, {count} so far): {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_reason_and_logs_on_powers_of_two() {
        let mut c = Counters::default();
        let logged: Vec<u64> = (0..20)
            .map(|_| c.record(Refusal::TooBig))
            .filter(|n| Counters::should_log(*n))
            .collect();
        assert_eq!(logged, [1, 2, 4, 8, 16]);
        assert_eq!(c.record(Refusal::ConfigRejected), 1);
        assert_eq!(
            Refusal::ALL.map(|r| c.get(r)),
            [1, 0, 20, 0, 0, 0],
            "each reason counts alone"
        );
        assert_eq!(
            log_line("logs", Refusal::TooBig, 3, "x"),
            "uwsgi-red otel-processor: logs batch refused (too_big, 3 so far): x"
        );
        assert_eq!(
            log_line("metrics", Refusal::NameBudget, 5, "y"),
            "uwsgi-red otel-processor: metrics StatsD names refused (name_budget, 5 so far): y"
        );
    }

    #[test]
    fn batch_counts_log_when_they_pass_a_power_of_two() {
        let mut c = Counters::default();
        assert_eq!(c.record_n(Refusal::NameBudget, 3), (0, 3));
        assert_eq!(c.record_n(Refusal::NameBudget, 1), (3, 4));
        assert_eq!(c.record_n(Refusal::NameBudget, 3), (4, 7));
        assert_eq!(c.get(Refusal::NameBudget), 7);
        let logged: Vec<(u64, u64)> = [(0, 3), (3, 4), (4, 7), (7, 8), (8, 8), (9, 15), (15, 16)]
            .into_iter()
            .filter(|&(b, a)| Counters::should_log_range(b, a))
            .collect();
        assert_eq!(logged, [(0, 3), (3, 4), (7, 8), (15, 16)]);
    }
}
