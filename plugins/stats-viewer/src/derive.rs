//! What the page draws, derived from decoded stats documents: one snapshot's
//! view (worker rows, status counts, totals, queues, apps, caches) and the
//! rates between two snapshots of the same server.
//!
//! Plain Rust over [`crate::doc`] (the keys of the document the page draws),
//! so it is tested natively; the JS adapter (`lib.rs`, `pack.rs`) only hands
//! these structs to JS. Nothing here reads `vars`: the model never holds them.

use std::fmt;

use uwsgi_red_core::stats::{Cache, Socket, Spooler, WorkerStatus};

use crate::doc::{Document, Worker};

#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub version: String,
    pub pid: i64,
    pub cwd: String,
    pub load: u64,
    pub listen_queue: u64,
    pub listen_queue_errors: u64,
    pub signal_queue: u64,
    pub workers: Vec<WorkerRow>,
    pub status: StatusCounts,
    pub totals: Totals,
    /// Request-weighted mean of the workers' `avg_rt` (µs); 0 before any
    /// request. uWSGI's own `avg_rt` is a running `(prev+new)/2`, so this is
    /// indicative; [`Rates::mean_rt_us`] is the exact per-interval mean.
    pub avg_rt_us: f64,
    /// Deduplicated by name and protocol (uWSGI can list a socket twice).
    pub sockets: Vec<Socket>,
    /// Apps summed over the workers that loaded them.
    pub apps: Vec<AppRow>,
    pub caches: Vec<Cache>,
    pub spoolers: Vec<Spooler>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    pub id: u64,
    pub pid: i64,
    /// Verbatim status (`idle`, `busy`, `sig3`, ...).
    pub status: String,
    /// One of [`StatusCounts`]' field names, for colouring.
    pub status_class: &'static str,
    pub accepting: u64,
    pub requests: u64,
    pub exceptions: u64,
    pub harakiri_count: u64,
    pub respawn_count: u64,
    pub signals: u64,
    pub rss: u64,
    pub vsz: u64,
    pub tx: u64,
    pub avg_rt_us: u64,
    pub running_time_us: u64,
    pub last_spawn: u64,
    pub apps: usize,
    pub cores: usize,
    /// Cores with `in_request` set.
    pub busy_cores: usize,
}

/// Live workers (id != 0) per status class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusCounts {
    pub idle: u64,
    pub busy: u64,
    pub cheap: u64,
    pub pause: u64,
    /// Running a signal handler (`sig<N>`).
    pub signal: u64,
    pub other: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub workers: u64,
    pub requests: u64,
    pub exceptions: u64,
    pub harakiri: u64,
    pub respawns: u64,
    pub tx: u64,
    pub rss: u64,
    pub cores: u64,
    pub busy_cores: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRow {
    pub id: u64,
    pub mountpoint: String,
    pub chdir: String,
    pub modifier1: u64,
    /// Workers that list this app.
    pub workers: u64,
    pub requests: u64,
    pub exceptions: u64,
}

pub fn status_class(s: &WorkerStatus) -> &'static str {
    match s {
        WorkerStatus::Idle => "idle",
        WorkerStatus::Busy => "busy",
        WorkerStatus::Cheap => "cheap",
        WorkerStatus::Pause => "pause",
        WorkerStatus::Signal(_) => "signal",
        WorkerStatus::Other(_) => "other",
    }
}

impl StatusCounts {
    fn add(&mut self, s: &WorkerStatus) {
        let slot = match s {
            WorkerStatus::Idle => &mut self.idle,
            WorkerStatus::Busy => &mut self.busy,
            WorkerStatus::Cheap => &mut self.cheap,
            WorkerStatus::Pause => &mut self.pause,
            WorkerStatus::Signal(_) => &mut self.signal,
            WorkerStatus::Other(_) => &mut self.other,
        };
        *slot = slot.saturating_add(1);
    }
}

fn worker_row(w: &Worker) -> WorkerRow {
    WorkerRow {
        id: w.id,
        pid: w.pid,
        status: w.status.as_string(),
        status_class: status_class(&w.status),
        accepting: w.accepting,
        requests: w.requests,
        exceptions: w.exceptions,
        harakiri_count: w.harakiri_count,
        respawn_count: w.respawn_count,
        signals: w.signals,
        rss: w.rss,
        vsz: w.vsz,
        tx: w.tx,
        avg_rt_us: w.avg_rt,
        running_time_us: w.running_time,
        last_spawn: w.last_spawn,
        apps: w.apps.len(),
        cores: w.cores.count,
        busy_cores: w.cores.busy,
    }
}

pub fn view(doc: &Document) -> View {
    let workers: Vec<WorkerRow> = doc.live_workers().map(worker_row).collect();
    let mut status = StatusCounts::default();
    doc.live_workers().for_each(|w| status.add(&w.status));

    let mut totals = Totals::default();
    let (mut rt_weighted, mut rt_weight) = (0f64, 0f64);
    for w in &workers {
        totals.workers = totals.workers.saturating_add(1);
        totals.requests = totals.requests.saturating_add(w.requests);
        totals.exceptions = totals.exceptions.saturating_add(w.exceptions);
        totals.harakiri = totals.harakiri.saturating_add(w.harakiri_count);
        totals.respawns = totals.respawns.saturating_add(w.respawn_count);
        totals.tx = totals.tx.saturating_add(w.tx);
        totals.rss = totals.rss.saturating_add(w.rss);
        totals.cores = totals.cores.saturating_add(w.cores as u64);
        totals.busy_cores = totals.busy_cores.saturating_add(w.busy_cores as u64);
        if w.requests > 0 {
            rt_weighted += w.avg_rt_us as f64 * w.requests as f64;
            rt_weight += w.requests as f64;
        }
    }
    let avg_rt_us = if rt_weight > 0.0 {
        rt_weighted / rt_weight
    } else {
        0.0
    };

    let mut sockets: Vec<Socket> = Vec::with_capacity(doc.sockets.len());
    for s in &doc.sockets {
        if !sockets
            .iter()
            .any(|k| k.name == s.name && k.proto == s.proto)
        {
            sockets.push(s.clone());
        }
    }

    let mut apps: Vec<AppRow> = Vec::new();
    for a in doc.live_workers().flat_map(|w| &w.apps) {
        match apps
            .iter_mut()
            .find(|r| r.id == a.id && r.mountpoint == a.mountpoint)
        {
            Some(r) => {
                r.workers = r.workers.saturating_add(1);
                r.requests = r.requests.saturating_add(a.requests);
                r.exceptions = r.exceptions.saturating_add(a.exceptions);
            }
            None => apps.push(AppRow {
                id: a.id,
                mountpoint: a.mountpoint.clone(),
                chdir: a.chdir.clone(),
                modifier1: a.modifier1,
                workers: 1,
                requests: a.requests,
                exceptions: a.exceptions,
            }),
        }
    }

    View {
        version: doc.version.clone(),
        pid: doc.pid,
        cwd: doc.cwd.clone(),
        load: doc.load,
        listen_queue: doc.listen_queue,
        listen_queue_errors: doc.listen_queue_errors,
        signal_queue: doc.signal_queue,
        workers,
        status,
        totals,
        avg_rt_us,
        sockets,
        apps,
        caches: doc.caches.clone(),
        spoolers: doc.spoolers.clone(),
    }
}

/// Per-second rates over the interval between two snapshots of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    pub elapsed_s: f64,
    pub requests_per_s: f64,
    pub exceptions_per_s: f64,
    pub tx_bytes_per_s: f64,
    /// Mean response time of the requests finished in the interval
    /// (Δrunning_time / Δrequests, µs); `None` when none finished.
    pub mean_rt_us: Option<f64>,
    /// The master pid changed: uWSGI was restarted between the snapshots.
    pub restarted: bool,
    /// Workers present in both snapshots, in the current snapshot's order.
    pub workers: Vec<WorkerRate>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRate {
    pub id: u64,
    pub requests_per_s: f64,
    pub exceptions_per_s: f64,
    pub tx_bytes_per_s: f64,
    /// A counter went down (a respawn or a restart): the increase is then
    /// counted from zero, as Prometheus' `rate()` does.
    pub reset: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateError {
    BadInterval(f64),
}

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadInterval(s) => write!(
                f,
                "interval between snapshots must be a positive number of seconds, got {s}"
            ),
        }
    }
}

impl std::error::Error for RateError {}

/// Increase of a counter, restarting from zero when it went down.
fn increase(prev: u64, cur: u64) -> (u64, bool) {
    if cur >= prev {
        (cur.saturating_sub(prev), false)
    } else {
        (cur, true)
    }
}

pub fn rates(prev: &Document, cur: &Document, elapsed_s: f64) -> Result<Rates, RateError> {
    if !(elapsed_s.is_finite() && elapsed_s > 0.0) {
        return Err(RateError::BadInterval(elapsed_s));
    }
    let (mut d_req, mut d_exc, mut d_tx, mut d_rt) = (0u64, 0u64, 0u64, 0u64);
    let mut workers = Vec::with_capacity(cur.workers.len());
    for w in cur.live_workers() {
        let Some(p) = prev.live_workers().find(|p| p.id == w.id) else {
            continue;
        };
        let (req, r1) = increase(p.requests, w.requests);
        let (exc, r2) = increase(p.exceptions, w.exceptions);
        let (tx, r3) = increase(p.tx, w.tx);
        let (rt, r4) = increase(p.running_time, w.running_time);
        d_req = d_req.saturating_add(req);
        d_exc = d_exc.saturating_add(exc);
        d_tx = d_tx.saturating_add(tx);
        d_rt = d_rt.saturating_add(rt);
        workers.push(WorkerRate {
            id: w.id,
            requests_per_s: req as f64 / elapsed_s,
            exceptions_per_s: exc as f64 / elapsed_s,
            tx_bytes_per_s: tx as f64 / elapsed_s,
            reset: r1 || r2 || r3 || r4,
        });
    }
    Ok(Rates {
        elapsed_s,
        requests_per_s: d_req as f64 / elapsed_s,
        exceptions_per_s: d_exc as f64 / elapsed_s,
        tx_bytes_per_s: d_tx as f64 / elapsed_s,
        mean_rt_us: (d_req > 0).then(|| d_rt as f64 / d_req as f64),
        restarted: prev.pid != cur.pid,
        workers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::decode;

    fn vector(name: &str) -> Document {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../core/tests/vectors/");
        let bytes = std::fs::read(format!("{p}{name}")).unwrap();
        decode(&bytes).unwrap().document
    }

    fn doc(workers: &[(u64, i64, &str, u64, u64, u64, u64)]) -> Document {
        let ws: Vec<String> = workers
            .iter()
            .map(|(id, pid, st, req, exc, tx, rt)| {
                format!(
                    r#"{{"id":{id},"pid":{pid},"status":"{st}","requests":{req},"exceptions":{exc},"tx":{tx},"running_time":{rt},"avg_rt":{rt}}}"#
                )
            })
            .collect();
        let json = format!(
            r#"{{"version":"2.0.30","pid":1,"workers":[{}]}}"#,
            ws.join(",")
        );
        decode(json.as_bytes()).unwrap().document
    }

    #[test]
    fn status_counts_cover_every_class_and_skip_standby_slots() {
        let d = doc(&[
            (1, 11, "idle", 0, 0, 0, 0),
            (2, 12, "busy", 0, 0, 0, 0),
            (3, 13, "busy", 0, 0, 0, 0),
            (4, 14, "cheap", 0, 0, 0, 0),
            (5, 15, "pause", 0, 0, 0, 0),
            (6, 16, "sig7", 0, 0, 0, 0),
            (7, 17, "weird", 0, 0, 0, 0),
            (0, 0, "busy", 0, 0, 0, 0),
        ]);
        let v = view(&d);
        assert_eq!(
            v.status,
            StatusCounts {
                idle: 1,
                busy: 2,
                cheap: 1,
                pause: 1,
                signal: 1,
                other: 1
            }
        );
        assert_eq!(v.totals.workers, 7);
        assert_eq!(
            v.workers.iter().map(|w| w.status_class).collect::<Vec<_>>(),
            ["idle", "busy", "busy", "cheap", "pause", "signal", "other"]
        );
        assert_eq!(v.workers[5].status, "sig7");
    }

    #[test]
    fn avg_rt_is_request_weighted_and_zero_when_idle() {
        let d = doc(&[
            (1, 1, "idle", 3, 0, 0, 1000),
            (2, 2, "idle", 1, 0, 0, 5000),
            (3, 3, "idle", 0, 0, 0, 9999),
        ]);
        assert_eq!(view(&d).avg_rt_us, (3.0 * 1000.0 + 5000.0) / 4.0);
        assert_eq!(view(&doc(&[(1, 1, "idle", 0, 0, 0, 0)])).avg_rt_us, 0.0);
    }

    #[test]
    fn rates_per_worker_and_total() {
        let a = doc(&[
            (1, 11, "idle", 10, 1, 1000, 50_000),
            (2, 12, "idle", 20, 0, 2000, 0),
        ]);
        let b = doc(&[
            (1, 11, "busy", 30, 3, 5000, 150_000),
            (2, 12, "idle", 20, 0, 2000, 0),
        ]);
        let r = rates(&a, &b, 2.0).unwrap();
        assert_eq!(r.requests_per_s, 10.0);
        assert_eq!(r.exceptions_per_s, 1.0);
        assert_eq!(r.tx_bytes_per_s, 2000.0);
        assert_eq!(r.mean_rt_us, Some(5000.0));
        assert!(!r.restarted);
        assert_eq!(r.workers.len(), 2);
        assert_eq!(
            r.workers[0],
            WorkerRate {
                id: 1,
                requests_per_s: 10.0,
                exceptions_per_s: 1.0,
                tx_bytes_per_s: 2000.0,
                reset: false
            }
        );
        assert_eq!(r.workers[1].requests_per_s, 0.0);
        assert_eq!(rates(&a, &a, 1.0).unwrap().mean_rt_us, None);
    }

    #[test]
    fn counter_reset_counts_from_zero_and_new_workers_are_skipped() {
        let a = doc(&[(1, 11, "idle", 100, 0, 0, 0)]);
        let b = doc(&[(1, 99, "idle", 4, 0, 0, 0), (2, 98, "idle", 50, 0, 0, 0)]);
        let r = rates(&a, &b, 1.0).unwrap();
        assert_eq!(r.workers.len(), 1);
        assert!(r.workers[0].reset);
        assert_eq!(r.requests_per_s, 4.0);
    }

    #[test]
    fn restart_is_flagged_by_master_pid() {
        let a = vector("stats_a_2proc_idle_raw.json");
        let b = vector("stats_a_2proc_idle_http.json");
        assert!(rates(&a, &b, 1.0).unwrap().restarted);
        assert!(!rates(&a, &a, 1.0).unwrap().restarted);
    }

    #[test]
    fn bad_interval_is_an_error() {
        let a = doc(&[(1, 1, "idle", 0, 0, 0, 0)]);
        for s in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(rates(&a, &a, s).is_err(), "{s}");
        }
        assert!(rates(&a, &a, 0.0)
            .unwrap_err()
            .to_string()
            .contains("positive"));
    }

    #[test]
    fn real_load_interval_between_captures() {
        // Same instance: during the slow requests, then after they finished.
        let during = vector("stats_b_4x4_load_http.json");
        let after = vector("stats_b_4x4_after_load_http.json");
        let v = view(&during);
        assert_eq!(v.totals.workers, 4);
        assert_eq!(v.status.busy + v.status.idle, 4);
        assert!(v.status.busy > 0);
        assert!(v.totals.busy_cores > 0);
        let r = rates(&during, &after, 4.0).unwrap();
        let sum: f64 = r.workers.iter().map(|w| w.requests_per_s).sum();
        assert_eq!(r.requests_per_s, sum);
        let d_req = view(&after).totals.requests - v.totals.requests;
        assert_eq!(r.requests_per_s, d_req as f64 / 4.0);
        assert!(r.workers.iter().all(|w| !w.reset));
    }

    #[test]
    fn apps_are_summed_across_workers_and_sockets_deduplicated() {
        let d = vector("stats_j_exceptions_http.json");
        let v = view(&d);
        assert_eq!(v.apps.len(), 1);
        assert_eq!(v.apps[0].workers, 2);
        assert_eq!(v.apps[0].exceptions, 5);
        assert_eq!(v.totals.exceptions, 5);
        let json = r#"{"version":"x","workers":[],"sockets":[{"name":"a","proto":"uwsgi"},{"name":"a","proto":"uwsgi"},{"name":"a","proto":"http"}]}"#;
        let v = view(&decode(json.as_bytes()).unwrap().document);
        assert_eq!(v.sockets.len(), 2);
    }

    #[test]
    fn caches_and_spoolers_are_carried() {
        let v = view(&vector("stats_e_cache_spooler_cron_raw.json"));
        assert_eq!(v.caches.len(), 1);
        assert_eq!(
            (v.caches[0].items, v.caches[0].hits, v.caches[0].miss),
            (7, 4, 2)
        );
        assert_eq!(v.spoolers.len(), 1);
    }
}
