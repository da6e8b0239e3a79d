//! Hostile StatsD names: millions of distinct names, invalid UTF-8, very
//! long and Unicode names. Classification must stay bounded (names, segment
//! and output sizes), the name budget must cap what is rewritten and count
//! the rest exactly, and nothing may panic.
// Not shipped (tests, benches, native tools): the workspace's panic-free
// lints (Cargo.toml [workspace.lints.clippy]) do not apply here.
#![allow(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use proptest::prelude::*;
use uwsgi_red_core::statsd::budget::{Admission, NameBudget, DEFAULT_MAX_NAMES};
use uwsgi_red_core::statsd::names::{MAX_NAME_BYTES, MAX_SEGMENT_BYTES};
use uwsgi_red_core::statsd::{classify, map, Outcome};

const PREFIXES: [&str; 2] = ["myapp", "other"];

/// What OpenTelemetry accepts as an instrument name.
fn is_instrument_name(n: &str) -> bool {
    let mut b = n.bytes();
    n.len() <= 255
        && b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || b"_./-".contains(&c))
}

#[test]
fn a_million_distinct_names_stay_within_the_budget() {
    use std::fmt::Write;
    let mut budget = NameBudget::default();
    let (mut rewritten, mut overflow) = (0u64, 0u64);
    let mut name = String::new();
    for i in 0..1_000_000u32 {
        // Half uWSGI custom metrics, half gunicorn services: all recognised.
        name.clear();
        if i % 2 == 0 {
            write!(name, "myapp.worker.{}.custom_{i}", i % 7 + 1).unwrap();
        } else {
            write!(name, "svc{i}.gunicorn.request.status.200").unwrap();
        }
        let (_, m) = classify(&name, &PREFIXES).unwrap_or_else(|| panic!("{name}"));
        if i < 2 * DEFAULT_MAX_NAMES as u32 {
            let Outcome::Rewrite(mp) = map(&m) else {
                panic!("{name}")
            };
            assert!(is_instrument_name(&mp.name), "{}", mp.name);
        }
        match budget.admit(&name) {
            Admission::Admitted => rewritten += 1,
            Admission::Overflow => overflow += 1,
            Admission::TooLong => panic!("{name}"),
        }
    }
    assert_eq!(budget.len(), DEFAULT_MAX_NAMES);
    assert_eq!(rewritten, DEFAULT_MAX_NAMES as u64);
    assert_eq!(overflow, 1_000_000 - DEFAULT_MAX_NAMES as u64);
    assert_eq!(budget.overflow_total(), overflow);
    assert!(budget.name_bytes() <= DEFAULT_MAX_NAMES * MAX_NAME_BYTES);
    // Known names keep being rewritten after the cap is reached.
    assert_eq!(budget.admit("myapp.worker.1.custom_0"), Admission::Admitted);
    assert_eq!(budget.overflow_total(), overflow);
}

#[test]
fn invalid_utf8_and_unicode_in_names() {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    // In a segment that would become part of an instrument name: not ours.
    for bad in [
        lossy(b"myapp.worker.1.req\xffuests"),
        lossy(b"myapp.core.\xc3"),
        lossy(b"app.gunicorn.log.warn\xe2\x82"),
        "myapp.worker.1.réquests".to_string(),
        "myapp.😀".to_string(),
        "app.gunicorn.log.warn ing".to_string(),
        "app.gunicorn.request.status.2０0".to_string(),
    ] {
        assert_eq!(classify(&bad, &PREFIXES), None, "{bad}");
    }
    // In the gunicorn prefix (which becomes `service.name`): kept as sent.
    let name = lossy(b"caf\xe9.gunicorn.requests");
    let (src, _) = classify(&name, &PREFIXES).unwrap();
    assert_eq!(src.prefix(), "caf\u{fffd}");
}

#[test]
fn long_names_are_refused_at_the_limit() {
    let seg = "s".repeat(MAX_SEGMENT_BYTES);
    let ok = format!("myapp.worker.1.{seg}");
    let (_, m) = classify(&ok, &PREFIXES).unwrap();
    let Outcome::Rewrite(mp) = map(&m) else {
        panic!()
    };
    assert_eq!(mp.name, format!("uwsgi.worker.{seg}"));
    let too_long_segment = format!("myapp.worker.1.{seg}s");
    assert_eq!(classify(&too_long_segment, &PREFIXES), None);
    let pre = "p".repeat(MAX_NAME_BYTES - ".gunicorn.requests".len());
    assert!(classify(&format!("{pre}.gunicorn.requests"), &PREFIXES).is_some());
    assert!(classify(&format!("{pre}p.gunicorn.requests"), &PREFIXES).is_none());
    assert!(classify(&"a.".repeat(1 << 20), &PREFIXES).is_none());
    let mut b = NameBudget::new(5);
    assert_eq!(b.admit(&"n".repeat(MAX_NAME_BYTES + 1)), Admission::TooLong);
    assert_eq!((b.len(), b.overflow_total()), (0, 0));
}

/// A StatsD name as a hostile or merely exotic sender could push it: known
/// shapes with Unicode anywhere.
fn shaped_name() -> impl Strategy<Value = String> {
    let seg = "\\PC{0,12}";
    prop_oneof![
        "\\PC{0,300}",
        (seg, seg).prop_map(|(p, l)| format!("{p}.gunicorn.log.{l}")),
        (seg, seg).prop_map(|(p, c)| format!("{p}.gunicorn.request.status.{c}")),
        (seg, seg).prop_map(|(w, n)| format!("myapp.worker.{w}.{n}")),
        (seg, seg, seg).prop_map(|(w, c, n)| format!("myapp.worker.{w}.core.{c}.{n}")),
        (seg, seg).prop_map(|(s, n)| format!("myapp.socket.{s}.{n}")),
        seg.prop_map(|n| format!("myapp.{n}")),
        seg.prop_map(|n| format!("myapp.core.{n}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Whatever the name: no panic; anything recognised is bounded, its
    /// prefix is the name's own, and its rewrite is a valid instrument name.
    #[test]
    fn unicode_names_are_bounded_or_refused(name in shaped_name()) {
        if let Some((src, m)) = classify(&name, &PREFIXES) {
            prop_assert!(name.len() <= MAX_NAME_BYTES);
            prop_assert!(name.starts_with(src.prefix()));
            if let Outcome::Rewrite(mp) = map(&m) {
                prop_assert!(is_instrument_name(&mp.name), "{} -> {}", name, mp.name);
                for (_, v) in &mp.attributes {
                    if let uwsgi_red_core::statsd::AttrValue::Str(s) = v {
                        prop_assert!(s.len() <= MAX_SEGMENT_BYTES && s.is_ascii());
                    }
                }
            }
        }
    }

}

proptest! {
    /// The budget never holds more than its cap, and counts every refusal
    /// (a small alphabet, so names repeat).
    #[test]
    fn budget_counts_exactly(names in prop::collection::vec("[a-dé😀]{0,3}", 0..200), cap in 1usize..20) {
        let mut b = NameBudget::new(cap);
        let mut distinct = std::collections::HashSet::new();
        let mut refused = 0u64;
        for n in &names {
            let new = !distinct.contains(n.as_str());
            match b.admit(n) {
                Admission::Admitted => { if new { distinct.insert(n.clone()); } }
                Admission::Overflow => { prop_assert!(new); refused += 1; }
                Admission::TooLong => prop_assert!(false),
            }
        }
        prop_assert_eq!(b.len(), distinct.len());
        prop_assert!(b.len() <= cap);
        prop_assert_eq!(b.overflow_total(), refused);
    }
}
