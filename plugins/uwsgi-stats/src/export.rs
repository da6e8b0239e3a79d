//! Families -> Envoy host metrics, independent of the host calls (a
//! [`MetricsHost`]) so the bookkeeping is unit-tested natively.
//!
//! Envoy has no label API and its metrics are integers: labels go into the
//! stat name (`uwsgi_red_proxy_wasm::envoy_name::encode`, pulled out again by `stats_tags`),
//! fractional families use their [`IntegerForm`] (µs instead of seconds).
//!
//! Counters: uWSGI reports absolute totals but an Envoy counter can only be
//! incremented. Each series remembers the last document value and is
//! incremented by the difference, so the exported `_total` equals the
//! document value. When the document value goes down (the uWSGI master
//! restarted, or a counter reset), the series is incremented by the new
//! value instead: it stays monotonic, so `rate()`/`increase()` remain right,
//! but from then on it runs ahead of the document by what was counted before
//! the reset. The exact document values are always in the admin
//! `/uwsgi/metrics` text and the snapshot.
//!
//! Gauges after a failed poll: Envoy cannot delete a metric, so every gauge
//! of the failed target is set to 0 (nothing keeps showing a stale queue
//! length or busy worker) and `uwsgi_up` is 0; counters simply stop rising.
//! Gauges whose series vanished from a later document (a worker or socket
//! went away) are zeroed the same way.
//!
//! `max_series` is the core's one admission policy
//! (`uwsgi_red_core::red::admission`): the number of distinct series this
//! plugin creates in the process (a bootstrap singleton, so one VM, over
//! an in-process store). Samples of a refused series are not exported and
//! each is counted in `uwsgi_red_dropped_label_sets_total`, per poll.

use std::collections::{HashMap, HashSet};

use uwsgi_red_core::prom::MetricType;
use uwsgi_red_core::red::names::DROPPED_LABEL_SETS_TOTAL;
use uwsgi_red_core::red::LocalKv;
use uwsgi_red_core::red::{namespace, Admission, Admitter, Decision};
use uwsgi_red_core::stats::Family;
use uwsgi_red_proxy_wasm::envoy_name::encode;

/// The host's metric calls: the core's trait, shared with the RED plugins.
pub use uwsgi_red_core::red::MetricsHost;

#[derive(Debug)]
struct Series {
    id: u32,
    kind: MetricType,
    /// Last document value (counters) or last recorded value (gauges).
    last: u64,
}

/// Host series of all targets, with per-target ownership of gauges.
#[derive(Debug)]
pub struct Exporter {
    series: HashMap<String, Series>,
    /// Gauges each target set on its last export.
    gauges_by_target: HashMap<String, HashSet<String>>,
    admitter: Admitter,
    kv: LocalKv,
    /// `uwsgi_red_dropped_label_sets_total`, defined on the first export.
    dropped_id: Option<u32>,
    /// Samples not exported because their series was refused.
    pub dropped: u64,
}

impl Exporter {
    pub fn new(max_series: usize) -> Self {
        let policy = Admission::new(&namespace("uwsgi_stats", "", &max_series), max_series);
        let mut kv = LocalKv::new();
        // An in-process store does not fail.
        let _ = policy.ensure_created(&mut kv);
        Self {
            series: HashMap::new(),
            gauges_by_target: HashMap::new(),
            admitter: Admitter::new(policy),
            kv,
            dropped_id: None,
            dropped: 0,
        }
    }

    fn count_dropped(&mut self, host: &mut dyn MetricsHost) {
        self.dropped = self.dropped.saturating_add(1);
        if let Some(id) = self.dropped_id {
            let _ = host.increment(id, 1);
        }
    }

    /// The dropped counter exists (at zero) from the first export on, and
    /// is outside the cap it reports on.
    fn define_dropped(&mut self, host: &mut dyn MetricsHost) {
        if self.dropped_id.is_none() {
            self.dropped_id = host
                .define(MetricType::Counter, DROPPED_LABEL_SETS_TOTAL)
                .ok();
        }
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    fn series<'a>(
        &'a mut self,
        host: &mut dyn MetricsHost,
        key: &str,
        kind: MetricType,
    ) -> Option<&'a mut Series> {
        if !self.series.contains_key(key) {
            if self.admitter.decide(&mut self.kv, key) != Decision::Admitted {
                self.count_dropped(host);
                return None;
            }
            let id = host.define(kind, key).ok()?;
            self.series
                .insert(key.to_string(), Series { id, kind, last: 0 });
        }
        self.series.get_mut(key)
    }

    /// Exports one successful poll of `target`: gauges set, counters advanced
    /// to the document values, gauges missing from `families` zeroed.
    pub fn export(&mut self, host: &mut dyn MetricsHost, target: &str, families: &[Family]) {
        self.define_dropped(host);
        let mut now = HashSet::new();
        for f in families {
            let (name, factor) = match f.integer_form {
                Some(i) => (i.name, i.factor),
                None => (f.name, 1.0),
            };
            for s in &f.samples {
                let key = encode(name, &s.labels);
                let value = to_u64(s.value * factor);
                let Some(series) = self.series(host, &key, f.kind) else {
                    continue;
                };
                match series.kind {
                    MetricType::Counter => {
                        let by = value.checked_sub(series.last).unwrap_or(value);
                        if by > 0 {
                            let _ = host.increment(series.id, by);
                        }
                        series.last = value;
                    }
                    _ => {
                        let _ = host.record(series.id, value);
                        series.last = value;
                        now.insert(key);
                    }
                }
            }
        }
        let before = self
            .gauges_by_target
            .insert(target.to_string(), now)
            .unwrap_or_default();
        let Some(now) = self.gauges_by_target.get(target) else {
            return;
        };
        for gone in before.difference(now) {
            if let Some(s) = self.series.get_mut(gone) {
                let _ = host.record(s.id, 0);
                s.last = 0;
            }
        }
    }

    /// A failed poll: every gauge `target` owns goes to 0.
    pub fn zero_gauges(&mut self, host: &mut dyn MetricsHost, target: &str) {
        let Some(keys) = self.gauges_by_target.get_mut(target) else {
            return;
        };
        for k in keys.drain() {
            if let Some(s) = self.series.get_mut(&k) {
                let _ = host.record(s.id, 0);
                s.last = 0;
            }
        }
    }

    /// Sets a gauge that no poll result owns (never zeroed on failure).
    pub fn set_gauge(
        &mut self,
        host: &mut dyn MetricsHost,
        name: &str,
        labels: &[(&str, &str)],
        v: u64,
    ) {
        let key = encode(name, labels);
        if let Some(s) = self.series(host, &key, MetricType::Gauge) {
            let _ = host.record(s.id, v);
            s.last = v;
        }
    }

    /// Adds to a plugin-side counter (scrape errors, repairs).
    pub fn add(
        &mut self,
        host: &mut dyn MetricsHost,
        name: &str,
        labels: &[(&str, &str)],
        by: u64,
    ) {
        let key = encode(name, labels);
        if let Some(s) = self.series(host, &key, MetricType::Counter) {
            if by > 0 {
                let _ = host.increment(s.id, by);
            }
            s.last = s.last.saturating_add(by);
        }
    }
}

fn to_u64(v: f64) -> u64 {
    uwsgi_red_core::stats::families::integer_value(v)
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use uwsgi_red_core::red::HostError;
    use uwsgi_red_core::stats::decode;
    use uwsgi_red_core::stats::{map_document, MapOptions};

    /// Behaves like Envoy: gauges hold the last value, counters the running sum.
    #[derive(Default)]
    struct FakeHost {
        names: Vec<(MetricType, String)>,
        values: Vec<u64>,
    }

    impl MetricsHost for FakeHost {
        fn define(&mut self, kind: MetricType, name: &str) -> Result<u32, HostError> {
            self.names.push((kind, name.to_string()));
            self.values.push(0);
            Ok(self.names.len() as u32 - 1)
        }
        fn record(&mut self, id: u32, value: u64) -> Result<(), HostError> {
            self.values[id as usize] = value;
            Ok(())
        }
        fn increment(&mut self, id: u32, by: u64) -> Result<(), HostError> {
            self.values[id as usize] += by;
            Ok(())
        }
    }

    impl FakeHost {
        fn get(&self, name: &str) -> u64 {
            let i = self
                .names
                .iter()
                .position(|(_, n)| n == name)
                .unwrap_or_else(|| panic!("no {name}"));
            self.values[i]
        }
    }

    fn doc(requests: u64, status: &str, workers: u64) -> Vec<Family> {
        let ws: Vec<String> = (1..=workers)
            .map(|i| {
                format!(r#"{{"id":{i},"requests":{requests},"status":"{status}","avg_rt":1500}}"#)
            })
            .collect();
        let json = format!(r#"{{"version":"2.0.30","workers":[{}]}}"#, ws.join(","));
        map_document(
            &decode(json.as_bytes()).unwrap().document,
            "app1",
            &MapOptions::default(),
        )
    }

    const REQS: &str = "target=.=app1;.;worker_id=.=1;.;uwsgi_worker_requests_total";
    const BUSY: &str = "target=.=app1;.;worker_id=.=2;.;uwsgi_worker_busy";

    #[test]
    fn counters_equal_document_values_and_survive_resets() {
        let mut host = FakeHost::default();
        let mut ex = Exporter::new(1000);
        ex.export(&mut host, "app1", &doc(10, "busy", 2));
        assert_eq!(host.get(REQS), 10);
        ex.export(&mut host, "app1", &doc(25, "busy", 2));
        assert_eq!(host.get(REQS), 25);
        ex.export(&mut host, "app1", &doc(25, "busy", 2));
        assert_eq!(host.get(REQS), 25);
        // Reset (uWSGI restarted): stays monotonic.
        ex.export(&mut host, "app1", &doc(3, "busy", 2));
        assert_eq!(host.get(REQS), 28);
        ex.export(&mut host, "app1", &doc(5, "busy", 2));
        assert_eq!(host.get(REQS), 30);
        // Fractional seconds go out as integer microseconds.
        assert_eq!(
            host.get(
                "target=.=app1;.;worker_id=.=1;.;uwsgi_worker_average_response_time_microseconds"
            ),
            1500
        );
        assert!(host
            .names
            .iter()
            .all(|(_, n)| !n.ends_with("average_response_time_seconds")));
    }

    #[test]
    fn failed_poll_zeroes_gauges_and_vanished_series() {
        let mut host = FakeHost::default();
        let mut ex = Exporter::new(1000);
        ex.export(&mut host, "app1", &doc(10, "busy", 2));
        assert_eq!(host.get(BUSY), 1);
        assert_eq!(host.get("target=.=app1;.;uwsgi_workers"), 2);
        ex.zero_gauges(&mut host, "app1");
        assert_eq!(host.get(BUSY), 0);
        assert_eq!(host.get("target=.=app1;.;uwsgi_workers"), 0);
        assert_eq!(host.get(REQS), 10, "counters are not touched");
        ex.export(&mut host, "app1", &doc(11, "busy", 2));
        assert_eq!(host.get(BUSY), 1);
        // Worker 2 disappears: its gauges go to 0.
        ex.export(&mut host, "app1", &doc(12, "busy", 1));
        assert_eq!(host.get(BUSY), 0);
        assert_eq!(host.get("target=.=app1;.;uwsgi_workers"), 1);
    }

    #[test]
    fn series_cap_counts_every_refused_sample_and_exports_it() {
        let mut host = FakeHost::default();
        let mut ex = Exporter::new(5);
        let fams = doc(1, "idle", 2);
        let samples: u64 = fams.iter().map(|f| f.samples.len() as u64).sum();
        ex.export(&mut host, "app1", &fams);
        assert_eq!(ex.series_count(), 5);
        assert_eq!(ex.dropped, samples - 5);
        // 5 admitted series plus the dropped counter itself.
        assert_eq!(host.names.len(), 6);
        assert_eq!(host.get(DROPPED_LABEL_SETS_TOTAL), samples - 5);
        ex.export(&mut host, "app1", &fams);
        assert_eq!(host.get(DROPPED_LABEL_SETS_TOTAL), 2 * (samples - 5));
    }
}
