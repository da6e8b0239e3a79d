//! The stats document as metric families: a neutral structure (name, help,
//! type, samples of labels and an `f64`) that every output reuses — the
//! Prometheus text encoder ([`encode_text`]), the Envoy host-metrics adapter,
//! and later OTLP, WIT and browser adapters.
//!
//! Names, types, labels and units follow uwsgi_exporter 1.3 exactly (see the
//! table in the plugin README), plus what it leaves out: `load`, the version
//! as an info metric, `--enable-metrics` values, spoolers and crons. Every
//! sample carries `target` first. Per-core series are off unless
//! [`MapOptions::per_core`] is set: they multiply the output by the core
//! count (uwsgi_exporter's 27 MB pages for 150 processes × 256 cores).
//!
//! **Duplicates are dropped, first entry wins, and counted.** Prometheus
//! rejects a page with two samples of one series, and uWSGI does repeat
//! entries (a socket listed twice, uwsgi_exporter #22). Identity per section:
//! worker `id` (id 0 marks a stand-by cheaper slot and is never exported, so
//! it is not a duplicate), socket `name`+`proto`, app `id` within a worker,
//! core `id` within a worker, cache `name`, spooler `dir`, metric name. Every
//! later entry with a seen identity is skipped and counted in
//! `uwsgi_stats_duplicate_entries` (and [`MapSummary::duplicates`]). Merging
//! was rejected: summing two entries of one worker would invent a counter
//! that never existed and jump when the duplicate disappears.
//!
//! The mapping is linear: one pass per family over the de-duplicated
//! entries, identity checks in hash sets.

use std::collections::HashSet;
use std::fmt::Write as _;

use serde::{Serialize, Serializer};

use super::model::StatsDocument;
use super::sink::{Collect, Sink};
use super::view::{
    is_per_core_metric, view_of, AppView, CacheView, CoreEntries, CoreView, CronView, MetricView,
    SocketView, SpoolerView, Status, ViewOf, WorkerView,
};
use crate::prom::text::MetricType;

/// One labelled value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// `(label name, value)`, `target` first; names are fixed by the mapping.
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How to export a fractional family to a host whose gauges hold only
/// unsigned integers (Envoy): under `name`, with values multiplied by `factor`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IntegerForm {
    pub name: &'static str,
    pub factor: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    #[serde(rename = "type", serialize_with = "ser_type")]
    pub kind: MetricType,
    /// Set on the few families whose values are not whole numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integer_form: Option<IntegerForm>,
    pub samples: Vec<Sample>,
}

fn ser_type<S: Serializer>(t: &MetricType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

/// What a family is, without its samples: what a [`Sink`] is told first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meta {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricType,
    pub integer_form: Option<IntegerForm>,
}

impl Family {
    pub fn from_meta(m: &Meta) -> Self {
        Self {
            name: m.name,
            help: m.help,
            kind: m.kind,
            integer_form: m.integer_form,
            samples: Vec::new(),
        }
    }
}

/// What to include beyond the uwsgi_exporter default set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapOptions {
    /// `uwsgi_worker_core_*` series and `worker.N.core.M.*` metrics{} entries.
    pub per_core: bool,
    /// `--enable-metrics` values as `uwsgi_metric_value`.
    pub uwsgi_metrics: bool,
    /// The cron command line as the `command` label of the cron families.
    /// Off by default: a command line can carry credentials (a curl with an
    /// `Authorization` header), and a label is copied to every scraper,
    /// dashboard and long-term store. Crons are identified by position
    /// (`cron_id`) without it.
    pub cron_commands: bool,
}

impl Default for MapOptions {
    fn default() -> Self {
        Self {
            per_core: false,
            uwsgi_metrics: true,
            cron_commands: false,
        }
    }
}

/// What one mapping did beyond writing samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapSummary {
    /// Entries skipped because an earlier entry had the same identity.
    pub duplicates: u64,
}

const US_PER_S: f64 = 1e6;

/// Every label name the mapping and [`scrape_families`] use, plus `reason`
/// (scrape errors). Hosts that carry labels inside stat names (Envoy
/// `stats_tags`) need one extraction rule per name; no name is a suffix of
/// another, so `name=`-style rules cannot match inside a longer name.
pub const LABEL_NAMES: &[&str] = &[
    "target",
    "worker_id",
    "app_id",
    "mountpoint",
    "chdir",
    "core_id",
    "name",
    "proto",
    "version",
    "spooler",
    "cron_id",
    "command",
    "type",
    "reason",
];

use MetricType::{Counter, Gauge};

const fn meta(name: &'static str, kind: MetricType, help: &'static str) -> Meta {
    Meta {
        name,
        help,
        kind,
        integer_form: None,
    }
}

const fn fractional(
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

const DUPLICATES: Meta = meta(
    DUPLICATES_FAMILY,
    Gauge,
    "Entries of the last stats document dropped because an earlier entry had the same identity (worker id, socket name and proto, ...).",
);

type SocketGet = fn(&SocketView) -> f64;
const SOCKET_FAMS: [(Meta, SocketGet); 4] = [
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
fn worker_fams<const P: bool>() -> [(Meta, WorkerGet<P>); 20] {
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
                "Average response time in seconds.",
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
const APP_FAMS: [(Meta, AppGet); 3] = [
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
const CORE_FAMS: [(Meta, CoreGet); 7] = [
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
const CACHE_FAMS: [(Meta, CacheGet); 5] = [
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

type CronGet = fn(&CronView<'_>) -> f64;
type SpoolerGet = fn(&SpoolerView) -> f64;
const SPOOLER_FAMS: [(Meta, SpoolerGet); 3] = [
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

fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

/// Keeps the first entry of each identity; counts the rest into `dups`.
fn first_of_each<'e, T, K, F>(items: &'e [T], dups: &mut u64, key: F) -> Vec<&'e T>
where
    K: std::hash::Hash + Eq,
    F: Fn(&'e T) -> K,
{
    let mut seen = HashSet::with_capacity(items.len().min(1024));
    let mut out = Vec::with_capacity(items.len().min(1024));
    for item in items {
        if seen.insert(key(item)) {
            out.push(item);
        } else {
            *dups = dups.saturating_add(1);
        }
    }
    out
}

/// A worker kept by de-duplication, with its id as label text and its
/// de-duplicated apps and cores.
struct Kept<'v, 'a, const P: bool> {
    w: &'v WorkerView<'a, CoreEntries<P>>,
    id: String,
    apps: Vec<&'v AppView<'a>>,
    cores: Vec<&'v CoreView>,
}

/// Maps one document of `target` to families, in a fixed order. Families
/// with no samples (e.g. caches when the server has none) are included
/// empty so hosts can pre-declare; [`encode_text`] leaves them out.
pub fn map_document(doc: &StatsDocument, target: &str, opts: &MapOptions) -> Vec<Family> {
    let mut sink = Collect::default();
    if opts.per_core {
        map_view(&view_of::<true>(doc), target, opts, &mut sink);
    } else {
        map_view(&view_of::<false>(doc), target, opts, &mut sink);
    }
    sink.families
}

/// The mapping itself, over a borrowed [`View`], into any [`Sink`]. A view
/// read without per-core metric entries simply has none to export.
pub fn map_view<S: Sink, const P: bool>(
    v: &ViewOf<'_, P>,
    target: &str,
    opts: &MapOptions,
    sink: &mut S,
) -> MapSummary {
    let mut dups = 0u64;
    let t = [("target", target)];

    let mut one = |m: Meta, value: f64| {
        sink.family(&m);
        sink.sample(&t, value);
    };
    one(
        meta(
            "uwsgi_listen_queue_length",
            Gauge,
            "Length of listen queue.",
        ),
        v.listen_queue as f64,
    );
    one(
        meta(
            "uwsgi_listen_queue_errors",
            Gauge,
            "Number of listen queue errors.",
        ),
        v.listen_queue_errors as f64,
    );
    one(
        meta(
            "uwsgi_signal_queue_length",
            Gauge,
            "Length of signal queue.",
        ),
        v.signal_queue as f64,
    );

    // Live workers (id 0 is a stand-by cheaper slot), first of each id.
    let live: Vec<&WorkerView<CoreEntries<P>>> = v.workers.iter().filter(|w| w.id != 0).collect();
    let workers: Vec<Kept<P>> = first_of_each(&live, &mut dups, |w| w.id)
        .into_iter()
        .map(|w| Kept {
            w,
            id: w.id.to_string(),
            apps: first_of_each(&w.apps, &mut dups, |a| a.id),
            cores: if opts.per_core {
                first_of_each(&w.cores.list, &mut dups, |c| c.id)
            } else {
                Vec::new()
            },
        })
        .collect();

    one(
        meta("uwsgi_workers", Gauge, "Number of workers."),
        workers.len() as f64,
    );
    one(
        meta(
            "uwsgi_load",
            Gauge,
            "Load reported by the uWSGI master (requests being served).",
        ),
        v.load as f64,
    );
    sink.family(&meta(
        "uwsgi_version_info",
        Gauge,
        "uWSGI version of the target; always 1.",
    ));
    sink.sample(&[("target", target), ("version", &v.version)], 1.0);

    let sockets = first_of_each(&v.sockets, &mut dups, |s| {
        (s.name.as_ref(), s.proto.as_ref())
    });
    for (m, get) in SOCKET_FAMS {
        sink.family(&m);
        for s in &sockets {
            sink.sample(
                &[("target", target), ("name", &s.name), ("proto", &s.proto)],
                get(s),
            );
        }
    }

    for (m, get) in worker_fams::<P>() {
        sink.family(&m);
        for k in &workers {
            sink.sample(&[("target", target), ("worker_id", &k.id)], get(k.w));
        }
    }

    let mut id = String::new();
    for (m, get) in APP_FAMS {
        sink.family(&m);
        for k in &workers {
            for a in &k.apps {
                id.clear();
                let _ = write!(id, "{}", a.id);
                sink.sample(
                    &[
                        ("target", target),
                        ("worker_id", &k.id),
                        ("app_id", &id),
                        ("mountpoint", &a.mountpoint),
                        ("chdir", &a.chdir),
                    ],
                    get(a),
                );
            }
        }
    }

    if opts.per_core {
        for (m, get) in CORE_FAMS {
            sink.family(&m);
            for k in &workers {
                for c in &k.cores {
                    id.clear();
                    let _ = write!(id, "{}", c.id);
                    sink.sample(
                        &[("target", target), ("worker_id", &k.id), ("core_id", &id)],
                        get(c),
                    );
                }
            }
        }
    }

    let caches = first_of_each(&v.caches, &mut dups, |c| c.name.as_ref());
    for (m, get) in CACHE_FAMS {
        sink.family(&m);
        for c in &caches {
            sink.sample(&[("target", target), ("name", &c.name)], get(c));
        }
    }

    let spoolers = first_of_each(&v.spoolers, &mut dups, |s| s.dir.as_ref());
    for (m, get) in SPOOLER_FAMS {
        sink.family(&m);
        for s in &spoolers {
            sink.sample(&[("target", target), ("spooler", &s.dir)], get(s));
        }
    }

    // Crons: identified by position (fixed by the uWSGI config), so no two
    // entries share an identity; the command only on request.
    let cron_fams: [(Meta, CronGet); 2] = [
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
    for (m, get) in cron_fams {
        sink.family(&m);
        for (i, c) in v.crons.iter().enumerate() {
            id.clear();
            let _ = write!(id, "{i}");
            let labels = [
                ("target", target),
                ("cron_id", id.as_str()),
                ("command", &c.command),
            ];
            let n = if opts.cron_commands { 3 } else { 2 };
            sink.sample(labels.get(..n).unwrap_or(&labels), get(c));
        }
    }

    // --enable-metrics: one family, the uWSGI name and type as labels.
    sink.family(&meta(
        "uwsgi_metric_value",
        Gauge,
        "Value of a uWSGI --enable-metrics metric (uWSGI name and type as labels).",
    ));
    if opts.uwsgi_metrics {
        let mut exported: Vec<&(std::borrow::Cow<str>, MetricView)> = v
            .metrics
            .0
            .iter()
            .filter(|(name, _)| opts.per_core || !is_per_core_metric(name))
            .collect();
        // By name, as the owned model's map holds them; the sort is stable,
        // so the first of a repeated name stays first.
        exported.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, m) in first_of_each(&exported, &mut dups, |e| e.0.as_ref()) {
            sink.sample(
                &[("target", target), ("name", name), ("type", m.kind_name())],
                m.value as f64,
            );
        }
    }

    sink.family(&DUPLICATES);
    sink.sample(&t, dups as f64);
    MapSummary { duplicates: dups }
}

/// Self-metrics of one poll of `target`, shared by every poller (Envoy
/// plugin, CLI) so their names never drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeStatus {
    pub up: bool,
    /// Strings rewritten by [`super::repair`] in this document.
    pub repairs: u64,
    /// Size of the JSON body.
    pub document_bytes: u64,
}

pub fn scrape_families(target: &str, s: &ScrapeStatus) -> Vec<Family> {
    let mut sink = Collect::default();
    scrape_status_into(target, s, &mut sink);
    sink.families
}

/// [`scrape_families`] into any sink.
pub fn scrape_status_into<S: Sink>(target: &str, s: &ScrapeStatus, sink: &mut S) {
    let t = [("target", target)];
    sink.family(&meta(
        "uwsgi_up",
        Gauge,
        "Whether the last poll of the uWSGI stats server succeeded.",
    ));
    sink.sample(&t, flag(s.up));
    sink.family(&meta(
        "uwsgi_stats_repaired_strings",
        Gauge,
        "Strings of the last stats document that were invalid (unescaped) JSON and were repaired.",
    ));
    sink.sample(&t, s.repairs as f64);
    sink.family(&meta(
        "uwsgi_stats_document_bytes",
        Gauge,
        "Size of the last stats document.",
    ));
    sink.sample(&t, s.document_bytes as f64);
}

/// Counter the Envoy poller adds each document's repaired strings to.
pub const REPAIRS_TOTAL: &str = "uwsgi_stats_repairs_total";
/// Gauge: Unix time in seconds of the last good poll (kept on failure).
pub const LAST_SUCCESS_TIMESTAMP: &str = "uwsgi_scrape_last_success_timestamp_seconds";

/// A value as an integer-only host stores it: rounded, and 0 for what an
/// unsigned integer cannot hold (negative, NaN, infinite).
pub fn integer_value(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        // Saturating float-to-int conversion: no overflow is possible.
        v.round() as u64
    } else {
        0
    }
}

/// What Envoy's `/stats/prometheus` shows after the poller's first good
/// poll of `target` (`families` = [`scrape_families`] + [`map_document`]):
/// fractional families under their integer form, values as the host stores
/// them, plus the poller's own series ([`REPAIRS_TOTAL`],
/// [`LAST_SUCCESS_TIMESTAMP`] at `now_s`, and the dropped-label-sets counter
/// at 0). An offline check prints this so that the names match the page.
pub fn host_families(families: &[Family], target: &str, repairs: u64, now_s: u64) -> Vec<Family> {
    let mut out: Vec<Family> = families
        .iter()
        .map(|f| {
            let (name, factor) = f.integer_form.map_or((f.name, 1.0), |i| (i.name, i.factor));
            Family {
                name,
                help: f.help,
                kind: f.kind,
                integer_form: None,
                samples: f
                    .samples
                    .iter()
                    .map(|s| Sample {
                        labels: s.labels.clone(),
                        value: integer_value(s.value * factor) as f64,
                    })
                    .collect(),
            }
        })
        .collect();
    let own = |name, kind, help, value: u64| Family {
        name,
        help,
        kind,
        integer_form: None,
        samples: vec![Sample {
            labels: vec![("target", target.to_string())],
            value: value as f64,
        }],
    };
    out.push(own(
        REPAIRS_TOTAL,
        Counter,
        "Strings of invalid JSON repaired, over all polls.",
        repairs,
    ));
    out.push(own(
        LAST_SUCCESS_TIMESTAMP,
        Gauge,
        "Unix time of the last successful poll.",
        now_s,
    ));
    out.push(Family {
        name: crate::red::names::DROPPED_LABEL_SETS_TOTAL,
        help: "Samples not exported because their series was over max_series.",
        kind: Counter,
        integer_form: None,
        samples: vec![Sample {
            labels: Vec::new(),
            value: 0.0,
        }],
    });
    out
}

/// Prometheus text for `families`, skipping families with no samples.
pub fn encode_text(families: &[Family]) -> String {
    let mut e = crate::prom::text::TextEncoder::new();
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        e.family(f.name, f.help, f.kind);
        for s in &f.samples {
            e.sample(f.name, &s.labels, s.value);
        }
    }
    e.finish()
}
