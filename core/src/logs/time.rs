//! Timestamps in access logs.
//!
//! Work is linear in the text and nothing is allocated. The zone is read as
//! bytes matched against a fixed shape, never sliced by offset: a zone such
//! as `+0é0` (multibyte characters where digits belong) is malformed, not a
//! panic.
//!
//! Also the proxy's request stamp (`X-Request-Start`) and the queue time
//! derived from it: see [`parse_request_start`] and [`queue_micros`].

/// How far a proxy stamp may lie *after* the app's request start and still
/// be read as "no queue" (0) rather than as clock skew. The proxy and the
/// app read different clocks when they run on different hosts: NTP keeps
/// hosts of one network within about a millisecond (a few in clouds), and a
/// queue shorter than this is below anything a queue-time panel resolves.
/// A stamp later than the start by more is `Skewed`: counted, never read
/// as a queue time. (On one host the stamp always comes first.)
pub const QUEUE_SKEW_TOLERANCE_US: u64 = 10_000;

/// Why a request with a known start has no queue time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueError {
    /// No stamp (`-`, the header was absent or empty).
    Missing,
    /// A stamp that is no time since the epoch in s, ms, µs or ns.
    Unparsable,
    /// A stamp later than the request start by more than
    /// [`QUEUE_SKEW_TOLERANCE_US`]: the clocks disagree.
    Skewed,
}

impl QueueError {
    /// The value of `uwsgi_red.queue.error`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueError::Missing => "missing",
            QueueError::Unparsable => "unparsable",
            QueueError::Skewed => "skewed",
        }
    }
}

/// An `X-Request-Start` value to µs since the epoch, the way the APM agents
/// read it (New Relic, Scout, Judoscale): an optional `t=`, then a number
/// of seconds, milliseconds, microseconds or nanoseconds since the epoch,
/// with an optional fraction (nginx `t=${msec}` prints `1700000000.123`).
/// The unit is told apart by the number of integer digits, i.e. by
/// magnitude: 10-11 digits seconds, 13-14 ms, 16-17 µs, 19-20 ns (each
/// range covers 2001-09-09 to year 5138). Anything else, a leading zero, a
/// sign, an exponent, a second number, is `None`: a stamp that fits no unit
/// is not guessed at. A fraction finer than a µs is truncated.
pub fn parse_request_start(s: &str) -> Option<u64> {
    let s = s.trim_matches([' ', '\t']);
    let s = s.strip_prefix("t=").unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if int.starts_with('0') {
        return None;
    }
    // µs per unit, as a power of ten; ns divide by 1000 below.
    let (scale_exp, ns) = match int.len() {
        10 | 11 => (6u32, false),
        13 | 14 => (3, false),
        16 | 17 => (0, false),
        19 | 20 => (0, true),
        _ => return None,
    };
    let whole = super::digits::<u64>(int)?;
    let frac_us = match frac {
        None => 0,
        Some(f) => {
            if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Only the digits above a µs count; the rest is truncated.
            let keep = usize::try_from(scale_exp).ok()?.min(f.len());
            let kept = f.get(..keep)?;
            let pad = scale_exp.checked_sub(u32::try_from(keep).ok()?)?;
            if kept.is_empty() {
                0
            } else {
                super::digits::<u64>(kept)?.checked_mul(10u64.checked_pow(pad)?)?
            }
        }
    };
    let us = if ns {
        whole.checked_div(1000)?
    } else {
        whole.checked_mul(10u64.checked_pow(scale_exp)?)?
    };
    us.checked_add(frac_us)
}

/// Queue time in µs: the app's request start (`start_us`, µs since the
/// epoch) minus the proxy stamp `stamp` (`None` when the log has none).
/// A stamp at most [`QUEUE_SKEW_TOLERANCE_US`] after the start gives 0;
/// later than that it is [`QueueError::Skewed`].
pub fn queue_micros(start_us: u64, stamp: Option<&str>) -> Result<u64, QueueError> {
    let stamp = stamp.ok_or(QueueError::Missing)?;
    let stamp_us = parse_request_start(stamp).ok_or(QueueError::Unparsable)?;
    match start_us.checked_sub(stamp_us) {
        Some(q) => Ok(q),
        None if stamp_us.saturating_sub(start_us) <= QUEUE_SKEW_TOLERANCE_US => Ok(0),
        None => Err(QueueError::Skewed),
    }
}

/// gunicorn `%(t)s`: `[22/Nov/2026:04:12:31 +0000]` (brackets optional) to
/// Unix nanoseconds. `None` for anything malformed or before 1970.
pub fn parse_clf(s: &str) -> Option<u64> {
    let s = s.trim_start_matches('[').trim_end_matches(']');
    let (date_time, zone) = s.split_once(' ')?;
    let mut it = date_time.splitn(4, [':', '/']);
    let day: i64 = super::digits(it.next()?)?;
    let month = month_number(it.next()?)?;
    let year: i64 = super::digits(it.next()?)?;
    let mut t = it.next()?.splitn(3, ':');
    let (h, m, sec): (i64, i64, i64) = (
        super::digits(t.next()?)?,
        super::digits(t.next()?)?,
        super::digits(t.next()?)?,
    );
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let offset = zone_offset_seconds(zone)?;
    // Every operand is range-checked above, so none of these can overflow;
    // checked arithmetic keeps that true by construction.
    let secs = days_from_civil(year, month, day)?
        .checked_mul(86_400)?
        .checked_add(h.checked_mul(3600)?)?
        .checked_add(m.checked_mul(60)?)?
        .checked_add(sec)?
        .checked_sub(offset)?;
    u64::try_from(secs).ok()?.checked_mul(1_000_000_000)
}

fn month_number(m: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let i = MONTHS.iter().position(|x| *x == m)?;
    i64::try_from(i).ok()?.checked_add(1)
}

/// The value of one ASCII digit byte.
fn digit(b: u8) -> Option<i64> {
    b.is_ascii_digit().then(|| i64::from(b.wrapping_sub(b'0')))
}

/// `+0130` / `-0800` to seconds east of UTC: exactly five bytes, a sign and
/// four ASCII digits (minutes at most 59).
fn zone_offset_seconds(z: &str) -> Option<i64> {
    let &[sign, h1, h2, m1, m2] = z.as_bytes() else {
        return None;
    };
    let hh = digit(h1)?.checked_mul(10)?.checked_add(digit(h2)?)?;
    let mm = digit(m1)?.checked_mul(10)?.checked_add(digit(m2)?)?;
    if mm > 59 {
        return None;
    }
    let secs = hh.checked_mul(3600)?.checked_add(mm.checked_mul(60)?)?;
    match sign {
        b'+' => Some(secs),
        b'-' => secs.checked_neg(),
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// civil-days algorithm). `None` only on overflow, which the caller's range
/// checks already exclude.
fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y.checked_div_euclid(400)?;
    let yoe = y.checked_sub(era.checked_mul(400)?)?;
    let mp = m.checked_add(9)?.checked_rem(12)?;
    let doy = mp
        .checked_mul(153)?
        .checked_add(2)?
        .checked_div(5)?
        .checked_add(d)?
        .checked_sub(1)?;
    let doe = yoe
        .checked_mul(365)?
        .checked_add(yoe.checked_div(4)?)?
        .checked_sub(yoe.checked_div(100)?)?
        .checked_add(doy)?;
    era.checked_mul(146_097)?
        .checked_add(doe)?
        .checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the zone used to be sliced by byte offsets,
    /// so multibyte characters where digits belong panicked.
    #[test]
    fn multibyte_zones_are_malformed_not_a_panic() {
        for zone in ["+0é0", "+0€", "-😀", "+é00", "€000", "+00é", "+0000é"] {
            let t = format!("22/Nov/2026:04:12:31 {zone}");
            assert_eq!(parse_clf(&t), None, "{t}");
            let line = format!("127.0.0.1 - - [{t}] \"GET / HTTP/1.1\" 200 2 \"-\" \"curl\"");
            let r = crate::logs::parse_line(&line).unwrap();
            assert_eq!(
                (r.status, r.time, r.time_unix_nanos),
                (200, t.as_str(), None)
            );
        }
    }

    #[test]
    fn request_start_units_by_magnitude() {
        let us = 1_700_000_000_123_456u64;
        for (s, want) in [
            ("t=1700000000123456", Some(us)),
            ("1700000000123456", Some(us)),
            (" t=1700000000123456 ", Some(us)),
            ("t=1700000000.123456", Some(us)),
            ("t=1700000000.123", Some(us - 456)),
            ("t=1700000000.1234567", Some(us)),
            ("t=1700000000", Some(us - 123_456)),
            ("1700000000123", Some(us - 456)),
            ("t=1700000000123.456", Some(us)),
            ("t=1700000000123456.9", Some(us)),
            ("1700000000123456789", Some(us)),
            ("t=1700000000123456789", Some(us)),
            // Year 5138 edges: 11 digits of s, 14 of ms, 17 of µs, 20 of ns.
            ("99999999999", Some(99_999_999_999_000_000)),
            ("99999999999999", Some(99_999_999_999_999_000)),
            ("99999999999999999", Some(99_999_999_999_999_999)),
            ("18446744073709551615", Some(18_446_744_073_709_551)),
        ] {
            assert_eq!(parse_request_start(s), want, "{s}");
        }
        for bad in [
            "",
            "-",
            "t=",
            "t=abc",
            "t=170000000",
            "t=170000000012",
            "t=170000000012345",
            "t=170000000012345678",
            "t=123456789012345678901",
            "t=0700000000",
            "t=1700000000.",
            "t=.5",
            "t=1700000000.1x",
            "t=-1700000000",
            "t=+1700000000",
            "t=1.7e9",
            "t=1700000000 t=1700000001",
            "t=1700000000123456, D=12",
            "T=1700000000",
            "t=1700000000,5",
            "99999999999999999999",
            "t=1700000000.12é",
            "t=17000000€0",
        ] {
            assert_eq!(parse_request_start(bad), None, "{bad}");
        }
    }

    #[test]
    fn queue_is_start_minus_stamp_clamped_within_tolerance() {
        let start = 1_700_000_000_500_000u64;
        assert_eq!(queue_micros(start, Some("t=1700000000350000")), Ok(150_000));
        assert_eq!(queue_micros(start, Some("t=1700000000.350")), Ok(150_000));
        assert_eq!(queue_micros(start, Some("1700000000350")), Ok(150_000));
        assert_eq!(queue_micros(start, Some("t=1700000000500000")), Ok(0));
        let edge = start + QUEUE_SKEW_TOLERANCE_US;
        assert_eq!(queue_micros(start, Some(&format!("t={edge}"))), Ok(0));
        assert_eq!(
            queue_micros(start, Some(&format!("t={}", edge + 1))),
            Err(QueueError::Skewed)
        );
        assert_eq!(queue_micros(start, None), Err(QueueError::Missing));
        assert_eq!(
            queue_micros(start, Some("soon")),
            Err(QueueError::Unparsable)
        );
        assert_eq!(
            queue_micros(0, Some("t=1700000000")),
            Err(QueueError::Skewed)
        );
        assert_eq!(
            queue_micros(u64::MAX, Some("t=1700000000")),
            Ok(u64::MAX - 1_700_000_000_000_000)
        );
    }

    #[test]
    fn clf_known_instants() {
        // date -u -d '2026-11-22T04:12:31Z' +%s = 1795320751
        assert_eq!(
            parse_clf("[22/Nov/2026:04:12:31 +0000]"),
            Some(1_795_320_751_000_000_000)
        );
        assert_eq!(
            parse_clf("22/Nov/2026:05:12:31 +0100"),
            Some(1_795_320_751_000_000_000)
        );
        assert_eq!(parse_clf("01/Jan/1970:00:00:00 +0000"), Some(0));
        assert_eq!(
            parse_clf("29/Feb/2024:12:00:00 -0130"),
            Some(1_709_213_400_000_000_000)
        );
    }

    #[test]
    fn clf_rejects_malformed() {
        for bad in [
            "",
            "[]",
            "22/Nov/2026:04:12:31",
            "22/Foo/2026:04:12:31 +0000",
            "22/Nov/2026:25:12:31 +0000",
            "22/Nov/2026:04:12:31 0000",
            "01/Jan/1969:00:00:00 +0000",
            "99999999999999999999/Nov/2026:04:12:31 +0000",
            "22/Nov/2026:04:12:31 +0060",
            "22/Nov/2026:04:12:31 *0000",
        ] {
            assert_eq!(parse_clf(bad), None, "{bad}");
        }
    }
}
