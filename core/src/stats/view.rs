//! A borrowed view of a stats document: only what the metric mapping reads,
//! with strings borrowed from the input (`Cow::Borrowed` unless the JSON
//! escaped them). Everything else — `vars`, `cwd`, `locks`, unknown keys — is
//! skipped by serde with `IgnoredAny`, so a scrape allocates per entry, never
//! per byte, and never copies a string it does not export.
//!
//! The same view is built from an owned [`StatsDocument`] by borrowing
//! ([`View::from_document`]), so [`super::families`] has one mapping for both
//! the fast path ([`super::scrape`]) and callers that keep the document.
//!
//! Accepts what [`super::model`] accepts for the keys it reads (same required
//! keys, same types, same [`super::limits`]); it is more lenient only about
//! keys the mapping never reads.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::limits::{self, LabelKey};
use super::model::{StatsDocument, WorkerStatus};

/// `M` and `C` read the `metrics` object and each worker's `cores`; with
/// [`ViewOf`]`<false>`, for a mapping without per-core series,
/// per-core `metrics` entries and each worker's `cores` are skipped without
/// decoding (cores are only counted), which is most of a 64 × 16 document.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(bound(
    deserialize = "'de: 'a, M: Deserialize<'de> + Default, C: Deserialize<'de> + Default"
))]
pub struct View<'a, M = MetricEntries<'a, true>, C = CoreEntries<true>> {
    #[serde(borrow, deserialize_with = "limits::label")]
    pub version: Cow<'a, str>,
    #[serde(default)]
    pub listen_queue: u64,
    #[serde(default)]
    pub listen_queue_errors: u64,
    #[serde(default)]
    pub signal_queue: u64,
    #[serde(default)]
    pub load: u64,
    #[serde(borrow, default, deserialize_with = "limits::list")]
    pub sockets: Vec<SocketView<'a>>,
    #[serde(borrow, deserialize_with = "limits::list")]
    pub workers: Vec<WorkerView<'a, C>>,
    #[serde(borrow, default, deserialize_with = "limits::nullable_list")]
    pub caches: Vec<CacheView<'a>>,
    #[serde(default)]
    pub metrics: M,
    #[serde(borrow, default, deserialize_with = "limits::nullable_list")]
    pub spoolers: Vec<SpoolerView<'a>>,
    #[serde(borrow, default, deserialize_with = "limits::nullable_list")]
    pub crons: Vec<CronView<'a>>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct SocketView<'a> {
    #[serde(borrow, deserialize_with = "limits::label")]
    pub name: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "limits::label")]
    pub proto: Cow<'a, str>,
    pub queue: u64,
    pub max_queue: u64,
    pub shared: u64,
    pub can_offload: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct WorkerView<'a, C = CoreEntries<true>> {
    pub id: u64,
    pub pid: i64,
    pub accepting: u64,
    pub requests: u64,
    pub delta_requests: u64,
    pub exceptions: u64,
    pub harakiri_count: u64,
    pub signals: u64,
    pub signal_queue: u64,
    pub status: Status,
    pub rss: u64,
    pub vsz: u64,
    pub running_time: u64,
    pub last_spawn: u64,
    pub respawn_count: u64,
    pub tx: u64,
    pub avg_rt: u64,
    #[serde(borrow, deserialize_with = "limits::list")]
    pub apps: Vec<AppView<'a>>,
    pub cores: C,
}

/// A view whose per-core parts are read only when `PER_CORE` (serde's
/// derive takes no const generics, hence the two type parameters).
pub type ViewOf<'a, const PER_CORE: bool> =
    View<'a, MetricEntries<'a, PER_CORE>, CoreEntries<PER_CORE>>;

/// A worker's `cores`: how many there are, and with `PER_CORE` their values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoreEntries<const PER_CORE: bool> {
    pub count: usize,
    /// Empty unless `PER_CORE`.
    pub list: Vec<CoreView>,
}

impl<'de, const PER_CORE: bool> Deserialize<'de> for CoreEntries<PER_CORE> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CoresVisitor<const P: bool>;
        impl<'de, const P: bool> Visitor<'de> for CoresVisitor<P> {
            type Value = CoreEntries<P>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of cores")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = CoreEntries::default();
                loop {
                    let next = if P {
                        seq.next_element::<CoreView>()?.map(Some)
                    } else {
                        seq.next_element::<de::IgnoredAny>()?.map(|_| None)
                    };
                    let Some(core) = next else {
                        return Ok(out);
                    };
                    // After reading the entry over the bound, as limits::list
                    // does: the error is positioned (and so named) alike.
                    limits::check_entries(out.count)?;
                    out.list.extend(core);
                    out.count = out.count.saturating_add(1);
                }
            }
        }
        d.deserialize_seq(CoresVisitor::<PER_CORE>)
    }
}

/// The statuses the mapping exports as 0/1 gauges; the rest is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Idle,
    Busy,
    Cheap,
    Other,
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StatusVisitor;
        impl Visitor<'_> for StatusVisitor {
            type Value = Status;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a worker status string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Status, E> {
                Ok(match v {
                    "idle" => Status::Idle,
                    "busy" => Status::Busy,
                    "cheap" => Status::Cheap,
                    _ => Status::Other,
                })
            }
        }
        d.deserialize_str(StatusVisitor)
    }
}

impl From<&WorkerStatus> for Status {
    fn from(s: &WorkerStatus) -> Self {
        match s {
            WorkerStatus::Idle => Status::Idle,
            WorkerStatus::Busy => Status::Busy,
            WorkerStatus::Cheap => Status::Cheap,
            _ => Status::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct AppView<'a> {
    pub id: u64,
    #[serde(borrow, deserialize_with = "limits::label")]
    pub mountpoint: Cow<'a, str>,
    pub startup_time: u64,
    pub requests: u64,
    pub exceptions: u64,
    #[serde(borrow, deserialize_with = "limits::label")]
    pub chdir: Cow<'a, str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct CoreView {
    pub id: u64,
    pub requests: u64,
    pub static_requests: u64,
    pub routed_requests: u64,
    pub offloaded_requests: u64,
    pub write_errors: u64,
    pub read_errors: u64,
    pub in_request: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct CacheView<'a> {
    #[serde(borrow, deserialize_with = "limits::label")]
    pub name: Cow<'a, str>,
    pub items: u64,
    pub max_items: u64,
    pub hits: u64,
    pub miss: u64,
    pub full: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct SpoolerView<'a> {
    #[serde(borrow, deserialize_with = "limits::label")]
    pub dir: Cow<'a, str>,
    pub tasks: u64,
    pub respawns: u64,
    pub running: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct CronView<'a> {
    #[serde(borrow, deserialize_with = "limits::label")]
    pub command: Cow<'a, str>,
    pub pid: i64,
    pub started_at: u64,
}

/// One `--enable-metrics` value; `oid` is not exported and not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct MetricView {
    #[serde(rename = "type")]
    pub kind: u8,
    pub value: i64,
}

impl MetricView {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            0 => "counter",
            1 => "gauge",
            2 => "absolute",
            _ => "unknown",
        }
    }
}

/// The `metrics` object in document order (uWSGI writes it sorted by
/// registration; the mapping de-duplicates names, first one wins). With
/// `PER_CORE` false, `worker.N.core.M.*` entries are skipped while parsing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricEntries<'a, const PER_CORE: bool>(pub Vec<(Cow<'a, str>, MetricView)>);

/// Every metric entry.
pub type Metrics<'a> = MetricEntries<'a, true>;

/// `worker.N.core.M.*` entries grow with cores like the per-core families.
pub fn is_per_core_metric(name: &str) -> bool {
    // `starts_with("worker.") && contains(".core.")`, with `.core.` sought
    // from the prefix's dot: asked for every metric name while parsing, and
    // `str::contains` sets up a substring searcher for a ~25-byte name.
    name.as_bytes()
        .strip_prefix(b"worker")
        .is_some_and(|rest| rest.first() == Some(&b'.') && rest.windows(6).any(|w| w == b".core."))
}

impl<'de: 'a, 'a, const PER_CORE: bool> Deserialize<'de> for MetricEntries<'a, PER_CORE> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MetricsVisitor<const P: bool>;
        impl<'de, const P: bool> Visitor<'de> for MetricsVisitor<P> {
            type Value = MetricEntries<'de, P>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of uWSGI metrics")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MetricEntries::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MetricEntries::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                let mut entries = 0usize;
                while let Some(LabelKey(name)) = map.next_key::<LabelKey>()? {
                    limits::check_entries(entries)?;
                    entries = entries.saturating_add(1);
                    if !P && is_per_core_metric(&name) {
                        map.next_value::<de::IgnoredAny>()?;
                    } else {
                        out.push((name, map.next_value::<MetricView>()?));
                    }
                }
                Ok(MetricEntries(out))
            }
        }
        // `null` is an empty section, as in the owned model's `Option`.
        d.deserialize_option(MetricsVisitor::<PER_CORE>)
    }
}

impl<'a> View<'a> {
    /// Borrows an owned document (no string is copied).
    pub fn from_document(doc: &'a StatsDocument) -> Self {
        view_of(doc)
    }
}

/// Borrows an owned document as a [`ViewOf`]`<PER_CORE>`: without
/// `PER_CORE`, per-core parts are left out as a parsed view would leave them.
pub fn view_of<const PER_CORE: bool>(doc: &StatsDocument) -> ViewOf<'_, PER_CORE> {
    {
        let b = |s| Cow::Borrowed(String::as_str(s));
        View {
            version: b(&doc.version),
            listen_queue: doc.listen_queue,
            listen_queue_errors: doc.listen_queue_errors,
            signal_queue: doc.signal_queue,
            load: doc.load,
            sockets: doc
                .sockets
                .iter()
                .map(|s| SocketView {
                    name: b(&s.name),
                    proto: b(&s.proto),
                    queue: s.queue,
                    max_queue: s.max_queue,
                    shared: s.shared,
                    can_offload: s.can_offload,
                })
                .collect(),
            workers: doc
                .workers
                .iter()
                .map(|w| WorkerView {
                    id: w.id,
                    pid: w.pid,
                    accepting: w.accepting,
                    requests: w.requests,
                    delta_requests: w.delta_requests,
                    exceptions: w.exceptions,
                    harakiri_count: w.harakiri_count,
                    signals: w.signals,
                    signal_queue: w.signal_queue,
                    status: Status::from(&w.status),
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
                        .map(|a| AppView {
                            id: a.id,
                            mountpoint: b(&a.mountpoint),
                            startup_time: a.startup_time,
                            requests: a.requests,
                            exceptions: a.exceptions,
                            chdir: b(&a.chdir),
                        })
                        .collect(),
                    cores: CoreEntries {
                        count: w.cores.len(),
                        list: w
                            .cores
                            .iter()
                            .filter(|_| PER_CORE)
                            .map(|c| CoreView {
                                id: c.id,
                                requests: c.requests,
                                static_requests: c.static_requests,
                                routed_requests: c.routed_requests,
                                offloaded_requests: c.offloaded_requests,
                                write_errors: c.write_errors,
                                read_errors: c.read_errors,
                                in_request: c.in_request,
                            })
                            .collect(),
                    },
                })
                .collect(),
            caches: doc
                .caches
                .iter()
                .flatten()
                .map(|c| CacheView {
                    name: b(&c.name),
                    items: c.items,
                    max_items: c.max_items,
                    hits: c.hits,
                    miss: c.miss,
                    full: c.full,
                })
                .collect(),
            metrics: MetricEntries(
                doc.metrics
                    .iter()
                    .flatten()
                    .filter(|(name, _)| PER_CORE || !is_per_core_metric(name))
                    .map(|(name, m)| {
                        (
                            b(name),
                            MetricView {
                                kind: m.kind,
                                value: m.value,
                            },
                        )
                    })
                    .collect(),
            ),
            spoolers: doc
                .spoolers
                .iter()
                .flatten()
                .map(|s| SpoolerView {
                    dir: b(&s.dir),
                    tasks: s.tasks,
                    respawns: s.respawns,
                    running: s.running,
                })
                .collect(),
            crons: doc
                .crons
                .iter()
                .flatten()
                .map(|c| CronView {
                    command: b(&c.command),
                    pid: c.pid,
                    started_at: c.started_at,
                })
                .collect(),
        }
    }
}

/// A reply decoded into a caller's own partial model (see [`decode_as`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAs<T> {
    pub value: T,
    /// Strings rewritten by [`super::repair::repair`]; 0 for valid JSON.
    pub repairs: usize,
    /// Size of the JSON body (after any HTTP head).
    pub body_bytes: usize,
}

/// Decodes a reply into `T`, a model that reads only what its caller needs
/// (serde skips every other key with `IgnoredAny`, as this view does), with
/// [`super::decode_with_limit`]'s body checks, invalid-JSON repair and error
/// classification, so a lighter model keeps core's errors for the keys it
/// reads. `T` is owned: a repaired body lives only inside the call. For the
/// browser viewer, which keeps documents between polls.
pub fn decode_as<T: serde::de::DeserializeOwned>(
    reply: &[u8],
    max_bytes: usize,
) -> Result<DecodedAs<T>, super::StatsError> {
    let body = super::checked_body(reply, max_bytes)?;
    let (value, repairs) = super::with_repair(body, |json, _| super::parse::<T>(json))?;
    Ok(DecodedAs {
        value,
        repairs,
        body_bytes: body.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::is_per_core_metric;

    /// The byte scan answers as `starts_with("worker.") && contains(".core.")`.
    #[test]
    fn per_core_metric_names() {
        for name in [
            "worker.0.core.3.requests",
            "worker.12.core.0.x",
            "worker.core.x",
            "worker..core.",
            "worker.1.a.core.b",
            "worker.core",
            "worker.1.core",
            "worker.1.cores.x",
            "workers.core.x",
            "worker",
            "worker.",
            "core.busy_workers",
            "xworker.1.core.2.x",
            "",
            "worker.1.requests",
            "worker.é.core.ü",
        ] {
            let expected = name.starts_with("worker.") && name.contains(".core.");
            assert_eq!(is_per_core_metric(name), expected, "{name:?}");
        }
        assert!(is_per_core_metric("worker.0.core.3.requests"));
        assert!(!is_per_core_metric("worker.0.requests"));
    }
}
