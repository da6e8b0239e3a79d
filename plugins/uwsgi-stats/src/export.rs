//! Families -> Envoy host metrics, independent of the host calls (a
//! [`MetricsHost`]) so the bookkeeping is unit-tested natively.
//!
//! Envoy has no label API and its metrics are integers: labels go into the
//! stat name (`core::envoy_name::encode`, pulled out again by `stats_tags`),
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

use std::collections::{HashMap, HashSet};

use uwsgi_red_core::envoy_name::encode;
use uwsgi_red_core::prom::text::MetricType;
use uwsgi_red_core::stats::families::Family;

/// The host's metric calls (proxy-wasm `define_metric`/`record_metric`/`increment_metric`).
pub trait MetricsHost {
    fn define(&mut self, kind: MetricType, name: &str) -> Option<u32>;
    fn record(&mut self, id: u32, value: u64);
    fn increment(&mut self, id: u32, by: u64);
}

#[derive(Debug)]
struct Series {
    id: u32,
    kind: MetricType,
    /// Last document value (counters) or last recorded value (gauges).
    last: u64,
}

/// Host series of all targets, with per-target ownership of gauges.
#[derive(Debug, Default)]
pub struct Exporter {
    series: HashMap<String, Series>,
    /// Gauges each target set on its last export.
    gauges_by_target: HashMap<String, HashSet<String>>,
    max_series: usize,
    /// Series not created because of `max_series`.
    pub dropped: u64,
}

impl Exporter {
    pub fn new(max_series: usize) -> Self {
        Self {
            max_series,
            ..Self::default()
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
            if self.series.len() >= self.max_series {
                self.dropped += 1;
                return None;
            }
            let id = host.define(kind, key)?;
            self.series
                .insert(key.to_string(), Series { id, kind, last: 0 });
        }
        self.series.get_mut(key)
    }

    /// Exports one successful poll of `target`: gauges set, counters advanced
    /// to the document values, gauges missing from `families` zeroed.
    pub fn export(&mut self, host: &mut dyn MetricsHost, target: &str, families: &[Family]) {
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
                        let by = if value >= series.last {
                            value - series.last
                        } else {
                            value
                        };
                        if by > 0 {
                            host.increment(series.id, by);
                        }
                        series.last = value;
                    }
                    _ => {
                        host.record(series.id, value);
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
        let now = &self.gauges_by_target[target];
        for gone in before.difference(now) {
            if let Some(s) = self.series.get_mut(gone) {
                host.record(s.id, 0);
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
                host.record(s.id, 0);
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
            host.record(s.id, v);
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
                host.increment(s.id, by);
            }
            s.last += by;
        }
    }
}

fn to_u64(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uwsgi_red_core::stats::decode;
    use uwsgi_red_core::stats::families::{map_document, MapOptions};

    /// Behaves like Envoy: gauges hold the last value, counters the running sum.
    #[derive(Default)]
    struct FakeHost {
        names: Vec<(MetricType, String)>,
        values: Vec<u64>,
    }

    impl MetricsHost for FakeHost {
        fn define(&mut self, kind: MetricType, name: &str) -> Option<u32> {
            self.names.push((kind, name.to_string()));
            self.values.push(0);
            Some(self.names.len() as u32 - 1)
        }
        fn record(&mut self, id: u32, value: u64) {
            self.values[id as usize] = value;
        }
        fn increment(&mut self, id: u32, by: u64) {
            self.values[id as usize] += by;
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
    fn series_cap_counts_drops() {
        let mut host = FakeHost::default();
        let mut ex = Exporter::new(5);
        ex.export(&mut host, "app1", &doc(1, "idle", 2));
        assert_eq!(ex.series_count(), 5);
        assert!(ex.dropped > 0);
        assert_eq!(host.names.len(), 5);
    }
}
