//! gunicorn/uWSGI StatsD metrics -> OpenTelemetry HTTP semantic conventions.
//!
//! The StatsD prefix becomes the `service.name` resource attribute (the
//! plugin applies it); values in names (status code, worker, core) become
//! attributes, units become UCUM with seconds for time.

use super::names::{GunicornMetric, StatsdMetric, UwsgiMetric};

pub const HTTP_SERVER_REQUEST_DURATION: &str = "http.server.request.duration";
/// Request counts by status. Semantic conventions derive counts from the
/// duration histogram, but gunicorn times requests without their status, so
/// counts by status need their own series.
pub const HTTP_SERVER_REQUEST_COUNT: &str = "http.server.request.count";
pub const ATTR_STATUS_CODE: &str = "http.response.status_code";
pub const ATTR_ERROR_TYPE: &str = "error.type";
pub const ATTR_WORKER_ID: &str = "worker.id";
pub const ATTR_CORE_ID: &str = "uwsgi.core.id";
pub const ATTR_SOCKET_ID: &str = "uwsgi.socket.id";
pub const ATTR_WORKER_STATE: &str = "uwsgi.worker.state";
pub const ATTR_LOG_LEVEL: &str = "log.level";

#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Int(i64),
    Str(String),
}

/// How the values of a metric are to be re-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instrument {
    /// A StatsD counter of increments: the receiver's per-interval sums are
    /// deltas of a monotonic count.
    DeltaCounter,
    /// uWSGI pushes cumulative totals with `|c`; one push per receiver
    /// interval makes the "delta" the running total, so it is re-encoded as
    /// a cumulative monotonic sum.
    AbsoluteCounter,
    /// A level: whatever the receiver produced becomes a gauge.
    Gauge,
    /// A timer: exponential histogram/summary become a duration histogram.
    Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub name: String,
    pub unit: &'static str,
    pub description: &'static str,
    pub instrument: Instrument,
    /// Multiplier from the StatsD value to `unit` (ms -> s is 1e-3).
    pub scale: f64,
    /// Data-point attributes added to any the receiver set.
    pub attributes: Vec<(&'static str, AttrValue)>,
}

/// What to do with one recognised metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Rewrite(Mapping),
    /// Redundant with other rewritten series (kept only when configured).
    Redundant,
}

impl Mapping {
    fn new(name: impl Into<String>, unit: &'static str, instrument: Instrument) -> Self {
        Mapping {
            name: name.into(),
            unit,
            description: "",
            instrument,
            scale: 1.0,
            attributes: Vec::new(),
        }
    }

    fn scale(mut self, s: f64) -> Self {
        self.scale = s;
        self
    }

    fn describe(mut self, d: &'static str) -> Self {
        self.description = d;
        self
    }

    fn attr(mut self, k: &'static str, v: AttrValue) -> Self {
        self.attributes.push((k, v));
        self
    }
}

/// `error.type` for a server response: the status code as text for 5xx,
/// as the HTTP semantic conventions prescribe; 4xx are not server errors.
pub fn error_type(status: u16) -> Option<String> {
    (500..600).contains(&status).then(|| status.to_string())
}

/// The mapping of one classified metric.
pub fn map(metric: &StatsdMetric<'_>) -> Outcome {
    match metric {
        StatsdMetric::Gunicorn(m) => gunicorn(m),
        StatsdMetric::Uwsgi(m) => uwsgi(m),
    }
}

fn gunicorn(m: &GunicornMetric<'_>) -> Outcome {
    use Instrument::*;
    Outcome::Rewrite(match *m {
        GunicornMetric::Duration => Mapping::new(HTTP_SERVER_REQUEST_DURATION, "s", Duration)
            .scale(1e-3)
            .describe("Duration of HTTP server requests."),
        GunicornMetric::Status(code) => {
            let mut m = Mapping::new(HTTP_SERVER_REQUEST_COUNT, "{request}", DeltaCounter)
                .describe("HTTP server requests by response status.")
                .attr(ATTR_STATUS_CODE, AttrValue::Int(code.into()));
            if let Some(e) = error_type(code) {
                m = m.attr(ATTR_ERROR_TYPE, AttrValue::Str(e));
            }
            m
        }
        GunicornMetric::Requests => return Outcome::Redundant,
        GunicornMetric::Workers => Mapping::new("gunicorn.workers", "{worker}", Gauge)
            .describe("Number of gunicorn workers."),
        GunicornMetric::Log(level) => {
            Mapping::new("gunicorn.log.records", "{record}", DeltaCounter)
                .describe("gunicorn log records by level.")
                .attr(ATTR_LOG_LEVEL, AttrValue::Str(level.to_string()))
        }
    })
}

fn uwsgi(m: &UwsgiMetric<'_>) -> Outcome {
    use Instrument::*;
    let worker = |w: u32| AttrValue::Int(w.into());
    Outcome::Rewrite(match *m {
        // Worker 0 is uWSGI's sum over all workers: the per-worker series
        // already carry it, and summing both would double count.
        UwsgiMetric::Worker { worker: 0, .. } | UwsgiMetric::WorkerCore { worker: 0, .. } => {
            return Outcome::Redundant
        }
        UwsgiMetric::Worker { worker: w, name } => match name {
            "requests" => Mapping::new(HTTP_SERVER_REQUEST_COUNT, "{request}", AbsoluteCounter)
                .describe("HTTP server requests served by the worker."),
            "avg_response_time" => Mapping::new("uwsgi.worker.average_response_time", "s", Gauge)
                .scale(1e-6)
                .describe("uWSGI's running average of the worker's response time."),
            "rss_size" => Mapping::new("process.memory.usage", "By", Gauge),
            "vsz_size" => Mapping::new("process.memory.virtual", "By", Gauge),
            "total_tx" => Mapping::new("uwsgi.worker.transmitted", "By", AbsoluteCounter),
            "running_time" => {
                Mapping::new("uwsgi.worker.running_time", "s", AbsoluteCounter).scale(1e-6)
            }
            // delta_requests is reset by the master on its own schedule: a level.
            "delta_requests" => Mapping::new("uwsgi.worker.delta_requests", "{request}", Gauge),
            other => Mapping::new(format!("uwsgi.worker.{other}"), "1", AbsoluteCounter),
        }
        .attr(ATTR_WORKER_ID, worker(w)),
        UwsgiMetric::WorkerCore {
            worker: w,
            core,
            name,
        } => Mapping::new(
            format!("uwsgi.worker.core.{name}"),
            "{request}",
            AbsoluteCounter,
        )
        .attr(ATTR_WORKER_ID, worker(w))
        .attr(ATTR_CORE_ID, AttrValue::Int(core.into())),
        UwsgiMetric::Core { name } => match name {
            "busy_workers" | "idle_workers" => Mapping::new("uwsgi.workers", "{worker}", Gauge)
                .describe("uWSGI workers by state.")
                .attr(
                    ATTR_WORKER_STATE,
                    AttrValue::Str(name.trim_end_matches("_workers").to_string()),
                ),
            "avg_response_time" => {
                Mapping::new("uwsgi.average_response_time", "s", Gauge).scale(1e-6)
            }
            "total_rss" => Mapping::new("uwsgi.memory.usage", "By", Gauge),
            "total_vsz" => Mapping::new("uwsgi.memory.virtual", "By", Gauge),
            "total_tx" => Mapping::new("uwsgi.transmitted", "By", AbsoluteCounter),
            "total_running_time" => {
                Mapping::new("uwsgi.running_time", "s", AbsoluteCounter).scale(1e-6)
            }
            other => Mapping::new(format!("uwsgi.{other}"), "1", AbsoluteCounter),
        },
        UwsgiMetric::Socket { socket, name } => {
            Mapping::new(format!("uwsgi.socket.{name}"), "1", Gauge)
                .attr(ATTR_SOCKET_ID, AttrValue::Int(socket.into()))
        }
        // The master's own memory (no worker.id); pushed with `|c` but a level.
        UwsgiMetric::Other { name: "rss_size" } => {
            Mapping::new("process.memory.usage", "By", Gauge)
        }
        UwsgiMetric::Other { name: "vsz_size" } => {
            Mapping::new("process.memory.virtual", "By", Gauge)
        }
        UwsgiMetric::Other { name } => Mapping::new(format!("uwsgi.{name}"), "1", Gauge),
    })
}
