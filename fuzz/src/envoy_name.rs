//! Envoy stat names carrying labels (`uwsgi_red_envoy_name`): the shipped
//! `stats_tags` rules, applied as Envoy applies them (every rule over the
//! whole `wasmcustom.` name, leftmost match, ranges removed at the end; RE2
//! and ECMAScript readings of `.` must agree), to label values built from
//! the input.
//!
//! Input: the first byte picks the metric name and rotates which keys get
//! values; the rest is split at `0x1E` into label values (any other bytes:
//! delimiters, key names, escapes, controls, invalid UTF-8). Properties:
//! - every tag is exactly the escaped value of its label, and unescapes to
//!   the input bytes (so the name alone gives back the label set: the
//!   encoding is injective);
//! - the tag-extracted name is `wasmcustom.` + the metric name;
//! - the encoded name is valid UTF-8 with no line terminator, and at most
//!   4 × the value bytes + the fixed parts.

use std::sync::OnceLock;

use uwsgi_red_core::red::labels::LABEL_NAMES as RED_LABELS;
use uwsgi_red_core::stats::families::LABEL_NAMES;
use uwsgi_red_envoy_name::emulate::{produce_tags, shipped_rules, Rule, WASM_NAMESPACE};
use uwsgi_red_envoy_name::{encode, unescape_value, KEY_END, VALUE_END};

const METRICS: [&str; 6] = [
    "uwsgi_red_requests_total",
    "uwsgi_red_errors_total",
    "uwsgi_red_request_duration_microseconds",
    "uwsgi_red_time_to_first_byte_microseconds",
    "uwsgi_red_internal_errors_total",
    "uwsgi_worker_requests_total",
];

/// Every key the plugins encode, as the demo and Istio bootstraps ship
/// them together.
fn keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut k: Vec<&'static str> = RED_LABELS.to_vec();
        k.push("reason");
        for n in LABEL_NAMES {
            if !k.contains(n) {
                k.push(n);
            }
        }
        k
    })
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| shipped_rules(keys()).expect("shipped rules compile"))
}

pub fn check(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let metric = METRICS[usize::from(first) % METRICS.len()];
    let keys = keys();
    let skip = usize::from(first / 8) % keys.len();
    let labels: Vec<(&str, &[u8])> = keys
        .iter()
        .cycle()
        .skip(skip)
        .copied()
        .zip(rest.split(|b| *b == 0x1e))
        .take(keys.len())
        .collect();

    let name = encode(metric, &labels);
    assert!(!name.contains(['\n', '\r']), "line terminator in {name:?}");
    let fixed: usize = labels
        .iter()
        .map(|(k, _)| k.len() + KEY_END.len() + VALUE_END.len())
        .sum();
    let value_bytes: usize = labels.iter().map(|(_, v)| v.len()).sum();
    assert!(name.len() <= metric.len() + fixed + 4 * value_bytes);

    let full = format!("{WASM_NAMESPACE}{name}");
    let got = produce_tags(rules(), &full).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.name, format!("{WASM_NAMESPACE}{metric}"), "in {full:?}");
    assert_eq!(
        got.tags.len(),
        labels.len(),
        "tags of {full:?}: {:?}",
        got.tags
    );
    for (k, v) in &labels {
        let tag = got
            .tags
            .iter()
            .find(|(n, _)| n == k)
            .unwrap_or_else(|| panic!("no {k} tag in {full:?}"));
        assert_eq!(
            unescape_value(&tag.1).as_deref(),
            Some(*v),
            "{k} in {full:?}"
        );
    }
}
