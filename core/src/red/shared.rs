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
//!   [`shard_count`] keys by label hash; a flush rewrites only the shards
//!   its delta touches (plus one small key for the totals).
//!
//! Values are a small versioned binary format ([`SharedState::encode`]);
//! every length is bounded and checked on decode, so foreign bytes are an
//! error, never a panic.

use std::collections::BTreeMap;

use litemap::LiteMap;
use std::fmt;

use super::admission::{shard_count, stable_hash, Decision, MAX_CAS_ATTEMPTS};
use super::aggregate::Series;
use super::histogram::{Buckets, Histogram};
use super::kv::{CasWrite, KvError, KvStore};
use super::labels::{code_class, LabelSet};
use super::method::{normalize_method, OTHER_METHOD};
use crate::prom::text::Format;
use crate::red::config::MAX_SERIES_LIMIT;

pub use super::kv::Versioned;

const MAGIC: &[u8; 4] = b"URED";
const VERSION: u8 = 2;
/// Protocol labels a state may hold; `LabelSet::protocol` is `&'static str`.
const PROTOCOLS: [&str; 2] = ["http", "uwsgi"];
const CODE_CLASSES: [&str; 6] = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];
/// The longest label string the format holds. Labels are bounded well
/// below it (routes and route names ≤ 256 bytes, services ≤ 128), and
/// [`fits_format`] checks every configured label that could exceed it.
pub const MAX_LABEL_BYTES: usize = 1024;
const MAX_INTERNAL_REASONS: usize = 64;
/// One overflow series per status class and protocol on top of the cap.
const MAX_OVERFLOW_SERIES: usize = CODE_CLASSES.len() * PROTOCOLS.len();

/// `reason` labels raised by self mode.
pub const REASON_UNDECODABLE: &str = "shared_state_undecodable";
pub const REASON_LABEL_TOO_LONG: &str = "label_too_long";

/// True when a label value can be stored; configuration checks call it on
/// every configured label (service, route templates) so a label the
/// format cannot hold is refused at configure time, naming the key.
pub fn fits_format(label: &str) -> bool {
    label.len() <= MAX_LABEL_BYTES
}

/// Where one configuration's state lives.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
    shards: usize,
}

impl Layout {
    /// `namespace` from [`super::admission::namespace`]; `cap` = `max_series`.
    pub fn new(namespace: &str, cap: usize) -> Self {
        Self {
            prefix: format!("{namespace}.st."),
            shards: shard_count(cap),
        }
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    fn meta_key(&self) -> String {
        format!("{}m", self.prefix)
    }

    fn shard_key(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    fn shard_of(&self, labels: &LabelSet) -> usize {
        let n = u64::try_from(self.shards).unwrap_or(1).max(1);
        usize::try_from(stable_hash(labels).checked_rem(n).unwrap_or(0)).unwrap_or(0)
    }
}

/// What one VM saw since its last successful flush, per shard.
#[derive(Debug, Clone)]
pub struct Delta {
    buckets: Buckets,
    layout: Layout,
    shards: LiteMap<usize, BTreeMap<LabelSet, Series>>,
    dropped: u64,
    internal: LiteMap<&'static str, u64>,
}

impl Delta {
    pub fn new(buckets: Buckets, layout: Layout) -> Self {
        Self {
            buckets,
            layout,
            shards: LiteMap::new(),
            dropped: 0,
            internal: LiteMap::new(),
        }
    }

    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Records one finished request under its admission decision: its own
    /// series, or the overflow series (counted as dropped, and by reason
    /// when the decision could not be made).
    pub fn record(
        &mut self,
        labels: LabelSet,
        decision: Decision,
        duration_seconds: f64,
        ttfb_seconds: Option<f64>,
    ) {
        self.record_ref(&labels, decision, duration_seconds, ttfb_seconds);
    }

    /// [`record`](Self::record) for a borrowed label set: a series this
    /// delta already holds costs lookups, no allocation.
    pub fn record_ref(
        &mut self,
        labels: &LabelSet,
        decision: Decision,
        duration_seconds: f64,
        ttfb_seconds: Option<f64>,
    ) {
        let too_long = !(fits_format(&labels.route) && fits_format(&labels.service));
        let folded;
        let key = match decision {
            Decision::Admitted if !too_long => labels,
            other => {
                match other {
                    Decision::Undecided(u) => self.internal_error(u.reason()),
                    Decision::Admitted => self.internal_error(REASON_LABEL_TOO_LONG),
                    Decision::Refused => {}
                }
                self.dropped = self.dropped.saturating_add(1);
                folded = labels.overflow();
                &folded
            }
        };
        let is_error = key.is_error();
        let shard = self.layout.shard_of(key);
        let buckets = &self.buckets;
        let map = self.shards.entry(shard).or_default();
        if let Some(s) = map.get_mut(key) {
            s.observe(buckets, is_error, duration_seconds, ttfb_seconds);
            return;
        }
        let mut s = Series::new(buckets);
        s.observe(buckets, is_error, duration_seconds, ttfb_seconds);
        map.insert(key.clone(), s);
    }

    pub fn internal_error(&mut self, reason: &'static str) {
        let n = self.internal.entry(reason).or_insert(0);
        *n = n.saturating_add(1);
    }

    pub fn is_empty(&self) -> bool {
        self.shards.is_empty() && self.dropped == 0 && self.internal.is_empty()
    }

    /// Requests recorded and not yet stored.
    pub fn requests(&self) -> u64 {
        self.shards
            .values()
            .flat_map(|s| s.values())
            .fold(0u64, |n, s| n.saturating_add(s.requests))
    }
}

/// The merged state: of one shard as stored, or of all of them for a
/// scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedState {
    buckets: Buckets,
    series: BTreeMap<LabelSet, Series>,
    dropped: u64,
    internal: LiteMap<String, u64>,
    /// Unix seconds when the state was created (meta key only): a new
    /// value means the counters restarted.
    started_s: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Truncated,
    BadMagic,
    UnsupportedVersion(u8),
    /// The state was written with other bucket bounds.
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
            dropped: 0,
            internal: LiteMap::new(),
            started_s: 0,
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

    pub fn started_s(&self) -> u64 {
        self.started_s
    }

    pub fn requests(&self) -> u64 {
        self.series
            .values()
            .fold(0u64, |n, s| n.saturating_add(s.requests))
    }

    pub fn internal(&self) -> impl Iterator<Item = (&str, u64)> {
        self.internal.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Counts one request straight into this state (tests, fuzzing and
    /// tools that build states; VMs record into a [`Delta`]).
    pub fn observe(&mut self, labels: LabelSet, duration_seconds: f64, ttfb_seconds: Option<f64>) {
        let is_error = labels.is_error();
        let buckets = &self.buckets;
        self.series
            .entry(labels)
            .or_insert_with(|| Series::new(buckets))
            .observe(buckets, is_error, duration_seconds, ttfb_seconds);
    }

    /// Adds `n` to an internal-error reason (bounded like the format).
    pub fn add_internal(&mut self, reason: &str, n: u64) {
        self.add_totals(0, std::iter::once((reason, n)));
    }

    fn add_series<'a>(&mut self, series: impl Iterator<Item = (&'a LabelSet, &'a Series)>) {
        for (labels, s) in series {
            let buckets = &self.buckets;
            self.series
                .entry(labels.clone())
                .or_insert_with(|| Series::new(buckets))
                .merge(s);
        }
    }

    fn add_totals<'a>(&mut self, dropped: u64, internal: impl Iterator<Item = (&'a str, u64)>) {
        self.dropped = self.dropped.saturating_add(dropped);
        for (reason, n) in internal {
            if self.internal.len() >= MAX_INTERNAL_REASONS && !self.internal.contains_key(reason) {
                continue;
            }
            let v = self.internal.entry(reason.to_string()).or_insert(0);
            *v = v.saturating_add(n);
        }
    }

    /// Adds another state (a scrape merging shards and totals).
    pub fn merge(&mut self, other: &SharedState) {
        self.add_series(other.series.iter());
        self.add_totals(other.dropped, other.internal());
        if self.started_s == 0 {
            self.started_s = other.started_s;
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
            Some(self.started_s),
        )
    }

    /// Layout (integers are LEB128 varints unless noted):
    /// `"URED"`, version byte, bound count byte, bounds as f64 LE,
    /// started_s, dropped, reason count, (reason string, count)…, series
    /// count, then per series: method string, code, code-class index byte,
    /// route string, service string, protocol index byte, requests, errors,
    /// and two histograms (bucket counts, `+Inf` last, then the sum as f64
    /// LE). Strings are a varint length and UTF-8 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let nb = self.buckets.bounds().len();
        let per_series = nb.saturating_add(1).saturating_mul(8).saturating_add(64);
        let mut out = Vec::with_capacity(self.series.len().saturating_mul(per_series));
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        // MAX_BUCKETS (64) fits a byte.
        out.push(u8::try_from(nb).unwrap_or(u8::MAX));
        for b in self.buckets.bounds() {
            out.extend_from_slice(&b.to_le_bytes());
        }
        put_varint(&mut out, self.started_s);
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
            out.push(index_of(&CODE_CLASSES, l.code_class));
            put_str(&mut out, &l.route);
            put_str(&mut out, &l.service);
            out.push(index_of(&PROTOCOLS, l.protocol));
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
        state.started_s = r.varint()?;
        state.dropped = r.varint()?;
        let n_internal = r.len(MAX_INTERNAL_REASONS, "internal reasons")?;
        for _ in 0..n_internal {
            let reason = r.str()?.to_string();
            let n = r.varint()?;
            state.internal.insert(reason, n);
        }
        let n_series = r.len(
            MAX_SERIES_LIMIT.saturating_add(MAX_OVERFLOW_SERIES),
            "series count",
        )?;
        for _ in 0..n_series {
            let labels = read_labels(&mut r)?;
            let requests = r.varint()?;
            let errors = r.varint()?;
            let duration = r.histogram(buckets)?;
            let ttfb = r.histogram(buckets)?;
            if errors > requests || duration.count() != requests || ttfb.count() > requests {
                return Err(DecodeError::BadHistogram);
            }
            let s = Series {
                requests,
                errors,
                duration,
                ttfb,
            };
            if state.series.insert(labels, s).is_some() {
                return Err(DecodeError::BadLabel("duplicate series"));
            }
        }
        if !r.b.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(state)
    }
}

fn index_of(set: &[&str], v: &str) -> u8 {
    set.iter()
        .position(|c| *c == v)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0)
}

fn read_labels(r: &mut Reader<'_>) -> Result<LabelSet, DecodeError> {
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
    if labels.is_overflow() {
        // Overflow series keep only their class (see LabelSet::overflow).
        if code != 0 {
            return Err(DecodeError::BadLabel("code"));
        }
        return Ok(LabelSet {
            code_class: class,
            ..labels
        });
    }
    if labels.code != code || code_class(code) != class {
        return Err(DecodeError::BadLabel("code"));
    }
    Ok(labels)
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
        let head = self.b.get(..n).ok_or(DecodeError::Truncated)?;
        self.b = self.b.get(n..).unwrap_or_default();
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        self.take(1)?.first().copied().ok_or(DecodeError::Truncated)
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
        let n = self.len(MAX_LABEL_BYTES, "string")?;
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
            FlushError::Contended => "cas_contended",
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
        let result = cas_update(kv, &key, &delta.buckets, 0, &mut report, |s| {
            s.add_series(pending.iter())
        });
        match result {
            Ok(()) => {
                delta.shards.remove(&shard);
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
        delta.internal_error(super::admission::Undecided::MissingKey.reason());
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
            Ok((None, _)) => problems.push(super::admission::Undecided::MissingKey.reason()),
            Err(e) => problems.push(e.reason()),
        }
    }
    (total, problems)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::red::admission::{namespace, Admission, Admitter};
    use crate::red::kv::LocalKv;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn arb_labels() -> impl Strategy<Value = LabelSet> {
        (
            prop::sample::select(vec!["GET", "POST", "BREW"]),
            prop::sample::select(vec![0u16, 200, 201, 302, 404, 500, 503]),
            "/\\PC{0,6}",
            prop::sample::select(vec!["app", "ünï"]),
            prop::sample::select(vec!["http", "uwsgi"]),
        )
            .prop_map(|(m, c, r, s, p)| LabelSet::new(m, c, r, s.to_string(), p))
    }

    fn state_bytes(reqs: &[(LabelSet, f64)]) -> Vec<u8> {
        let b = Buckets::default();
        let mut s = SharedState::new(b.clone());
        let mut m = BTreeMap::new();
        for (l, d) in reqs {
            let e = m.entry(l.clone()).or_insert_with(|| Series::new(&b));
            e.observe(&b, l.is_error(), *d, Some(*d / 2.0));
        }
        s.add_series(m.iter());
        s.encode()
    }

    proptest! {
        #[test]
        fn states_round_trip(reqs in prop::collection::vec((arb_labels(), 0.0f64..20.0), 0..50)) {
            let b = Buckets::default();
            let bytes = state_bytes(&reqs);
            let back = SharedState::decode(&bytes, &b).unwrap();
            prop_assert_eq!(back.requests(), reqs.len() as u64);
            prop_assert_eq!(back.encode(), bytes);
        }

        /// Mutations of a valid state (so they get past the header) are
        /// either rejected or decode to a state that round-trips.
        #[test]
        fn mutated_states_never_panic(
            reqs in prop::collection::vec((arb_labels(), 0.0f64..20.0), 1..10),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let b = Buckets::default();
            let mut bytes = state_bytes(&reqs);
            for (i, v) in &flips {
                let at = i.index(bytes.len());
                bytes[at] ^= v | 1;
            }
            if let Ok(s) = SharedState::decode(&bytes, &b) {
                prop_assert_eq!(SharedState::decode(&s.encode(), &b).unwrap(), s);
            }
            let _ = SharedState::decode(&bytes[..cut.index(bytes.len())], &b);
        }
    }
}
