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
