//! Request-log parsers against hostile lines: Unicode and invalid UTF-8 in
//! every field, multibyte time zones, megabyte lines, and shapes built to
//! make a naive search quadratic. Property tests generate Unicode, not
//! only ASCII: a parser that slices by byte offsets fails here.
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
use uwsgi_red_core::logs::time::parse_clf;
use uwsgi_red_core::logs::{parse_line, LogFormat};

fn gunicorn_line(
    addr: &str,
    user: &str,
    time: &str,
    target: &str,
    code: u16,
    referer: &str,
    agent: &str,
) -> String {
    format!(
        "{addr} - {user} [{time}] \"GET {target} HTTP/1.1\" {code} 12 \"{referer}\" \"{agent}\""
    )
}

fn uwsgi_line(user: &str, date: &str, uri: &str, code: u16) -> String {
    format!(
        "[pid: 7|app: 0|req: 1/2] 10.0.0.1 ({user}) {{24 vars in 260 bytes}} [{date}] \
         POST {uri} => generated 10 bytes in 3 msecs (HTTP/1.1 {code}) 1 headers in 52 bytes \
         (1 switches on core 0)"
    )
}

#[test]
fn multibyte_zones_in_gunicorn_lines() {
    for zone in ["+0é0", "+0€", "-😀", "+😀", "é", "+0000€"] {
        let time = format!("22/Nov/2026:04:12:33 {zone}");
        let line = gunicorn_line("1.2.3.4", "-", &time, "/", 200, "-", "-");
        let r = parse_line(&line).expect("the line is still a request line");
        assert_eq!((r.time, r.time_unix_nanos), (time.as_str(), None));
    }
}

#[test]
fn invalid_utf8_in_fields_after_lossy_decoding() {
    let raw = [
        &b"1.2.3.4 - us\xffer [22/Nov/2026:04:12:33 +0000] \"GET /caf\xe9?q=\xc3 HTTP/1.1\" 404 0 \"-\" \"agent\xf0\x9f\""[..],
    ]
    .concat();
    let line = String::from_utf8_lossy(&raw);
    let r = parse_line(&line).unwrap();
    assert_eq!(r.status, 404);
    assert_eq!((r.path, r.query), ("/caf\u{fffd}", Some("q=\u{fffd}")));
    assert_eq!(r.remote_user, Some("us\u{fffd}er"));
    assert_eq!(r.time_unix_nanos, Some(1_795_320_753_000_000_000));
    let raw = uwsgi_line("a\u{fffd}", "Sun Nov 22 04:01:24 2026", "/x\u{fffd}", 503);
    let r = parse_line(&raw).unwrap();
    assert_eq!(
        (r.format, r.path, r.status),
        (LogFormat::Uwsgi, "/x\u{fffd}", 503)
    );
}

/// Found by the `gunicorn_log` fuzz target (10 M run): a trailing `%(M)s`
/// whose microseconds overflow u64 gave "format with millis" and no duration.
#[test]
fn duration_field_beyond_u64_microseconds_is_not_a_duration() {
    let base = gunicorn_line("h", "-", "22/Nov/2026:04:12:33 +0000", "/", 200, "-", "-");
    let largest = format!("{base} 18446744073709551");
    let ok = parse_line(&largest).unwrap();
    assert_eq!(ok.duration_us, Some(18_446_744_073_709_551_000));
    assert_eq!(parse_line(&format!("{base} 18446744073709552")), None);
    assert_eq!(parse_line(&format!("{base} 99999999999999999999")), None);
}

#[test]
fn megabyte_lines() {
    let big = "é".repeat(1 << 19); // 1 MiB of two-byte characters
    let target = format!("/{big}");
    let line = gunicorn_line(
        "h",
        "-",
        "22/Nov/2026:04:12:33 +0000",
        &target,
        200,
        &big,
        &big,
    );
    let r = parse_line(&line).unwrap();
    assert_eq!((r.target.len(), r.status), (target.len(), 200));
    let line = uwsgi_line("", "Sun Nov 22 04:01:24 2026", &target, 201);
    let r = parse_line(&line).unwrap();
    assert_eq!(r.path.len(), target.len());
    assert_eq!(parse_line(&big), None);
    assert_eq!(parse_line(&"[pid: ".repeat(1 << 17)), None);
}

#[test]
fn request_line_search_is_linear() {
    // 200 000 `" 200 x` candidates, each a near-miss (size `x` is not a
    // number): a search restarted from the line start per candidate would
    // take ~10^11 steps; the linear one finishes at once.
    let noise = "\" 200 x".repeat(200_000);
    let line = format!("h - - [22/Nov/2026:04:12:33 +0000] \"GET /{noise}\" 200 5 \"-\" \"-\"");
    let r = parse_line(&line).unwrap();
    assert_eq!((r.status, r.response_bytes), (200, Some(5)));
    assert!(r.target.ends_with(" 200 x"));
}

/// A field without the separators that delimit it, but with any other
/// Unicode (control characters included).
fn field(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\\s\"\\[\\]()?]{{1,{max}}}")).unwrap()
}

/// `+HHMM`/`-HHMM` with minutes below 60: what may be placed on the timeline.
fn well_formed_zone(zone: &str) -> bool {
    let b = zone.as_bytes();
    b.len() == 5
        && (b[0] == b'+' || b[0] == b'-')
        && b[1..].iter().all(u8::is_ascii_digit)
        && b[3] <= b'5'
}

/// `22/Nov/2026:04:12:33` plus a zone that is valid or arbitrary Unicode
/// (without the `]` that ends the bracketed time).
fn clf_time() -> impl Strategy<Value = (String, bool)> {
    let valid_zone = (prop::sample::select(vec!['+', '-']), 0u32..24, 0u32..60)
        .prop_map(|(s, h, m)| format!("{s}{h:02}{m:02}"));
    let any_zone = "[^\\]]{0,6}";
    (1u32..29, prop_oneof![valid_zone, any_zone]).prop_map(|(d, z)| {
        let ok = well_formed_zone(&z);
        (format!("{d:02}/Nov/2026:04:12:33 {z}"), ok)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Unicode in every gunicorn field: the line parses back to exactly
    /// those fields, and the time is placed on the timeline iff its zone
    /// is valid.
    #[test]
    fn gunicorn_fields_round_trip(
        addr in field(20), user in field(12), (time, zone_ok) in clf_time(),
        path in field(40), query in proptest::option::of("\\PC{0,20}"),
        code in 100u16..1000, referer in "[^\"]{0,20}", agent in "[^\"]{0,20}",
    ) {
        let target = match &query { Some(q) => format!("/{path}?{q}"), None => format!("/{path}") };
        prop_assume!(!target.contains(' ') && !target.contains('"'));
        let line = gunicorn_line(&addr, &user, &time, &target, code, &referer, &agent);
        let r = parse_line(&line).unwrap();
        prop_assert_eq!(r.format, LogFormat::Gunicorn);
        prop_assert_eq!((r.remote_addr, r.target, r.status), (addr.as_str(), target.as_str(), code));
        prop_assert_eq!(r.remote_user, Some(user.as_str()).filter(|u| *u != "-"));
        prop_assert_eq!(r.time, time.as_str());
        prop_assert_eq!(r.time_unix_nanos.is_some(), zone_ok);
        prop_assert_eq!(r.query, query.as_deref());
        prop_assert_eq!(r.referer, Some(referer.as_str()).filter(|s| !s.is_empty() && *s != "-"));
    }

    #[test]
    fn uwsgi_fields_round_trip(user in "[^\\s()]{0,12}", uri in field(60), code in 100u16..1000) {
        let uri = format!("/{uri}");
        let line = uwsgi_line(&user, "Sun Nov 22 04:01:24 2026", &uri, code);
        let r = parse_line(&line).unwrap();
        prop_assert_eq!((r.format, r.target, r.status), (LogFormat::Uwsgi, uri.as_str(), code));
        // `-` is uWSGI's log-format spelling of "no user", as `()` is the default line's.
        prop_assert_eq!(r.remote_user, Some(user.as_str()).filter(|u| !u.is_empty() && *u != "-"));
        prop_assert_eq!(r.duration_us, Some(3000));
    }

    /// Any Unicode where a zone goes: never a panic, and a time only for
    /// a well-formed zone.
    #[test]
    fn any_zone_text(zone in "\\PC{0,8}") {
        let t = parse_clf(&format!("22/Nov/2026:04:12:33 {zone}"));
        let well_formed = well_formed_zone(&zone);
        prop_assert_eq!(t.is_some(), well_formed);
    }

    /// Unicode noise spliced anywhere into real lines (cut on character
    /// boundaries of the noise, byte positions of the base): no panic, and
    /// whatever is accepted is a substring of the line.
    #[test]
    fn unicode_noise_anywhere(which in 0usize..2, at in 0usize..220, noise in "\\PC{0,24}") {
        let base = if which == 0 {
            uwsgi_line("é", "Sun Nov 22 04:01:24 2026", "/ü/1", 200)
        } else {
            gunicorn_line("::1", "ß", "22/Nov/2026:04:12:33 +0000", "/ø?x=😀", 302, "-", "ağent")
        };
        let mut cut = at.min(base.len());
        while !base.is_char_boundary(cut) { cut -= 1; }
        let line = format!("{}{}{}", &base[..cut], noise, &base[cut..]);
        if let Some(r) = parse_line(&line) {
            prop_assert!((100..=999).contains(&r.status));
            prop_assert!(line.contains(r.target) && line.contains(r.time));
        }
    }
}
