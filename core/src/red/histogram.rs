//! Cumulative-bucket histogram with boundaries in seconds.

use std::fmt;

/// OpenTelemetry's advisory boundaries for `http.server.request.duration`
/// (0.005 .. 10 s) with 0.5, 1 and 2.5 ms below them: a Python route that
/// answers in under a millisecond otherwise reads "somewhere below 5 ms",
/// and `histogram_quantile` puts its p50 at 2.5 ms. The 1-2.5-5 steps go on
/// downwards; below 0.5 ms a proxy's own share of the time dominates, and
/// nginx's millisecond clock records 0 or 1 ms, which 0.5 and 1 already
/// tell apart. The top stays at 10 s, so above 5 ms a series compares with
/// OpenTelemetry's bucket for bucket.
pub const DEFAULT_BUCKETS_SECONDS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
    7.5, 10.0,
];

/// Validated upper bounds (seconds), strictly increasing, finite, positive.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets(Vec<f64>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketsError(pub &'static str);

impl fmt::Display for BucketsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BucketsError {}

/// More buckets than this only costs memory per series for no insight.
pub const MAX_BUCKETS: usize = 64;

impl Buckets {
    pub fn new(bounds: Vec<f64>) -> Result<Self, BucketsError> {
        if bounds.is_empty() {
            return Err(BucketsError("at least one bucket boundary is needed"));
        }
        if bounds.len() > MAX_BUCKETS {
            return Err(BucketsError("at most 64 bucket boundaries"));
        }
        if bounds.iter().any(|b| !b.is_finite() || *b <= 0.0) {
            return Err(BucketsError(
                "bucket boundaries must be finite and > 0 (seconds)",
            ));
        }
        if bounds.windows(2).any(|w| w.first() >= w.get(1)) {
            return Err(BucketsError(
                "bucket boundaries must be strictly increasing",
            ));
        }
        Ok(Self(bounds))
    }

    pub fn bounds(&self) -> &[f64] {
        &self.0
    }

    /// Boundaries in whole microseconds, for hosts whose histograms take
    /// integers (Envoy's `histogram_bucket_settings`).
    pub fn bounds_micros(&self) -> Vec<u64> {
        self.0.iter().map(|s| (s * 1e6).round() as u64).collect()
    }
}

impl Default for Buckets {
    fn default() -> Self {
        Self(DEFAULT_BUCKETS_SECONDS.to_vec())
    }
}

/// Per-bucket (non-cumulative) counts; the last slot is `+Inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(buckets: &Buckets) -> Self {
        Self {
            counts: vec![0; buckets.0.len().saturating_add(1)],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, buckets: &Buckets, seconds: f64) {
        // NaN or negative durations (clock skew) land in the first bucket
        // rather than poisoning the sum.
        let v = if seconds.is_finite() && seconds > 0.0 {
            seconds
        } else {
            0.0
        };
        let idx = buckets.0.partition_point(|b| *b < v);
        if let Some(c) = self.counts.get_mut(idx) {
            *c = c.saturating_add(1);
        }
        self.sum += v;
        self.count = self.count.saturating_add(1);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.sum += other.sum;
        self.count = self.count.saturating_add(other.count);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Per-bucket (non-cumulative) counts, `+Inf` last.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Rebuilds a histogram from per-bucket counts (one per bound plus
    /// `+Inf`) and a sum, as serialised state holds them. `None` when the
    /// shape does not fit `buckets`, the sum is not a finite non-negative
    /// number, or the total overflows.
    pub fn from_parts(buckets: &Buckets, counts: Vec<u64>, sum: f64) -> Option<Self> {
        if counts.len() != buckets.0.len().saturating_add(1) || !sum.is_finite() || sum < 0.0 {
            return None;
        }
        let count = counts.iter().try_fold(0u64, |acc, c| acc.checked_add(*c))?;
        Some(Self { counts, sum, count })
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Cumulative counts aligned with the bounds, `+Inf` last.
    pub fn cumulative(&self) -> impl Iterator<Item = u64> + '_ {
        self.counts.iter().scan(0u64, |acc, c| {
            *acc = acc.saturating_add(*c);
            Some(*acc)
        })
    }
}

impl crate::prom::text::HistogramCounts for Histogram {
    fn cumulative(&self) -> impl Iterator<Item = u64> + '_ {
        Histogram::cumulative(self)
    }
    fn sum(&self) -> f64 {
        Histogram::sum(self)
    }
    fn count(&self) -> u64 {
        Histogram::count(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_boundaries_are_inclusive() {
        let b = Buckets::new(vec![0.1, 1.0]).unwrap();
        let mut h = Histogram::new(&b);
        h.observe(&b, 0.1);
        h.observe(&b, 0.5);
        h.observe(&b, 1.0);
        h.observe(&b, 3.0);
        h.observe(&b, f64::NAN);
        assert_eq!(h.cumulative().collect::<Vec<_>>(), vec![2, 4, 5]);
        assert_eq!(h.count(), 5);
        assert!((h.sum() - 4.6).abs() < 1e-9);
    }

    #[test]
    fn invalid_buckets_rejected() {
        assert!(Buckets::new(vec![]).is_err());
        assert!(Buckets::new(vec![1.0, 1.0]).is_err());
        assert!(Buckets::new(vec![-1.0]).is_err());
        assert!(Buckets::new(vec![f64::INFINITY]).is_err());
    }

    #[test]
    fn default_bounds_in_micros_are_the_examples_envoy_buckets() {
        // examples/*/envoy.yaml `histogram_bucket_settings` hold this list.
        assert_eq!(
            Buckets::default().bounds_micros(),
            vec![
                500, 1000, 2500, 5000, 10000, 25000, 50000, 75000, 100000, 250000, 500000, 750000,
                1000000, 2500000, 5000000, 7500000, 10000000
            ]
        );
    }

    #[test]
    fn a_sub_millisecond_request_has_a_bucket_of_its_own() {
        let b = Buckets::default();
        let mut h = Histogram::new(&b);
        h.observe(&b, 0.0004);
        h.observe(&b, 0.0008);
        h.observe(&b, 0.001);
        h.observe(&b, 0.004);
        assert_eq!(h.counts().get(..5), Some(&[1, 2, 0, 1, 0][..]));
    }
}
