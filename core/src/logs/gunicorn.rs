//! gunicorn's default access log line,
//! `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`,
//! optionally followed by ` %(M)s` (request time in whole milliseconds):
//!
//! `127.0.0.1 - alice [22/Nov/2026:04:12:33 +0000] "GET /private HTTP/1.1" 200 26 "-" "curl/7.88.1"`

use super::time::parse_clf;
use super::{digits, method, status, LogFormat, RequestRecord};

pub fn parse(line: &str) -> Option<RequestRecord<'_>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (remote_addr, rest) = line.split_once(' ')?;
    let (_ident, rest) = rest.split_once(' ')?;
    let (user, rest) = rest.split_once(" [")?;
    let (time, rest) = rest.split_once("] \"")?;
    if remote_addr.is_empty() || user.contains(' ') {
        return None;
    }

    // The request line may itself hold quotes: it ends at the first `" ` that
    // is followed by a status code and a size.
    let (request, code, size, tail) = split_request(rest)?;

    // Tail: `"referer" "agent"` or `"referer" "agent" MILLIS`.
    // A duration whose microseconds do not fit in u64 is not a duration:
    // the line is not this format (found by fuzzing: with the value kept as
    // "absent", the format said "with millis" while no duration existed).
    let (quoted, micros) = match tail.strip_suffix('"') {
        Some(_) => (tail, None),
        None => {
            let (q, m) = tail.rsplit_once(' ')?;
            (q, Some(digits::<u64>(m)?.checked_mul(1000)?))
        }
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

    let format = if micros.is_some() {
        LogFormat::GunicornWithMillis
    } else {
        LogFormat::Gunicorn
    };
    let mut r = RequestRecord::new(format, method(meth)?, target, code);
    r.protocol = protocol;
    r.duration_us = micros;
    r.response_bytes = size;
    r.remote_addr = remote_addr;
    r.remote_user = dash_none(user);
    r.referer = dash_none(referer);
    r.user_agent = dash_none(agent);
    r.time = time;
    r.time_unix_nanos = parse_clf(time);
    Some(r)
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
