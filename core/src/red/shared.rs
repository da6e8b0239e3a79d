//! Self-served RED state for hosts whose worker VMs share nothing but a
//! key/value store with compare-and-swap ([`KvStore`]).
//!
//! Each VM records into a local [`Delta`] (no host call per request, except
//! an admission lookup for a label set it has not seen). On a tick, before
//! answering a scrape and when the host tears the VM down, [`flush`] adds
//! the delta to the stored state with compare-and-swap.
//!
//! What the stored state promises:
//! - **never wiped**: keys live in a per-configuration namespace
//!   ([`super::admission::namespace`]), so a VM only ever reads state
//!   written for its own bucket bounds and cap, and labels are checked
//!   against the format before they are recorded ([`fits_format`]). A
//!   value that still cannot be decoded is left exactly as it is; the
//!   VM keeps its delta and counts `shared_state_undecodable`.
//! - **never rewound**: every write is a CAS over the value just read plus
//!   a delta, creation writes an empty value only where `get` reported the
//!   key absent, and a scrape shows only stored values (never a VM's
//!   unflushed delta), so any worker's answer is ≥ any earlier answer.
//!   A host that loses its store (nginx reload creates a fresh zone)
//!   shows a reset, not a rewind: every counter restarts together and
//!   `uwsgi_red_state_start_time_seconds` changes.
//! - **flush cost follows the change**: series are spread over
//!   [`super::admission::shard_count`] keys by label hash; a flush
//!   rewrites only the shards its delta touches (plus one small key for
//!   the totals).
//!
//! Values are a small versioned binary format ([`SharedState::encode`]);
//! every length is bounded and checked on decode, so foreign bytes are an
//! error, never a panic.
//!
//! Files: the binary format and its reader in `shared/format.rs`, the
//! per-VM delta and the key layout in `shared/delta.rs`, the
//! compare-and-swap flush protocol here.

use std::fmt;

use super::admission::MAX_CAS_ATTEMPTS;
use super::histogram::Buckets;
use super::kv::{CasWrite, KvError, KvStore};
use super::names::{REASON_CAS_CONTENDED, REASON_UNDECODABLE};

mod delta;
mod exemplar;
mod format;

pub use super::kv::Versioned;
pub use delta::{Delta, Layout};
pub use exemplar::{
    parse_traceparent, timestamp_text, Exemplar, Exemplars, TraceId, TraceparentError,
    TRACE_ID_LABEL,
};
pub use format::{fits_format, DecodeError, SharedState, MAX_LABEL_BYTES};

/// Why a flush left (part of) the delta for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlushError {
    Store(KvError),
    /// Lost [`MAX_CAS_ATTEMPTS`] races in a row on one key.
    Contended,
    /// The stored value is not a state this VM can read; it was left as
    /// it is (never replaced: other VMs' counts are in it).
    Undecodable(DecodeError),
}

impl FlushError {
    pub fn reason(&self) -> &'static str {
        match self {
            FlushError::Store(e) => e.reason(),
            FlushError::Contended => REASON_CAS_CONTENDED,
            FlushError::Undecodable(_) => REASON_UNDECODABLE,
        }
    }
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushError::Store(e) => write!(f, "shared data: {}", e.reason()),
            FlushError::Contended => {
                write!(f, "shared data: {MAX_CAS_ATTEMPTS} CAS mismatches in a row")
            }
            FlushError::Undecodable(e) => write!(f, "{e}"),
        }
    }
}

/// A flush: keys written, CAS retries, and the first failure (whose
/// delta part is kept and whose reason is counted in the delta).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushReport {
    pub written: usize,
    pub retries: u32,
    /// Keys found missing (evicted) and recreated empty.
    pub recreated: u32,
    pub failed: Option<FlushError>,
}

/// Creates the totals key (with the start time) and every shard, empty,
/// where absent. Runs in `on_configure`, before the VM records anything.
pub fn ensure_created<S: KvStore>(
    kv: &mut S,
    layout: &Layout,
    buckets: &Buckets,
    now_s: u64,
) -> Result<(), KvError> {
    let mut meta = SharedState::new(buckets.clone());
    meta.started_s = now_s;
    create_if_absent(kv, &layout.meta_key(), &meta.encode())?;
    let empty = SharedState::new(buckets.clone()).encode();
    for i in 0..layout.shards {
        create_if_absent(kv, &layout.shard_key(i), &empty)?;
    }
    Ok(())
}

fn create_if_absent<S: KvStore>(kv: &mut S, key: &str, empty: &[u8]) -> Result<(), KvError> {
    let (value, cas) = kv.get(key)?;
    if value.is_none() {
        // `cas` is None here: a create where the host supports one; a
        // mismatch means another VM created it first, which is as good.
        kv.set(key, empty, cas)?;
    }
    Ok(())
}

/// Adds the delta to the stored state, one CAS loop per touched key. Each
/// part of the delta is cleared only once it is stored, so a failed flush
/// loses nothing and counts nothing twice; `now_s` dates a totals key
/// that has to be recreated (a reset, shown as one).
pub fn flush<S: KvStore>(delta: &mut Delta, kv: &mut S, now_s: u64) -> FlushReport {
    let mut report = FlushReport::default();
    let shards: Vec<usize> = delta.shards.keys().copied().collect();
    for shard in shards {
        let key = delta.layout.shard_key(shard);
        let Some(pending) = delta.shards.get(&shard) else {
            continue;
        };
        let exemplars = delta.exemplars.get(&shard);
        let result = cas_update(kv, &key, &delta.buckets, 0, &mut report, |s| {
            s.add_series(pending.iter());
            if let Some(e) = exemplars {
                s.add_exemplars(e.iter());
            }
        });
        match result {
            Ok(()) => {
                delta.shards.remove(&shard);
                delta.exemplars.remove(&shard);
            }
            Err(e) => fail(&mut report, e),
        }
    }
    if delta.dropped > 0 || !delta.internal.is_empty() {
        let (dropped, internal) = (delta.dropped, delta.internal.clone());
        let key = delta.layout.meta_key();
        let result = cas_update(kv, &key, &delta.buckets, now_s, &mut report, |s| {
            s.add_totals(dropped, internal.iter().map(|(k, v)| (*k, *v)))
        });
        match result {
            Ok(()) => {
                delta.dropped = 0;
                delta.internal.clear();
            }
            Err(e) => fail(&mut report, e),
        }
    }
    if report.recreated > 0 {
        delta.internal_error(crate::red::admission::Undecided::MissingKey.reason());
    }
    if let Some(e) = &report.failed {
        // Counted in the delta: stored with the next successful flush.
        delta.internal_error(e.reason());
    }
    report
}

fn fail(report: &mut FlushReport, e: FlushError) {
    if report.failed.is_none() {
        report.failed = Some(e);
    }
}

fn cas_update<S: KvStore>(
    kv: &mut S,
    key: &str,
    buckets: &Buckets,
    now_s: u64,
    report: &mut FlushReport,
    add: impl Fn(&mut SharedState),
) -> Result<(), FlushError> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let (bytes, cas) = kv.get(key).map_err(FlushError::Store)?;
        let mut state = match bytes {
            Some(b) => SharedState::decode(&b, buckets).map_err(FlushError::Undecodable)?,
            None => {
                // Evicted, or created by nobody: recreate it empty (a
                // visible reset for the totals key) and merge into that.
                let mut fresh = SharedState::new(buckets.clone());
                fresh.started_s = now_s;
                create_if_absent(kv, key, &fresh.encode()).map_err(FlushError::Store)?;
                report.recreated = report.recreated.saturating_add(1);
                continue;
            }
        };
        add(&mut state);
        match kv.set(key, &state.encode(), cas) {
            Ok(CasWrite::Written) => {
                report.written = report.written.saturating_add(1);
                return Ok(());
            }
            Ok(CasWrite::Mismatch) => report.retries = report.retries.saturating_add(1),
            Err(e) => return Err(FlushError::Store(e)),
        }
    }
    Err(FlushError::Contended)
}

/// The stored state of every shard plus the totals: what a scrape shows.
/// Never includes a VM's unflushed delta, so answers only grow. Keys that
/// cannot be read are skipped and returned as reasons to count.
pub fn read<S: KvStore>(
    kv: &mut S,
    layout: &Layout,
    buckets: &Buckets,
) -> (SharedState, Vec<&'static str>) {
    let mut total = SharedState::new(buckets.clone());
    let mut problems = Vec::new();
    let keys =
        std::iter::once(layout.meta_key()).chain((0..layout.shards).map(|i| layout.shard_key(i)));
    for key in keys {
        match kv.get(&key) {
            Ok((Some(b), _)) => match SharedState::decode(&b, buckets) {
                Ok(s) => total.merge(&s),
                Err(_) => problems.push(REASON_UNDECODABLE),
            },
            Ok((None, _)) => problems.push(crate::red::admission::Undecided::MissingKey.reason()),
            Err(e) => problems.push(e.reason()),
        }
    }
    (total, problems)
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::prom::text::Format;
    use crate::red::admission::{namespace, Admission, Admitter, Decision};
    use crate::red::aggregate::Series;
    use crate::red::kv::LocalKv;
    use crate::red::labels::LabelSet;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    fn labels(route: &str, code: u16) -> LabelSet {
        LabelSet::new("GET", code, route.to_string(), "app".into(), "http")
    }

    fn layout(cap: usize) -> Layout {
        Layout::new("t", cap)
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let b = Buckets::default();
        let mut d = Delta::new(b.clone(), layout(3));
        d.record(labels("/a", 200), Decision::Admitted, 0.003, Some(0.001));
        d.record(labels("/a", 200), Decision::Admitted, 2.0, None);
        d.record(
            labels("/é \"q\"\n", 503),
            Decision::Admitted,
            0.2,
            Some(0.1),
        );
        d.record(
            LabelSet::new("BREW", 0, "/pot".into(), "s".into(), "uwsgi"),
            Decision::Admitted,
            0.01,
            None,
        );
        d.record(labels("/b", 404), Decision::Refused, 0.01, None);
        d.internal_error("missing_duration");
        let mut kv = LocalKv::new();
        ensure_created(&mut kv, d.layout(), &b, 1234).unwrap();
        let layout = d.layout().clone();
        let r = flush(&mut d, &mut kv, 1);
        assert_eq!(r.failed, None);
        assert!(d.is_empty());
        let (s, problems) = read(&mut kv, &layout, &b);
        assert!(problems.is_empty());
        assert_eq!(s.series_count(), 4, "3 admitted + the 4xx overflow series");
        assert_eq!(s.dropped(), 1);
        assert_eq!(s.requests(), 5);
        assert_eq!(s.started_s(), 1234);
        let bytes = s.encode();
        let back = SharedState::decode(&bytes, &b).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.encode(), bytes);
        let text = s.encode_text(Format::Prometheus);
        assert!(text.contains("uwsgi_red_state_start_time_seconds 1234\n"));
        assert!(text.contains("uwsgi_red_internal_errors_total{reason=\"missing_duration\"} 1\n"));
    }

    #[test]
    fn decode_rejects_bad_bytes_without_panicking() {
        let b = Buckets::default();
        let mut s = SharedState::new(b.clone());
        let mut one = BTreeMap::new();
        let mut series = Series::new(&b);
        series.observe(&b, false, 0.1, Some(0.05));
        one.insert(labels("/a", 200), series);
        s.add_series(one.iter());
        let bytes = s.encode();
        for n in 0..bytes.len() {
            assert!(SharedState::decode(&bytes[..n], &b).is_err(), "prefix {n}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(
            SharedState::decode(&extra, &b),
            Err(DecodeError::TrailingBytes)
        );
        assert_eq!(
            SharedState::decode(b"nope and more", &b),
            Err(DecodeError::BadMagic)
        );
        let other = Buckets::new(vec![0.1, 1.0]).unwrap();
        assert_eq!(
            SharedState::decode(&bytes, &other),
            Err(DecodeError::BucketsMismatch)
        );
    }

    fn trace(n: u8) -> TraceId {
        TraceId::from_bytes([n; 16]).unwrap()
    }

    /// Exemplars go through a flush and a read like the counts: latest per
    /// bucket, `_total` the series' latest, only in OpenMetrics.
    #[test]
    fn exemplars_flush_and_show_only_in_openmetrics() {
        let b = Buckets::new(vec![0.1, 1.0]).unwrap();
        let lay = layout(10);
        let mut kv = LocalKv::new();
        ensure_created(&mut kv, &lay, &b, 7).unwrap();
        let (fast, slow) = (labels("/fast", 200), labels("/slow", 200));
        let mut vms = [
            Delta::new(b.clone(), lay.clone()),
            Delta::new(b.clone(), lay.clone()),
        ];
        let reqs = [
            (0, &fast, 0.01, 1, 1_000_000_000_000_001_000),
            (1, &fast, 0.02, 2, 1_000_000_000_002_000_000),
            (0, &slow, 0.5, 3, 1_000_000_000_003_000_000),
            (1, &slow, 5.0, 4, 1_000_000_000_001_000_000),
        ];
        for (vm, l, d, t, ns) in reqs {
            vms[vm].record_traced(l, Decision::Admitted, d, None, trace(t), ns);
        }
        // A request without a trace: counted, no exemplar.
        vms[0].record_ref(&fast, Decision::Admitted, 0.05, None);
        for d in &mut vms {
            assert_eq!(flush(d, &mut kv, 7).failed, None);
            assert!(d.is_empty());
            assert!(d.exemplars.is_empty());
        }
        let (s, problems) = read(&mut kv, &lay, &b);
        assert!(problems.is_empty());
        let x = s.exemplars(&fast).unwrap();
        assert_eq!(x.iter().count(), 1);
        assert_eq!(x.get(0).unwrap().trace_id, trace(2));
        let x = s.exemplars(&slow).unwrap();
        assert_eq!(x.get(1).unwrap().trace_id, trace(3));
        assert_eq!(x.get(2).unwrap().trace_id, trace(4));
        assert_eq!(x.latest().unwrap().trace_id, trace(3));

        let om = s.encode_text(Format::OpenMetrics);
        let id = |n: u8| format!("{n:02x}").repeat(16);
        let lbl = |r: &str| {
            format!("method=\"GET\",code=\"200\",code_class=\"2xx\",route=\"{r}\",service=\"app\",protocol=\"http\"")
        };
        for line in [
            format!("uwsgi_red_requests_total{{{}}} 3 # {{trace_id=\"{}\"}} 1 1000000000.002\n", lbl("/fast"), id(2)),
            format!("uwsgi_red_requests_total{{{}}} 2 # {{trace_id=\"{}\"}} 1 1000000000.003\n", lbl("/slow"), id(3)),
            format!("uwsgi_red_request_duration_seconds_bucket{{{},le=\"0.1\"}} 3 # {{trace_id=\"{}\"}} 0.02 1000000000.002\n", lbl("/fast"), id(2)),
            format!("uwsgi_red_request_duration_seconds_bucket{{{},le=\"1.0\"}} 3\n", lbl("/fast")),
            format!("uwsgi_red_request_duration_seconds_bucket{{{},le=\"1.0\"}} 1 # {{trace_id=\"{}\"}} 0.5 1000000000.003\n", lbl("/slow"), id(3)),
            format!("uwsgi_red_request_duration_seconds_bucket{{{},le=\"+Inf\"}} 2 # {{trace_id=\"{}\"}} 5 1000000000.001\n", lbl("/slow"), id(4)),
            format!("uwsgi_red_errors_total{{{}}} 0\n", lbl("/slow")),
        ] {
            assert!(om.contains(&line), "{line} not in\n{om}");
        }
        assert_eq!(om.matches(" # {trace_id=").count(), 5, "{om}");
        let text = s.encode_text(Format::Prometheus);
        assert_eq!(text.matches("trace_id").count(), 0);
        assert_eq!(text.matches(" # ").count(), 0);
        // The version byte: 3 with exemplars, and still 2 without.
        assert_eq!(s.encode().get(4), Some(&3));
        let mut counts_only = SharedState::new(b.clone());
        counts_only.observe(fast.clone(), 0.01, None);
        assert_eq!(counts_only.encode().get(4), Some(&2));
    }

    /// Refused or undecided label sets: the exemplar follows the request
    /// into the overflow series.
    #[test]
    fn exemplar_of_a_folded_request_is_on_the_overflow_series() {
        let b = Buckets::new(vec![0.1]).unwrap();
        let mut d = Delta::new(b.clone(), layout(1));
        let l = labels("/x", 404);
        d.record_traced(&l, Decision::Refused, 0.01, None, trace(9), 1);
        let mut kv = LocalKv::new();
        ensure_created(&mut kv, d.layout(), &b, 1).unwrap();
        let lay = d.layout().clone();
        assert_eq!(flush(&mut d, &mut kv, 1).failed, None);
        let (s, _) = read(&mut kv, &lay, &b);
        assert_eq!((s.dropped(), s.requests()), (1, 1));
        let x = s.exemplars(&l.overflow()).unwrap();
        assert_eq!(x.get(0).unwrap().trace_id, trace(9));
        assert!(s.exemplars(&l).is_none());
    }

    /// A value this VM cannot read (foreign bytes under its key) is never
    /// replaced; the delta stays for later and the failure is counted.
    #[test]
    fn undecodable_state_is_left_alone_and_delta_kept() {
        let b = Buckets::default();
        let mut kv = LocalKv::new();
        let lay = layout(10);
        ensure_created(&mut kv, &lay, &b, 1).unwrap();
        let mut d = Delta::new(b.clone(), lay.clone());
        d.record(labels("/a", 200), Decision::Admitted, 0.1, None);
        let shard = lay.shard_key(lay.shard_of(&labels("/a", 200)));
        kv.set(&shard, b"garbage", None).unwrap();
        let r = flush(&mut d, &mut kv, 1);
        assert!(matches!(r.failed, Some(FlushError::Undecodable(_))));
        assert_eq!(kv.get(&shard).unwrap().0.unwrap(), b"garbage");
        assert_eq!(d.requests(), 1);
        assert_eq!(d.internal.get(REASON_UNDECODABLE), Some(&1));
    }

    /// Real threads, one store, many flushes racing and scrapes reading:
    /// the stored totals are exactly what was recorded, and a scrape never
    /// shows less than the one before.
    #[test]
    fn concurrent_flushes_are_exact_and_monotonic() {
        #[derive(Clone, Default)]
        struct Shared(Arc<Mutex<LocalKv>>);
        impl KvStore for Shared {
            fn get(&mut self, key: &str) -> Result<Versioned, KvError> {
                self.0.lock().unwrap().get(key)
            }
            fn set(&mut self, key: &str, v: &[u8], cas: Option<u32>) -> Result<CasWrite, KvError> {
                self.0.lock().unwrap().set(key, v, cas)
            }
        }
        let b = Buckets::default();
        let cap = 50;
        let ns = namespace("t", "app", &cap);
        let lay = Layout::new(&ns, cap);
        let store = Shared::default();
        ensure_created(&mut store.clone(), &lay, &b, 1).unwrap();
        Admission::new(&ns, cap)
            .ensure_created(&mut store.clone())
            .unwrap();
        let threads = 4u64;
        let per_thread = 3_000u64;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mut store = store.clone();
                let (b, lay, ns) = (b.clone(), lay.clone(), ns.clone());
                std::thread::spawn(move || {
                    let mut adm = Admitter::new(Admission::new(&ns, cap));
                    let mut d = Delta::new(b, lay);
                    for i in 0..per_thread {
                        let code = if i % 10 == 0 { 500 } else { 200 };
                        let l = labels(&format!("/r{}", (i + t) % 60), code);
                        let dec = adm.decide(&mut store, &l);
                        d.record(l, dec, 0.001 * (i % 7) as f64, Some(0.0005));
                        if i % 97 == 0 {
                            flush(&mut d, &mut store, 1);
                        }
                    }
                    while !d.is_empty() {
                        flush(&mut d, &mut store, 1);
                    }
                })
            })
            .collect();
        let mut last = 0;
        while handles.iter().any(|h| !h.is_finished()) {
            let now = read(&mut store.clone(), &lay, &b).0.requests();
            assert!(now >= last, "total went backwards: {now} < {last}");
            last = now;
        }
        for h in handles {
            h.join().unwrap();
        }
        let (s, problems) = read(&mut store.clone(), &lay, &b);
        assert!(problems.is_empty());
        let total = threads * per_thread;
        assert_eq!(s.requests(), total);
        let errors: u64 = s.series().map(|(_, x)| x.errors).sum();
        assert_eq!(errors, threads * per_thread.div_ceil(10));
        let hist: u64 = s.series().map(|(_, x)| x.duration.count()).sum();
        assert_eq!(hist, total);
        // 120 label sets (60 routes × 2 codes), cap 50.
        assert_eq!(s.series().filter(|(l, _)| !l.is_overflow()).count(), 50);
        let over: u64 = s
            .series()
            .filter(|(l, _)| l.is_overflow())
            .map(|(_, x)| x.requests)
            .sum();
        assert_eq!(s.dropped(), over);
        let slots = store.0.lock().unwrap().get(&format!("{ns}.adm.n")).unwrap();
        assert_eq!(slots.0.unwrap(), 50u64.to_le_bytes());
    }
}
