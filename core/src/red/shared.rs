//! Process-wide RED state for hosts whose worker VMs share nothing but a
//! key/value store with compare-and-swap (proxy-wasm shared data, in Envoy
//! and in nginx's ngx_wasm_module).
//!
//! Each VM records into a local [`Delta`] (no host call per request). On a
//! tick, and before answering a scrape, [`flush`] reads the merged
//! [`SharedState`], adds the delta, and writes it back with the CAS token it
//! read; on a CAS mismatch it starts over from a fresh read. The delta is
//! cleared only after a successful write, so a flush that loses every race
//! keeps its counts for the next tick: nothing is lost, nothing is counted
//! twice, and the stored counters only ever grow.
//!
//! The stored bytes are a small versioned binary format (see
//! [`SharedState::encode`]); every length is bounded and checked on decode,
//! so bytes written by anything else are an error, never a panic.

use std::collections::BTreeMap;
use std::fmt;

use super::aggregate::Series;
use super::histogram::{Buckets, Histogram};
use super::labels::{code_class, LabelSet};
use super::method::{normalize_method, OTHER_METHOD};
use crate::config::MAX_SERIES_LIMIT;
use crate::prom::text::Format;

const MAGIC: &[u8; 4] = b"URED";
const VERSION: u8 = 1;
/// Protocol labels a state may hold; `LabelSet::protocol` is `&'static str`.
const PROTOCOLS: [&str; 2] = ["http", "uwsgi"];
const CODE_CLASSES: [&str; 6] = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];
/// Longer than any label the normaliser produces (routes ≤ 256 bytes,
/// services ≤ 128); anything longer is not our data.
const MAX_STR: usize = 1024;
const MAX_INTERNAL_REASONS: usize = 64;
/// One overflow series per status class and protocol on top of the cap.
const MAX_OVERFLOW_SERIES: usize = CODE_CLASSES.len() * PROTOCOLS.len();
/// Each retry means another VM wrote in between, i.e. made progress; a VM
/// that loses this many races in a row keeps its delta for the next tick.
pub const MAX_CAS_ATTEMPTS: u32 = 32;

/// What one VM saw since its last successful flush.
#[derive(Debug, Clone)]
pub struct Delta {
    buckets: Buckets,
    cap: usize,
    series: BTreeMap<LabelSet, Series>,
    dropped: u64,
    internal: BTreeMap<&'static str, u64>,
}

impl Delta {
    /// `cap` is the process-wide series cap; the local delta never holds
    /// more distinct label sets than that either.
    pub fn new(buckets: Buckets, cap: usize) -> Self {
        Self {
            buckets,
            cap,
            series: BTreeMap::new(),
            dropped: 0,
            internal: BTreeMap::new(),
        }
    }

    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// True when recording `labels` would need a new local series while the
    /// delta is already at the cap: the caller should flush first, so the
    /// label set gets the same admission decision it would get globally.
    pub fn is_full_for(&self, labels: &LabelSet) -> bool {
        self.series.len() >= self.cap && !self.series.contains_key(labels)
    }

    /// Records one finished request. If the delta is full (a flush failed),
    /// the request is folded into the overflow series and counted as
    /// dropped, exactly as the global cap would do.
    pub fn record(&mut self, labels: LabelSet, duration_seconds: f64, ttfb_seconds: Option<f64>) {
        let key = if self.is_full_for(&labels) && !labels.is_overflow() {
            self.dropped += 1;
            labels.overflow()
        } else {
            labels
        };
        let is_error = key.is_error();
        let buckets = &self.buckets;
        let s = self
            .series
            .entry(key)
            .or_insert_with(|| Series::new(buckets));
        s.observe(buckets, is_error, duration_seconds, ttfb_seconds);
    }

    pub fn internal_error(&mut self, reason: &'static str) {
        *self.internal.entry(reason).or_insert(0) += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty() && self.dropped == 0 && self.internal.is_empty()
    }

    pub fn requests(&self) -> u64 {
        self.series.values().map(|s| s.requests).sum()
    }

    fn clear(&mut self) {
        self.series.clear();
        self.dropped = 0;
        self.internal.clear();
    }
}

/// The merged state of every VM, as stored under one shared-data key.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedState {
    buckets: Buckets,
    series: BTreeMap<LabelSet, Series>,
    /// Non-overflow series, i.e. slots of the cap in use.
    admitted: usize,
    dropped: u64,
    internal: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Truncated,
    BadMagic,
    UnsupportedVersion(u8),
    /// The state was written with other bucket bounds (a config change).
    BucketsMismatch,
    TooLarge(&'static str),
    BadLabel(&'static str),
    BadHistogram,
    Overflow,
    TrailingBytes,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("shared RED state is truncated"),
            DecodeError::BadMagic => f.write_str("shared data is not a RED state"),
            DecodeError::UnsupportedVersion(v) => {
                write!(f, "shared RED state version {v} is not supported")
            }
            DecodeError::BucketsMismatch => f.write_str("shared RED state has other bucket bounds"),
            DecodeError::TooLarge(what) => write!(f, "shared RED state: {what} over its limit"),
            DecodeError::BadLabel(what) => write!(f, "shared RED state: invalid {what} label"),
            DecodeError::BadHistogram => f.write_str("shared RED state: inconsistent histogram"),
            DecodeError::Overflow => f.write_str("shared RED state: counter overflow"),
            DecodeError::TrailingBytes => f.write_str("shared RED state has trailing bytes"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl SharedState {
    pub fn new(buckets: Buckets) -> Self {
        Self {
            buckets,
            series: BTreeMap::new(),
            admitted: 0,
            dropped: 0,
            internal: BTreeMap::new(),
        }
    }

    pub fn series(&self) -> impl Iterator<Item = (&LabelSet, &Series)> {
        self.series.iter()
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn requests(&self) -> u64 {
        self.series.values().map(|s| s.requests).sum()
    }

    pub fn internal(&self) -> impl Iterator<Item = (&str, u64)> {
        self.internal.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Adds a delta. Label sets the state already holds keep their series;
    /// new ones take a free slot of the cap, or are folded into the
    /// overflow series and counted as dropped (one per request).
    pub fn merge(&mut self, delta: &Delta) {
        for (labels, s) in &delta.series {
            let key = if labels.is_overflow() || self.series.contains_key(labels) {
                labels.clone()
            } else if self.admitted < delta.cap {
                self.admitted += 1;
                labels.clone()
            } else {
                self.dropped += s.requests;
                labels.overflow()
            };
            let buckets = &self.buckets;
            self.series
                .entry(key)
                .or_insert_with(|| Series::new(buckets))
                .merge(s);
        }
        self.dropped += delta.dropped;
        for (reason, n) in &delta.internal {
            *self.internal.entry((*reason).to_string()).or_insert(0) += n;
        }
    }

    /// Prometheus text or OpenMetrics, second-based histograms.
    pub fn encode_text(&self, format: Format) -> String {
        let internal: Vec<(&str, u64)> = self.internal().collect();
        super::expose::encode(
            format,
            &self.buckets,
            self.series.iter(),
            self.dropped,
            Some(&internal),
        )
    }

    /// Layout (integers are LEB128 varints unless noted):
    /// `"URED"`, version byte, bound count byte, bounds as f64 LE,
    /// dropped, reason count, (reason string, count)…, series count, then
    /// per series: method string, code, code-class index byte, route
    /// string, service string, protocol index byte, requests, errors, and
    /// two histograms (bucket counts, `+Inf` last, then the sum as f64 LE).
    /// Strings are a varint length and UTF-8 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let nb = self.buckets.bounds().len();
        let mut out = Vec::with_capacity(64 + self.series.len() * (64 + 4 * (nb + 1)));
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        // MAX_BUCKETS (64) fits a byte.
        out.push(nb as u8);
        for b in self.buckets.bounds() {
            out.extend_from_slice(&b.to_le_bytes());
        }
        put_varint(&mut out, self.dropped);
        put_varint(&mut out, self.internal.len() as u64);
        for (reason, n) in &self.internal {
            put_str(&mut out, reason);
            put_varint(&mut out, *n);
        }
        put_varint(&mut out, self.series.len() as u64);
        for (l, s) in &self.series {
            put_str(&mut out, l.method);
            put_varint(&mut out, u64::from(l.code));
            out.push(
                CODE_CLASSES
                    .iter()
                    .position(|c| *c == l.code_class)
                    .unwrap_or(0) as u8,
            );
            put_str(&mut out, &l.route);
            put_str(&mut out, &l.service);
            out.push(PROTOCOLS.iter().position(|p| *p == l.protocol).unwrap_or(0) as u8);
            put_varint(&mut out, s.requests);
            put_varint(&mut out, s.errors);
            put_histogram(&mut out, &s.duration);
            put_histogram(&mut out, &s.ttfb);
        }
        out
    }

    /// Decodes bytes written by [`encode`](Self::encode) for the same
    /// bucket bounds.
    pub fn decode(bytes: &[u8], buckets: &Buckets) -> Result<Self, DecodeError> {
        let mut r = Reader { b: bytes };
        if r.take(4)? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = r.byte()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let nb = usize::from(r.byte()?);
        if nb != buckets.bounds().len() {
            return Err(DecodeError::BucketsMismatch);
        }
        for b in buckets.bounds() {
            if r.f64()?.to_bits() != b.to_bits() {
                return Err(DecodeError::BucketsMismatch);
            }
        }
        let mut state = SharedState::new(buckets.clone());
        state.dropped = r.varint()?;
        let n_internal = r.len(MAX_INTERNAL_REASONS, "internal reasons")?;
        for _ in 0..n_internal {
            let reason = r.str()?.to_string();
            let n = r.varint()?;
            state.internal.insert(reason, n);
        }
        let n_series = r.len(MAX_SERIES_LIMIT + MAX_OVERFLOW_SERIES, "series count")?;
        for _ in 0..n_series {
            let method_raw = r.str()?;
            let method = normalize_method(method_raw);
            if method != method_raw && method_raw != OTHER_METHOD {
                return Err(DecodeError::BadLabel("method"));
            }
            let code = u16::try_from(r.varint()?).map_err(|_| DecodeError::BadLabel("code"))?;
            let class = *CODE_CLASSES
                .get(usize::from(r.byte()?))
                .ok_or(DecodeError::BadLabel("code_class"))?;
            let route = r.str()?.to_string();
            let service = r.str()?.to_string();
            let protocol = *PROTOCOLS
                .get(usize::from(r.byte()?))
                .ok_or(DecodeError::BadLabel("protocol"))?;
            let labels = LabelSet::new(method, code, route, service, protocol);
            let labels = if labels.is_overflow() {
                // Overflow series keep only their class (see LabelSet::overflow).
                if code != 0 {
                    return Err(DecodeError::BadLabel("code"));
                }
                LabelSet {
                    code_class: class,
                    ..labels
                }
            } else {
                if labels.code != code || code_class(code) != class {
                    return Err(DecodeError::BadLabel("code"));
                }
                state.admitted += 1;
                labels
            };
            let requests = r.varint()?;
            let errors = r.varint()?;
            let duration = r.histogram(buckets)?;
            let ttfb = r.histogram(buckets)?;
            if errors > requests || duration.count() != requests || ttfb.count() > requests {
                return Err(DecodeError::BadHistogram);
            }
            if state
                .series
                .insert(
                    labels,
                    Series {
                        requests,
                        errors,
                        duration,
                        ttfb,
                    },
                )
                .is_some()
            {
                return Err(DecodeError::BadLabel("duplicate series"));
            }
        }
        if !r.b.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(state)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_histogram(out: &mut Vec<u8>, h: &Histogram) {
    for c in h.counts() {
        put_varint(out, *c);
    }
    out.extend_from_slice(&h.sum().to_le_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.b.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        let arr: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| DecodeError::Truncated)?;
        Ok(f64::from_le_bytes(arr))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::Overflow);
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Overflow)
    }

    fn len(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= max)
            .ok_or(DecodeError::TooLarge(what))
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.len(MAX_STR, "string")?;
        std::str::from_utf8(self.take(n)?).map_err(|_| DecodeError::BadLabel("utf-8"))
    }

    fn histogram(&mut self, buckets: &Buckets) -> Result<Histogram, DecodeError> {
        let counts = (0..=buckets.bounds().len())
            .map(|_| self.varint())
            .collect::<Result<Vec<_>, _>>()?;
        let sum = self.f64()?;
        Histogram::from_parts(buckets, counts, sum).ok_or(DecodeError::BadHistogram)
    }
}

/// Result of a compare-and-swap write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasWrite {
    Written,
    Mismatch,
}

/// One key of a host's shared key/value store. `get` returns the value
/// and its CAS token; `set` with `Some(cas)` must fail with
/// [`CasWrite::Mismatch`] when the key changed since that token was read.
/// `set` with `None` writes unconditionally (proxy-wasm has no atomic
/// create; see [`ensure_created`]).
/// A stored value (absent when the key does not exist) and its CAS token.
pub type Versioned = (Option<Vec<u8>>, Option<u32>);

pub trait KvStore {
    type Error;
    fn get(&mut self) -> Result<Versioned, Self::Error>;
    fn set(&mut self, value: &[u8], cas: Option<u32>) -> Result<CasWrite, Self::Error>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlushError<E> {
    Store(E),
    /// Lost [`MAX_CAS_ATTEMPTS`] races in a row; the delta is kept.
    Contended,
}

impl<E: fmt::Debug> fmt::Display for FlushError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushError::Store(e) => write!(f, "shared data: {e:?}"),
            FlushError::Contended => {
                write!(f, "shared data: {MAX_CAS_ATTEMPTS} CAS mismatches in a row")
            }
        }
    }
}

/// A successful flush: the merged state as written (or as read, when there
/// was nothing to write).
#[derive(Debug)]
pub struct Flushed {
    pub state: SharedState,
    /// CAS mismatches before the write went through.
    pub retries: u32,
    /// The stored bytes could not be decoded (other buckets after a config
    /// change, or foreign data) and were replaced by a fresh state.
    pub reset: Option<DecodeError>,
}

/// Merges `delta` into the stored state with compare-and-swap, retrying on
/// mismatch. The delta is cleared only once its counts are stored.
pub fn flush<S: KvStore>(
    delta: &mut Delta,
    store: &mut S,
) -> Result<Flushed, FlushError<S::Error>> {
    for retries in 0..MAX_CAS_ATTEMPTS {
        let (bytes, cas) = store.get().map_err(FlushError::Store)?;
        let (mut state, reset) = match bytes
            .as_deref()
            .map(|b| SharedState::decode(b, &delta.buckets))
        {
            None => (SharedState::new(delta.buckets.clone()), None),
            Some(Ok(s)) => (s, None),
            Some(Err(e)) => (SharedState::new(delta.buckets.clone()), Some(e)),
        };
        if delta.is_empty() && reset.is_none() {
            return Ok(Flushed {
                state,
                retries,
                reset,
            });
        }
        state.merge(delta);
        match store.set(&state.encode(), cas).map_err(FlushError::Store)? {
            CasWrite::Written => {
                delta.clear();
                return Ok(Flushed {
                    state,
                    retries,
                    reset,
                });
            }
            CasWrite::Mismatch => continue,
        }
    }
    Err(FlushError::Contended)
}

/// What a scrape shows when the flush failed: the stored state (if it can
/// be read) with this VM's pending delta added in memory only, so the
/// answer is still complete for this VM and never lower than the last one.
pub fn overlay<S: KvStore>(delta: &Delta, store: &mut S) -> SharedState {
    let mut state = match store.get() {
        Ok((Some(b), _)) => SharedState::decode(&b, &delta.buckets).ok(),
        _ => None,
    }
    .unwrap_or_else(|| SharedState::new(delta.buckets.clone()));
    state.merge(delta);
    state
}

/// Writes an empty state if the key does not exist yet. proxy-wasm cannot
/// create a key atomically (a CAS write to a missing key always succeeds),
/// so this runs when a VM is configured, before it can record anything: a
/// lost race then only overwrites another VM's *empty* state.
pub fn ensure_created<S: KvStore>(store: &mut S, buckets: &Buckets) -> Result<bool, S::Error> {
    if store.get()?.0.is_some() {
        return Ok(false);
    }
    store.set(&SharedState::new(buckets.clone()).encode(), None)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn labels(route: &str, code: u16) -> LabelSet {
        LabelSet::new("GET", code, route.to_string(), "app".into(), "http")
    }

    /// The proxy-wasm shared-data contract (as Envoy and ngx_wasm_module
    /// implement it): every write bumps the token; a write with a stale
    /// token fails.
    #[derive(Clone, Default)]
    struct MemStore(Arc<Mutex<(Option<Vec<u8>>, u32)>>);

    impl KvStore for MemStore {
        type Error = ();
        fn get(&mut self) -> Result<Versioned, ()> {
            let g = self.0.lock().unwrap();
            Ok((g.0.clone(), g.0.as_ref().map(|_| g.1)))
        }
        fn set(&mut self, value: &[u8], cas: Option<u32>) -> Result<CasWrite, ()> {
            let mut g = self.0.lock().unwrap();
            if matches!(cas, Some(c) if g.0.is_some() && c != g.1) {
                return Ok(CasWrite::Mismatch);
            }
            g.0 = Some(value.to_vec());
            g.1 += 1;
            Ok(CasWrite::Written)
        }
    }

    fn stored(store: &MemStore, buckets: &Buckets) -> SharedState {
        SharedState::decode(store.0.lock().unwrap().0.as_ref().unwrap(), buckets).unwrap()
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let b = Buckets::default();
        let mut d = Delta::new(b.clone(), 3);
        d.record(labels("/a", 200), 0.003, Some(0.001));
        d.record(labels("/a", 200), 2.0, None);
        d.record(labels("/é \"q\"\n", 503), 0.2, Some(0.1));
        d.record(
            LabelSet::new("BREW", 0, "/pot".into(), "s".into(), "uwsgi"),
            0.01,
            None,
        );
        d.record(labels("/b", 404), 0.01, None);
        d.internal_error("missing_duration");
        let mut s = SharedState::new(b.clone());
        s.merge(&d);
        assert_eq!(s.series_count(), 4, "3 admitted + the 4xx overflow series");
        assert_eq!(s.dropped(), 1);
        let bytes = s.encode();
        let back = SharedState::decode(&bytes, &b).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.encode(), bytes);
        assert_eq!(
            back.encode_text(Format::Prometheus),
            s.encode_text(Format::Prometheus)
        );
    }

    #[test]
    fn decode_rejects_bad_bytes_without_panicking() {
        let b = Buckets::default();
        let mut d = Delta::new(b.clone(), 10);
        d.record(labels("/a", 200), 0.1, Some(0.05));
        let mut s = SharedState::new(b.clone());
        s.merge(&d);
        let bytes = s.encode();
        for n in 0..bytes.len() {
            assert!(
                SharedState::decode(&bytes[..n], &b).is_err(),
                "prefix of {n} bytes"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(
            SharedState::decode(&extra, &b),
            Err(DecodeError::TrailingBytes)
        );
        assert_eq!(SharedState::decode(b"1", &b), Err(DecodeError::Truncated));
        assert_eq!(
            SharedState::decode(b"nope and more", &b),
            Err(DecodeError::BadMagic)
        );
        let other = Buckets::new(vec![0.1, 1.0]).unwrap();
        assert_eq!(
            SharedState::decode(&bytes, &other),
            Err(DecodeError::BucketsMismatch)
        );
        // A flipped byte anywhere is either rejected or still a valid state.
        for i in 0..bytes.len() {
            let mut m = bytes.clone();
            m[i] ^= 0xff;
            let _ = SharedState::decode(&m, &b);
        }
    }

    #[test]
    fn merge_respects_cap_across_deltas() {
        let b = Buckets::default();
        let mut s = SharedState::new(b.clone());
        let mut d1 = Delta::new(b.clone(), 2);
        d1.record(labels("/a", 200), 0.1, None);
        d1.record(labels("/b", 200), 0.1, None);
        s.merge(&d1);
        let mut d2 = Delta::new(b.clone(), 2);
        d2.record(labels("/b", 200), 0.1, None);
        d2.record(labels("/c", 500), 0.1, None);
        d2.record(labels("/c", 500), 0.1, None);
        s.merge(&d2);
        let routes: Vec<_> = s
            .series()
            .map(|(l, x)| (l.route.as_str(), x.requests, x.errors))
            .collect();
        assert_eq!(
            routes,
            vec![("/a", 1, 0), ("/b", 2, 0), ("__overflow__", 2, 2)]
        );
        assert_eq!(s.dropped(), 2);
        assert_eq!(s.requests(), 5);
    }

    #[test]
    fn full_delta_asks_for_a_flush_then_folds() {
        let b = Buckets::default();
        let mut d = Delta::new(b, 1);
        d.record(labels("/a", 200), 0.1, None);
        assert!(!d.is_full_for(&labels("/a", 200)));
        assert!(d.is_full_for(&labels("/b", 200)));
        d.record(labels("/b", 200), 0.1, None);
        assert_eq!(d.requests(), 2);
        assert_eq!(d.dropped, 1);
        assert!(d.series.keys().any(LabelSet::is_overflow));
    }

    #[test]
    fn flush_retries_on_mismatch_and_clears_only_after_write() {
        let b = Buckets::default();
        let mut store = MemStore::default();
        assert!(ensure_created(&mut store, &b).unwrap());
        assert!(!ensure_created(&mut store, &b).unwrap());
        // Another VM writes between our read and our write, three times.
        struct Racy {
            inner: MemStore,
            other: MemStore,
            races: u32,
            buckets: Buckets,
        }
        impl KvStore for Racy {
            type Error = ();
            fn get(&mut self) -> Result<Versioned, ()> {
                let r = self.inner.get();
                if self.races > 0 {
                    self.races -= 1;
                    let mut d = Delta::new(self.buckets.clone(), 10);
                    d.record(labels("/other", 200), 0.1, None);
                    flush(&mut d, &mut self.other).unwrap();
                }
                r
            }
            fn set(&mut self, value: &[u8], cas: Option<u32>) -> Result<CasWrite, ()> {
                self.inner.set(value, cas)
            }
        }
        let mut racy = Racy {
            inner: store.clone(),
            other: store.clone(),
            races: 3,
            buckets: b.clone(),
        };
        let mut d = Delta::new(b.clone(), 10);
        d.record(labels("/mine", 200), 0.1, None);
        let f = flush(&mut d, &mut racy).unwrap();
        assert_eq!(f.retries, 3);
        assert!(d.is_empty());
        let s = stored(&store, &b);
        assert_eq!(s.requests(), 4);
        assert_eq!(s, f.state);

        // A store that always loses: the delta survives for the next tick.
        racy.races = u32::MAX;
        d.record(labels("/mine", 200), 0.1, None);
        assert_eq!(flush(&mut d, &mut racy).unwrap_err(), FlushError::Contended);
        assert_eq!(d.requests(), 1);
        let shown = overlay(&d, &mut store);
        assert_eq!(shown.requests(), stored(&store, &b).requests() + 1);
    }

    #[test]
    fn undecodable_state_is_replaced() {
        let b = Buckets::default();
        let mut store = MemStore::default();
        store.set(b"garbage", None).unwrap();
        let mut d = Delta::new(b.clone(), 10);
        d.record(labels("/a", 200), 0.1, None);
        let f = flush(&mut d, &mut store).unwrap();
        assert_eq!(f.reset, Some(DecodeError::BadMagic));
        assert_eq!(stored(&store, &b).requests(), 1);
    }

    /// Real threads, one store, many flushes racing: the stored totals are
    /// exactly what was recorded, and never go down between reads.
    #[test]
    fn concurrent_flushes_are_exact() {
        let b = Buckets::default();
        let store = MemStore::default();
        ensure_created(&mut store.clone(), &b).unwrap();
        let threads = 4;
        let per_thread = 5_000u64;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mut store = store.clone();
                let b = b.clone();
                std::thread::spawn(move || {
                    let mut d = Delta::new(b, 50);
                    for i in 0..per_thread {
                        let code = if i % 10 == 0 { 500 } else { 200 };
                        d.record(
                            labels(&format!("/r{}", (i + t) % 60), code),
                            0.001 * (i % 7) as f64,
                            Some(0.0005),
                        );
                        if i % 97 == 0 {
                            let _ = flush(&mut d, &mut store);
                        }
                    }
                    while flush(&mut d, &mut store).is_err() {}
                })
            })
            .collect();
        let mut last = 0;
        while handles.iter().any(|h| !h.is_finished()) {
            let now = stored(&store, &b).requests();
            assert!(now >= last, "total went backwards: {now} < {last}");
            last = now;
        }
        for h in handles {
            h.join().unwrap();
        }
        let s = stored(&store, &b);
        let total = threads * per_thread;
        assert_eq!(s.requests(), total);
        let errors: u64 = s.series().map(|(_, x)| x.errors).sum();
        assert_eq!(errors, threads * per_thread.div_ceil(10));
        let hist: u64 = s.series().map(|(_, x)| x.duration.count()).sum();
        assert_eq!(hist, total);
        // 60 routes, cap 50: 10 routes' worth of requests are in overflow.
        assert_eq!(s.series().filter(|(l, _)| !l.is_overflow()).count(), 50);
        let over: u64 = s
            .series()
            .filter(|(l, _)| l.is_overflow())
            .map(|(_, x)| x.requests)
            .sum();
        assert_eq!(s.dropped(), over);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn arb_labels() -> impl Strategy<Value = LabelSet> {
        (
            prop::sample::select(vec!["GET", "POST", "BREW"]),
            prop::sample::select(vec![0u16, 200, 201, 302, 404, 500, 503]),
            "/[a-z0-9]{0,6}",
            prop::sample::select(vec!["app", "other"]),
            prop::sample::select(vec!["http", "uwsgi"]),
        )
            .prop_map(|(m, c, r, s, p)| LabelSet::new(m, c, r, s.to_string(), p))
    }

    proptest! {
        /// Any split of a request stream into deltas merges to the same
        /// totals, and every state survives a round trip.
        #[test]
        fn merge_is_exact_and_round_trips(
            reqs in prop::collection::vec((arb_labels(), 0.0f64..20.0, prop::option::of(0.0f64..5.0)), 0..200),
            cuts in prop::collection::vec(0usize..200, 0..10),
            cap in 1usize..20,
        ) {
            let b = Buckets::default();
            let mut s = SharedState::new(b.clone());
            let mut d = Delta::new(b.clone(), cap);
            for (i, (l, dur, ttfb)) in reqs.iter().enumerate() {
                if cuts.contains(&i) || d.is_full_for(l) {
                    s.merge(&d);
                    d.clear();
                }
                d.record(l.clone(), *dur, *ttfb);
            }
            s.merge(&d);
            prop_assert_eq!(s.requests(), reqs.len() as u64);
            let errors: u64 = s.series().map(|(_, x)| x.errors).sum();
            prop_assert_eq!(errors, reqs.iter().filter(|(l, _, _)| l.is_error()).count() as u64);
            prop_assert!(s.series().filter(|(l, _)| !l.is_overflow()).count() <= cap);
            let over: u64 = s.series().filter(|(l, _)| l.is_overflow()).map(|(_, x)| x.requests).sum();
            prop_assert_eq!(s.dropped(), over);
            let back = SharedState::decode(&s.encode(), &b).unwrap();
            prop_assert_eq!(back, s);
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = SharedState::decode(&bytes, &Buckets::default());
        }
    }
}
