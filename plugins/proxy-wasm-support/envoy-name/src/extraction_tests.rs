//! The shipped `stats_tags` rules, applied the way Envoy applies them, to
//! names built from random and hostile label values: every tag is exactly
//! the label the plugin meant, the tag-extracted name is the metric name,
//! and distinct label sets stay distinct.

use crate::emulate::{produce_tags, shipped_rules, Rule, WASM_NAMESPACE};
use crate::{encode, escape_value, unescape_value};
use proptest::prelude::*;
use uwsgi_red_core::red::labels::LABEL_NAMES as RED_LABELS;
use uwsgi_red_core::red::names;
use uwsgi_red_core::stats::families::LABEL_NAMES;

/// The RED keys in the order the plugins encode them, then `reason`.
fn red_keys() -> Vec<&'static str> {
    let mut k = RED_LABELS.to_vec();
    k.push("reason");
    k
}

/// Every key any plugin encodes, as the demo and Istio bootstraps ship
/// them together (the strictest case: the most rules on every name).
fn all_keys() -> Vec<&'static str> {
    let mut k = red_keys();
    for s in LABEL_NAMES {
        if !k.contains(s) {
            k.push(s);
        }
    }
    k
}

const METRICS: &[&str] = &[
    names::REQUESTS_TOTAL,
    names::ERRORS_TOTAL,
    names::DURATION_MICROSECONDS,
    names::TTFB_MICROSECONDS,
    names::INTERNAL_ERRORS_TOTAL,
    "uwsgi_red_decode_errors_total",
    "uwsgi_worker_requests_total",
];

/// Compiled once: every case runs against the same rules.
static RULES: std::sync::LazyLock<Vec<Rule>> =
    std::sync::LazyLock::new(|| shipped_rules(&all_keys()).unwrap());

fn esc(v: &[u8]) -> String {
    let mut s = String::new();
    escape_value(v, &mut s);
    s
}

/// Encodes, lets Envoy extract, and checks the three promises.
fn check(rules: &[Rule], metric: &str, labels: &[(&str, Vec<u8>)]) {
    let name = encode(metric, labels);
    let full = format!("{WASM_NAMESPACE}{name}");
    let got = produce_tags(rules, &full).unwrap();
    let mut tags = got.tags.clone();
    tags.sort();
    let mut want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), esc(v)))
        .collect();
    want.sort();
    assert_eq!(tags, want, "tags of {full:?}");
    assert_eq!(
        got.name,
        format!("{WASM_NAMESPACE}{metric}"),
        "name of {full:?}"
    );
    for ((_, v), (_, t)) in labels.iter().zip(
        labels
            .iter()
            .map(|(k, _)| got.tags.iter().find(|(n, _)| n == k).unwrap()),
    ) {
        assert_eq!(&unescape_value(t).unwrap(), v, "value round trip");
    }
}

/// Pieces an attacker would combine: every delimiter and its parts, the
/// key names themselves, escapes, line terminators, invalid UTF-8.
fn hostile_piece() -> impl Strategy<Value = Vec<u8>> {
    let mut fixed: Vec<Vec<u8>> = [
        "=.=",
        ";.;",
        ";",
        "=",
        ".",
        ".;",
        "=.",
        ";.",
        "\\",
        "\\x3B",
        "\\x3D",
        "\\x5C",
        "\n",
        "\r",
        "\r\n",
        "\0",
        "\x7f",
        "\u{85}",
        "\u{2028}",
        "\u{2029}",
        "%3B",
        "%3D",
        "wasmcustom.",
        "/",
        "\"",
        "{",
        "}",
        ",",
        " ",
        "é",
        "😀",
        "(.*?)",
        "_",
        "x",
        "3B",
        "route=.=",
        "service=.=",
        "protocol=.=",
        "reason=.=",
        "code=.=5xx;.;",
        "=.=billing-prod;.;",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fixed.extend([
        vec![0xff],
        vec![0xc3],
        vec![0xe2, 0x80],
        vec![0xed, 0xa0, 0x80],
    ]);
    for k in all_keys() {
        fixed.push(format!("{k}=.=").into_bytes());
        fixed.push(format!(";.;{k}=.=forged;.;").into_bytes());
    }
    prop_oneof![
        3 => proptest::sample::select(fixed),
        1 => proptest::collection::vec(any::<u8>(), 0..8),
    ]
}

fn hostile_value() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(hostile_piece(), 0..12).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn red_series_extract_exactly(
        values in proptest::collection::vec(hostile_value(), 6),
        metric in proptest::sample::select(METRICS),
    ) {
        let keys = red_keys();
        let labels: Vec<(&str, Vec<u8>)> = keys.iter().copied().zip(values).collect();
        check(&RULES, metric, &labels);
    }

    #[test]
    fn any_bytes_extract_exactly(
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..5),
    ) {
        let keys = all_keys();
        let labels: Vec<(&str, Vec<u8>)> = keys.iter().copied().zip(values).collect();
        check(&RULES, names::REQUESTS_TOTAL, &labels);
    }

    /// Small alphabet, so equal escapes of different values would show.
    #[test]
    fn distinct_label_sets_stay_distinct(
        a in proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(b";_=\\x3BD.\xff".to_vec()), 0..6), 2),
        b in proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(b";_=\\x3BD.\xff".to_vec()), 0..6), 2),
    ) {
        let la = [("route", a[0].clone()), ("service", a[1].clone())];
        let lb = [("route", b[0].clone()), ("service", b[1].clone())];
        prop_assert_eq!(a == b, encode("m", &la) == encode("m", &lb));
        prop_assert_eq!(unescape_value(&esc(&a[0])).unwrap(), a[0].clone());
    }
}

#[test]
fn the_reported_attacks_extract_exactly() {
    for route in [
        "/aservice=.=billing-prod",
        "/aprotocol=.=grpc",
        "/areason=.=forged",
        "/u;service=.=x",
        "/v/%3Bservice=.=y",
        "/semi;x",
        "/x;.;service=.=a;.;uwsgi_red_requests_total",
        "/line\nbreak\rcr",
    ] {
        let labels: Vec<(&str, Vec<u8>)> = vec![
            ("method", b"GET".to_vec()),
            ("code", b"503".to_vec()),
            ("code_class", b"5xx".to_vec()),
            ("route", route.as_bytes().to_vec()),
            ("service", b"uwsgi_app".to_vec()),
            ("protocol", b"http".to_vec()),
        ];
        check(&RULES, names::ERRORS_TOTAL, &labels);
        check(&RULES, names::REQUESTS_TOTAL, &labels);
    }
    assert_ne!(
        encode("m", &[("route", "/semi;x")]),
        encode("m", &[("route", "/semi_x")])
    );
}

#[test]
fn a_long_value_extracts_exactly() {
    let route: Vec<u8> = b"/;=\\\xff".iter().copied().cycle().take(4096).collect();
    check(
        &RULES,
        names::REQUESTS_TOTAL,
        &[("route", route), ("service", b"s".to_vec())],
    );
}

/// The shipped rules stay on their own label only while no key is a suffix
/// of another one in the same bootstrap (`code=` must not match in
/// `xcode=`); every key is a plain label name.
#[test]
fn keys_are_label_names_and_suffix_free() {
    let keys = all_keys();
    for k in &keys {
        assert!(
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{k}"
        );
        for other in &keys {
            assert!(
                k == other || !other.ends_with(k),
                "{k} is a suffix of {other}"
            );
        }
    }
}
