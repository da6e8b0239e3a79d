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
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Refusal::ConfigRejected,
        Refusal::Undecodable,
        Refusal::TooBig,
        Refusal::Unreadable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ConfigRejected => "config_rejected",
            Refusal::Undecodable => "undecodable",
            Refusal::TooBig => "too_big",
            Refusal::Unreadable => "unreadable",
        }
    }

    fn index(self) -> usize {
        match self {
            Refusal::ConfigRejected => 0,
            Refusal::Undecodable => 1,
            Refusal::TooBig => 2,
            Refusal::Unreadable => 3,
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
    counts: [u64; 4],
}

impl Counters {
    /// Counts one refusal and returns the new count for that reason.
    pub fn record(&mut self, r: Refusal) -> u64 {
        match self.counts.get_mut(r.index()) {
            Some(c) => {
                *c = c.saturating_add(1);
                *c
            }
            None => 0,
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
}

/// The stderr line for one refusal (no trailing newline).
pub fn log_line(signal: &str, r: Refusal, count: u64, reason: &str) -> String {
    format!("uwsgi-red otel-processor: {signal} batch refused ({r}, {count} so far): {reason}")
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
            [1, 0, 20, 0],
            "each reason counts alone"
        );
        assert_eq!(
            log_line("logs", Refusal::TooBig, 3, "x"),
            "uwsgi-red otel-processor: logs batch refused (too_big, 3 so far): x"
        );
    }
}
