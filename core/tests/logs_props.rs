//! Fuzz surrogate: the log parsers never panic and only accept what they can
//! account for.
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
use uwsgi_red_core::logs::parse_line;

const UWSGI: &str = "[pid: 23927|app: 0|req: 3/4] 127.0.0.1 () {24 vars in 260 bytes} [Sun Nov 22 04:01:24 2026] GET /notfound => generated 10 bytes in 0 msecs (HTTP/1.1 404) 1 headers in 52 bytes (1 switches on core 0)";
const GUNICORN: &str = "127.0.0.1 - alice [22/Nov/2026:04:12:33 +0000] \"GET /private HTTP/1.1\" 200 26 \"-\" \"curl/7.88.1\" 12";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
        let _ = parse_line(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_line(&String::from_utf8_lossy(&b));
    }

    /// Real lines with one span replaced by noise: no panic, and anything
    /// accepted still has a plausible status and a method token.
    #[test]
    fn mutated_real_lines(which in 0usize..2, at in 0usize..250, len in 0usize..20, noise in "\\PC{0,20}") {
        let base = if which == 0 { UWSGI } else { GUNICORN };
        let mut cut = at.min(base.len());
        while !base.is_char_boundary(cut) { cut -= 1; }
        let mut end = (cut + len).min(base.len());
        while !base.is_char_boundary(end) { end -= 1; }
        let line = format!("{}{}{}", &base[..cut], noise, &base[end..]);
        if let Some(r) = parse_line(&line) {
            prop_assert!((100..=999).contains(&r.status));
            prop_assert!(!r.method.is_empty() && !r.method.contains(' '));
            prop_assert!(line.contains(r.target));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any trailing token under any declared field: no panic; a request
    /// time is either read (and then it converts back to the token's value)
    /// or kept unread, never both.
    #[test]
    fn declared_duration_fields(field in 0usize..3, token in "[0-9.]{0,24}|\\PC{0,12}") {
        use uwsgi_red_core::logs::gunicorn::{parse_with, DurationField};
        let field = [DurationField::M, DurationField::D, DurationField::L][field];
        let base = GUNICORN.trim_end_matches(" 12");
        let line = format!("{base} {token}");
        // The token may hold spaces and quotes: the request time is what
        // follows the line's last space.
        let last = line.rsplit_once(' ').map_or("", |(_, t)| t);
        if let Some(r) = parse_with(&line, field) {
            prop_assert!(r.duration_us.is_none() || r.unread_duration.is_none());
            if let Some(us) = r.duration_us {
                prop_assert_eq!(Some(us), field.micros(last));
            }
            if let Some(t) = r.unread_duration {
                prop_assert_eq!(t, last);
                prop_assert_eq!(field.micros(t), None);
            }
        }
    }
}

const UWSGI_QUEUE: &str = "[pid: 4329|app: -|req: -/-] 127.0.0.1 (-) {26 vars in 297 bytes} [Mon Dec  7 14:13:41 2026] GET /b?x=1 => generated 3 bytes in 86 micros (HTTP/1.1 200) 1 headers in 45 bytes (1 switches on core 0)";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any stamp text after the queue fields: the line still parses with
    /// every uWSGI field intact, the stamp is exactly the logged text, and
    /// a queue time is reported only when the stamp reads as a time not
    /// later than the start beyond the tolerance.
    #[test]
    fn queue_fields_any_stamp(start in any::<u64>(), stamp in "\\PC{0,40}|t=[0-9]{9,21}(\\.[0-9]{0,8})?") {
        use uwsgi_red_core::logs::{time, QueueError, QUEUE_SKEW_TOLERANCE_US};
        let line = format!("{UWSGI_QUEUE} tmicros={start} x_request_start={stamp}");
        let r = parse_line(&line).expect("parsed");
        prop_assert_eq!((r.path, r.status, r.duration_us, r.core), ("/b", 200, Some(86), Some(0)));
        prop_assert_eq!(r.start_us, Some(start));
        let logged = Some(stamp.as_str()).filter(|s| !s.is_empty() && *s != "-");
        prop_assert_eq!(r.request_start, logged);
        let q = r.queue_micros().expect("start logged");
        match (logged, logged.and_then(time::parse_request_start)) {
            (None, _) => prop_assert_eq!(q, Err(QueueError::Missing)),
            (Some(_), None) => prop_assert_eq!(q, Err(QueueError::Unparsable)),
            (Some(_), Some(s)) if s <= start => prop_assert_eq!(q, Ok(start - s)),
            (Some(_), Some(s)) if s - start <= QUEUE_SKEW_TOLERANCE_US => prop_assert_eq!(q, Ok(0)),
            (Some(_), Some(_)) => prop_assert_eq!(q, Err(QueueError::Skewed)),
        }
    }

    /// A stamp printed from µs in each unit the agents accept reads back
    /// to those µs (truncated to the unit's resolution).
    #[test]
    fn stamp_units_round_trip(us in 1_000_000_000_000_000u64..99_999_999_999_999_999) {
        use uwsgi_red_core::logs::time::parse_request_start;
        let (s, frac) = (us / 1_000_000, us % 1_000_000);
        prop_assert_eq!(parse_request_start(&format!("t={us}")), Some(us));
        prop_assert_eq!(parse_request_start(&format!("{s}.{frac:06}")), Some(us));
        prop_assert_eq!(parse_request_start(&format!("t={s}.{:03}", frac / 1000)), Some(us - us % 1000));
        prop_assert_eq!(parse_request_start(&format!("{}", us / 1000)), Some(us - us % 1000));
        let ns = u128::from(us) * 1000 + 999;
        prop_assert_eq!(parse_request_start(&format!("t={ns}")), (ns <= u128::from(u64::MAX)).then_some(us));
    }
}
