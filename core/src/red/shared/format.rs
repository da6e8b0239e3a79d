//! The stored form of the self-served RED state: a small versioned binary
//! format ([`SharedState::encode`], [`SharedState::decode`]). Every length
//! is bounded and checked on decode, so foreign bytes are an error, never a
//! panic.

use std::collections::BTreeMap;
use std::fmt;

use litemap::LiteMap;

use super::exemplar::{bucket_index, Exemplar, Exemplars, TraceId};
use crate::prom::text::Format;
use crate::red::aggregate::Series;
use crate::red::config::MAX_SERIES_LIMIT;
use crate::red::histogram::{Buckets, Histogram};
use crate::red::labels::{code_class, LabelSet};
use crate::red::method::{normalize_method, OTHER_METHOD};

const MAGIC: &[u8; 4] = b"URED";
/// Written when the state holds no exemplar, byte for byte what modules
/// without exemplars write and read.
const VERSION: u8 = 2;
/// The same layout plus each series' exemplar slots. A module that only
/// knows [`VERSION`] refuses it as unsupported (counted, left alone).
const VERSION_EXEMPLARS: u8 = 3;
/// Protocol labels a state may hold; `LabelSet::protocol` is `&'static str`.
const PROTOCOLS: [&str; 2] = ["http", "uwsgi"];
const CODE_CLASSES: [&str; 6] = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];
/// Set in the protocol byte when an `upstream` label string follows it: a
/// state without that label is byte for byte what it was before the label
/// existed, so no version change.
const HAS_UPSTREAM: u8 = 0x80;
/// The longest label string the format holds. Labels are bounded well
/// below it (routes and route names ≤ 256 bytes, services ≤ 128), and
/// [`fits_format`] checks every configured label that could exceed it.
pub const MAX_LABEL_BYTES: usize = 1024;
const MAX_INTERNAL_REASONS: usize = 64;
/// One overflow series per status class and protocol on top of the cap.
const MAX_OVERFLOW_SERIES: usize = CODE_CLASSES.len() * PROTOCOLS.len();

/// True when a label value can be stored; configuration checks call it on
/// every configured label (service, route templates) so a label the
/// format cannot hold is refused at configure time, naming the key.
pub fn fits_format(label: &str) -> bool {
    label.len() <= MAX_LABEL_BYTES
}

/// The merged state: of one shard as stored, or of all of them for a
/// scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedState {
    buckets: Buckets,
    series: BTreeMap<LabelSet, Series>,
    dropped: u64,
    internal: LiteMap<String, u64>,
    /// Latest exemplars per bucket; only for label sets in `series`.
    exemplars: BTreeMap<LabelSet, Exemplars>,
    /// Unix seconds when the state was created (meta key only): a new
    /// value means the counters restarted.
    pub(super) started_s: u64,
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
    /// An exemplar slot that no request of its bucket could have written.
    BadExemplar,
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
            DecodeError::BadExemplar => f.write_str("shared RED state: inconsistent exemplar"),
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
            exemplars: BTreeMap::new(),
            started_s: 0,
        }
    }

    /// The exemplars of one series, if it has any.
    pub fn exemplars(&self, labels: &LabelSet) -> Option<&Exemplars> {
        self.exemplars.get(labels)
    }

    /// [`observe`](Self::observe) with the request's exemplar (tests,
    /// fuzzing and tools; VMs record into a [`super::Delta`]).
    pub fn observe_with_exemplar(
        &mut self,
        labels: LabelSet,
        duration_seconds: f64,
        ttfb_seconds: Option<f64>,
        trace_id: TraceId,
        time_ns: u64,
    ) {
        let e = Exemplar {
            trace_id,
            value: duration_seconds,
            time_ns,
        };
        let buckets = &self.buckets;
        self.exemplars
            .entry(labels.clone())
            .or_insert_with(|| Exemplars::new(buckets))
            .observe(buckets, e);
        self.observe(labels, duration_seconds, ttfb_seconds);
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
    /// tools that build states; VMs record into a [`super::Delta`]).
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

    pub(super) fn add_series<'a>(
        &mut self,
        series: impl Iterator<Item = (&'a LabelSet, &'a Series)>,
    ) {
        for (labels, s) in series {
            let buckets = &self.buckets;
            self.series
                .entry(labels.clone())
                .or_insert_with(|| Series::new(buckets))
                .merge(s);
        }
    }

    /// Merges exemplars of series this state holds (a flush adds them
    /// with their series, so every one has its series).
    pub(super) fn add_exemplars<'a>(
        &mut self,
        exemplars: impl Iterator<Item = (&'a LabelSet, &'a Exemplars)>,
    ) {
        for (labels, e) in exemplars {
            if !self.series.contains_key(labels) {
                continue;
            }
            match self.exemplars.get_mut(labels) {
                Some(mine) => mine.merge(e),
                None => {
                    self.exemplars.insert(labels.clone(), e.clone());
                }
            }
        }
    }

    pub(super) fn add_totals<'a>(
        &mut self,
        dropped: u64,
        internal: impl Iterator<Item = (&'a str, u64)>,
    ) {
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
        self.add_exemplars(other.exemplars.iter());
        self.add_totals(other.dropped, other.internal());
        if self.started_s == 0 {
            self.started_s = other.started_s;
        }
    }

    /// Prometheus text or OpenMetrics, second-based histograms.
    pub fn encode_text(&self, format: Format) -> String {
        let internal: Vec<(&str, u64)> = self.internal().collect();
        crate::red::expose::encode(
            format,
            &self.buckets,
            self.series.iter(),
            self.dropped,
            Some(&internal),
            Some(self.started_s),
            &self.exemplars,
        )
    }

    /// Layout (integers are LEB128 varints unless noted):
    /// `"URED"`, version byte, bound count byte, bounds as f64 LE,
    /// started_s, dropped, reason count, (reason string, count)…, series
    /// count, then per series: method string, code, code-class index byte,
    /// route string, service string, protocol index byte (`HAS_UPSTREAM`
    /// set: the upstream string follows), requests, errors,
    /// and two histograms (bucket counts, `+Inf` last, then the sum as f64
    /// LE). Strings are a varint length and UTF-8 bytes.
    /// Version 3 (written only when some series has an exemplar) adds to
    /// each series, after its histograms: the count of filled exemplar
    /// slots, then per slot its bucket index byte (increasing), the
    /// 16-byte trace id, the value as f64 LE and the time in ns.
    pub fn encode(&self) -> Vec<u8> {
        let with_exemplars = self.exemplars.values().any(|e| !e.is_empty());
        let nb = self.buckets.bounds().len();
        let per_series = nb.saturating_add(1).saturating_mul(8).saturating_add(64);
        let mut out = Vec::with_capacity(self.series.len().saturating_mul(per_series));
        out.extend_from_slice(MAGIC);
        out.push(if with_exemplars {
            VERSION_EXEMPLARS
        } else {
            VERSION
        });
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
            match &l.upstream {
                Some(u) => {
                    out.push(index_of(&PROTOCOLS, l.protocol) | HAS_UPSTREAM);
                    put_str(&mut out, u);
                }
                None => out.push(index_of(&PROTOCOLS, l.protocol)),
            }
            put_varint(&mut out, s.requests);
            put_varint(&mut out, s.errors);
            put_histogram(&mut out, &s.duration);
            put_histogram(&mut out, &s.ttfb);
            if with_exemplars {
                put_exemplars(&mut out, self.exemplars.get(l));
            }
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
        if version != VERSION && version != VERSION_EXEMPLARS {
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
            let exemplars = if version == VERSION_EXEMPLARS {
                r.exemplars(buckets, &duration)?
            } else {
                None
            };
            let s = Series {
                requests,
                errors,
                duration,
                ttfb,
            };
            if let Some(e) = exemplars {
                state.exemplars.insert(labels.clone(), e);
            }
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
    let p = r.byte()?;
    let protocol = *PROTOCOLS
        .get(usize::from(p & !HAS_UPSTREAM))
        .ok_or(DecodeError::BadLabel("protocol"))?;
    let upstream = if p & HAS_UPSTREAM != 0 {
        Some(r.str()?.to_string())
    } else {
        None
    };
    let labels = LabelSet::new(method, code, route, service, protocol).with_upstream(upstream);
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

fn put_exemplars(out: &mut Vec<u8>, e: Option<&Exemplars>) {
    let Some(e) = e else {
        out.push(0);
        return;
    };
    put_varint(out, e.iter().count() as u64);
    for (i, x) in e.iter() {
        // Slots are one per bucket plus `+Inf`: MAX_BUCKETS + 1 fits a byte.
        out.push(u8::try_from(i).unwrap_or(u8::MAX));
        out.extend_from_slice(&x.trace_id.bytes());
        out.extend_from_slice(&x.value.to_le_bytes());
        put_varint(out, x.time_ns);
    }
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

    /// One series' exemplar slots; each must sit in a bucket its duration
    /// histogram counted, in the bucket its value falls in, so a state
    /// read back is one a module could have written.
    fn exemplars(
        &mut self,
        buckets: &Buckets,
        duration: &Histogram,
    ) -> Result<Option<Exemplars>, DecodeError> {
        let mut e = Exemplars::new(buckets);
        let n = self.len(e.slot_count(), "exemplar slots")?;
        let mut next = 0usize;
        for _ in 0..n {
            let slot = usize::from(self.byte()?);
            if slot < next || duration.counts().get(slot).is_none_or(|c| *c == 0) {
                return Err(DecodeError::BadExemplar);
            }
            next = slot.saturating_add(1);
            let id: [u8; 16] = self
                .take(16)?
                .try_into()
                .map_err(|_| DecodeError::Truncated)?;
            let trace_id = TraceId::from_bytes(id).ok_or(DecodeError::BadExemplar)?;
            let value = self.f64()?;
            let time_ns = self.varint()?;
            if !value.is_finite()
                || value.is_sign_negative()
                || bucket_index(buckets, value) != slot
            {
                return Err(DecodeError::BadExemplar);
            }
            e.put(
                slot,
                Exemplar {
                    trace_id,
                    value,
                    time_ns,
                },
            );
        }
        Ok((n > 0).then_some(e))
    }

    fn histogram(&mut self, buckets: &Buckets) -> Result<Histogram, DecodeError> {
        let counts = (0..=buckets.bounds().len())
            .map(|_| self.varint())
            .collect::<Result<Vec<_>, _>>()?;
        let sum = self.f64()?;
        Histogram::from_parts(buckets, counts, sum).ok_or(DecodeError::BadHistogram)
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
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
            prop::option::of(prop::sample::select(vec!["127.0.0.1:8001", "[::1]:80", ""])),
        )
            .prop_map(|(m, c, r, s, p, u)| {
                LabelSet::new(m, c, r, s.to_string(), p).with_upstream(u.map(str::to_string))
            })
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

    /// Requests with a trace id (`Some(n)`: 16 bytes of `n`, 0 has none)
    /// and a time.
    fn traced_state(reqs: &[(LabelSet, f64, u8, u64)]) -> SharedState {
        let b = Buckets::default();
        let mut s = SharedState::new(b.clone());
        for (l, d, t, ns) in reqs {
            match TraceId::from_bytes([*t; 16]) {
                Some(id) => s.observe_with_exemplar(l.clone(), *d, None, id, *ns),
                None => s.observe(l.clone(), *d, None),
            }
        }
        s
    }

    fn arb_traced() -> impl Strategy<Value = Vec<(LabelSet, f64, u8, u64)>> {
        prop::collection::vec((arb_labels(), 0.0f64..20.0, 0u8..4, any::<u64>()), 0..40)
    }

    proptest! {
        /// States with exemplars round-trip; merging parts in either order
        /// gives the state of all requests (latest per bucket commutes).
        #[test]
        fn exemplar_states_round_trip_and_merge(reqs in arb_traced(), split in any::<prop::sample::Index>()) {
            let b = Buckets::default();
            let all = traced_state(&reqs);
            let bytes = all.encode();
            let back = SharedState::decode(&bytes, &b).unwrap();
            prop_assert_eq!(&back, &all);
            prop_assert_eq!(back.encode(), bytes.clone());
            let has = reqs.iter().any(|r| r.2 != 0);
            prop_assert_eq!(bytes[4], if has { VERSION_EXEMPLARS } else { VERSION });
            let at = split.index(reqs.len() + 1);
            let (x, y) = (traced_state(&reqs[..at]), traced_state(&reqs[at..]));
            let mut xy = x.clone();
            xy.merge(&y);
            let mut yx = y;
            yx.merge(&x);
            prop_assert_eq!(xy.encode(), yx.encode());
            prop_assert_eq!(xy.encode(), bytes);
        }

        /// Every exemplar sits in the bucket its value falls in, and the
        /// latest time of a series is its `_total` exemplar's.
        #[test]
        fn exemplars_are_in_their_bucket(reqs in arb_traced()) {
            let b = Buckets::default();
            let s = traced_state(&reqs);
            for (l, series) in s.series() {
                let Some(x) = s.exemplars(l) else { continue };
                for (i, e) in x.iter() {
                    prop_assert_eq!(bucket_index(&b, e.value), i);
                    prop_assert!(series.duration.counts()[i] > 0);
                }
                let latest = reqs.iter().filter(|r| &r.0 == l && r.2 != 0).map(|r| r.3).max();
                prop_assert_eq!(x.latest().map(|e| e.time_ns), latest);
            }
        }

        /// Damaged exemplar states never panic, and what still decodes
        /// re-encodes stably.
        #[test]
        fn mutated_exemplar_states_never_panic(
            reqs in arb_traced(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let b = Buckets::default();
            let mut bytes = traced_state(&reqs).encode();
            for (i, v) in &flips {
                let at = i.index(bytes.len());
                bytes[at] ^= v | 1;
            }
            if let Ok(s) = SharedState::decode(&bytes, &b) {
                let again = s.encode();
                prop_assert!(again.len() <= bytes.len());
                prop_assert_eq!(SharedState::decode(&again, &b).unwrap(), s);
            }
        }
    }

    /// Exemplar slots a module could not have written are refused.
    #[test]
    fn inconsistent_exemplars_are_refused() {
        let b = Buckets::new(vec![0.1, 1.0]).unwrap();
        let l = LabelSet::new("GET", 200, "/a".into(), "s".into(), "http");
        let mut s = SharedState::new(b.clone());
        s.observe_with_exemplar(
            l.clone(),
            0.5,
            None,
            TraceId::from_bytes([7; 16]).unwrap(),
            9,
        );
        let good = s.encode();
        assert_eq!(SharedState::decode(&good, &b).unwrap(), s);
        // The exemplar section: count 1, slot 1, 16 id bytes, f64, varint 9.
        let tail = good.len() - 1 - 8 - 16 - 1 - 1;
        assert_eq!(&good[tail..tail + 2], &[1, 1]);
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut v = good.clone();
            f(&mut v);
            SharedState::decode(&v, &b)
        };
        let bad = Err(DecodeError::BadExemplar);
        assert_eq!(with(&|v| v[tail + 1] = 0), bad, "slot with no count");
        assert_eq!(with(&|v| v[tail + 1] = 2), bad, "slot with no count");
        assert_eq!(
            with(&|v| v[tail + 2..tail + 18].fill(0)),
            bad,
            "zero trace id"
        );
        assert_eq!(
            with(&|v| v[tail + 18..tail + 26].copy_from_slice(&0.05f64.to_le_bytes())),
            bad,
            "value of another bucket"
        );
        assert_eq!(
            with(&|v| v[tail + 18..tail + 26].copy_from_slice(&(-0.0f64).to_le_bytes())),
            bad
        );
        assert_eq!(
            with(&|v| v[tail] = 4),
            Err(DecodeError::TooLarge("exemplar slots")),
            "more slots than buckets"
        );
        // A version-2 reader's view: the same bytes under version 2 have
        // trailing data, never a silent misread.
        assert_eq!(with(&|v| v[4] = VERSION), Err(DecodeError::TrailingBytes));
        assert_eq!(with(&|v| v[4] = 4), Err(DecodeError::UnsupportedVersion(4)));
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
