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
    is_per_core_metric, view_of, AppView, CoreEntries, CoreView, MetricView, ViewOf, WorkerView,
};
use crate::prom::text::MetricType;

mod tables;

pub use tables::DUPLICATES_FAMILY;
use tables::{
    target_fams, worker_fams, APP_FAMS, CACHE_FAMS, CORE_FAMS, CRON_FAMS, DUPLICATES, LOAD,
    METRIC_VALUE, SCRAPE_FAMS, SOCKET_FAMS, SPOOLER_FAMS, VERSION_INFO, WORKERS,
};
use tables::{DROPPED_LABEL_SETS, LAST_SUCCESS, REPAIRS};

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
    "upstream",
];

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
    for (m, get) in target_fams::<P>() {
        sink.family(&m);
        sink.sample(&t, get(v));
    }
    let workers = kept_workers(v, opts, &mut dups);
    sink.family(&WORKERS);
    sink.sample(&t, workers.len() as f64);
    sink.family(&LOAD);
    sink.sample(&t, v.load as f64);
    sink.family(&VERSION_INFO);
    sink.sample(&[("target", target), ("version", &v.version)], 1.0);
    map_sockets(v, target, &mut dups, sink);
    map_workers(&workers, target, opts, sink);
    map_caches_and_spoolers(v, target, &mut dups, sink);
    map_crons(v, target, opts, sink);
    map_metrics(v, target, opts, &mut dups, sink);
    sink.family(&DUPLICATES);
    sink.sample(&t, dups as f64);
    MapSummary { duplicates: dups }
}

/// Live workers (id 0 is a stand-by cheaper slot), first of each id, with
/// their de-duplicated apps and (per-core mapping only) cores.
fn kept_workers<'v, 'a, const P: bool>(
    v: &'v ViewOf<'a, P>,
    opts: &MapOptions,
    dups: &mut u64,
) -> Vec<Kept<'v, 'a, P>> {
    let live: Vec<&WorkerView<CoreEntries<P>>> = v.workers.iter().filter(|w| w.id != 0).collect();
    first_of_each(&live, dups, |w| w.id)
        .into_iter()
        .map(|w| Kept {
            w,
            id: w.id.to_string(),
            apps: first_of_each(&w.apps, dups, |a| a.id),
            cores: if opts.per_core {
                first_of_each(&w.cores.list, dups, |c| c.id)
            } else {
                Vec::new()
            },
        })
        .collect()
}

fn map_sockets<S: Sink, const P: bool>(
    v: &ViewOf<'_, P>,
    target: &str,
    dups: &mut u64,
    sink: &mut S,
) {
    let sockets = first_of_each(&v.sockets, dups, |s| (s.name.as_ref(), s.proto.as_ref()));
    for (m, get) in SOCKET_FAMS {
        sink.family(&m);
        for s in &sockets {
            sink.sample(
                &[("target", target), ("name", &s.name), ("proto", &s.proto)],
                get(s),
            );
        }
    }
}

/// The worker families, then their apps', then (per-core only) their cores'.
fn map_workers<S: Sink, const P: bool>(
    workers: &[Kept<'_, '_, P>],
    target: &str,
    opts: &MapOptions,
    sink: &mut S,
) {
    for (m, get) in worker_fams::<P>() {
        sink.family(&m);
        for k in workers {
            sink.sample(&[("target", target), ("worker_id", &k.id)], get(k.w));
        }
    }
    let mut id = String::new();
    for (m, get) in APP_FAMS {
        sink.family(&m);
        for k in workers {
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
    if !opts.per_core {
        return;
    }
    for (m, get) in CORE_FAMS {
        sink.family(&m);
        for k in workers {
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

fn map_caches_and_spoolers<S: Sink, const P: bool>(
    v: &ViewOf<'_, P>,
    target: &str,
    dups: &mut u64,
    sink: &mut S,
) {
    let caches = first_of_each(&v.caches, dups, |c| c.name.as_ref());
    for (m, get) in CACHE_FAMS {
        sink.family(&m);
        for c in &caches {
            sink.sample(&[("target", target), ("name", &c.name)], get(c));
        }
    }
    let spoolers = first_of_each(&v.spoolers, dups, |s| s.dir.as_ref());
    for (m, get) in SPOOLER_FAMS {
        sink.family(&m);
        for s in &spoolers {
            sink.sample(&[("target", target), ("spooler", &s.dir)], get(s));
        }
    }
}

/// Crons: identified by position (fixed by the uWSGI config), so no two
/// entries share an identity; the command only on request.
fn map_crons<S: Sink, const P: bool>(
    v: &ViewOf<'_, P>,
    target: &str,
    opts: &MapOptions,
    sink: &mut S,
) {
    let mut id = String::new();
    for (m, get) in CRON_FAMS {
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
}

/// `--enable-metrics`: one family, the uWSGI name and type as labels.
fn map_metrics<S: Sink, const P: bool>(
    v: &ViewOf<'_, P>,
    target: &str,
    opts: &MapOptions,
    dups: &mut u64,
    sink: &mut S,
) {
    sink.family(&METRIC_VALUE);
    if !opts.uwsgi_metrics {
        return;
    }
    let mut exported: Vec<&(std::borrow::Cow<str>, MetricView)> = v
        .metrics
        .0
        .iter()
        .filter(|(name, _)| opts.per_core || !is_per_core_metric(name))
        .collect();
    // By name, as the owned model's map holds them; the sort is stable,
    // so the first of a repeated name stays first.
    exported.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, m) in first_of_each(&exported, dups, |e| e.0.as_ref()) {
        sink.sample(
            &[("target", target), ("name", name), ("type", m.kind_name())],
            m.value as f64,
        );
    }
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
    for (m, get) in SCRAPE_FAMS {
        sink.family(&m);
        sink.sample(&t, get(s));
    }
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
    let own = |m: &Meta, labels: Vec<(&'static str, String)>, value: u64| Family {
        samples: vec![Sample {
            labels,
            value: value as f64,
        }],
        ..Family::from_meta(m)
    };
    let t = || vec![("target", target.to_string())];
    out.push(own(&REPAIRS, t(), repairs));
    out.push(own(&LAST_SUCCESS, t(), now_s));
    out.push(own(&DROPPED_LABEL_SETS, Vec::new(), 0));
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
