//! Timestamps in access logs.

/// gunicorn `%(t)s`: `[22/Nov/2026:04:12:31 +0000]` (brackets optional) to
/// Unix nanoseconds. `None` for anything malformed or before 1970.
pub fn parse_clf(s: &str) -> Option<u64> {
    let s = s.trim_start_matches('[').trim_end_matches(']');
    let (date_time, zone) = s.split_once(' ')?;
    let mut it = date_time.splitn(4, [':', '/']);
    let day: i64 = super::digits(it.next()?)?;
    let month = month_number(it.next()?)?;
    let rest = it.next()?; // year
    let year: i64 = super::digits(rest)?;
    let hms = it.next()?;
    let mut t = hms.splitn(3, ':');
    let (h, m, sec): (i64, i64, i64) = (
        super::digits(t.next()?)?,
        super::digits(t.next()?)?,
        super::digits(t.next()?)?,
    );
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let offset = zone_offset_seconds(zone)?;
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec - offset;
    u64::try_from(secs).ok()?.checked_mul(1_000_000_000)
}

fn month_number(m: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS.iter().position(|x| *x == m).map(|i| i as i64 + 1)
}

/// `+0130` / `-0800` to seconds east of UTC.
fn zone_offset_seconds(z: &str) -> Option<i64> {
    let b = z.as_bytes();
    if b.len() != 5 || !(b[0] == b'+' || b[0] == b'-') {
        return None;
    }
    let hh: i64 = super::digits(&z[1..3])?;
    let mm: i64 = super::digits(&z[3..5])?;
    let secs = hh * 3600 + mm * 60;
    Some(if b[0] == b'-' { -secs } else { secs })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// civil-days algorithm); bounded inputs keep it overflow-free.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert_eq!(parse_clf(bad), None, "{bad}");
        }
    }
}
