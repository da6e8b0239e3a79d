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

use serde::{Serialize, Serializer};

use super::model::{StatsDocument, WorkerStatus};
use crate::prom::text::{MetricType, TextEncoder};

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

impl Family {
    fn new(name: &'static str, kind: MetricType, help: &'static str) -> Self {
        Self {
            name,
            help,
            kind,
            integer_form: None,
            samples: Vec::new(),
        }
    }

    fn integer(mut self, name: &'static str, factor: f64) -> Self {
        self.integer_form = Some(IntegerForm { name, factor });
        self
    }

    fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push(Sample { labels, value });
    }
}

/// What to include beyond the uwsgi_exporter default set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapOptions {
    /// `uwsgi_worker_core_*` series and `worker.N.core.M.*` metrics{} entries.
    pub per_core: bool,
    /// `--enable-metrics` values as `uwsgi_metric_value`.
    pub uwsgi_metrics: bool,
}

impl Default for MapOptions {
    fn default() -> Self {
        Self {
            per_core: false,
            uwsgi_metrics: true,
        }
    }
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

/// Maps one document of `target` to families, in a fixed order. Families
/// with no samples (e.g. caches when the server has none) are included
/// empty so hosts can pre-declare; [`encode_text`] leaves them out.
pub fn map_document(doc: &StatsDocument, target: &str, opts: &MapOptions) -> Vec<Family> {
    let t = || vec![("target", target.to_string())];
    let mut out = Vec::with_capacity(64);

    let mut one = |name, kind, help, v: f64| {
        let mut f = Family::new(name, kind, help);
        f.push(t(), v);
        out.push(f);
    };
    one(
        "uwsgi_listen_queue_length",
        Gauge,
        "Length of listen queue.",
        doc.listen_queue as f64,
    );
    one(
        "uwsgi_listen_queue_errors",
        Gauge,
        "Number of listen queue errors.",
        doc.listen_queue_errors as f64,
    );
    one(
        "uwsgi_signal_queue_length",
        Gauge,
        "Length of signal queue.",
        doc.signal_queue as f64,
    );
    one(
        "uwsgi_workers",
        Gauge,
        "Number of workers.",
        doc.live_workers().count() as f64,
    );
    one(
        "uwsgi_load",
        Gauge,
        "Load reported by the uWSGI master (requests being served).",
        doc.load as f64,
    );

    let mut info = Family::new(
        "uwsgi_version_info",
        Gauge,
        "uWSGI version of the target; always 1.",
    );
    let mut l = t();
    l.push(("version", doc.version.clone()));
    info.push(l, 1.0);
    out.push(info);

    // Sockets: uWSGI can list one socket several times (uwsgi_exporter #22);
    // the first entry for a name+proto wins.
    type SocketGet = fn(&super::model::Socket) -> u64;
    let socket_fams: [(&'static str, &'static str, SocketGet); 4] = [
        (
            "uwsgi_socket_queue_length",
            "Length of socket queue.",
            |s| s.queue,
        ),
        (
            "uwsgi_socket_max_queue_length",
            "Max length of socket queue.",
            |s| s.max_queue,
        ),
        ("uwsgi_socket_shared", "Is shared socket?", |s| s.shared),
        ("uwsgi_socket_can_offload", "Can socket offload?", |s| {
            s.can_offload
        }),
    ];
    let mut seen: Vec<(&str, &str)> = Vec::new();
    let sockets: Vec<_> = doc
        .sockets
        .iter()
        .filter(|s| {
            let key = (s.name.as_str(), s.proto.as_str());
            let fresh = !seen.contains(&key);
            if fresh {
                seen.push(key);
            }
            fresh
        })
        .collect();
    for (name, help, get) in socket_fams {
        let mut f = Family::new(name, Gauge, help);
        for s in &sockets {
            let mut l = t();
            l.push(("name", s.name.clone()));
            l.push(("proto", s.proto.clone()));
            f.push(l, get(s) as f64);
        }
        out.push(f);
    }

    // Workers.
    type WorkerGet = fn(&super::model::Worker) -> f64;
    let worker_fams: [(&'static str, MetricType, &'static str, WorkerGet); 20] = [
        (
            "uwsgi_worker_accepting",
            Gauge,
            "Is this worker accepting requests?",
            |w| w.accepting as f64,
        ),
        (
            "uwsgi_worker_delta_requests",
            Gauge,
            "Number of delta requests",
            |w| w.delta_requests as f64,
        ),
        (
            "uwsgi_worker_signal_queue_length",
            Gauge,
            "Length of signal queue.",
            |w| w.signal_queue as f64,
        ),
        ("uwsgi_worker_rss_bytes", Gauge, "Worker RSS bytes.", |w| {
            w.rss as f64
        }),
        ("uwsgi_worker_vsz_bytes", Gauge, "Worker VSZ bytes.", |w| {
            w.vsz as f64
        }),
        (
            "uwsgi_worker_running_time_seconds",
            Gauge,
            "Worker running time in seconds.",
            |w| w.running_time as f64 / US_PER_S,
        ),
        (
            "uwsgi_worker_last_spawn_time_seconds",
            Gauge,
            "Last spawn time in seconds since epoch.",
            |w| w.last_spawn as f64,
        ),
        (
            "uwsgi_worker_average_response_time_seconds",
            Gauge,
            "Average response time in seconds.",
            |w| w.avg_rt as f64 / US_PER_S,
        ),
        ("uwsgi_worker_apps", Gauge, "Number of apps.", |w| {
            w.apps.len() as f64
        }),
        ("uwsgi_worker_cores", Gauge, "Number of cores.", |w| {
            w.cores.len() as f64
        }),
        ("uwsgi_worker_busy", Gauge, "Is busy", |w| {
            f64::from(u8::from(w.status == WorkerStatus::Busy))
        }),
        ("uwsgi_worker_idle", Gauge, "Is idle", |w| {
            f64::from(u8::from(w.status == WorkerStatus::Idle))
        }),
        ("uwsgi_worker_cheap", Gauge, "Is cheap", |w| {
            f64::from(u8::from(w.status == WorkerStatus::Cheap))
        }),
        (
            "uwsgi_worker_requests_total",
            Counter,
            "Total number of requests.",
            |w| w.requests as f64,
        ),
        (
            "uwsgi_worker_exceptions_total",
            Counter,
            "Total number of exceptions.",
            |w| w.exceptions as f64,
        ),
        (
            "uwsgi_worker_harakiri_count_total",
            Counter,
            "Total number of harakiri count.",
            |w| w.harakiri_count as f64,
        ),
        (
            "uwsgi_worker_signals_total",
            Counter,
            "Total number of signals.",
            |w| w.signals as f64,
        ),
        (
            "uwsgi_worker_respawn_count_total",
            Counter,
            "Total number of respawn count.",
            |w| w.respawn_count as f64,
        ),
        (
            "uwsgi_worker_transmitted_bytes_total",
            Counter,
            "Worker transmitted bytes.",
            |w| w.tx as f64,
        ),
        (
            "uwsgi_worker_pid",
            Gauge,
            "Process id of the worker (changes on respawn).",
            |w| w.pid as f64,
        ),
    ];
    let workers: Vec<_> = doc.live_workers().collect();
    for (name, kind, help, get) in worker_fams {
        let mut f = Family::new(name, kind, help);
        f = match name {
            "uwsgi_worker_running_time_seconds" => {
                f.integer("uwsgi_worker_running_time_microseconds", US_PER_S)
            }
            "uwsgi_worker_average_response_time_seconds" => {
                f.integer("uwsgi_worker_average_response_time_microseconds", US_PER_S)
            }
            _ => f,
        };
        for w in &workers {
            let mut l = t();
            l.push(("worker_id", w.id.to_string()));
            f.push(l, get(w));
        }
        out.push(f);
    }

    // Apps.
    type AppGet = fn(&super::model::App) -> f64;
    let app_fams: [(&'static str, MetricType, &'static str, AppGet); 3] = [
        (
            "uwsgi_worker_app_startup_time_seconds",
            Gauge,
            "How long this app took to start.",
            |a| a.startup_time as f64,
        ),
        (
            "uwsgi_worker_app_requests_total",
            Counter,
            "Total number of requests.",
            |a| a.requests as f64,
        ),
        (
            "uwsgi_worker_app_exceptions_total",
            Counter,
            "Total number of exceptions.",
            |a| a.exceptions as f64,
        ),
    ];
    for (name, kind, help, get) in app_fams {
        let mut f = Family::new(name, kind, help);
        for w in &workers {
            for a in &w.apps {
                let mut l = t();
                l.push(("worker_id", w.id.to_string()));
                l.push(("app_id", a.id.to_string()));
                l.push(("mountpoint", a.mountpoint.clone()));
                l.push(("chdir", a.chdir.clone()));
                f.push(l, get(a));
            }
        }
        out.push(f);
    }

    // Cores (opt-in).
    if opts.per_core {
        type CoreGet = fn(&super::model::Core) -> f64;
        let core_fams: [(&'static str, MetricType, &'static str, CoreGet); 7] = [
            ("uwsgi_worker_core_busy", Gauge, "Is core busy", |c| {
                c.in_request as f64
            }),
            (
                "uwsgi_worker_core_requests_total",
                Counter,
                "Total number of requests.",
                |c| c.requests as f64,
            ),
            (
                "uwsgi_worker_core_static_requests_total",
                Counter,
                "Total number of static requests.",
                |c| c.static_requests as f64,
            ),
            (
                "uwsgi_worker_core_routed_requests_total",
                Counter,
                "Total number of routed requests.",
                |c| c.routed_requests as f64,
            ),
            (
                "uwsgi_worker_core_offloaded_requests_total",
                Counter,
                "Total number of offloaded requests.",
                |c| c.offloaded_requests as f64,
            ),
            (
                "uwsgi_worker_core_write_errors_total",
                Counter,
                "Total number of write errors.",
                |c| c.write_errors as f64,
            ),
            (
                "uwsgi_worker_core_read_errors_total",
                Counter,
                "Total number of read errors.",
                |c| c.read_errors as f64,
            ),
        ];
        for (name, kind, help, get) in core_fams {
            let mut f = Family::new(name, kind, help);
            for w in &workers {
                for c in &w.cores {
                    let mut l = t();
                    l.push(("worker_id", w.id.to_string()));
                    l.push(("core_id", c.id.to_string()));
                    f.push(l, get(c));
                }
            }
            out.push(f);
        }
    }

    // Caches.
    type CacheGet = fn(&super::model::Cache) -> f64;
    let cache_fams: [(&'static str, MetricType, &'static str, CacheGet); 5] = [
        ("uwsgi_cache_hits", Counter, "Total number of hits.", |c| {
            c.hits as f64
        }),
        (
            "uwsgi_cache_misses",
            Counter,
            "Total number of misses.",
            |c| c.miss as f64,
        ),
        (
            "uwsgi_cache_full",
            Counter,
            "Total Number of times cache full was hit.",
            |c| c.full as f64,
        ),
        ("uwsgi_cache_items", Gauge, "Items in cache.", |c| {
            c.items as f64
        }),
        (
            "uwsgi_cache_max_items",
            Gauge,
            "Max items for this cache.",
            |c| c.max_items as f64,
        ),
    ];
    let caches = doc.caches.as_deref().unwrap_or_default();
    for (name, kind, help, get) in cache_fams {
        let mut f = Family::new(name, kind, help);
        for c in caches {
            let mut l = t();
            l.push(("name", c.name.clone()));
            f.push(l, get(c));
        }
        out.push(f);
    }

    // Spoolers.
    type SpoolerGet = fn(&super::model::Spooler) -> f64;
    let spooler_fams: [(&'static str, MetricType, &'static str, SpoolerGet); 3] = [
        (
            "uwsgi_spooler_tasks",
            Gauge,
            "Tasks waiting in the spooler directory.",
            |s| s.tasks as f64,
        ),
        (
            "uwsgi_spooler_running",
            Gauge,
            "Is the spooler running a task?",
            |s| s.running as f64,
        ),
        (
            "uwsgi_spooler_respawns_total",
            Counter,
            "Total number of spooler respawns.",
            |s| s.respawns as f64,
        ),
    ];
    let spoolers = doc.spoolers.as_deref().unwrap_or_default();
    for (name, kind, help, get) in spooler_fams {
        let mut f = Family::new(name, kind, help);
        for s in spoolers {
            let mut l = t();
            l.push(("spooler", s.dir.clone()));
            f.push(l, get(s));
        }
        out.push(f);
    }

    // Crons: identified by position and command (both fixed by the uWSGI config).
    let crons = doc.crons.as_deref().unwrap_or_default();
    let mut running = Family::new("uwsgi_cron_running", Gauge, "Is the cron command running?");
    let mut started = Family::new(
        "uwsgi_cron_last_start_time_seconds",
        Gauge,
        "Last start of the cron command in seconds since epoch (0: never).",
    );
    for (i, c) in crons.iter().enumerate() {
        let mut l = t();
        l.push(("cron_id", i.to_string()));
        l.push(("command", c.command.clone()));
        running.push(l.clone(), f64::from(u8::from(c.pid > 0)));
        started.push(l, c.started_at as f64);
    }
    out.push(running);
    out.push(started);

    // --enable-metrics: one family, the uWSGI name and type as labels.
    let mut metrics = Family::new(
        "uwsgi_metric_value",
        Gauge,
        "Value of a uWSGI --enable-metrics metric (uWSGI name and type as labels).",
    );
    if opts.uwsgi_metrics {
        for (name, m) in doc.metrics.iter().flatten() {
            if !opts.per_core && is_per_core_metric(name) {
                continue;
            }
            let mut l = t();
            l.push(("name", name.clone()));
            l.push(("type", m.kind_name().to_string()));
            metrics.push(l, m.value as f64);
        }
    }
    out.push(metrics);
    out
}

/// `worker.N.core.M.*` entries grow with cores like the per-core families.
fn is_per_core_metric(name: &str) -> bool {
    name.starts_with("worker.") && name.contains(".core.")
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
    let t = || vec![("target", target.to_string())];
    let mut up = Family::new(
        "uwsgi_up",
        Gauge,
        "Whether the last poll of the uWSGI stats server succeeded.",
    );
    up.push(t(), f64::from(u8::from(s.up)));
    let mut repairs = Family::new(
        "uwsgi_stats_repaired_strings",
        Gauge,
        "Strings of the last stats document that were invalid (unescaped) JSON and were repaired.",
    );
    repairs.push(t(), s.repairs as f64);
    let mut size = Family::new(
        "uwsgi_stats_document_bytes",
        Gauge,
        "Size of the last stats document.",
    );
    size.push(t(), s.document_bytes as f64);
    vec![up, repairs, size]
}

/// Prometheus text for `families`, skipping families with no samples.
pub fn encode_text(families: &[Family]) -> String {
    let mut e = TextEncoder::new();
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        e.family(f.name, f.help, f.kind);
        for s in &f.samples {
            e.sample(f.name, &s.labels, s.value);
        }
    }
    e.finish()
}
