//! An in-memory [`MetricsHost`] that renders what Envoy's
//! `/stats/prometheus` shows for the same host metric calls: nginx has no
//! endpoint serving proxy-wasm metrics, so under nginx the poller records
//! into this and the page is its text.
//!
//! Envoy's view of a metric is reproduced: the stat name carries the labels
//! (`key=.=value;.;name`, which Envoy's `stats_tags` pull out), counters
//! only grow, gauges hold the last value, every value is an integer. So the
//! same poll results give the same families, labels and values in both
//! hosts.

use std::collections::{BTreeMap, HashMap};

use uwsgi_red_core::prom::MetricType;
use uwsgi_red_core::red::{HostError, MetricsHost, SeriesNames};
use uwsgi_red_proxy_wasm::envoy_name;

#[derive(Debug, Default)]
pub struct TextHost {
    series: Vec<(MetricType, String, u64)>,
    index: HashMap<String, u32>,
}

/// `key=.=value;.;` prefixes and the name after them.
fn split_name(encoded: &str) -> (Vec<(&str, &str)>, &str) {
    let mut labels = Vec::new();
    let mut rest = encoded;
    while let Some((kv, after)) = rest.split_once(";.;") {
        let Some((k, v)) = kv.split_once("=.=") else {
            break;
        };
        labels.push((k, v));
        rest = after;
    }
    (labels, rest)
}

fn escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl TextHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// Prometheus text: one `# TYPE` block per family, families and series
    /// in name order (as Envoy sorts them).
    pub fn render(&self) -> String {
        let mut families: BTreeMap<&str, (MetricType, Vec<String>)> = BTreeMap::new();
        for (kind, encoded, value) in &self.series {
            let (labels, name) = split_name(encoded);
            let mut line = String::from(name);
            if !labels.is_empty() {
                line.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    line.push_str(k);
                    line.push_str("=\"");
                    escape(v, &mut line);
                    line.push('"');
                }
                line.push('}');
            }
            line.push(' ');
            line.push_str(&value.to_string());
            families
                .entry(name)
                .or_insert_with(|| (*kind, Vec::new()))
                .1
                .push(line);
        }
        let mut out = String::new();
        for (name, (kind, mut lines)) in families {
            let t = match kind {
                MetricType::Counter => "counter",
                MetricType::Gauge => "gauge",
                MetricType::Histogram => "histogram",
                MetricType::Untyped => "untyped",
            };
            out.push_str(&format!("# TYPE {name} {t}\n"));
            lines.sort();
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }
}

/// Counters the plugin keeps itself (not taken from a uWSGI document, so
/// not restored by the next poll): a new holder continues them from the
/// last holder's values ([`TextHost::counters_state`], [`TextHost::seed`]).
pub const PLUGIN_COUNTERS: [&str; 4] = [
    "uwsgi_scrape_errors_total",
    "uwsgi_stats_repairs_total",
    "uwsgi_red_dropped_label_sets_total",
    "uwsgi_red_internal_errors_total",
];

impl TextHost {
    /// `encoded name \t value` lines of the plugin's own counters. Encoded
    /// names hold no control characters (`envoy_name::encode`).
    pub fn counters_state(&self) -> Vec<u8> {
        let mut out = String::new();
        for (kind, encoded, value) in &self.series {
            if *kind == MetricType::Counter && PLUGIN_COUNTERS.contains(&split_name(encoded).1) {
                out.push_str(&format!("{encoded}\t{value}\n"));
            }
        }
        out.into_bytes()
    }

    /// Continues the counters of [`TextHost::counters_state`]: each goes to
    /// the larger of its value here and there, so none goes back.
    pub fn seed(&mut self, state: &[u8]) {
        for line in state.split(|b| *b == b'\n') {
            let Some((name, value)) = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.split_once('\t'))
            else {
                continue;
            };
            let Ok(value) = value.parse::<u64>() else {
                continue;
            };
            if !PLUGIN_COUNTERS.contains(&split_name(name).1) {
                continue;
            }
            if let Ok(id) = self.define(MetricType::Counter, name) {
                if let Some(s) = usize::try_from(id)
                    .ok()
                    .and_then(|i| self.series.get_mut(i))
                {
                    s.2 = s.2.max(value);
                }
            }
        }
    }
}

/// The names Envoy would get, so the page's labels are Envoy's (escaped
/// values included).
impl SeriesNames for TextHost {
    fn series_name(&self, metric: &'static str, labels: &[(&'static str, &str)]) -> String {
        envoy_name::encode(metric, labels)
    }
}

impl MetricsHost for TextHost {
    fn define(&mut self, kind: MetricType, name: &str) -> Result<u32, HostError> {
        if let Some(id) = self.index.get(name) {
            return Ok(*id);
        }
        let id = u32::try_from(self.series.len()).map_err(|_| HostError)?;
        self.series.push((kind, name.to_string(), 0));
        self.index.insert(name.to_string(), id);
        Ok(id)
    }

    fn increment(&mut self, id: u32, by: u64) -> Result<(), HostError> {
        let s = self
            .series
            .get_mut(usize::try_from(id).map_err(|_| HostError)?)
            .ok_or(HostError)?;
        s.2 = s.2.saturating_add(by);
        Ok(())
    }

    fn record(&mut self, id: u32, value: u64) -> Result<(), HostError> {
        let s = self
            .series
            .get_mut(usize::try_from(id).map_err(|_| HostError)?)
            .ok_or(HostError)?;
        s.2 = value;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labels_from_the_stat_name() {
        let mut h = TextHost::new();
        let a = h
            .define(
                MetricType::Counter,
                "target=.=a;.;worker_id=.=1;.;uwsgi_worker_requests_total",
            )
            .unwrap();
        let b = h
            .define(MetricType::Gauge, "target=.=a\"b;.;uwsgi_up")
            .unwrap();
        let d = h
            .define(MetricType::Counter, "uwsgi_red_dropped_label_sets_total")
            .unwrap();
        h.increment(a, 4).unwrap();
        h.increment(a, 3).unwrap();
        h.record(b, 1).unwrap();
        h.increment(d, 0).unwrap();
        assert_eq!(
            h.render(),
            "# TYPE uwsgi_red_dropped_label_sets_total counter\n\
             uwsgi_red_dropped_label_sets_total 0\n\
             # TYPE uwsgi_up gauge\n\
             uwsgi_up{target=\"a\\\"b\"} 1\n\
             # TYPE uwsgi_worker_requests_total counter\n\
             uwsgi_worker_requests_total{target=\"a\",worker_id=\"1\"} 7\n"
        );
        assert!(h.record(99, 1).is_err());

        // A new holder continues the plugin's own counters, never the
        // document-derived ones (the next poll restores those).
        let e = h
            .define(
                MetricType::Counter,
                "target=.=a;.;reason=.=connect;.;uwsgi_scrape_errors_total",
            )
            .unwrap();
        h.increment(e, 5).unwrap();
        let state = h.counters_state();
        assert_eq!(
            String::from_utf8(state.clone()).unwrap(),
            "uwsgi_red_dropped_label_sets_total\t0\n\
             target=.=a;.;reason=.=connect;.;uwsgi_scrape_errors_total\t5\n"
        );
        let mut next = TextHost::new();
        next.seed(&state);
        next.seed(b"garbage\nuwsgi_up\t3\nx\tnan\n");
        assert_eq!(
            next.render(),
            "# TYPE uwsgi_red_dropped_label_sets_total counter\n\
             uwsgi_red_dropped_label_sets_total 0\n\
             # TYPE uwsgi_scrape_errors_total counter\n\
             uwsgi_scrape_errors_total{target=\"a\",reason=\"connect\"} 5\n"
        );
        let again = next
            .define(
                MetricType::Counter,
                "target=.=a;.;reason=.=connect;.;uwsgi_scrape_errors_total",
            )
            .unwrap();
        next.increment(again, 1).unwrap();
        assert!(next.render().contains("reason=\"connect\"} 6"));
    }
}
