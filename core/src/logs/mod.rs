//! Request-log line parsers (uWSGI default request log, gunicorn access log).
//!
//! Parsers borrow from the line and never allocate; a line that is not a
//! request line (banner, traceback, garbage) yields `None`, never a panic.
//!
//! Bounds: work is linear in the line (each parser makes a fixed number of
//! forward/backward scans; the gunicorn request-line search is linear too,
//! see `gunicorn::split_request`) and memory is O(1) beyond the line itself:
//! a `RequestRecord` holds only borrowed slices and numbers. Line length is
//! not limited here; the caller's log pipeline already holds the line.
//! Invalid UTF-8 cannot reach these parsers (they take `&str`): callers
//! decode lossily first, and a replacement character is just another
//! non-matching byte sequence.

pub mod gunicorn;
mod record;
pub mod time;
pub mod uwsgi;

pub use gunicorn::DurationField;
pub use record::{LogFormat, RequestRecord};
pub use time::{QueueError, QUEUE_SKEW_TOLERANCE_US};

/// Tries every known format. uWSGI first: its lines carry a fixed `[pid: `
/// marker, so it rejects foreign lines fastest.
/// A gunicorn line's trailing number is read as `%(M)s` (milliseconds):
/// use [`parse_line_with`] to declare the field the log really ends in.
pub fn parse_line(line: &str) -> Option<RequestRecord<'_>> {
    parse_line_with(line, gunicorn::DurationField::M)
}

/// [`parse_line`] with gunicorn's request-time field declared by the caller
/// (`%(M)s` and `%(D)s` print the same shape: it cannot be detected).
pub fn parse_line_with(line: &str, field: gunicorn::DurationField) -> Option<RequestRecord<'_>> {
    uwsgi::parse(line).or_else(|| gunicorn::parse_with(line, field))
}

/// The splits of `line` at the queue-time fields
/// ` tmicros=<digits> x_request_start=<rest of the line>`, first to last:
/// (the text before, the request start in µs, the raw stamp). The stamp is
/// the rest of the line (a header value may hold spaces and any text).
/// Each candidate scans only its own digit run (runs of different
/// candidates are disjoint: a candidate starts with a space), so walking
/// all of them is linear in the line.
pub(crate) fn queue_fields(line: &str) -> impl Iterator<Item = (&str, u64, &str)> + '_ {
    const MARK: &str = " tmicros=";
    const STAMP: &str = " x_request_start=";
    line.match_indices(MARK).filter_map(move |(i, _)| {
        let (head, after) = line.split_at_checked(i)?;
        let after = after.strip_prefix(MARK)?;
        let end = after
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(after.len());
        let (micros, rest) = after.split_at_checked(end)?;
        Some((head, digits::<u64>(micros)?, rest.strip_prefix(STAMP)?))
    })
}

/// A logged stamp: `-` (what uWSGI and gunicorn print for an absent
/// header) and empty are no stamp.
pub(crate) fn logged_stamp(s: &str) -> Option<&str> {
    (!s.is_empty() && s != "-").then_some(s)
}

/// `(path, query)` of a request target; the query excludes the `?`.
pub(crate) fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// A token of ASCII digits only (no sign, no blank), parsed.
pub(crate) fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A valid HTTP status code (100..=999 as three digits).
pub(crate) fn status(s: &str) -> Option<u16> {
    if s.len() != 3 {
        return None;
    }
    digits::<u16>(s).filter(|c| *c >= 100)
}

/// An HTTP method token (RFC 9110 `token`), so a prose line is not a request.
pub(crate) fn method(s: &str) -> Option<&str> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    ok.then_some(s)
}
