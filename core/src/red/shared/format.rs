//! The stored form of the self-served RED state: a small versioned binary
//! format ([`SharedState::encode`], [`SharedState::decode`]). Every length
//! is bounded and checked on decode, so foreign bytes are an error, never a
//! panic.

use std::collections::BTreeMap;
use std::fmt;

use litemap::LiteMap;

use crate::prom::text::Format;
use crate::red::aggregate::Series;
use crate::red::config::MAX_SERIES_LIMIT;
use crate::red::histogram::{Buckets, Histogram};
use crate::red::labels::{code_class, LabelSet};
use crate::red::method::{normalize_method, OTHER_METHOD};

const MAGIC: &[u8; 4] = b"URED";
const VERSION: u8 = 2;
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

#[cfg(test)]
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
