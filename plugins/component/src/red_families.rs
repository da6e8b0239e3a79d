//! `RedAggregate` as metric families. Core exposes the aggregate only as
//! Prometheus text (`encode_prometheus`), so the family list is rebuilt
//! here from `series()`; the test below renders it back to text and
//! requires it to equal core's text byte for byte, so names, help strings,
//! label order and bucket layout cannot drift from core.

use uwsgi_red_core::red::aggregate::{RedAggregate, Series};
use uwsgi_red_core::red::histogram::{Buckets, Histogram};
use uwsgi_red_core::red::names;

use crate::bindings::exports::uwsgi_red::core::metrics as wm;

type Labels = Vec<(String, String)>;

fn histogram_point(labels: &Labels, buckets: &Buckets, h: &Histogram) -> wm::HistogramPoint {
    wm::HistogramPoint {
        labels: labels.clone(),
        // `cumulative` ends with the +Inf slot, which `count` already carries.
        buckets: buckets
            .bounds()
            .iter()
            .zip(h.cumulative())
            .map(|(b, c)| wm::Bucket {
                upper_bound: *b,
                cumulative_count: c,
            })
            .collect(),
        count: h.count(),
        sum: h.sum(),
    }
}

fn family(name: &str, help: &str, kind: wm::MetricType, points: wm::Points) -> wm::MetricFamily {
    wm::MetricFamily {
        name: name.to_string(),
        help: help.to_string(),
        kind,
        integer_form: None,
        points,
    }
}

pub fn families(a: &RedAggregate) -> Vec<wm::MetricFamily> {
    let series: Vec<(Labels, &Series)> = a
        .series()
        .map(|(l, s)| {
            (
                l.pairs()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                s,
            )
        })
        .collect();
    let scalars = |get: fn(&Series) -> u64| {
        wm::Points::Scalars(
            series
                .iter()
                .map(|(l, s)| wm::Sample {
                    labels: l.clone(),
                    value: get(s) as f64,
                })
                .collect(),
        )
    };
    let histograms = |get: fn(&Series) -> &Histogram| {
        wm::Points::Histograms(
            series
                .iter()
                .map(|(l, s)| histogram_point(l, a.buckets(), get(s)))
                .collect(),
        )
    };
    use wm::MetricType::{Counter, Histogram as Hist};
    vec![
        family(
            names::REQUESTS_TOTAL,
            "Requests seen by the proxy, by bounded label set.",
            Counter,
            scalars(|s| s.requests),
        ),
        family(
            names::ERRORS_TOTAL,
            "Requests answered 5xx or not answered at all.",
            Counter,
            scalars(|s| s.errors),
        ),
        family(
            names::DURATION_SECONDS,
            "First request byte to last response byte, seen at the proxy.",
            Hist,
            histograms(|s| &s.duration),
        ),
        family(
            names::TTFB_SECONDS,
            "First request byte to first response byte, seen at the proxy.",
            Hist,
            histograms(|s| &s.ttfb),
        ),
        family(
            names::DROPPED_LABEL_SETS_TOTAL,
            "Requests folded into the overflow series by the cardinality cap.",
            Counter,
            wm::Points::Scalars(vec![wm::Sample {
                labels: Vec::new(),
                value: a.dropped() as f64,
            }]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use uwsgi_red_core::prom::text::{format_value, MetricType, TextEncoder};
    use uwsgi_red_core::red::aggregate::Observation;
    use uwsgi_red_core::red::labels::LabelSet;

    fn pairs(l: &Labels) -> Vec<(&str, String)> {
        l.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
    }

    fn render(fams: &[wm::MetricFamily]) -> String {
        let mut e = TextEncoder::new();
        for f in fams {
            let kind = match f.kind {
                wm::MetricType::Counter => MetricType::Counter,
                wm::MetricType::Gauge => MetricType::Gauge,
                wm::MetricType::Histogram => MetricType::Histogram,
                wm::MetricType::Untyped => MetricType::Untyped,
            };
            e.family(&f.name, &f.help, kind);
            match &f.points {
                wm::Points::Scalars(ss) => {
                    for s in ss {
                        e.sample(&f.name, &pairs(&s.labels), s.value);
                    }
                }
                wm::Points::Histograms(hs) => {
                    for h in hs {
                        let bucket = format!("{}_bucket", f.name);
                        let les = h
                            .buckets
                            .iter()
                            .map(|b| (format_value(b.upper_bound), b.cumulative_count))
                            .chain([("+Inf".to_string(), h.count)]);
                        for (le, c) in les {
                            let mut l = pairs(&h.labels);
                            l.push(("le", le));
                            e.sample(&bucket, &l, c as f64);
                        }
                        e.sample(&format!("{}_sum", f.name), &pairs(&h.labels), h.sum);
                        e.sample(
                            &format!("{}_count", f.name),
                            &pairs(&h.labels),
                            h.count as f64,
                        );
                    }
                }
            }
        }
        e.finish()
    }

    #[test]
    fn families_render_to_cores_text() {
        let mut a = RedAggregate::new(Buckets::default(), 2);
        let cases = [
            ("GET", 200, "/", 0.004),
            ("GET", 200, "/", 0.3),
            ("POST", 503, "/x", 1.5),
            ("BREW", 418, "/pot", 0.02),
        ];
        for (i, (m, c, r, d)) in cases.iter().enumerate() {
            for _ in 0..=i {
                a.record(Observation {
                    labels: LabelSet::new(m, *c, r.to_string(), "svc".into(), "http"),
                    duration_seconds: *d,
                    ttfb_seconds: Some(d / 2.0),
                });
            }
        }
        assert!(
            a.dropped() > 0,
            "the cap of 2 must fold a series into overflow"
        );
        let fams = families(&a);
        assert_eq!(fams.len(), 5);
        assert_eq!(render(&fams), a.encode_prometheus());
    }

    #[test]
    fn empty_aggregate_matches_too() {
        let a = RedAggregate::new(Buckets::new(vec![0.1, 1.0]).unwrap(), 10);
        assert_eq!(render(&families(&a)), a.encode_prometheus());
    }
}
