//! gunicorn access-log lines. Raw input (first byte even): never panics,
//! fields borrow from the line, a parsed time is consistent with the text.
//! Structured input (odd): a line printed from generated fields (Unicode
//! in every free-text field, hostile zones included) parses back to exactly
//! those fields, and the timestamp equals an independent day count.

use arbitrary::{Result, Unstructured};
use uwsgi_red_core::logs::gunicorn::{self, DurationField};
use uwsgi_red_core::logs::time::{parse_clf, queue_micros};
use uwsgi_red_core::logs::LogFormat;

use crate::text::field;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        raw(&String::from_utf8_lossy(rest));
    } else {
        let _ = structured(&mut Unstructured::new(rest));
    }
}

fn raw(line: &str) {
    // The time parser alone sees any text, multibyte zones included.
    let _ = parse_clf(line);
    for field in [DurationField::M, DurationField::D, DurationField::L] {
        let Some(r) = gunicorn::parse_with(line, field) else {
            continue;
        };
        assert!(matches!(
            r.format,
            LogFormat::Gunicorn | LogFormat::GunicornWithMillis
        ));
        assert!((100..=999).contains(&r.status));
        for s in [r.method, r.target, r.path, r.time, r.remote_addr] {
            assert!(line.contains(s));
        }
        assert_eq!(r.time_unix_nanos, parse_clf(r.time));
        // A trailing request time is either read or flagged, never both.
        let with_time = r.format == LogFormat::GunicornWithMillis;
        assert_eq!(
            r.duration_us.is_some() || r.unread_duration.is_some(),
            with_time
        );
        assert!(r.duration_us.is_none() || r.unread_duration.is_none());
        assert_eq!(r.duration_field, with_time.then_some(field));
        // Queue fields: a logged stamp is the line's text, and the queue
        // time is exactly core's arithmetic on what was logged.
        if let Some(stamp) = r.request_start {
            assert!(line.contains(stamp) && r.start_us.is_some());
        }
        match (r.start_us, r.queue_micros()) {
            (None, None) => {}
            (Some(s), Some(q)) => assert_eq!(q, queue_micros(s, r.request_start)),
            other => panic!("start and queue disagree: {other:?}"),
        }
    }
}

/// Days since 1970-01-01 by counting (independent of the parser's formula).
fn days(year: i64, month: usize, day: i64) -> i64 {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut d = 0;
    for y in 1970..year {
        d += if leap(y) { 366 } else { 365 };
    }
    let lens = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    d + lens[..month].iter().sum::<i64>() + day - 1
}

fn structured(u: &mut Unstructured<'_>) -> Result<()> {
    let addr = field(u, 40, &[])?;
    let user = if u.arbitrary()? {
        field(u, 12, &['['])?
    } else {
        "-".into()
    };
    let (day, month, year) = (
        u.int_in_range(1..=28)?,
        u.int_in_range(0..=11usize)?,
        u.int_in_range(1970..=2400)?,
    );
    let (h, m, s) = (
        u.int_in_range(0..=23)?,
        u.int_in_range(0..=59)?,
        u.int_in_range(0..=59)?,
    );
    let (east, zh, zm): (bool, i64, i64) = (
        u.arbitrary()?,
        u.int_in_range(0..=23)?,
        u.int_in_range(0..=59)?,
    );
    // A hostile zone sometimes: multibyte characters where digits belong.
    let hostile = u.ratio(1, 8)?;
    let zone = if hostile {
        format!("{}{}", if east { '+' } else { '-' }, field(u, 4, &[']'])?)
    } else {
        format!("{}{zh:02}{zm:02}", if east { '+' } else { '-' })
    };
    let method = u
        .choose(&["GET", "POST", "DELETE", "PROPFIND"])?
        .to_string();
    let target = format!("/{}", field(u, 60, &['"'])?);
    let status: u16 = u.int_in_range(100..=999)?;
    let size: Option<u64> = u.arbitrary()?;
    let referer = if u.arbitrary()? {
        field(u, 30, &['"'])?
    } else {
        "-".into()
    };
    let agent = if u.arbitrary()? {
        field(u, 30, &['"'])?
    } else {
        "-".into()
    };
    let millis: Option<u32> = u.arbitrary()?;
    let time = format!(
        "{day:02}/{}/{year}:{h:02}:{m:02}:{s:02} {zone}",
        MONTHS[month]
    );
    let mut line = format!(
        "{addr} - {user} [{time}] \"{method} {target} HTTP/1.1\" {status} {} \"{referer}\" \"{agent}\"",
        size.map_or("-".to_string(), |v| v.to_string())
    );
    if let Some(ms) = millis {
        line.push_str(&format!(" {ms}"));
    }
    let r = gunicorn::parse(&line).unwrap_or_else(|| panic!("not parsed: {line:?}"));
    assert_eq!(r.remote_addr, addr);
    assert_eq!(r.remote_user, Some(user.as_str()).filter(|u| *u != "-"));
    assert_eq!(r.time, time);
    assert_eq!(
        (r.method, r.target, r.protocol),
        (method.as_str(), target.as_str(), Some("HTTP/1.1"))
    );
    assert_eq!((r.status, r.response_bytes), (status, size));
    assert_eq!(r.referer, Some(referer.as_str()).filter(|v| *v != "-"));
    assert_eq!(r.user_agent, Some(agent.as_str()).filter(|v| *v != "-"));
    assert_eq!(r.duration_us, millis.map(|ms| u64::from(ms) * 1000));
    let local = days(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    let offset = (zh * 3600 + zm * 60) * if east { 1 } else { -1 };
    let expected = u64::try_from(local - offset)
        .ok()
        .map(|v| v * 1_000_000_000);
    if hostile {
        // Only a zone of exactly four ASCII digits may give a time.
        let digits = zone.len() == 5 && zone.bytes().skip(1).all(|b| b.is_ascii_digit());
        if !digits {
            assert_eq!(r.time_unix_nanos, None, "{zone:?}");
        }
    } else {
        assert_eq!(r.time_unix_nanos, expected, "{line}");
    }
    raw(&line);
    Ok(())
}
