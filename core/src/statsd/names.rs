//! Recognising gunicorn and uWSGI StatsD metric names.
//!
//! gunicorn: `[<prefix>.]gunicorn.requests`, `.request.duration`,
//! `.request.status.<code>`, `.workers`, `.log.<level>`; the fixed
//! `gunicorn.` segment makes them recognisable without configuration.
//! uWSGI: `<prefix>.core.*`, `<prefix>.worker.N.*`, `<prefix>.worker.N.core.M.*`,
//! `<prefix>.socket.N.listen_queue`, `<prefix>.rss_size`... Those shapes are
//! generic, so uWSGI metrics are only recognised under configured prefixes.
//!
//! Only names the rewrite can turn into valid OpenTelemetry instrument names
//! are recognised: at most `MAX_NAME_BYTES`, and the segments that end up
//! in a rewritten name (`<name>`, the log level) made of `[A-Za-z0-9_-]`,
//! at most `MAX_SEGMENT_BYTES` long.
//! Anything else (Unicode, replacement characters from invalid UTF-8,
//! spaces, very long names) is not ours and is passed through untouched by
//! the caller. Classification borrows from the name and is linear in it.

/// Longest StatsD name recognised: OpenTelemetry's instrument-name limit.
pub const MAX_NAME_BYTES: usize = 255;

/// Longest segment that becomes part of a rewritten name or attribute: the
/// longest rewritten name, `uwsgi.worker.core.<segment>`, stays well within
/// the 255-byte instrument-name limit.
pub const MAX_SEGMENT_BYTES: usize = 128;

/// A name segment that may become part of an instrument name.
fn is_name_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SEGMENT_BYTES
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Which server sent a metric, with the StatsD prefix it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    Gunicorn { prefix: &'a str },
    Uwsgi { prefix: &'a str },
}

impl<'a> Source<'a> {
    pub fn prefix(&self) -> &'a str {
        match self {
            Source::Gunicorn { prefix } | Source::Uwsgi { prefix } => prefix,
        }
    }

    pub fn server(&self) -> &'static str {
        match self {
            Source::Gunicorn { .. } => "gunicorn",
            Source::Uwsgi { .. } => "uwsgi",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GunicornMetric<'a> {
    /// Every request (counter); equals the sum of the status counters.
    Requests,
    /// Request duration in milliseconds (timer).
    Duration,
    /// Requests that ended with this status (counter).
    Status(u16),
    /// Number of workers (gauge).
    Workers,
    /// Log records at a level (`warning`, `exception`, `critical`, ...).
    Log(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UwsgiMetric<'a> {
    /// `worker.N.<name>`; worker 0 is uWSGI's aggregate of all workers.
    Worker { worker: u32, name: &'a str },
    /// `worker.N.core.M.<name>`.
    WorkerCore {
        worker: u32,
        core: u32,
        name: &'a str,
    },
    /// `core.<name>`: instance-wide values (`busy_workers`, `avg_response_time`, ...).
    Core { name: &'a str },
    /// `socket.N.<name>`.
    Socket { socket: u32, name: &'a str },
    /// Anything else under the prefix (`rss_size`, `vsz_size`, future names).
    Other { name: &'a str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsdMetric<'a> {
    Gunicorn(GunicornMetric<'a>),
    Uwsgi(UwsgiMetric<'a>),
}

/// Classifies a metric name. `uwsgi_prefixes` are the `--stats-push` prefixes
/// to claim (matched as a whole dotted prefix).
pub fn classify<'a, S: AsRef<str>>(
    name: &'a str,
    uwsgi_prefixes: &[S],
) -> Option<(Source<'a>, StatsdMetric<'a>)> {
    if name.len() > MAX_NAME_BYTES {
        return None;
    }
    if let Some(found) = gunicorn(name) {
        return Some(found);
    }
    for p in uwsgi_prefixes {
        let p = p.as_ref();
        if p.is_empty() {
            continue;
        }
        // `prefix` borrows from `name` (not from the configuration).
        let Some((prefix, rest)) = name.split_at_checked(p.len()) else {
            continue;
        };
        let rest = (prefix == p).then(|| rest.strip_prefix('.')).flatten();
        if let Some(m) = rest.and_then(uwsgi) {
            return Some((Source::Uwsgi { prefix }, StatsdMetric::Uwsgi(m)));
        }
    }
    None
}

fn gunicorn(name: &str) -> Option<(Source<'_>, StatsdMetric<'_>)> {
    let (prefix, rest) = match name.strip_prefix("gunicorn.") {
        Some(rest) => ("", rest),
        None => name.split_once(".gunicorn.")?,
    };
    let metric = match rest {
        "requests" => GunicornMetric::Requests,
        "request.duration" => GunicornMetric::Duration,
        "workers" => GunicornMetric::Workers,
        _ => {
            if let Some(code) = rest.strip_prefix("request.status.") {
                GunicornMetric::Status(crate::logs::status(code)?)
            } else {
                let level = rest.strip_prefix("log.")?;
                if !is_name_segment(level) {
                    return None;
                }
                GunicornMetric::Log(level)
            }
        }
    };
    Some((Source::Gunicorn { prefix }, StatsdMetric::Gunicorn(metric)))
}

fn uwsgi(rest: &str) -> Option<UwsgiMetric<'_>> {
    let id = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())?
    };
    let nonempty = is_name_segment;
    if let Some(r) = rest.strip_prefix("worker.") {
        let (w, r) = r.split_once('.')?;
        let worker = id(w)?;
        if let Some(r) = r.strip_prefix("core.") {
            let (c, name) = r.split_once('.')?;
            return nonempty(name).then_some(UwsgiMetric::WorkerCore {
                worker,
                core: id(c)?,
                name,
            });
        }
        return nonempty(r).then_some(UwsgiMetric::Worker { worker, name: r });
    }
    if let Some(name) = rest.strip_prefix("core.") {
        return nonempty(name).then_some(UwsgiMetric::Core { name });
    }
    if let Some(r) = rest.strip_prefix("socket.") {
        let (s, name) = r.split_once('.')?;
        return nonempty(name).then_some(UwsgiMetric::Socket {
            socket: id(s)?,
            name,
        });
    }
    nonempty(rest).then_some(UwsgiMetric::Other { name: rest })
}
