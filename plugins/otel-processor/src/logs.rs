//! Request-log bodies (filelog receiver, one line per record) to structured
//! attributes named after OpenTelemetry semantic conventions.

use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData};
use uwsgi_red_core::logs::{parse_line_with, LogFormat, RequestRecord};
use uwsgi_red_core::red::code_class;
use uwsgi_red_core::red::names::OVERFLOW_ROUTE;
use uwsgi_red_core::red::LocalKv;
use uwsgi_red_core::red::RouteNormalizer;
use uwsgi_red_core::red::{namespace, Admission, Admitter, Decision};
use uwsgi_red_core::red::{normalize_method, OTHER_METHOD};
use uwsgi_red_core::statsd::error_type;

use crate::otlp::{bool_value, double_value, get_str, int_value, set_attr, str_value};
use crate::OtelProcessorConfig;

/// Marks every record this processor looked at: `true` when parsed.
pub const ATTR_PARSED: &str = "uwsgi_red.log.parsed";
pub const ATTR_FORMAT: &str = "uwsgi_red.log.format";

/// Set on a record whose trailing gunicorn request time does not have the
/// shape of the configured `gunicorn_duration_field` (a decimal where
/// `%(D)s` was declared, say): the record is parsed, its duration is not
/// read (never guessed), and this says why, naming the field and the value.
pub const ATTR_DURATION_ERROR: &str = "uwsgi_red.log.duration_error";

/// Queue time in seconds (double): the app's request start (uWSGI
/// `tmicros`) minus the proxy's `X-Request-Start`, clamped at 0 within
/// core's `QUEUE_SKEW_TOLERANCE_US`. Only on lines that log a request start.
pub const ATTR_QUEUE_DURATION: &str = "uwsgi_red.queue.duration";
/// Instead of the duration, why there is none: `missing` | `unparsable` |
/// `skewed` (core's `QueueError`). Counted, never guessed.
pub const ATTR_QUEUE_ERROR: &str = "uwsgi_red.queue.error";

/// `true` on a record whose label set was refused by the series cap: its
/// method, route and status code attributes are the overflow series'.
pub const ATTR_OVERFLOW: &str = "uwsgi_red.series.overflow";
/// The `http.route` of the overflow series (red-filter's `route` label).
pub const OVERFLOW_ROUTE_VALUE: &str = OVERFLOW_ROUTE;

/// The attributes of a parsed record that the example's `signal_to_metrics`
/// turns into series labels (with the resource's `service.name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub method: &'static str,
    pub route: String,
    pub status: u16,
}

/// Which request-log label sets get a series of their own, for the
/// processor's lifetime: the core's admission policy (the one red-filter
/// and uwsgi-tcp use) over an in-process store, sized by the config's
/// `max_series` on first use. A refused set is rewritten into the overflow
/// series of its status class, so the record is still counted.
#[derive(Debug, Default)]
pub struct LogSeries {
    state: Option<(Admitter, LocalKv)>,
    folded: u64,
}

impl LogSeries {
    fn admitter(&mut self, cap: usize) -> &mut (Admitter, LocalKv) {
        self.state.get_or_insert_with(|| {
            let mut kv = LocalKv::new();
            let policy = Admission::new(&namespace("otel_processor", "logs", &cap), cap);
            // An in-process store cannot fail; if it did, every set would
            // be undecided and so counted in overflow.
            let _ = policy.ensure_created(&mut kv);
            (Admitter::new(policy), kv)
        })
    }

    /// Records folded into an overflow series so far.
    pub fn folded(&self) -> u64 {
        self.folded
    }

    /// Keeps the record's label set, or rewrites it to the overflow series.
    pub fn fold(&mut self, cap: usize, service: &str, key: &SeriesKey, rec: &mut LogRecord) {
        let (admitter, kv) = self.admitter(cap);
        let item = (service, key.method, key.route.as_str(), key.status);
        match admitter.decide(kv, &item) {
            Decision::Admitted => {}
            Decision::Refused | Decision::Undecided(_) => {
                self.folded = self.folded.saturating_add(1);
                overflow(rec, key.status);
            }
        }
    }
}

/// The overflow series keeps only the status class (red-filter's model):
/// errors stay countable, the number of series stays fixed.
fn overflow(rec: &mut LogRecord, status: u16) {
    let a = &mut rec.attributes;
    let class = code_class(status);
    set_attr(a, ATTR_OVERFLOW, bool_value(true));
    set_attr(a, "http.request.method", str_value(OTHER_METHOD));
    set_attr(a, "http.route", str_value(OVERFLOW_ROUTE_VALUE));
    set_attr(a, "http.response.status_code", str_value(class));
    if a.iter().any(|kv| kv.key == "error.type") {
        // The codes are mixed; semconv's fallback value for error.type.
        set_attr(a, "error.type", str_value("_OTHER"));
    }
}

pub fn annotate(cfg: &OtelProcessorConfig, series: &mut LogSeries, data: &mut LogsData) {
    let routes = cfg.routes();
    for rl in &mut data.resource_logs {
        let service = rl
            .resource
            .as_ref()
            .and_then(|r| get_str(&r.attributes, "service.name"))
            .unwrap_or("");
        for sl in &mut rl.scope_logs {
            for rec in &mut sl.log_records {
                if let Some(key) = annotate_record(cfg, &routes, rec) {
                    series.fold(cfg.max_series, service, &key, rec);
                }
            }
        }
    }
}

/// Parses one record's body into attributes; for a request line, returns
/// the label set its series would have (not yet admitted: see [`LogSeries`]).
pub fn annotate_record(
    cfg: &OtelProcessorConfig,
    routes: &RouteNormalizer,
    rec: &mut LogRecord,
) -> Option<SeriesKey> {
    let line = match rec.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        _ => String::new(),
    };
    match parse_line_with(&line, cfg.gunicorn_duration_field) {
        Some(r) => {
            let format = format_name(&r);
            let key = SeriesKey {
                method: normalize_method(r.method),
                route: routes.route(None, r.path),
                status: r.status,
            };
            apply(rec, &r, format, &key);
            if let Some(e) = duration_error(&r) {
                set_attr(&mut rec.attributes, ATTR_DURATION_ERROR, str_value(e));
            }
            Some(key)
        }
        None => {
            set_attr(&mut rec.attributes, ATTR_PARSED, bool_value(false));
            None
        }
    }
}

/// `uwsgi_red.log.format`: gunicorn lines with a request time are named
/// after the field they were read as.
fn format_name(r: &RequestRecord<'_>) -> &'static str {
    match (r.format, r.duration_field) {
        (LogFormat::GunicornWithMillis, Some(field)) => field.format_name(),
        (f, _) => f.as_str(),
    }
}

/// Why a record's trailing request time was left unread, if it was.
pub fn duration_error(r: &RequestRecord<'_>) -> Option<String> {
    let (value, field) = (r.unread_duration?, r.duration_field?);
    // The value comes from the log: quoted, and cut so the attribute stays short.
    let shown: String = value.escape_debug().take(32).collect();
    Some(format!(
        "request time \"{shown}\" is not a gunicorn {} value: gunicorn_duration_field is {:?}",
        field.describe(),
        field.letter()
    ))
}

fn apply(rec: &mut LogRecord, r: &RequestRecord<'_>, format: &str, key: &SeriesKey) {
    let a = &mut rec.attributes;
    set_attr(a, ATTR_PARSED, bool_value(true));
    set_attr(a, ATTR_FORMAT, str_value(format));
    // OTel HTTP semconv: a method outside the known set is `_OTHER`, the
    // one the client sent goes to `http.request.method_original` (a record
    // attribute only, never a series label in the example).
    set_attr(a, "http.request.method", str_value(key.method));
    if key.method != r.method {
        set_attr(a, "http.request.method_original", str_value(r.method));
    }
    set_attr(a, "http.route", str_value(key.route.as_str()));
    set_attr(a, "url.path", str_value(r.path));
    if let Some(q) = r.query {
        set_attr(a, "url.query", str_value(q));
    }
    set_attr(a, "http.response.status_code", int_value(r.status.into()));
    if let Some(e) = error_type(r.status) {
        set_attr(a, "error.type", str_value(e));
    }
    if let Some(v) = r.protocol_version() {
        set_attr(a, "network.protocol.version", str_value(v));
    }
    if let Some(s) = r.duration_seconds() {
        set_attr(a, "http.server.request.duration", double_value(s));
    }
    match r.queue_seconds() {
        Some(Ok(s)) => set_attr(a, ATTR_QUEUE_DURATION, double_value(s)),
        Some(Err(e)) => set_attr(a, ATTR_QUEUE_ERROR, str_value(e.as_str())),
        None => {}
    }
    if let Some(b) = r.response_bytes {
        set_attr(a, "http.response.body.size", int_value(b as i64));
    }
    if !r.remote_addr.is_empty() {
        set_attr(a, "client.address", str_value(r.remote_addr));
    }
    if let Some(u) = r.remote_user {
        set_attr(a, "enduser.id", str_value(u));
    }
    if let Some(ua) = r.user_agent {
        set_attr(a, "user_agent.original", str_value(ua));
    }
    if let Some(re) = r.referer {
        set_attr(a, "http.request.header.referer", str_value(re));
    }
    if let Some(pid) = r.pid {
        set_attr(a, "process.pid", int_value(pid.into()));
    }
    if let Some(c) = r.core {
        set_attr(a, "uwsgi.core.id", int_value(c.into()));
    }
    if let Some(n) = r.worker_requests {
        set_attr(a, "uwsgi.worker.requests", int_value(n as i64));
    }
    if r.format == LogFormat::Uwsgi {
        if let Some(v) = r.vars {
            set_attr(a, "uwsgi.request.vars", int_value(v.into()));
        }
    }
    if rec.time_unix_nano == 0 {
        if let Some(t) = r.time_unix_nanos {
            rec.time_unix_nano = t;
        }
    }
}
