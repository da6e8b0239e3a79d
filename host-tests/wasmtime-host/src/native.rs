//! Expected results: the component crate's own implementation, compiled
//! natively over native core (no Wasm involved), in the canonical JSON of
//! [`crate::js`].

use std::path::Path;

use serde_json::{json, Value};
use uwsgi_red_component::bindings::exports::uwsgi_red::core::{logs, red, stats, uwsgi};
use uwsgi_red_component::{Component, RecorderCore};

use crate::cases::{self, Case};
use crate::js::Js;

fn map_options(v: &Value) -> stats::MapOptions {
    stats::MapOptions {
        per_core: v["perCore"].as_bool().expect("perCore"),
        uwsgi_metrics: v["uwsgiMetrics"].as_bool().expect("uwsgiMetrics"),
    }
}

pub fn recorder_options(v: &Value) -> red::RecorderOptions {
    red::RecorderOptions {
        service: v["service"].as_str().expect("service").to_string(),
        route_patterns: v["routePatterns"]
            .as_array()
            .expect("routePatterns")
            .iter()
            .map(|p| p.as_str().expect("pattern").to_string())
            .collect(),
        collapse_ids: v["collapseIds"].as_bool().expect("collapseIds"),
        max_series: v["maxSeries"].as_u64().expect("maxSeries") as u32,
        buckets_seconds: v["bucketsSeconds"]
            .as_array()
            .expect("bucketsSeconds")
            .iter()
            .map(|b| b.as_f64().expect("bucket"))
            .collect(),
        protocol: match v["protocol"].as_str() {
            Some("uwsgi") => red::Protocol::Uwsgi,
            _ => red::Protocol::Http,
        },
    }
}

/// `{seriesCount, dropped, text, families}` after the replay.
pub fn replay_summary(series: u32, dropped: u64, text: String, families: Value) -> Value {
    json!({ "seriesCount": series, "dropped": dropped.js(), "text": text, "families": families })
}

pub fn run(dir: &Path, case: &Case) -> Value {
    let a = &case.args;
    let limit = || a["limit"].as_u64().map(|l| l as u32);
    let target = || a["target"].as_str().expect("target").to_string();
    match case.call {
        "uwsgi.decode-head" => {
            <Component as uwsgi::Guest>::decode_head(cases::input(dir, a), limit()).js()
        }
        "uwsgi.decode-head-spans" => {
            <Component as uwsgi::Guest>::decode_head_spans(cases::input(dir, a), limit()).js()
        }
        "uwsgi.encode-head" => {
            let (m1, m2, vars) = cases::packet_vars(&cases::input(dir, a));
            <Component as uwsgi::Guest>::encode_head(m1, m2, vars).js()
        }
        "uwsgi.response-status" => {
            <Component as uwsgi::Guest>::response_status(cases::input(dir, a)).js()
        }
        "uwsgi.modifier-name" => (0..=255u8)
            .map(<Component as uwsgi::Guest>::modifier_name)
            .collect::<Vec<_>>()
            .js(),
        "stats.decode" => <Component as stats::Guest>::decode(cases::input(dir, a)).js(),
        "stats.families" => <Component as stats::Guest>::families(
            cases::input(dir, a),
            target(),
            map_options(&a["options"]),
        )
        .js(),
        "stats.prometheus-text" => <Component as stats::Guest>::prometheus_text(
            cases::input(dir, a),
            target(),
            map_options(&a["options"]),
        )
        .js(),
        "logs.parse-line" => <Component as logs::Guest>::parse_line(cases::line(dir, a)).js(),
        "red.default-options" => <Component as red::Guest>::default_options().js(),
        "red.create" => RecorderCore::new(recorder_options(&a["options"]))
            .map(|_| 0u8)
            .js(),
        "red.replay" => {
            let mut r = RecorderCore::new(recorder_options(&a["options"]))
                .expect("replay options are valid");
            let text = String::from_utf8(cases::read(dir, a["file"].as_str().expect("file")))
                .expect("UTF-8");
            for line in text.split('\n') {
                if let Some(rec) = <Component as logs::Guest>::parse_line(line.to_string()) {
                    let (m, p, s, d) =
                        cases::record_args(&rec.method, &rec.path, rec.status, rec.duration_us);
                    r.record(&m, &p, s, d);
                }
            }
            replay_summary(
                r.series_count(),
                r.dropped(),
                r.prometheus_text(),
                r.families().js(),
            )
        }
        other => panic!("unknown call {other}"),
    }
}
