//! Every family the stats mapping writes, as data: name, type, help (and
//! the integer form of a fractional gauge), with the getter that reads its
//! value off one entry of the document. The mapping in the parent module
//! holds no family of its own; a new family is one entry here.

use super::{IntegerForm, Meta, ScrapeStatus, LAST_SUCCESS_TIMESTAMP, REPAIRS_TOTAL};
use crate::prom::text::MetricType;
use crate::stats::view::{
    AppView, CacheView, CoreEntries, CoreView, CronView, SocketView, SpoolerView, Status, ViewOf,
    WorkerView,
};

use MetricType::{Counter, Gauge};

const US_PER_S: f64 = 1e6;

pub(super) fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

pub(super) const fn meta(name: &'static str, kind: MetricType, help: &'static str) -> Meta {
    Meta {
        name,
        help,
        kind,
        integer_form: None,
    }
}

pub(super) const fn fractional(
    name: &'static str,
    help: &'static str,
    integer_name: &'static str,
    factor: f64,
) -> Meta {
    Meta {
        name,
        help,
        kind: Gauge,
        integer_form: Some(IntegerForm {
            name: integer_name,
            factor,
        }),
    }
}

/// Name of the family counting dropped duplicate entries.
pub const DUPLICATES_FAMILY: &str = "uwsgi_stats_duplicate_entries";

pub(super) const DUPLICATES: Meta = meta(
    DUPLICATES_FAMILY,
    Gauge,
    "Entries of the last stats document dropped because an earlier entry had the same identity (worker id, socket name and proto, ...).",
);

type SocketGet = fn(&SocketView) -> f64;
pub(super) const SOCKET_FAMS: [(Meta, SocketGet); 4] = [
    (
        meta(
            "uwsgi_socket_queue_length",
            Gauge,
            "Length of socket queue.",
        ),
        |s| s.queue as f64,
    ),
    (
        meta(
            "uwsgi_socket_max_queue_length",
            Gauge,
            "Max length of socket queue.",
        ),
        |s| s.max_queue as f64,
    ),
    (
        meta("uwsgi_socket_shared", Gauge, "Is shared socket?"),
        |s| s.shared as f64,
    ),
    (
        meta("uwsgi_socket_can_offload", Gauge, "Can socket offload?"),
        |s| s.can_offload as f64,
    ),
];

type WorkerGet<const P: bool> = fn(&WorkerView<CoreEntries<P>>) -> f64;

/// A function so the getters take workers read with or without cores.
pub(super) fn worker_fams<const P: bool>() -> [(Meta, WorkerGet<P>); 20] {
    [
        (
            meta(
                "uwsgi_worker_accepting",
                Gauge,
                "Is this worker accepting requests?",
            ),
            |w| w.accepting as f64,
        ),
        (
            meta(
                "uwsgi_worker_delta_requests",
                Gauge,
                "Number of delta requests",
            ),
            |w| w.delta_requests as f64,
        ),
        (
            meta(
                "uwsgi_worker_signal_queue_length",
                Gauge,
                "Length of signal queue.",
            ),
            |w| w.signal_queue as f64,
        ),
        (
            meta("uwsgi_worker_rss_bytes", Gauge, "Worker RSS bytes."),
            |w| w.rss as f64,
        ),
        (
            meta("uwsgi_worker_vsz_bytes", Gauge, "Worker VSZ bytes."),
            |w| w.vsz as f64,
        ),
        (
            fractional(
                "uwsgi_worker_running_time_seconds",
                "Worker running time in seconds.",
                "uwsgi_worker_running_time_microseconds",
                US_PER_S,
            ),
            |w| w.running_time as f64 / US_PER_S,
        ),
        (
            meta(
                "uwsgi_worker_last_spawn_time_seconds",
                Gauge,
                "Last spawn time in seconds since epoch.",
            ),
            |w| w.last_spawn as f64,
        ),
        (
            fractional(
                "uwsgi_worker_average_response_time_seconds",
                "uWSGI avg_rt in seconds: (avg_rt + last rt) / 2 at each request, not a mean; the mean is rate(running_time) / rate(requests).",
                "uwsgi_worker_average_response_time_microseconds",
                US_PER_S,
            ),
            |w| w.avg_rt as f64 / US_PER_S,
        ),
        (meta("uwsgi_worker_apps", Gauge, "Number of apps."), |w| {
            w.apps.len() as f64
        }),
        (meta("uwsgi_worker_cores", Gauge, "Number of cores."), |w| {
            w.cores.count as f64
        }),
        (meta("uwsgi_worker_busy", Gauge, "Is busy"), |w| {
            flag(w.status == Status::Busy)
        }),
        (meta("uwsgi_worker_idle", Gauge, "Is idle"), |w| {
            flag(w.status == Status::Idle)
        }),
        (meta("uwsgi_worker_cheap", Gauge, "Is cheap"), |w| {
            flag(w.status == Status::Cheap)
        }),
        (
            meta(
                "uwsgi_worker_requests_total",
                Counter,
                "Total number of requests.",
            ),
            |w| w.requests as f64,
        ),
        (
            meta(
                "uwsgi_worker_exceptions_total",
                Counter,
                "Total number of exceptions.",
            ),
            |w| w.exceptions as f64,
        ),
        (
            meta(
                "uwsgi_worker_harakiri_count_total",
                Counter,
                "Total number of harakiri count.",
            ),
            |w| w.harakiri_count as f64,
        ),
        (
            meta(
                "uwsgi_worker_signals_total",
                Counter,
                "Total number of signals.",
            ),
            |w| w.signals as f64,
        ),
        (
            meta(
                "uwsgi_worker_respawn_count_total",
                Counter,
                "Total number of respawn count.",
            ),
            |w| w.respawn_count as f64,
        ),
        (
            meta(
                "uwsgi_worker_transmitted_bytes_total",
                Counter,
                "Worker transmitted bytes.",
            ),
            |w| w.tx as f64,
        ),
        (
            meta(
                "uwsgi_worker_pid",
                Gauge,
                "Process id of the worker (changes on respawn).",
            ),
            |w| w.pid as f64,
        ),
    ]
}

type AppGet = fn(&AppView) -> f64;
pub(super) const APP_FAMS: [(Meta, AppGet); 3] = [
    (
        meta(
            "uwsgi_worker_app_startup_time_seconds",
            Gauge,
            "How long this app took to start.",
        ),
        |a| a.startup_time as f64,
    ),
    (
        meta(
            "uwsgi_worker_app_requests_total",
            Counter,
            "Total number of requests.",
        ),
        |a| a.requests as f64,
    ),
    (
        meta(
            "uwsgi_worker_app_exceptions_total",
            Counter,
            "Total number of exceptions.",
        ),
        |a| a.exceptions as f64,
    ),
];

type CoreGet = fn(&CoreView) -> f64;
pub(super) const CORE_FAMS: [(Meta, CoreGet); 7] = [
    (meta("uwsgi_worker_core_busy", Gauge, "Is core busy"), |c| {
        c.in_request as f64
    }),
    (
        meta(
            "uwsgi_worker_core_requests_total",
            Counter,
            "Total number of requests.",
        ),
        |c| c.requests as f64,
    ),
    (
        meta(
            "uwsgi_worker_core_static_requests_total",
            Counter,
            "Total number of static requests.",
        ),
        |c| c.static_requests as f64,
    ),
    (
        meta(
            "uwsgi_worker_core_routed_requests_total",
            Counter,
            "Total number of routed requests.",
        ),
        |c| c.routed_requests as f64,
    ),
    (
        meta(
            "uwsgi_worker_core_offloaded_requests_total",
            Counter,
            "Total number of offloaded requests.",
        ),
        |c| c.offloaded_requests as f64,
    ),
    (
        meta(
            "uwsgi_worker_core_write_errors_total",
            Counter,
            "Total number of write errors.",
        ),
        |c| c.write_errors as f64,
    ),
    (
        meta(
            "uwsgi_worker_core_read_errors_total",
            Counter,
            "Total number of read errors.",
        ),
        |c| c.read_errors as f64,
    ),
];

type CacheGet = fn(&CacheView) -> f64;
pub(super) const CACHE_FAMS: [(Meta, CacheGet); 5] = [
    (
        meta("uwsgi_cache_hits", Counter, "Total number of hits."),
        |c| c.hits as f64,
    ),
    (
        meta("uwsgi_cache_misses", Counter, "Total number of misses."),
        |c| c.miss as f64,
    ),
    (
        meta(
            "uwsgi_cache_full",
            Counter,
            "Total Number of times cache full was hit.",
        ),
        |c| c.full as f64,
    ),
    (meta("uwsgi_cache_items", Gauge, "Items in cache."), |c| {
        c.items as f64
    }),
    (
        meta("uwsgi_cache_max_items", Gauge, "Max items for this cache."),
        |c| c.max_items as f64,
    ),
];

type SpoolerGet = fn(&SpoolerView) -> f64;
pub(super) const SPOOLER_FAMS: [(Meta, SpoolerGet); 3] = [
    (
        meta(
            "uwsgi_spooler_tasks",
            Gauge,
            "Tasks waiting in the spooler directory.",
        ),
        |s| s.tasks as f64,
    ),
    (
        meta(
            "uwsgi_spooler_running",
            Gauge,
            "Is the spooler running a task?",
        ),
        |s| s.running as f64,
    ),
    (
        meta(
            "uwsgi_spooler_respawns_total",
            Counter,
            "Total number of spooler respawns.",
        ),
        |s| s.respawns as f64,
    ),
];

type TargetGet<const P: bool> = fn(&ViewOf<'_, P>) -> f64;

/// The target-level gauges read straight off the document, written first.
pub(super) fn target_fams<const P: bool>() -> [(Meta, TargetGet<P>); 3] {
    [
        (
            meta(
                "uwsgi_listen_queue_length",
                Gauge,
                "Length of listen queue.",
            ),
            |v| v.listen_queue as f64,
        ),
        (
            meta(
                "uwsgi_listen_queue_errors",
                Gauge,
                "Number of listen queue errors.",
            ),
            |v| v.listen_queue_errors as f64,
        ),
        (
            meta(
                "uwsgi_signal_queue_length",
                Gauge,
                "Length of signal queue.",
            ),
            |v| v.signal_queue as f64,
        ),
    ]
}

/// Live workers after de-duplication (a count the mapping computes).
pub(super) const WORKERS: Meta = meta("uwsgi_workers", Gauge, "Number of workers.");

pub(super) const LOAD: Meta = meta(
    "uwsgi_load",
    Gauge,
    "Load reported by the uWSGI master (requests being served).",
);

/// Always 1, the version as a label.
pub(super) const VERSION_INFO: Meta = meta(
    "uwsgi_version_info",
    Gauge,
    "uWSGI version of the target; always 1.",
);

type CronGet = fn(&CronView<'_>) -> f64;
pub(super) const CRON_FAMS: [(Meta, CronGet); 2] = [
    (
        meta("uwsgi_cron_running", Gauge, "Is the cron command running?"),
        |c| flag(c.pid > 0),
    ),
    (
        meta(
            "uwsgi_cron_last_start_time_seconds",
            Gauge,
            "Last start of the cron command in seconds since epoch (0: never).",
        ),
        |c| c.started_at as f64,
    ),
];

/// `--enable-metrics` values: one family, the uWSGI name and type as labels.
pub(super) const METRIC_VALUE: Meta = meta(
    "uwsgi_metric_value",
    Gauge,
    "Value of a uWSGI --enable-metrics metric (uWSGI name and type as labels).",
);

type ScrapeGet = fn(&ScrapeStatus) -> f64;
/// Self-metrics of one poll.
pub(super) const SCRAPE_FAMS: [(Meta, ScrapeGet); 3] = [
    (
        meta(
            "uwsgi_up",
            Gauge,
            "Whether the last poll of the uWSGI stats server succeeded.",
        ),
        |s| flag(s.up),
    ),
    (
        meta(
            "uwsgi_stats_repaired_strings",
            Gauge,
            "Strings of the last stats document that were invalid (unescaped) JSON and were repaired.",
        ),
        |s| s.repairs as f64,
    ),
    (
        meta(
            "uwsgi_stats_document_bytes",
            Gauge,
            "Size of the last stats document.",
        ),
        |s| s.document_bytes as f64,
    ),
];

/// The Envoy poller's own series (see `host_families`).
pub(super) const REPAIRS: Meta = meta(
    REPAIRS_TOTAL,
    Counter,
    "Strings of invalid JSON repaired, over all polls.",
);

pub(super) const LAST_SUCCESS: Meta = meta(
    LAST_SUCCESS_TIMESTAMP,
    Gauge,
    "Unix time of the last successful poll.",
);

pub(super) const DROPPED_LABEL_SETS: Meta = meta(
    crate::red::names::DROPPED_LABEL_SETS_TOTAL,
    Counter,
    "Samples not exported because their series was over max_series.",
);
