//! Exemplars of the self-served state: the W3C `traceparent` trace id of
//! the latest request per histogram bucket, so a scrape in OpenMetrics can
//! link a bucket (and `_total`) to one trace.
//!
//! Bounded by construction: one slot per duration bucket (the `+Inf`
//! bucket included) per series, each a fixed-size [`Exemplar`]; a newer
//! request replaces the one in its slot. The `_total` exemplar is not
//! stored: it is the latest of the series' bucket slots.

use crate::red::histogram::Buckets;

/// A W3C trace id: 16 bytes, never all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraceId(pub(super) [u8; 16]);

impl TraceId {
    pub fn from_bytes(b: [u8; 16]) -> Option<Self> {
        (b != [0; 16]).then_some(Self(b))
    }

    pub fn bytes(&self) -> [u8; 16] {
        self.0
    }

    /// 32 lowercase hex digits, as `traceparent` spells it.
    pub fn hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(32);
        for b in self.0 {
            for nibble in [b >> 4, b & 0x0f] {
                s.push(char::from(*HEX.get(usize::from(nibble)).unwrap_or(&b'0')));
            }
        }
        s
    }
}

/// Label name of the trace id in an exemplar's label set.
pub const TRACE_ID_LABEL: &str = "trace_id";

// OpenMetrics caps an exemplar's label set at 128 UTF-8 code points (names
// and values together); `trace_id` plus 32 hex digits is the whole set.
const _: () = assert!(TRACE_ID_LABEL.len() + 32 <= 128);

/// Why a `traceparent` value gives no trace id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceparentError {
    /// Not `version-traceid-parentid-flags` in lowercase hex of the
    /// lengths the W3C Trace Context spec gives.
    Malformed,
    /// Version `ff`, which the spec forbids.
    ForbiddenVersion,
    /// An all-zero trace id or parent id, which the spec calls invalid.
    ZeroId,
}

/// Parses a W3C `traceparent` header value (bytes as the client sent
/// them). Version `00` is exactly 55 bytes; a later version may carry more
/// fields after a `-`, as the spec tells a version-00 parser to accept.
/// Only lowercase hex is valid (the spec's `HEXDIGLC`).
pub fn parse_traceparent(v: &[u8]) -> Result<TraceId, TraceparentError> {
    use TraceparentError::{ForbiddenVersion, Malformed, ZeroId};
    let head = v.get(..55).ok_or(Malformed)?;
    let version = hex_bytes::<1>(head.get(0..2).ok_or(Malformed)?).ok_or(Malformed)?;
    let trace = hex_bytes::<16>(head.get(3..35).ok_or(Malformed)?).ok_or(Malformed)?;
    let parent = hex_bytes::<8>(head.get(36..52).ok_or(Malformed)?).ok_or(Malformed)?;
    hex_bytes::<1>(head.get(53..55).ok_or(Malformed)?).ok_or(Malformed)?;
    if [2usize, 35, 52]
        .iter()
        .any(|i| head.get(*i).copied() != Some(b'-'))
    {
        return Err(Malformed);
    }
    match version {
        [0xff] => return Err(ForbiddenVersion),
        [0x00] if v.len() != 55 => return Err(Malformed),
        _ if v.len() > 55 && v.get(55).copied() != Some(b'-') => return Err(Malformed),
        _ => {}
    }
    if parent == [0; 8] {
        return Err(ZeroId);
    }
    TraceId::from_bytes(trace).ok_or(ZeroId)
}

fn hex_bytes<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c.wrapping_sub(b'0')),
            b'a'..=b'f' => Some(c.wrapping_sub(b'a').wrapping_add(10)),
            _ => None,
        }
    }
    if s.len() != N.checked_mul(2)? {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hi = nibble(*pair.first()?)?;
        let lo = nibble(*pair.get(1)?)?;
        *o = (hi << 4) | lo;
    }
    Some(out)
}

/// One request as an exemplar: its trace id, its duration in seconds and
/// when it was recorded (ns since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    pub trace_id: TraceId,
    pub value: f64,
    pub time_ns: u64,
}

impl Exemplar {
    /// The order "latest" means, total so that merging VMs' slots in any
    /// order gives the same result: time, then trace id, then value.
    fn is_after(&self, other: &Exemplar) -> bool {
        (self.time_ns, self.trace_id, self.value.to_bits())
            > (other.time_ns, other.trace_id, other.value.to_bits())
    }
}

/// The duration the histogram records for `seconds`: NaN and negative
/// values (clock skew) count as 0, as [`crate::red::Histogram`] does.
pub fn recorded_value(seconds: f64) -> f64 {
    if seconds.is_finite() && seconds > 0.0 {
        seconds
    } else {
        0.0
    }
}

/// The bucket a recorded value lands in, by the histogram's own rule
/// (`le`: the first bound not below it; past the last bound, `+Inf`).
pub fn bucket_index(buckets: &Buckets, value: f64) -> usize {
    buckets.bounds().partition_point(|b| *b < value)
}

/// The latest exemplar of each duration bucket of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplars {
    /// One per finite bound, then `+Inf`.
    slots: Box<[Option<Exemplar>]>,
}

impl Exemplars {
    pub fn new(buckets: &Buckets) -> Self {
        Self {
            slots: vec![None; buckets.bounds().len().saturating_add(1)].into_boxed_slice(),
        }
    }

    /// Keeps `e` in the slot of its bucket when it is the latest there.
    pub fn observe(&mut self, buckets: &Buckets, e: Exemplar) {
        let e = Exemplar {
            value: recorded_value(e.value),
            ..e
        };
        self.put(bucket_index(buckets, e.value), e);
    }

    pub(super) fn put(&mut self, slot: usize, e: Exemplar) {
        if let Some(s) = self.slots.get_mut(slot) {
            if s.as_ref().is_none_or(|old| e.is_after(old)) {
                *s = Some(e);
            }
        }
    }

    pub fn merge(&mut self, other: &Exemplars) {
        for (i, e) in other.iter() {
            self.put(i, *e);
        }
    }

    /// `(bucket index, exemplar)` of the filled slots, in bucket order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Exemplar)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i, e)))
    }

    pub fn get(&self, slot: usize) -> Option<&Exemplar> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    /// The series' latest request: the exemplar of its `_total` counter.
    pub fn latest(&self) -> Option<&Exemplar> {
        self.slots
            .iter()
            .flatten()
            .fold(None, |best: Option<&Exemplar>, e| match best {
                Some(b) if !e.is_after(b) => Some(b),
                _ => Some(e),
            })
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    pub(super) fn slot_count(&self) -> usize {
        self.slots.len()
    }
}

/// Seconds with milliseconds (what Prometheus keeps of an exemplar's
/// timestamp), in integer arithmetic.
pub fn timestamp_text(time_ns: u64) -> String {
    let ms = time_ns / 1_000_000;
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const GOOD: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let id = parse_traceparent(GOOD).unwrap();
        assert_eq!(id.hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap(),
            id,
            "sampled flag does not matter"
        );
    }

    #[test]
    fn refuses_what_the_spec_refuses() {
        use TraceparentError::*;
        let cases: &[(&[u8], TraceparentError)] = &[
            (b"", Malformed),
            (&GOOD[..54], Malformed),
            (
                b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                Malformed,
            ),
            (
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
                Malformed,
            ),
            (
                b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Malformed,
            ),
            (
                b"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
                Malformed,
            ),
            (
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
                Malformed,
            ),
            (
                b"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
                Malformed,
            ),
            (
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
                Malformed,
            ),
            (
                b"0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Malformed,
            ),
            (
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
                Malformed,
            ),
            (
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
                Malformed,
            ),
            (
                b" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Malformed,
            ),
            (
                b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
                Malformed,
            ),
            (
                b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ForbiddenVersion,
            ),
            (
                b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                ZeroId,
            ),
            (
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                ZeroId,
            ),
            (
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\xff",
                Malformed,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(
                parse_traceparent(v),
                Err(*want),
                "{}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn later_versions_may_carry_more_fields() {
        let id =
            parse_traceparent(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(id.hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(
            parse_traceparent(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_ok()
        );
    }

    fn ex(id: u8, value: f64, time_ns: u64) -> Exemplar {
        Exemplar {
            trace_id: TraceId::from_bytes([id; 16]).unwrap(),
            value,
            time_ns,
        }
    }

    #[test]
    fn latest_per_bucket_in_any_merge_order() {
        let b = Buckets::new(vec![0.1, 1.0]).unwrap();
        let all = [
            ex(1, 0.05, 10),
            ex(2, 0.5, 20),
            ex(3, 0.07, 30),
            ex(4, 5.0, 5),
            ex(5, 0.1, 30),
            ex(6, f64::NAN, 1),
        ];
        let mut one = Exemplars::new(&b);
        for e in all {
            one.observe(&b, e);
        }
        let mut parts = [Exemplars::new(&b), Exemplars::new(&b)];
        for (i, e) in all.iter().rev().enumerate() {
            parts[i % 2].observe(&b, *e);
        }
        let mut merged = parts[1].clone();
        merged.merge(&parts[0]);
        assert_eq!(merged, one);
        let got: Vec<(usize, u8)> = one.iter().map(|(i, e)| (i, e.trace_id.0[0])).collect();
        // 0.1 and 0.07 tie on time: the larger trace id wins, in any order.
        assert_eq!(got, vec![(0, 5), (1, 2), (2, 4)]);
        assert_eq!(one.latest().unwrap().trace_id.0[0], 5);
        assert_eq!(one.get(0).unwrap().value, 0.1);
    }

    #[test]
    fn nan_lands_in_the_first_bucket_as_zero() {
        let b = Buckets::new(vec![0.1]).unwrap();
        let mut e = Exemplars::new(&b);
        e.observe(&b, ex(1, f64::NAN, 1));
        assert_eq!(e.get(0).unwrap().value, 0.0);
        assert!(!e.is_empty());
        assert!(Exemplars::new(&b).latest().is_none());
    }

    #[test]
    fn timestamps_in_seconds_with_milliseconds() {
        assert_eq!(timestamp_text(1_700_000_000_123_456_789), "1700000000.123");
        assert_eq!(timestamp_text(5_000_000), "0.005");
        assert_eq!(timestamp_text(0), "0.000");
    }
}

#[cfg(test)]
mod size {
    /// What the README states as the memory bound of one series' slots.
    #[test]
    fn slot_size() {
        assert_eq!(std::mem::size_of::<Option<super::Exemplar>>(), 40);
    }
}
