//! Timestamps in access logs.
//!
//! Work is linear in the text and nothing is allocated. The zone is read as
//! bytes matched against a fixed shape, never sliced by offset: a zone such
//! as `+0é0` (multibyte characters where digits belong) is malformed, not a
//! panic.

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
