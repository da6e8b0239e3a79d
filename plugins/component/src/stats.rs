//! The WIT `stats` interface: uWSGI stats documents decoded, and mapped to
//! metric families.

use uwsgi_red_core::stats::{self, families as core_families, model, StatsError as CoreStatsError};

use crate::bindings::exports::uwsgi_red::core::{metrics as wm, stats as wstats};
use crate::metrics::stats_family;
use crate::{u32_of, u64_of, Component};

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
