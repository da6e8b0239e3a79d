//! The typed result of parsing one request-log line.

/// Which producer and format a line was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// uWSGI's default request logger line.
    Uwsgi,
    /// gunicorn's default `access_log_format`.
    Gunicorn,
    /// gunicorn's default format followed by a request-time field: `%(M)s`
    /// milliseconds as `parse_line` reads it (the name says so), or the
    /// field the caller declared (`RequestRecord::duration_field`).
    GunicornWithMillis,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Uwsgi => "uwsgi",
            LogFormat::Gunicorn => "gunicorn",
            LogFormat::GunicornWithMillis => "gunicorn_millis",
        }
    }
}

/// One request as a log line describes it. Fields a format does not carry are
/// `None`; strings borrow from the line.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord<'a> {
    pub format: LogFormat,
    pub method: &'a str,
    /// Raw request target as logged (still percent-encoded).
    pub target: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// `HTTP/1.1` etc. when logged.
    pub protocol: Option<&'a str>,
    pub status: u16,
    /// Request duration in microseconds (uWSGI msecs/micros, gunicorn
    /// `%(M)s`/`%(D)s`/`%(L)s` as declared).
    pub duration_us: Option<u64>,
    /// gunicorn: the request-time field the trailing value was read as
    /// (the caller's declaration), when the line has one.
    pub duration_field: Option<super::gunicorn::DurationField>,
    /// gunicorn: a trailing request time whose shape is not the declared
    /// field's (a decimal under `%(M)s`/`%(D)s`, an integer under
    /// `%(L)s`). Left unread rather than guessed; callers flag the record.
    pub unread_duration: Option<&'a str>,
    /// Response body bytes (uWSGI `generated`, gunicorn `%(b)s`).
    pub response_bytes: Option<u64>,
    pub remote_addr: &'a str,
    pub remote_user: Option<&'a str>,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// The date text exactly as logged.
    pub time: &'a str,
    /// Only when the line carries a UTC offset (gunicorn); uWSGI logs local
    /// time without a zone, which cannot be placed on the timeline safely.
    pub time_unix_nanos: Option<u64>,
    pub pid: Option<u32>,
    /// uWSGI: requests served by this worker so far (`req: N/...`).
    pub worker_requests: Option<u64>,
    /// uWSGI: requests served by the whole instance so far (`req: .../N`).
    pub total_requests: Option<u64>,
    /// uWSGI: core (thread/async slot) that served the request.
    pub core: Option<u32>,
    /// uWSGI: application id (`app: N`).
    pub app: Option<u32>,
    /// uWSGI: request variables count and size.
    pub vars: Option<u32>,
    pub vars_bytes: Option<u64>,
    /// uWSGI: response headers count and size.
    pub headers: Option<u32>,
    pub headers_bytes: Option<u64>,
    pub switches: Option<u64>,
    /// uWSGI `%(tmicros)` of the documented queue-time format: the
    /// request start (after `accept()`), µs since the epoch.
    pub start_us: Option<u64>,
    /// The proxy's `X-Request-Start` as logged next to `start_us`; `None`
    /// when the log says `-` (uWSGI prints that for an absent or empty
    /// header) or has no such field.
    pub request_start: Option<&'a str>,
}

impl<'a> RequestRecord<'a> {
    pub(crate) fn new(format: LogFormat, method: &'a str, target: &'a str, status: u16) -> Self {
        let (path, query) = super::split_target(target);
        RequestRecord {
            format,
            method,
            target,
            path,
            query,
            protocol: None,
            status,
            duration_us: None,
            duration_field: None,
            unread_duration: None,
            response_bytes: None,
            remote_addr: "",
            remote_user: None,
            referer: None,
            user_agent: None,
            time: "",
            time_unix_nanos: None,
            pid: None,
            worker_requests: None,
            total_requests: None,
            core: None,
            app: None,
            vars: None,
            vars_bytes: None,
            headers: None,
            headers_bytes: None,
            switches: None,
            start_us: None,
            request_start: None,
        }
    }

    pub fn duration_seconds(&self) -> Option<f64> {
        self.duration_us.map(|us| us as f64 / 1e6)
    }

    /// Queue time in µs (request start minus the proxy stamp, see
    /// [`super::time::queue_micros`]), or why there is none; `None` for a
    /// line that logs no request start (then there is nothing to report).
    pub fn queue_micros(&self) -> Option<Result<u64, super::time::QueueError>> {
        let start = self.start_us?;
        Some(super::time::queue_micros(start, self.request_start))
    }

    /// [`Self::queue_micros`] in seconds.
    pub fn queue_seconds(&self) -> Option<Result<f64, super::time::QueueError>> {
        self.queue_micros().map(|q| q.map(|us| us as f64 / 1e6))
    }

    /// `HTTP/1.1` -> `1.1`, as OpenTelemetry's `network.protocol.version`.
    pub fn protocol_version(&self) -> Option<&'a str> {
        self.protocol.and_then(|p| p.strip_prefix("HTTP/"))
    }
}
