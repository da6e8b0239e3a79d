//! The core decoders as a WebAssembly component (`wit/uwsgi-red.wit`).
//!
//! A thin adapter: each WIT function calls one core function and copies its
//! result into the generated WIT types. No protocol logic lives here; the
//! one addition is [`red_families`], which turns a `RedAggregate` into
//! metric families because core exposes it only as Prometheus text.

// Runs inside the user's browser page / component host: no input may reach
// a panic (see core/src/stats/mod.rs); tests may index and unwrap.
#![deny(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

mod head_spans;
pub mod red_families;

use std::cell::RefCell;

use uwsgi_red_core::logs::{self, LogFormat, RequestRecord as CoreRecord};
use uwsgi_red_core::prom::text::MetricType as CoreMetricType;
use uwsgi_red_core::red::aggregate::{Observation, RedAggregate};
use uwsgi_red_core::red::{RedConfig, RedSettings, RequestFacts};
use uwsgi_red_core::stats::{self, families as core_families, model, StatsError as CoreStatsError};
use uwsgi_red_core::uwsgi::modifier::{self, Payload};
use uwsgi_red_core::uwsgi::packet::EncodeError as CoreEncodeError;
use uwsgi_red_core::uwsgi::response::StatusSource as CoreSource;
use uwsgi_red_core::uwsgi::{
    encode_head, DecodeError as CoreDecodeError, HeadDecoder, Progress,
    ResponseError as CoreResponseError, StatusParser, DEFAULT_HEAD_LIMIT,
};

/// Generated ABI glue: lifting and lowering are `unsafe` by nature, so the
/// workspace's `unsafe_code = deny` is lifted for this module only.
#[allow(unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "uwsgi-red",
    });

    // Natively the crate is a library of the same code (the wasmtime test
    // crate uses it for expected results); the C-ABI export symbols, whose
    // names hold `:` and `@`, only make sense in the component.
    #[cfg(target_arch = "wasm32")]
    use super::Component;
    #[cfg(target_arch = "wasm32")]
    export!(Component with_types_in self);
}

use bindings::exports::uwsgi_red::core::{
    logs as wlogs, metrics as wm, red as wred, stats as wstats, uwsgi as wu,
};

/// The implementation of every exported interface. Public so a native host
/// (the wasmtime test crate) can call the same code without Wasm to get the
/// expected results; the `red.recorder` resource needs a component runtime,
/// so natively use [`RecorderCore`].
#[derive(Debug)]
pub struct Component;

/// WIT lengths are u32; a component's memory is 32-bit, so a core `usize`
/// always fits.
pub(crate) fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn u64_of(n: usize) -> u64 {
    n as u64
}

// ---------------------------------------------------------------- metrics

fn metric_type(t: CoreMetricType) -> wm::MetricType {
    match t {
        CoreMetricType::Counter => wm::MetricType::Counter,
        CoreMetricType::Gauge => wm::MetricType::Gauge,
        CoreMetricType::Histogram => wm::MetricType::Histogram,
        CoreMetricType::Untyped => wm::MetricType::Untyped,
    }
}

fn stats_family(f: &core_families::Family) -> wm::MetricFamily {
    wm::MetricFamily {
        name: f.name.to_string(),
        help: f.help.to_string(),
        kind: metric_type(f.kind),
        integer_form: f.integer_form.map(|i| wm::IntegerForm {
            name: i.name.to_string(),
            factor: i.factor,
        }),
        points: wm::Points::Scalars(
            f.samples
                .iter()
                .map(|s| wm::Sample {
                    labels: s
                        .labels
                        .iter()
                        .map(|(k, v)| ((*k).to_string(), v.clone()))
                        .collect(),
                    value: s.value,
                })
                .collect(),
        ),
    }
}

// ------------------------------------------------------------------ uwsgi

fn octets(b: &[u8]) -> wu::Octets {
    match std::str::from_utf8(b) {
        Ok(s) => wu::Octets::Text(s.to_string()),
        Err(_) => wu::Octets::Bytes(b.to_vec()),
    }
}

pub(crate) fn decode_error(e: CoreDecodeError) -> wu::DecodeError {
    match e {
        CoreDecodeError::Truncated { got, needed } => wu::DecodeError::Truncated(wu::Truncation {
            got: u32_of(got),
            needed: u32_of(needed),
        }),
        CoreDecodeError::VarOverrun { offset } => wu::DecodeError::VarOverrun(u32_of(offset)),
        CoreDecodeError::DatasizeTooLarge { datasize, limit } => {
            wu::DecodeError::DatasizeTooLarge(wu::Oversize {
                datasize,
                limit: u32_of(limit),
            })
        }
        CoreDecodeError::UnknownModifier { modifier1 } => {
            wu::DecodeError::UnknownModifier(modifier1)
        }
    }
}

pub(crate) fn payload_kind(k: Payload) -> wu::PayloadKind {
    match k {
        Payload::Request => wu::PayloadKind::Request,
        Payload::Vars => wu::PayloadKind::Vars,
        Payload::Opaque => wu::PayloadKind::Opaque,
    }
}

fn response_error(e: CoreResponseError) -> wu::ResponseError {
    match e {
        CoreResponseError::NotHttp { offset } => wu::ResponseError::NotHttp(u32_of(offset)),
        CoreResponseError::BadStatus { offset } => wu::ResponseError::BadStatus(u32_of(offset)),
        CoreResponseError::TooLarge { limit } => wu::ResponseError::TooLarge(u32_of(limit)),
        CoreResponseError::Truncated { got } => wu::ResponseError::Truncated(u32_of(got)),
    }
}

impl wu::Guest for Component {
    fn decode_head(
        packet: Vec<u8>,
        limit: Option<u32>,
    ) -> Result<wu::RequestHead, wu::DecodeError> {
        let limit = limit.map_or(DEFAULT_HEAD_LIMIT, |l| l as usize);
        // The streaming decoder, fed once: its `finish` turns "need more"
        // into the precise Truncated error a one-shot caller wants.
        let mut d = HeadDecoder::new(limit);
        let (head, consumed) = match d.feed(&packet).map_err(decode_error)? {
            Progress::Head { head, consumed } => (head, consumed),
            Progress::NeedMore => {
                let e = d
                    .finish()
                    .unwrap_or(CoreDecodeError::Truncated { got: 0, needed: 4 });
                return Err(decode_error(e));
            }
        };
        Ok(wu::RequestHead {
            modifier1: head.header.modifier1,
            modifier2: head.header.modifier2,
            datasize: head.header.datasize,
            modifier_name: modifier::name(head.header.modifier1).to_string(),
            kind: payload_kind(head.kind),
            head_len: u32_of(consumed),
            method: head.var_str(b"REQUEST_METHOD").map(str::to_string),
            path: head.var_str(b"PATH_INFO").map(str::to_string),
            content_length: head.content_length(),
            vars: head
                .vars
                .iter()
                .map(|v| wu::Var {
                    key: octets(v.key),
                    value: octets(v.value),
                })
                .collect(),
            payload: (head.kind == Payload::Opaque).then(|| head.payload.to_vec()),
        })
    }

    fn decode_head_spans(
        packet: Vec<u8>,
        limit: Option<u32>,
    ) -> Result<wu::HeadSpans, wu::DecodeError> {
        head_spans::decode_head_spans(&packet, limit.map_or(DEFAULT_HEAD_LIMIT, |l| l as usize))
    }

    fn encode_head(
        modifier1: u8,
        modifier2: u8,
        vars: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<u8>, wu::EncodeError> {
        let mut out = Vec::new();
        encode_head(modifier1, modifier2, &vars, &mut out).map_err(|e| match e {
            CoreEncodeError::ItemTooLong { len } => wu::EncodeError::ItemTooLong(u32_of(len)),
            CoreEncodeError::DatasizeTooLarge { datasize } => {
                wu::EncodeError::DatasizeTooLarge(u32_of(datasize))
            }
        })?;
        Ok(out)
    }

    fn response_status(response: Vec<u8>) -> Result<Option<wu::Status>, wu::ResponseError> {
        let mut p = StatusParser::default();
        // A whole response: feed it, then end the stream.
        let _ = p.feed(&response);
        match p.finish() {
            None => Ok(None),
            Some(Err(e)) => Err(response_error(e)),
            Some(Ok(s)) => Ok(Some(wu::Status {
                code: s.code,
                source: match s.source {
                    CoreSource::StatusLine => wu::StatusSource::StatusLine,
                    CoreSource::CgiHeader => wu::StatusSource::CgiHeader,
                    CoreSource::CgiDefault => wu::StatusSource::CgiDefault,
                },
            })),
        }
    }

    fn modifier_name(modifier1: u8) -> Option<String> {
        modifier::lookup(modifier1).map(|m| m.name.to_string())
    }
}

// ------------------------------------------------------------------ stats

fn stats_error(e: CoreStatsError) -> wstats::StatsError {
    use wstats::StatsError as W;
    match e {
        CoreStatsError::Empty => W::Empty,
        CoreStatsError::TooLarge { size, limit } => W::TooLarge(wstats::SizeLimit {
            size: u64_of(size),
            limit: u64_of(limit),
        }),
        CoreStatsError::HttpStatus { status } => W::HttpStatus(status),
        CoreStatsError::BadHttp { message } => W::BadHttp(message),
        CoreStatsError::NotJson { found } => W::NotJson(found),
        CoreStatsError::Truncated { line, column } => W::Truncated(wstats::Position {
            line: u32_of(line),
            column: u32_of(column),
        }),
        CoreStatsError::InvalidJson {
            line,
            column,
            message,
        } => W::InvalidJson(wstats::SyntaxError {
            line: u32_of(line),
            column: u32_of(column),
            message,
        }),
        CoreStatsError::Schema { path, message } => {
            W::Schema(wstats::SchemaError { path, message })
        }
        // The WIT contract has no limit case; a limit is crossed at a JSON
        // path like a schema error, and its message says which limit.
        CoreStatsError::Limit { path, message } => W::Schema(wstats::SchemaError {
            path,
            message: format!("limit: {message}"),
        }),
    }
}

fn worker_status(s: &model::WorkerStatus) -> wstats::WorkerStatus {
    match s {
        model::WorkerStatus::Idle => wstats::WorkerStatus::Idle,
        model::WorkerStatus::Busy => wstats::WorkerStatus::Busy,
        model::WorkerStatus::Cheap => wstats::WorkerStatus::Cheap,
        model::WorkerStatus::Pause => wstats::WorkerStatus::Pause,
        model::WorkerStatus::Signal(n) => wstats::WorkerStatus::Signal(*n),
        model::WorkerStatus::Other(t) => wstats::WorkerStatus::Other(t.clone()),
    }
}

fn worker(w: &model::Worker) -> wstats::Worker {
    wstats::Worker {
        id: w.id,
        pid: w.pid,
        accepting: w.accepting,
        requests: w.requests,
        delta_requests: w.delta_requests,
        exceptions: w.exceptions,
        harakiri_count: w.harakiri_count,
        signals: w.signals,
        signal_queue: w.signal_queue,
        status: worker_status(&w.status),
        rss: w.rss,
        vsz: w.vsz,
        running_time: w.running_time,
        last_spawn: w.last_spawn,
        respawn_count: w.respawn_count,
        tx: w.tx,
        avg_rt: w.avg_rt,
        apps: w
            .apps
            .iter()
            .map(|a| wstats::App {
                id: a.id,
                modifier1: a.modifier1,
                mountpoint: a.mountpoint.clone(),
                startup_time: a.startup_time,
                requests: a.requests,
                exceptions: a.exceptions,
                chdir: a.chdir.clone(),
            })
            .collect(),
        cores: w
            .cores
            .iter()
            .map(|c| wstats::WorkerCore {
                id: c.id,
                requests: c.requests,
                static_requests: c.static_requests,
                routed_requests: c.routed_requests,
                offloaded_requests: c.offloaded_requests,
                write_errors: c.write_errors,
                read_errors: c.read_errors,
                in_request: c.in_request,
                request_start: c.req_info.request_start,
            })
            .collect(),
    }
}

fn document(d: &model::StatsDocument) -> wstats::StatsDocument {
    wstats::StatsDocument {
        version: d.version.clone(),
        listen_queue: d.listen_queue,
        listen_queue_errors: d.listen_queue_errors,
        signal_queue: d.signal_queue,
        load: d.load,
        pid: d.pid,
        uid: d.uid.unwrap_or_default(),
        gid: d.gid.unwrap_or_default(),
        cwd: d.cwd.clone(),
        locks: d
            .locks
            .iter()
            .map(|l| wstats::Lock {
                name: l.name.clone(),
                pid: l.pid,
            })
            .collect(),
        sockets: d
            .sockets
            .iter()
            .map(|s| wstats::Socket {
                name: s.name.clone(),
                proto: s.proto.clone(),
                queue: s.queue,
                max_queue: s.max_queue,
                shared: s.shared,
                can_offload: s.can_offload,
            })
            .collect(),
        workers: d.workers.iter().map(worker).collect(),
        caches: d.caches.as_ref().map(|cs| {
            cs.iter()
                .map(|c| wstats::Cache {
                    name: c.name.clone(),
                    hash: c.hash.clone(),
                    hashsize: c.hashsize,
                    keysize: c.keysize,
                    max_items: c.max_items,
                    blocks: c.blocks,
                    blocksize: c.blocksize,
                    items: c.items,
                    hits: c.hits,
                    miss: c.miss,
                    full: c.full,
                    last_modified_at: c.last_modified_at,
                })
                .collect()
        }),
        metrics: d.metrics.as_ref().map(|ms| {
            ms.iter()
                .map(|(name, m)| wstats::UwsgiMetric {
                    name: name.clone(),
                    kind: m.kind,
                    oid: m.oid.clone(),
                    value: m.value,
                })
                .collect()
        }),
        spoolers: d.spoolers.as_ref().map(|ss| {
            ss.iter()
                .map(|s| wstats::Spooler {
                    dir: s.dir.clone(),
                    pid: s.pid,
                    tasks: s.tasks,
                    respawns: s.respawns,
                    running: s.running,
                })
                .collect()
        }),
        crons: d.crons.as_ref().map(|cs| {
            cs.iter()
                .map(|c| wstats::Cron {
                    minute: c.minute,
                    hour: c.hour,
                    day: c.day,
                    month: c.month,
                    week: c.week,
                    command: c.command.clone(),
                    unique: c.unique,
                    pid: c.pid,
                    started_at: c.started_at,
                })
                .collect()
        }),
        daemons: d.daemons.as_ref().map(|ds| {
            ds.iter()
                .map(|x| wstats::Daemon {
                    cmd: x.cmd.clone(),
                    pid: x.pid,
                    respawns: x.respawns,
                })
                .collect()
        }),
    }
}

fn map_options(o: wstats::MapOptions) -> core_families::MapOptions {
    core_families::MapOptions {
        per_core: o.per_core,
        uwsgi_metrics: o.uwsgi_metrics,
        // The WIT options have no switch for it: a component never puts a
        // cron command line into a label.
        cron_commands: false,
    }
}

fn core_families_of(
    reply: &[u8],
    target: &str,
    options: wstats::MapOptions,
) -> Result<Vec<core_families::Family>, wstats::StatsError> {
    let decoded = stats::decode(reply).map_err(stats_error)?;
    Ok(core_families::map_document(
        &decoded.document,
        target,
        &map_options(options),
    ))
}

impl wstats::Guest for Component {
    fn decode(reply: Vec<u8>) -> Result<wstats::Decoded, wstats::StatsError> {
        let d = stats::decode(&reply).map_err(stats_error)?;
        Ok(wstats::Decoded {
            document: document(&d.document),
            repairs: u32_of(d.repairs),
            body_bytes: u64_of(d.body_bytes),
        })
    }

    fn families(
        reply: Vec<u8>,
        target: String,
        options: wstats::MapOptions,
    ) -> Result<Vec<wm::MetricFamily>, wstats::StatsError> {
        Ok(core_families_of(&reply, &target, options)?
            .iter()
            .map(stats_family)
            .collect())
    }

    fn prometheus_text(
        reply: Vec<u8>,
        target: String,
        options: wstats::MapOptions,
    ) -> Result<String, wstats::StatsError> {
        Ok(core_families::encode_text(&core_families_of(
            &reply, &target, options,
        )?))
    }
}

// ------------------------------------------------------------------- logs

fn record(r: &CoreRecord<'_>) -> wlogs::RequestRecord {
    let own = |s: Option<&str>| s.map(str::to_string);
    wlogs::RequestRecord {
        format: match r.format {
            LogFormat::Uwsgi => wlogs::LogFormat::Uwsgi,
            LogFormat::Gunicorn => wlogs::LogFormat::Gunicorn,
            LogFormat::GunicornWithMillis => wlogs::LogFormat::GunicornMillis,
        },
        method: r.method.to_string(),
        target: r.target.to_string(),
        path: r.path.to_string(),
        query: own(r.query),
        protocol: own(r.protocol),
        status: r.status,
        duration_us: r.duration_us,
        response_bytes: r.response_bytes,
        remote_addr: r.remote_addr.to_string(),
        remote_user: own(r.remote_user),
        referer: own(r.referer),
        user_agent: own(r.user_agent),
        time: r.time.to_string(),
        time_unix_nanos: r.time_unix_nanos,
        pid: r.pid,
        worker_requests: r.worker_requests,
        total_requests: r.total_requests,
        core: r.core,
        app: r.app,
        vars: r.vars,
        vars_bytes: r.vars_bytes,
        headers: r.headers,
        headers_bytes: r.headers_bytes,
        switches: r.switches,
    }
}

impl wlogs::Guest for Component {
    fn parse_line(line: String) -> Option<wlogs::RequestRecord> {
        logs::parse_line(&line).as_ref().map(record)
    }
}

// -------------------------------------------------------------------- red

/// What a `red.recorder` holds: validated settings plus the core aggregate.
/// WIT methods take `&self`, hence the `RefCell` in [`Recorder`]; a
/// component instance is single-threaded.
#[derive(Debug)]
pub struct RecorderCore {
    settings: RedSettings,
    protocol: &'static str,
    aggregate: RedAggregate,
}

impl RecorderCore {
    pub fn new(options: wred::RecorderOptions) -> Result<Self, wred::ConfigError> {
        let config = RedConfig {
            service: Some(options.service),
            // `route` is given explicitly; there is no host route name.
            use_route_name: false,
            route_patterns: options.route_patterns,
            collapse_ids: options.collapse_ids,
            max_series: options.max_series as usize,
            buckets_seconds: options.buckets_seconds,
            ..RedConfig::default()
        };
        let settings = config.validate().map_err(|e| wred::ConfigError {
            path: e.path,
            message: e.message,
        })?;
        let aggregate = RedAggregate::new(settings.buckets.clone(), settings.max_series);
        Ok(Self {
            settings,
            protocol: protocol_label(options.protocol),
            aggregate,
        })
    }

    pub fn record(&mut self, method: &str, route: &str, status: u16, duration_seconds: f64) {
        let facts = RequestFacts {
            method,
            path: route,
            route_name: None,
            code: status,
            upstream: None,
        };
        let labels = self.settings.labels(&facts, self.protocol);
        self.aggregate.record(Observation {
            labels,
            duration_seconds,
            ttfb_seconds: None,
        });
    }

    pub fn series_count(&self) -> u32 {
        u32_of(self.aggregate.series_count())
    }

    pub fn dropped(&self) -> u64 {
        self.aggregate.dropped()
    }

    pub fn prometheus_text(&self) -> String {
        self.aggregate.encode_prometheus()
    }

    pub fn families(&self) -> Vec<wm::MetricFamily> {
        red_families::families(&self.aggregate)
    }
}

#[derive(Debug)]
pub struct Recorder(RefCell<RecorderCore>);

fn protocol_label(p: wred::Protocol) -> &'static str {
    match p {
        wred::Protocol::Http => "http",
        wred::Protocol::Uwsgi => uwsgi_red_core::uwsgi::PROTOCOL,
    }
}

impl wred::Guest for Component {
    type Recorder = Recorder;

    fn default_options() -> wred::RecorderOptions {
        let d = RedConfig::default();
        wred::RecorderOptions {
            service: "unknown".to_string(),
            route_patterns: d.route_patterns,
            collapse_ids: d.collapse_ids,
            max_series: u32_of(d.max_series),
            buckets_seconds: d.buckets_seconds,
            protocol: wred::Protocol::Http,
        }
    }
}

impl wred::GuestRecorder for Recorder {
    fn create(options: wred::RecorderOptions) -> Result<wred::Recorder, wred::ConfigError> {
        Ok(wred::Recorder::new(Recorder(RefCell::new(
            RecorderCore::new(options)?,
        ))))
    }

    fn record(&self, method: String, route: String, status: u16, duration_seconds: f64) {
        self.0
            .borrow_mut()
            .record(&method, &route, status, duration_seconds);
    }

    fn series_count(&self) -> u32 {
        self.0.borrow().series_count()
    }

    fn dropped(&self) -> u64 {
        self.0.borrow().dropped()
    }

    fn prometheus_text(&self) -> String {
        self.0.borrow().prometheus_text()
    }

    fn families(&self) -> Vec<wm::MetricFamily> {
        self.0.borrow().families()
    }
}
