//! In-memory RED aggregation: what a plugin keeps when it serves its own
//! metrics, and what tests and the CLI use as the reference model.

use std::collections::BTreeMap;

use super::admission::{namespace, Admission, Admitter, Decision};
use super::histogram::{Buckets, Histogram};
use super::kv::LocalKv;
use super::labels::LabelSet;
use crate::prom::text::Format;

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub requests: u64,
    pub errors: u64,
    pub duration: Histogram,
    pub ttfb: Histogram,
}

impl Series {
    pub fn new(buckets: &Buckets) -> Self {
        Self {
            requests: 0,
            errors: 0,
            duration: Histogram::new(buckets),
            ttfb: Histogram::new(buckets),
        }
    }

    /// Counts one finished request into this series.
    pub fn observe(
        &mut self,
        buckets: &Buckets,
        is_error: bool,
        duration_seconds: f64,
        ttfb_seconds: Option<f64>,
    ) {
        self.requests = self.requests.saturating_add(1);
        if is_error {
            self.errors = self.errors.saturating_add(1);
        }
        self.duration.observe(buckets, duration_seconds);
        if let Some(t) = ttfb_seconds {
            self.ttfb.observe(buckets, t);
        }
    }

    pub fn merge(&mut self, other: &Series) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        self.duration.merge(&other.duration);
        self.ttfb.merge(&other.ttfb);
    }
}

/// One finished request as a host reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub labels: LabelSet,
    pub duration_seconds: f64,
    /// `None` when no response byte was ever sent.
    pub ttfb_seconds: Option<f64>,
}

/// One process's aggregate: the same admission policy as the proxy
/// plugins, over an in-process store.
#[derive(Debug, Clone)]
pub struct RedAggregate {
    buckets: Buckets,
    admitter: Admitter,
    kv: LocalKv,
    series: BTreeMap<LabelSet, Series>,
    dropped: u64,
}

impl RedAggregate {
    pub fn new(buckets: Buckets, max_series: usize) -> Self {
        let mut kv = LocalKv::new();
        let policy = Admission::new(&namespace("aggregate", "", &max_series), max_series);
        // An in-process store cannot fail; a failure would only mean every
        // set is undecided, i.e. counted in overflow.
        let _ = policy.ensure_created(&mut kv);
        Self {
            buckets,
            admitter: Admitter::new(policy),
            kv,
            series: BTreeMap::new(),
            dropped: 0,
        }
    }

    pub fn record(&mut self, obs: Observation) {
        let key = if self.series.contains_key(&obs.labels) {
            obs.labels
        } else {
            match self.admitter.decide(&mut self.kv, &obs.labels) {
                Decision::Admitted => obs.labels,
                Decision::Refused | Decision::Undecided(_) => {
                    self.dropped = self.dropped.saturating_add(1);
                    obs.labels.overflow()
                }
            }
        };
        let is_error = key.is_error();
        let buckets = &self.buckets;
        let s = self
            .series
            .entry(key)
            .or_insert_with(|| Series::new(buckets));
        s.observe(buckets, is_error, obs.duration_seconds, obs.ttfb_seconds);
    }

    pub fn series(&self) -> impl Iterator<Item = (&LabelSet, &Series)> {
        self.series.iter()
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    /// Prometheus text with second-based histograms.
    pub fn encode_prometheus(&self) -> String {
        super::expose::encode(
            Format::Prometheus,
            &self.buckets,
            self.series.iter(),
            self.dropped(),
            None,
            None,
            &std::collections::BTreeMap::new(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(method: &str, code: u16, route: &str, d: f64) -> Observation {
        Observation {
            labels: LabelSet::new(method, code, route.into(), "app".into(), "http"),
            duration_seconds: d,
            ttfb_seconds: Some(d / 2.0),
        }
    }

    #[test]
    fn counts_errors_and_histograms_per_series() {
        let mut a = RedAggregate::new(Buckets::default(), 1000);
        for _ in 0..3 {
            a.record(obs("GET", 200, "/", 0.01));
        }
        a.record(obs("GET", 500, "/", 0.2));
        a.record(obs("BREW", 418, "/pot", 0.2));
        assert_eq!(a.series_count(), 3);
        let get200 = a.series().find(|(l, _)| l.code == 200).unwrap().1;
        assert_eq!(
            (get200.requests, get200.errors, get200.duration.count()),
            (3, 0, 3)
        );
        let get500 = a.series().find(|(l, _)| l.code == 500).unwrap().1;
        assert_eq!((get500.requests, get500.errors), (1, 1));
        assert!(a.series().any(|(l, _)| l.method == "_OTHER"));
    }

    #[test]
    fn cap_folds_into_overflow_and_counts_drops() {
        let mut a = RedAggregate::new(Buckets::default(), 10);
        for i in 0..100 {
            a.record(obs("GET", 200, &format!("/p{i}"), 0.01));
        }
        a.record(obs("GET", 502, "/new", 0.01));
        assert_eq!(a.series_count(), 12, "10 admitted + 2xx and 5xx overflow");
        assert_eq!(a.dropped(), 91);
        let over: u64 = a
            .series()
            .filter(|(l, _)| l.is_overflow())
            .map(|(_, s)| s.requests)
            .sum();
        assert_eq!(over, 91);
        let over_err: u64 = a
            .series()
            .filter(|(l, _)| l.is_overflow())
            .map(|(_, s)| s.errors)
            .sum();
        assert_eq!(over_err, 1);
        let text = a.encode_prometheus();
        assert!(text.contains("uwsgi_red_dropped_label_sets_total 91\n"));
        assert!(text.contains(r#"route="__overflow__""#));
    }
}
