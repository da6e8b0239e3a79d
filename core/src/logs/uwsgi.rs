//! uWSGI's default request-log line (`logformat` unset):
//!
//! `[pid: 23927|app: 0|req: 3/4] 127.0.0.1 (alice) {24 vars in 260 bytes}
//!  [Sun Nov 22 04:01:24 2026] GET /notfound => generated 10 bytes in 0 msecs
//!  (HTTP/1.1 404) 1 headers in 52 bytes (1 switches on core 0)`
//!
//! `--log-micros` logs `in N micros` instead of `msecs`. A logger prefix
//! before `[pid: ` (e.g. a custom date) is skipped.
//!
//! The documented queue-time format (`log-format`, README of the Collector
//! example) is the same line with `app: -|req: -/-`, `in N micros`, `(-)`
//! for no user, and two fields appended:
//! ` tmicros=<request start, µs since the epoch> x_request_start=<stamp or ->`.
//! The stamp is the rest of the line (a header value may hold spaces and
//! any text, ` => generated ` included), so the fields are found by the
//! *first* `) tmicros=<digits> x_request_start=`: everything before it is
//! uWSGI's own text, in which a request target holds no space.
//! uWSGI prints `-` for an absent or empty header: no stamp.

use super::{digits, method, status, LogFormat, RequestRecord};

pub fn parse(line: &str) -> Option<RequestRecord<'_>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (line, queue) = split_queue_fields(line);
    let (_prefix, rest) = line.split_once("[pid: ")?;

    // [pid: P|app: A|req: W/T]
    let (head, rest) = rest.split_once("] ")?;
    let mut parts = head.split('|');
    let pid = digits::<u32>(parts.next()?)?;
    let app = dash_or(parts.next()?.strip_prefix("app: ")?)?;
    let (w, t) = parts.next()?.strip_prefix("req: ")?.split_once('/')?;
    let (worker_requests, total_requests) = (dash_or(w)?, dash_or(t)?);
    if parts.next().is_some() {
        return None;
    }

    // ADDR (USER) {V vars in B bytes} [DATE]
    let (remote_addr, rest) = rest.split_once(" (")?;
    let (user, rest) = rest.split_once(") {")?;
    let (vars, rest) = rest.split_once(" vars in ")?;
    let (vars_bytes, rest) = rest.split_once(" bytes} [")?;
    let (time, rest) = rest.split_once("] ")?;

    // METHOD URI => generated N bytes in D msecs (PROTO STATUS) H headers in HB bytes (S switches on core C)
    let (request, tail) = rest.rsplit_once(" => generated ")?;
    let (meth, target) = request.split_once(' ')?;
    let (bytes, tail) = tail.split_once(" bytes in ")?;
    let (dur, tail) = tail.split_once(' ')?;
    let (unit, tail) = tail.split_once(" (")?;
    let dur: u64 = digits(dur)?;
    let duration_us = match unit {
        "msecs" => dur.checked_mul(1000)?,
        "micros" => dur,
        _ => return None,
    };
    let (proto_status, tail) = tail.split_once(") ")?;
    let (protocol, code) = proto_status.rsplit_once(' ')?;
    let (headers, tail) = tail.split_once(" headers in ")?;
    let (headers_bytes, tail) = tail.split_once(" bytes (")?;
    let (switches, tail) = tail.split_once(" switches on core ")?;
    let core = tail.strip_suffix(')')?;

    let mut r = RequestRecord::new(LogFormat::Uwsgi, method(meth)?, target, status(code)?);
    r.protocol = Some(protocol).filter(|p| !p.is_empty());
    r.duration_us = Some(duration_us);
    r.response_bytes = Some(digits(bytes)?);
    r.remote_addr = remote_addr;
    r.remote_user = Some(user).filter(|u| !u.is_empty() && *u != "-");
    r.time = time;
    r.pid = Some(pid);
    r.app = app;
    r.worker_requests = worker_requests;
    r.total_requests = total_requests;
    r.vars = Some(digits(vars)?);
    r.vars_bytes = Some(digits(vars_bytes)?);
    r.headers = Some(digits(headers)?);
    r.headers_bytes = Some(digits(headers_bytes)?);
    r.switches = Some(digits(switches)?);
    r.core = Some(digits(core)?);
    if let Some((start_us, stamp)) = queue {
        r.start_us = Some(start_us);
        r.request_start = super::logged_stamp(stamp);
    }
    Some(r)
}

/// The line without the queue-time fields, and their values (request start
/// in µs, raw stamp), at the first ` tmicros=` that follows uWSGI's `)`.
fn split_queue_fields(line: &str) -> (&str, Option<(u64, &str)>) {
    match super::queue_fields(line).find(|(head, _, _)| head.ends_with(')')) {
        Some((head, start, stamp)) => (head, Some((start, stamp))),
        None => (line, None),
    }
}

/// uWSGI prints `-` (or -1) where it has no app or request number yet.
/// Outer `None`: malformed; inner `None`: absent.
#[allow(clippy::option_option)]
fn dash_or<T: std::str::FromStr>(s: &str) -> Option<Option<T>> {
    match s {
        "-" | "-1" => Some(None),
        _ => digits(s).map(Some),
    }
}
