//! `uwsgi-red logs`: each line of a request log with the attributes the
//! Collector processor attaches to it, as one JSON object per line. The
//! processor's own annotation code does the work (no second mapping).

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use otel_processor::logs::{
    annotate_record, ATTR_DURATION_ERROR, ATTR_FORMAT, ATTR_PARSED, ATTR_QUEUE_DURATION,
    ATTR_QUEUE_ERROR,
};
use otel_processor::OtelProcessorConfig;
use serde_json::{Map, Value};
use uwsgi_red_core::red::RouteNormalizer;

/// Which producer's lines to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Whatever the processor recognises.
    Auto,
    Uwsgi,
    /// gunicorn's default access log, with or without a request-time field.
    Gunicorn,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Format::Auto,
            "uwsgi" => Format::Uwsgi,
            "gunicorn" => Format::Gunicorn,
            _ => return None,
        })
    }

    fn accepts(self, detected: &str) -> bool {
        match self {
            Format::Auto => true,
            Format::Uwsgi => detected == "uwsgi",
            Format::Gunicorn => detected.starts_with("gunicorn"),
        }
    }
}

pub fn json_value(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Value::from(s.as_str()),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::from(*d),
        Some(any_value::Value::BoolValue(b)) => Value::from(*b),
        // The processor sets none of these; shown rather than dropped.
        Some(other) => Value::from(format!("{other:?}")),
        None => Value::Null,
    }
}

/// The annotated JSON object of one line, and whether it was recognised.
pub fn annotate_line(
    cfg: &OtelProcessorConfig,
    routes: &RouteNormalizer,
    line: &str,
    format: Format,
) -> (Value, bool) {
    let mut rec = LogRecord {
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(line.to_string())),
        }),
        ..Default::default()
    };
    annotate_record(cfg, routes, &mut rec);
    let mut obj = Map::new();
    for kv in &rec.attributes {
        obj.insert(
            kv.key.clone(),
            kv.value.as_ref().map_or(Value::Null, json_value),
        );
    }
    let detected = obj.get(ATTR_FORMAT).and_then(Value::as_str).unwrap_or("");
    let parsed = obj.get(ATTR_PARSED) == Some(&Value::Bool(true)) && format.accepts(detected);
    if !parsed {
        let mut not = Map::new();
        not.insert(ATTR_PARSED.to_string(), Value::Bool(false));
        return (Value::Object(not), false);
    }
    if rec.time_unix_nano != 0 {
        obj.insert("time_unix_nano".into(), Value::from(rec.time_unix_nano));
    }
    (Value::Object(obj), true)
}

/// What `annotate` found besides the JSON lines.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Lines recognised (of the requested format).
    pub parsed: usize,
    /// gunicorn lines whose trailing request time was read as the
    /// configured `gunicorn_duration_field`.
    pub gunicorn_times: usize,
    /// gunicorn lines whose trailing request time has another field's
    /// shape and was left unread.
    pub unread_times: usize,
    /// The first of those: its line number (1-based) and the reason.
    pub first_unread: Option<(usize, String)>,
    /// Lines with `uwsgi_red.queue.duration`.
    pub queue_times: usize,
    /// Their sum, in seconds.
    pub queue_seconds: f64,
    /// Lines with `uwsgi_red.queue.error`, per value (`missing`,
    /// `unparsable`, `skewed`), in that order.
    pub queue_errors: [usize; 3],
}

impl Summary {
    /// The stderr note on queue times, when any line logs a request start.
    pub fn queue_note(&self) -> Option<String> {
        let [missing, unparsable, skewed] = self.queue_errors;
        let without = missing.saturating_add(unparsable).saturating_add(skewed);
        (self.queue_times > 0 || without > 0).then(|| {
            let mean = match self.queue_times {
                0 => String::new(),
                n => format!(" (mean {:.6} s)", self.queue_seconds / n as f64),
            };
            format!(
                "queue time on {} line(s){mean}; none on {without} (stamp missing {missing}, \
unparsable {unparsable}, skewed {skewed})",
                self.queue_times
            )
        })
    }
}

/// One JSON line per non-empty input line, and what was found, under the
/// processor configuration `cfg` (route templates, gunicorn's duration
/// field).
pub fn annotate(cfg: &OtelProcessorConfig, text: &str, format: Format) -> (String, Summary) {
    let routes = cfg.routes();
    let mut out = String::new();
    let mut sum = Summary::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (v, ok) = annotate_line(cfg, &routes, line, format);
        if ok {
            sum.parsed += 1;
            if let Some(q) = v.get(ATTR_QUEUE_DURATION).and_then(Value::as_f64) {
                sum.queue_times += 1;
                sum.queue_seconds += q;
            }
            let slot = match v.get(ATTR_QUEUE_ERROR).and_then(Value::as_str) {
                Some("missing") => sum.queue_errors.get_mut(0),
                Some("unparsable") => sum.queue_errors.get_mut(1),
                Some("skewed") => sum.queue_errors.get_mut(2),
                _ => None,
            };
            if let Some(n) = slot {
                *n += 1;
            }
            let gunicorn_timed = v
                .get(ATTR_FORMAT)
                .and_then(Value::as_str)
                .is_some_and(|f| f.starts_with("gunicorn_"));
            match v.get(ATTR_DURATION_ERROR).and_then(Value::as_str) {
                Some(e) => {
                    sum.unread_times += 1;
                    sum.first_unread.get_or_insert((n + 1, e.to_string()));
                }
                None if gunicorn_timed => sum.gunicorn_times += 1,
                None => {}
            }
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    (out, sum)
}
