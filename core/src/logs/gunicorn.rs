//! gunicorn's default access log line,
//! `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`,
//! optionally followed by one request-time field:
//!
//! `127.0.0.1 - alice [22/Nov/2026:04:12:33 +0000] "GET /private HTTP/1.1" 200 26 "-" "curl/7.88.1" 1503`
//!
//! `%(M)s` (whole milliseconds) and `%(D)s` (microseconds) print the same
//! shape, a bare integer, so no parser can tell them apart: the caller
//! declares which one its `access_log_format` ends in ([`DurationField`]).
//! A trailing field whose shape cannot be the declared one (a decimal under
//! `M`/`D`, an integer under `L`) is never read as a duration: the record
//! keeps it in `unread_duration` for the caller to flag.
//!
//! Queue time: gunicorn has no atom for the request start below a second
//! (`%(t)s` is the *log* time, whole seconds), so the documented
//! `gunicorn.conf.py` of the Collector example stamps the start itself, in
//! a `pre_request` hook, as a request header, and its `access_log_format`
//! ends like uWSGI's documented format:
//! `... %(D)s tmicros=%({x-uwsgi-red-tmicros}i)s x_request_start=%({x-request-start}i)s`.

use super::time::parse_clf;
use super::{digits, method, status, LogFormat, RequestRecord};

/// gunicorn's request-time atoms a log line may end in (configuration
/// value: the atom's letter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
pub enum DurationField {
    /// `%(M)s`: whole milliseconds (an integer).
    M,
    /// `%(D)s`: microseconds (an integer); the recommended format.
    D,
    /// `%(L)s`: decimal seconds with six decimals (`0.000321`).
    L,
}

impl DurationField {
    pub fn from_letter(s: &str) -> Option<Self> {
        Some(match s {
            "M" => DurationField::M,
            "D" => DurationField::D,
            "L" => DurationField::L,
            _ => return None,
        })
    }

    pub fn letter(self) -> &'static str {
        match self {
            DurationField::M => "M",
            DurationField::D => "D",
            DurationField::L => "L",
        }
    }

    /// The shape this field prints, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            DurationField::M => "%(M)s, whole milliseconds (an integer)",
            DurationField::D => "%(D)s, microseconds (an integer)",
            DurationField::L => "%(L)s, decimal seconds (such as 0.000321)",
        }
    }

    /// The `uwsgi_red.log.format` name of a line ending in this field.
    pub fn format_name(self) -> &'static str {
        match self {
            DurationField::M => "gunicorn_millis",
            DurationField::D => "gunicorn_micros",
            DurationField::L => "gunicorn_seconds",
        }
    }

    /// Microseconds of `token` read as this field; `None` when the token
    /// does not have this field's shape or does not fit in u64 µs.
    pub fn micros(self, token: &str) -> Option<u64> {
        match self {
            DurationField::M => digits::<u64>(token)?.checked_mul(1000),
            DurationField::D => digits::<u64>(token),
            DurationField::L => {
                let (secs, frac) = token.split_once('.')?;
                // gunicorn prints `%d.%06d`; fewer digits are still exact.
                if frac.is_empty() || frac.len() > 6 {
                    return None;
                }
                let scale =
                    10u64.checked_pow(6u32.checked_sub(u32::try_from(frac.len()).ok()?)?)?;
                let frac = digits::<u64>(frac)?.checked_mul(scale)?;
                digits::<u64>(secs)?
                    .checked_mul(1_000_000)?
                    .checked_add(frac)
            }
        }
    }
}

/// The line as `%(M)s` declares it (what [`super::parse_line`] and the
/// component's `parse-line` promise).
pub fn parse(line: &str) -> Option<RequestRecord<'_>> {
    parse_with(line, DurationField::M)
}

/// The line, with a trailing request-time field read as `field` declares,
/// and the queue-time fields when the line ends in them.
///
/// Both ends of such a line hold client text (the user agent before the
/// fields, the stamp after them), so only splits whose text before ends
/// like the format (`"` and the request time) are candidates, the first
/// and the last of them are tried, and the whole line is parsed without
/// the fields when neither leaves a gunicorn line: at most three parses,
/// linear work. A client that shapes both its user agent and its stamp
/// like the fields can get its own line unparsed (at worst), never
/// another line's.
pub fn parse_with(line: &str, field: DurationField) -> Option<RequestRecord<'_>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut splits = super::queue_fields(line).filter(|(head, _, _)| ends_like_format(head));
    let first = splits.next();
    let last = splits.last();
    for (head, start, stamp) in first.into_iter().chain(last) {
        if let Some(mut r) = parse_plain(head, field) {
            r.start_us = Some(start);
            r.request_start = super::logged_stamp(stamp);
            return Some(r);
        }
    }
    parse_plain(line, field)
}

/// Whether `head` ends in `"` (the user agent) or `" <number>` (the agent
/// and a request time), as a gunicorn line before the queue fields does.
fn ends_like_format(head: &str) -> bool {
    let trimmed = head.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if trimmed.len() == head.len() {
        head.ends_with('"')
    } else {
        trimmed.ends_with("\" ")
    }
}

fn parse_plain(line: &str, field: DurationField) -> Option<RequestRecord<'_>> {
    let (remote_addr, rest) = line.split_once(' ')?;
    let (_ident, rest) = rest.split_once(' ')?;
    let (user, rest) = rest.split_once(" [")?;
    let (time, rest) = rest.split_once("] \"")?;
    if remote_addr.is_empty() || user.contains(' ') {
        return None;
    }

    // The request line may itself hold quotes: it ends at the first `" `
    // that is followed by a status code and a size.
    let (request, code, size, tail) = split_request(rest)?;

    // Tail: `"referer" "agent"` or `"referer" "agent" TIME`.
    let (quoted, trailing) = match tail.strip_suffix('"') {
        Some(_) => (tail, None),
        None => {
            let (q, t) = tail.rsplit_once(' ')?;
            (q, Some(t))
        }
    };
    // A trailing token that is no request time of any kind means the line
    // is not this format. One of another field's shape is a request time
    // the declaration does not describe: the line is parsed, the duration
    // left unread. A value that overflows u64 µs is not a duration (found
    // by fuzzing: with it kept as "absent", the format said "with a
    // duration" while none existed).
    let (micros, unread) = match trailing {
        None => (None, None),
        Some(t) => match field.micros(t) {
            Some(us) => (Some(us), None),
            None if is_number_shape(t) && !fits_declared_shape(field, t) => (None, Some(t)),
            None => return None,
        },
    };
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let (referer, agent) = inner.split_once("\" \"")?;

    let (meth, after) = request.split_once(' ')?;
    let (target, protocol) = match after.rsplit_once(' ') {
        Some((t, p)) if p.starts_with("HTTP/") => (t, Some(p)),
        _ => (after, None),
    };
    if target.is_empty() {
        return None;
    }

    let format = if trailing.is_some() {
        LogFormat::GunicornWithMillis
    } else {
        LogFormat::Gunicorn
    };
    let mut r = RequestRecord::new(format, method(meth)?, target, code);
    r.protocol = protocol;
    r.duration_us = micros;
    r.duration_field = trailing.map(|_| field);
    r.unread_duration = unread;
    r.response_bytes = size;
    r.remote_addr = remote_addr;
    r.remote_user = dash_none(user);
    r.referer = dash_none(referer);
    r.user_agent = dash_none(agent);
    r.time = time;
    r.time_unix_nanos = parse_clf(time);
    Some(r)
}

/// An integer or a decimal with one point: what gunicorn's time atoms print.
fn is_number_shape(t: &str) -> bool {
    let mut parts = t.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && parts.next().is_none_or(all_digits)
}

/// Whether `t` has the declared field's shape (an integer for `M`/`D`, a
/// decimal for `L`): such a token that still does not convert overflows.
fn fits_declared_shape(field: DurationField, t: &str) -> bool {
    match field {
        DurationField::M | DurationField::D => !t.contains('.'),
        DurationField::L => t.contains('.'),
    }
}

/// Splits `REQUEST" STATUS SIZE TAIL` into its parts. Each `" ` candidate
/// costs the scan up to the second space after it, so the whole search is
/// linear in the line.
fn split_request(s: &str) -> Option<(&str, u16, Option<u64>, &str)> {
    for (i, _) in s.match_indices("\" ") {
        let (request, after) = s.split_at_checked(i)?;
        let after = after.strip_prefix("\" ")?;
        if let Some((code, rest)) = after.split_once(' ') {
            if let (Some(code), Some((size, tail))) = (status(code), rest.split_once(' ')) {
                let size = if size == "-" {
                    Some(None)
                } else {
                    digits(size).map(Some)
                };
                if let Some(size) = size {
                    return Some((request, code, size, tail));
                }
            }
        }
    }
    None
}

fn dash_none(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        r#"127.0.0.1 - - [22/Nov/2026:04:12:36 +0000] "GET /x HTTP/1.1" 200 19 "-" "curl/7.88.1""#;

    #[test]
    fn each_declared_field_reads_its_own_shape() {
        let at = |t: &str, f| {
            let line = format!("{BASE} {t}");
            parse_with(&line, f).map(|r| (r.duration_us, r.unread_duration.map(str::to_string)))
        };
        assert_eq!(at("321", DurationField::D), Some((Some(321), None)));
        assert_eq!(at("321", DurationField::M), Some((Some(321_000), None)));
        assert_eq!(at("0.000321", DurationField::L), Some((Some(321), None)));
        assert_eq!(at("1.5", DurationField::L), Some((Some(1_500_000), None)));
        // Another field's shape: parsed, the duration left unread.
        assert_eq!(
            at("0.000321", DurationField::D),
            Some((None, Some("0.000321".into())))
        );
        assert_eq!(
            at("0.000321", DurationField::M),
            Some((None, Some("0.000321".into())))
        );
        assert_eq!(
            at("321", DurationField::L),
            Some((None, Some("321".into())))
        );
        // Not a request time at all, or an overflow: not this format.
        for t in ["12x", "-1", "1.", ".5", "1.2.3", "1e3", ""] {
            assert_eq!(at(t, DurationField::D), None, "{t}");
            assert_eq!(at(t, DurationField::L), None, "{t}");
        }
        assert_eq!(at("18446744073709552", DurationField::M), None);
        assert_eq!(at("18446744073709551616", DurationField::D), None);
        assert_eq!(at("0.0000001", DurationField::L), None);
        assert_eq!(at("18446744073709.551616", DurationField::L), None);
        assert_eq!(
            at("18446744073709551615", DurationField::D),
            Some((Some(u64::MAX), None))
        );
        let r = parse_with(BASE, DurationField::D).unwrap();
        assert_eq!(
            (r.format, r.duration_field, r.duration_us),
            (LogFormat::Gunicorn, None, None)
        );
    }
}
