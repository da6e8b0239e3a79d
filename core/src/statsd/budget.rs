//! A hard cap on the distinct StatsD names a process rewrites.
//!
//! Classification bounds each name (`MAX_NAME_BYTES`), but not how many
//! distinct names arrive: uWSGI custom metrics, a misconfigured prefix or a
//! hostile sender can push millions. Each rewritten name becomes its own
//! output series, so a processor admits names through a `NameBudget`: the
//! first `max_names` distinct names are rewritten, every later new name is
//! refused (the caller passes that metric through unchanged, as if it were
//! not ours) and counted. Memory is at most `max_names × MAX_NAME_BYTES`
//! bytes of name text plus the set's per-entry overhead; each admission is
//! one hash lookup, linear in the name.

use std::collections::HashSet;

use super::names::MAX_NAME_BYTES;

/// Default cap: far above the ~400 names a large uWSGI instance pushes
/// (340 for a 4-worker one in the test vectors), far below what would hurt.
pub const DEFAULT_MAX_NAMES: usize = 10_000;

/// Largest configurable cap (≤ 25 MB of name text).
pub const MAX_MAX_NAMES: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Seen before, or new and within the cap: rewrite it.
    Admitted,
    /// New, and the cap is reached: leave the metric as it was.
    Overflow,
    /// Longer than `MAX_NAME_BYTES`: never ours.
    TooLong,
}

#[derive(Debug, Clone)]
pub struct NameBudget {
    names: HashSet<String>,
    max_names: usize,
    overflow_total: u64,
    name_bytes: usize,
}

impl Default for NameBudget {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_NAMES)
    }
}

impl NameBudget {
    /// `max_names` is clamped to 1..=`MAX_MAX_NAMES`.
    pub fn new(max_names: usize) -> Self {
        Self {
            names: HashSet::new(),
            max_names: max_names.clamp(1, MAX_MAX_NAMES),
            overflow_total: 0,
            name_bytes: 0,
        }
    }

    pub fn admit(&mut self, name: &str) -> Admission {
        if name.len() > MAX_NAME_BYTES {
            return Admission::TooLong;
        }
        if self.names.contains(name) {
            return Admission::Admitted;
        }
        if self.names.len() >= self.max_names {
            self.overflow_total = self.overflow_total.saturating_add(1);
            return Admission::Overflow;
        }
        self.name_bytes = self.name_bytes.saturating_add(name.len());
        self.names.insert(name.to_string());
        Admission::Admitted
    }

    /// Distinct names admitted so far (never above `max_names`).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn max_names(&self) -> usize {
        self.max_names
    }

    /// Metrics refused because the cap was reached (one per occurrence, not
    /// per distinct name: what was not rewritten).
    pub fn overflow_total(&self) -> u64 {
        self.overflow_total
    }

    /// Bytes of name text held (≤ `max_names × MAX_NAME_BYTES`).
    pub fn name_bytes(&self) -> usize {
        self.name_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_cap_then_counts_overflow() {
        let mut b = NameBudget::new(2);
        assert_eq!(b.admit("a.gunicorn.requests"), Admission::Admitted);
        assert_eq!(b.admit("b.gunicorn.requests"), Admission::Admitted);
        assert_eq!(b.admit("a.gunicorn.requests"), Admission::Admitted, "known");
        assert_eq!(b.admit("c.gunicorn.requests"), Admission::Overflow);
        assert_eq!(b.admit("c.gunicorn.requests"), Admission::Overflow);
        assert_eq!(b.admit(&"x".repeat(256)), Admission::TooLong);
        assert_eq!((b.len(), b.overflow_total(), b.name_bytes()), (2, 2, 38));
        assert_eq!(NameBudget::new(0).max_names(), 1);
        assert_eq!(NameBudget::new(usize::MAX).max_names(), MAX_MAX_NAMES);
        assert_eq!(NameBudget::default().max_names(), DEFAULT_MAX_NAMES);
    }
}
