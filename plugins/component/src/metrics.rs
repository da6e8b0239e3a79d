//! The WIT `metrics` interface's types: core's stats metric families
//! converted (the RED families are built in [`crate::red_families`]).

use uwsgi_red_core::prom::text::MetricType as CoreMetricType;
use uwsgi_red_core::stats::families as core_families;

use crate::bindings::exports::uwsgi_red::core::metrics as wm;

fn metric_type(t: CoreMetricType) -> wm::MetricType {
    match t {
        CoreMetricType::Counter => wm::MetricType::Counter,
        CoreMetricType::Gauge => wm::MetricType::Gauge,
        CoreMetricType::Histogram => wm::MetricType::Histogram,
        CoreMetricType::Untyped => wm::MetricType::Untyped,
    }
}

pub(crate) fn stats_family(f: &core_families::Family) -> wm::MetricFamily {
    wm::MetricFamily {
        name: f.name.to_string(),
        help: f.help.to_string(),
        kind: metric_type(f.kind),
        integer_form: f.integer_form.map(|i| wm::IntegerForm {
            name: i.name.to_string(),
            factor: i.factor,
        }),
        points: wm::Points::Scalars(
            f.samples
                .iter()
                .map(|s| wm::Sample {
                    labels: s
                        .labels
                        .iter()
                        .map(|(k, v)| ((*k).to_string(), v.clone()))
                        .collect(),
                    value: s.value,
                })
                .collect(),
        ),
    }
}
