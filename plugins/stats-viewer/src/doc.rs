//! The part of a uWSGI stats document the viewer draws: exactly the keys
//! [`crate::derive`] reads, decoded by core ([`view::decode_as`]: HTTP
//! stripping, invalid-JSON repair, limits, errors with the JSON path).
//!
//! Why not core's `StatsDocument`: decoding it was ~70 % of a poll's Wasm
//! time, partly on keys the page never shows (`locks`, one `String` per
//! lock; every per-core counter; `metrics`, `crons`, `daemons`, `uid`, …).
//! Here serde skips those with `IgnoredAny` (no allocation, no integer
//! parsing) and reads of each core only `in_request`: ~6 % fewer
//! instructions per decode, ~7 % per poll in Node, a smaller module (the
//! scan of the skipped bytes remains; see the README's numbers). Not core's borrowed
//! `View` either: the page keeps the previous poll's document for rates, so
//! the model must own its strings (few: version, cwd, statuses, names).
//!
//! Accepts what `StatsDocument` accepts for the keys read here (same
//! required keys, types and limits); like core's `View`, it is more lenient
//! only about keys it never reads. [`Document::from`] gives the same value
//! from an owned `StatsDocument` (the Envoy snapshot carries those).

use std::fmt;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use uwsgi_red_core::stats::{limits, view, StatsError, DEFAULT_MAX_DOCUMENT_BYTES};
use uwsgi_red_core::stats::{Cache, Socket, Spooler, StatsDocument, WorkerStatus};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Document {
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
    #[serde(default)]
    pub cwd: String,
    #[serde(default, deserialize_with = "limits::list")]
    pub sockets: Vec<Socket>,
    #[serde(deserialize_with = "limits::list")]
    pub workers: Vec<Worker>,
    #[serde(default, deserialize_with = "limits::nullable_list")]
    pub caches: Vec<Cache>,
    #[serde(default, deserialize_with = "limits::nullable_list")]
    pub spoolers: Vec<Spooler>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct Worker {
    /// 0 marks a stand-by slot in adaptive (cheaper) mode; not a real worker.
    pub id: u64,
    pub pid: i64,
    pub accepting: u64,
    pub requests: u64,
    pub exceptions: u64,
    pub harakiri_count: u64,
    pub signals: u64,
    pub status: WorkerStatus,
    pub rss: u64,
    pub vsz: u64,
    pub running_time: u64,
    pub last_spawn: u64,
    pub respawn_count: u64,
    pub tx: u64,
    pub avg_rt: u64,
    #[serde(deserialize_with = "limits::list")]
    pub apps: Vec<App>,
    pub cores: Cores,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct App {
    pub id: u64,
    pub modifier1: u64,
    #[serde(deserialize_with = "limits::label_owned")]
    pub mountpoint: String,
    pub requests: u64,
    pub exceptions: u64,
    #[serde(deserialize_with = "limits::label_owned")]
    pub chdir: String,
}

/// A worker's `cores`, counted: all of them, and those serving a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cores {
    pub count: usize,
    /// Cores with `in_request` set.
    pub busy: usize,
}

/// The one key of a core the page reads.
#[derive(Default, Deserialize)]
#[serde(default)]
struct CoreInRequest {
    in_request: u64,
}

impl<'de> Deserialize<'de> for Cores {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CoresVisitor;
        impl<'de> Visitor<'de> for CoresVisitor {
            type Value = Cores;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of cores")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cores, A::Error> {
                let mut out = Cores::default();
                while let Some(core) = seq.next_element::<CoreInRequest>()? {
                    // After reading the entry over the bound, as limits::list
                    // does: the error is positioned (and so named) alike.
                    limits::check_entries::<A::Error>(out.count)?;
                    out.count = out.count.saturating_add(1);
                    if core.in_request != 0 {
                        out.busy = out.busy.saturating_add(1);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(CoresVisitor)
    }
}

/// A decoded document and how it was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub document: Document,
    /// Strings rewritten by core's invalid-JSON repair; 0 for valid JSON.
    pub repairs: usize,
    /// Size of the JSON body (after any HTTP head).
    pub body_bytes: usize,
}

/// Decodes a stats reply (raw or HTTP) as `core::stats::decode` does, into
/// the viewer's model.
pub fn decode(reply: &[u8]) -> Result<Decoded, StatsError> {
    let d = view::decode_as::<Document>(reply, DEFAULT_MAX_DOCUMENT_BYTES)?;
    Ok(Decoded {
        document: d.value,
        repairs: d.repairs,
        body_bytes: d.body_bytes,
    })
}

impl Document {
    /// Workers that are real processes (id != 0).
    pub fn live_workers(&self) -> impl Iterator<Item = &Worker> {
        self.workers.iter().filter(|w| w.id != 0)
    }
}

impl From<&StatsDocument> for Document {
    fn from(d: &StatsDocument) -> Self {
        Document {
            version: d.version.clone(),
            listen_queue: d.listen_queue,
            listen_queue_errors: d.listen_queue_errors,
            signal_queue: d.signal_queue,
            load: d.load,
            pid: d.pid,
            cwd: d.cwd.clone(),
            sockets: d.sockets.clone(),
            workers: d
                .workers
                .iter()
                .map(|w| Worker {
                    id: w.id,
                    pid: w.pid,
                    accepting: w.accepting,
                    requests: w.requests,
                    exceptions: w.exceptions,
                    harakiri_count: w.harakiri_count,
                    signals: w.signals,
                    status: w.status.clone(),
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
                        .map(|a| App {
                            id: a.id,
                            modifier1: a.modifier1,
                            mountpoint: a.mountpoint.clone(),
                            requests: a.requests,
                            exceptions: a.exceptions,
                            chdir: a.chdir.clone(),
                        })
                        .collect(),
                    cores: Cores {
                        count: w.cores.len(),
                        busy: w.cores.iter().filter(|c| c.in_request != 0).count(),
                    },
                })
                .collect(),
            caches: d.caches.clone().unwrap_or_default(),
            spoolers: d.spoolers.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uwsgi_red_core::stats;

    fn vectors() -> Vec<(String, Vec<u8>)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../core/tests/vectors/");
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_str().unwrap();
                n.starts_with("stats_")
            })
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        out.sort();
        out
    }

    /// The viewer's decode gives, on every capture, what core's full decode
    /// gives once narrowed: same values, repairs and body size.
    #[test]
    fn equals_the_full_model_on_every_capture() {
        let all = vectors();
        assert_eq!(all.len(), 20);
        for (name, bytes) in all {
            let full = stats::decode(&bytes).unwrap();
            let light = decode(&bytes).unwrap();
            assert_eq!(light.document, Document::from(&full.document), "{name}");
            assert_eq!(
                (light.repairs, light.body_bytes),
                (full.repairs, full.body_bytes),
                "{name}"
            );
        }
    }

    #[test]
    fn counts_cores_and_busy_ones() {
        let json = br#"{"version":"x","workers":[{"id":1,"cores":[{"in_request":1,"vars":["A=b"]},{"id":1},{"in_request":0},{"in_request":7}]}]}"#;
        let d = decode(json).unwrap().document;
        assert_eq!(d.workers[0].cores, Cores { count: 4, busy: 2 });
    }

    /// Errors on the keys read are core's, word for word; keys never read
    /// are not checked (as core's borrowed `View` does not check them).
    #[test]
    fn errors_are_the_full_decoders_on_keys_read() {
        for bad in [
            &br#"{"workers":[]}"#[..],
            br#"{"version":"2","workers":[{"id":"one"}]}"#,
            br#"{"version":"2","workers":[{"id":1,"cores":[{"in_request":"x"}]}]}"#,
            br#"{"version":"2","workers":[{"id":1,"apps":[{"mountpoint":5}]}]}"#,
            br#"{"version":"2","caches":[{"hits":-1}],"workers":[]}"#,
            br#"{"version":"2","workers":[{"status":1}]}"#,
            b"{\"version\":\"2.0.30\",\"workers\":[",
            b"<html>",
            b"",
            b"HTTP/1.1 503 Service Unavailable\r\n\r\n",
        ] {
            let full = stats::decode(bad).unwrap_err();
            let light = decode(bad).unwrap_err();
            assert_eq!(light.to_string(), full.to_string());
            assert_eq!(light.reason(), full.reason());
        }
        let json = br#"{"version":"2","uid":"root","locks":[1],"workers":[{"id":1,"delta_requests":"x","cores":[{"requests":"x"}]}]}"#;
        assert!(stats::decode(json).is_err());
        assert_eq!(decode(json).unwrap().document.workers[0].cores.count, 1);
    }

    #[test]
    fn a_label_over_the_limit_is_a_limit_error() {
        let long = "a".repeat(limits::MAX_LABEL_BYTES + 1);
        let json =
            format!(r#"{{"version":"2","workers":[{{"id":1,"apps":[{{"chdir":"{long}"}}]}}]}}"#);
        let e = decode(json.as_bytes()).unwrap_err();
        assert_eq!(e.reason(), "limit");
        assert_eq!(
            e.to_string(),
            stats::decode(json.as_bytes()).unwrap_err().to_string()
        );
    }
}
