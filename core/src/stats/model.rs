//! Typed model of the uWSGI 2.0.x stats document (`uwsgi_master_generate_stats`).
//!
//! Deserialisation rules, chosen so that one odd server cannot cost a scrape:
//! - unknown keys are ignored (newer uWSGI versions and plugins add keys);
//! - `version` and `workers` are required, everything else defaults to zero or
//!   empty (`listen_queue_errors` is Linux-only, cores have no `exceptions`,
//!   `--stats-no-cores` drops `cores`);
//! - a present key with the wrong JSON type is an error carrying its JSON path.
//!
//! Per-core `vars` (the live request's CGI variables: cookies, auth headers)
//! have no field here, so serde skips them with `IgnoredAny` while parsing:
//! they are never allocated, stored, serialised or exported.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::limits;

/// The whole document. `Serialize` writes the same key names back (minus
/// `vars`), which is the snapshot format served to the browser viewer.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StatsDocument {
    #[serde(deserialize_with = "limits::label_owned")]
    pub version: String,
    #[serde(default)]
    pub listen_queue: u64,
    #[serde(default)]
    pub listen_queue_errors: u64,
    #[serde(default)]
    pub signal_queue: u64,
    #[serde(default)]
    pub load: u64,
    #[serde(default)]
    pub pid: i64,
    /// `None` when absent, or removed by [`StatsDocument::redact`]
    /// (process details: not written to a snapshot by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<i64>,
    /// Empty when absent or redacted (then not serialised).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cwd: String,
    #[serde(default, deserialize_with = "limits::list")]
    pub locks: Vec<Lock>,
    #[serde(default, deserialize_with = "limits::list")]
    pub sockets: Vec<Socket>,
    #[serde(deserialize_with = "limits::list")]
    pub workers: Vec<Worker>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "limits::opt_list"
    )]
    pub caches: Option<Vec<Cache>>,
    /// `--enable-metrics`: `{"core.busy_workers": {...}, ...}`.
    /// A repeated name keeps its first value.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "limits::opt_label_map"
    )]
    pub metrics: Option<BTreeMap<String, UwsgiMetric>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "limits::opt_list"
    )]
    pub spoolers: Option<Vec<Spooler>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "limits::opt_list"
    )]
    pub crons: Option<Vec<Cron>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "limits::opt_list"
    )]
    pub daemons: Option<Vec<Daemon>>,
}

/// One entry of `locks`: uWSGI writes each as a one-key object `{"name": pid}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub name: String,
    pub pid: i64,
}

impl<'de> Deserialize<'de> for Lock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LockVisitor;
        impl<'de> Visitor<'de> for LockVisitor {
            type Value = Lock;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a one-key object {\"lock name\": pid}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lock, A::Error> {
                let (name, pid) = map
                    .next_entry::<String, i64>()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                // Extra keys would be a format change; keep the first, skip the rest.
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Lock { name, pid })
            }
        }
        d.deserialize_map(LockVisitor)
    }
}

impl Serialize for Lock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(&self.name, &self.pid)?;
        m.end()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Socket {
    #[serde(deserialize_with = "limits::label_owned")]
    pub name: String,
    #[serde(deserialize_with = "limits::label_owned")]
    pub proto: String,
    pub queue: u64,
    pub max_queue: u64,
    pub shared: u64,
    pub can_offload: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Worker {
    /// 0 marks a stand-by slot in adaptive (cheaper) mode; not a real worker.
    pub id: u64,
    pub pid: i64,
    pub accepting: u64,
    pub requests: u64,
    pub delta_requests: u64,
    pub exceptions: u64,
    pub harakiri_count: u64,
    pub signals: u64,
    pub signal_queue: u64,
    pub status: WorkerStatus,
    /// Bytes; 0 unless uWSGI runs with `--memory-report`.
    pub rss: u64,
    pub vsz: u64,
    /// Cumulative µs spent serving requests.
    pub running_time: u64,
    /// Unix seconds.
    pub last_spawn: u64,
    pub respawn_count: u64,
    pub tx: u64,
    /// µs; uWSGI's running `(prev + new) / 2`, not a mean.
    pub avg_rt: u64,
    #[serde(deserialize_with = "limits::list")]
    pub apps: Vec<App>,
    #[serde(deserialize_with = "limits::list")]
    pub cores: Vec<Core>,
}

/// `status` of a worker: `idle|busy|cheap|pause|sig<N>`; anything else is kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WorkerStatus {
    #[default]
    Idle,
    Busy,
    Cheap,
    Pause,
    /// Running the handler of signal N.
    Signal(u8),
    Other(String),
}

impl WorkerStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "idle" => Self::Idle,
            "busy" => Self::Busy,
            "cheap" => Self::Cheap,
            "pause" => Self::Pause,
            _ => match s.strip_prefix("sig").and_then(|n| n.parse().ok()) {
                Some(n) => Self::Signal(n),
                None => Self::Other(s.to_string()),
            },
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            Self::Idle => "idle".into(),
            Self::Busy => "busy".into(),
            Self::Cheap => "cheap".into(),
            Self::Pause => "pause".into(),
            Self::Signal(n) => format!("sig{n}"),
            Self::Other(s) => s.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for WorkerStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StatusVisitor;
        impl Visitor<'_> for StatusVisitor {
            type Value = WorkerStatus;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a worker status string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WorkerStatus, E> {
                Ok(WorkerStatus::parse(v))
            }
        }
        d.deserialize_str(StatusVisitor)
    }
}

impl Serialize for WorkerStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct App {
    pub id: u64,
    pub modifier1: u64,
    #[serde(deserialize_with = "limits::label_owned")]
    pub mountpoint: String,
    /// Seconds the app took to load.
    pub startup_time: u64,
    pub requests: u64,
    pub exceptions: u64,
    #[serde(deserialize_with = "limits::label_owned")]
    pub chdir: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Core {
    pub id: u64,
    pub requests: u64,
    pub static_requests: u64,
    pub routed_requests: u64,
    pub offloaded_requests: u64,
    pub write_errors: u64,
    pub read_errors: u64,
    pub in_request: u64,
    pub req_info: ReqInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ReqInfo {
    /// Unix seconds the current request started; absent when idle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_start: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Cache {
    #[serde(deserialize_with = "limits::label_owned")]
    pub name: String,
    pub hash: String,
    pub hashsize: u64,
    pub keysize: u64,
    pub max_items: u64,
    pub blocks: u64,
    pub blocksize: u64,
    pub items: u64,
    pub hits: u64,
    pub miss: u64,
    pub full: u64,
    pub last_modified_at: u64,
}

/// One `--enable-metrics` entry.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct UwsgiMetric {
    /// 0 counter, 1 gauge, 2 absolute (uWSGI's `UWSGI_METRIC_*`).
    #[serde(rename = "type")]
    pub kind: u8,
    pub oid: String,
    pub value: i64,
}

impl UwsgiMetric {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            0 => "counter",
            1 => "gauge",
            2 => "absolute",
            _ => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Spooler {
    #[serde(deserialize_with = "limits::label_owned")]
    pub dir: String,
    pub pid: i64,
    pub tasks: u64,
    pub respawns: u64,
    pub running: u64,
}

/// `-1` in a schedule field means "any".
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Cron {
    pub minute: i64,
    pub hour: i64,
    pub day: i64,
    pub month: i64,
    pub week: i64,
    /// A command line (may hold credentials): empty when redacted, and then
    /// not serialised.
    #[serde(
        deserialize_with = "limits::label_owned",
        skip_serializing_if = "String::is_empty"
    )]
    pub command: String,
    pub unique: u64,
    /// -1 when the command is not running.
    pub pid: i64,
    /// Unix seconds of the last start; 0 if never started.
    pub started_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Daemon {
    /// A command line: empty when redacted, and then not serialised.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cmd: String,
    pub pid: i64,
    /// Always 0 in uWSGI 2.0.x (an upstream bug); kept for completeness.
    pub respawns: u64,
}

/// Which sensitive fields a copy of a document keeps (see
/// [`StatsDocument::redact`]); both off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keep {
    /// `crons[].command`.
    pub cron_commands: bool,
    /// `uid`, `gid`, `cwd`, `daemons[].cmd`.
    pub process_details: bool,
}

impl StatsDocument {
    /// Removes what can hold secrets or describes the host rather than the
    /// app's load: command lines (a cron's `curl -H 'Authorization: …'`,
    /// a daemon's arguments), the working directory and the process's
    /// uid/gid. What is removed is not serialised at all (absent keys read
    /// back as the defaults).
    pub fn redact(&mut self, keep: Keep) {
        if !keep.cron_commands {
            for c in self.crons.iter_mut().flatten() {
                c.command = String::new();
            }
        }
        if !keep.process_details {
            self.uid = None;
            self.gid = None;
            self.cwd = String::new();
            for d in self.daemons.iter_mut().flatten() {
                d.cmd = String::new();
            }
        }
    }

    /// Workers that are real processes (id != 0), as uwsgi_exporter counts them.
    pub fn live_workers(&self) -> impl Iterator<Item = &Worker> {
        self.workers.iter().filter(|w| w.id != 0)
    }
}
