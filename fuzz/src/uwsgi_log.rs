//! uWSGI request-log lines. Raw input (first byte even): parsing never
//! panics and every field borrows from the line. Structured input (odd):
//! a line printed from generated fields, Unicode included, parses back to
//! exactly those fields (round trip), with or without the queue-time fields
//! (`tmicros=`, `x_request_start=` with any text), whose queue time agrees
//! with `time::queue_micros` of exactly the logged stamp.

use arbitrary::{Result, Unstructured};
use uwsgi_red_core::logs::{parse_line, time, uwsgi, LogFormat};

use crate::text::field;

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
    let r = uwsgi::parse(line);
    if let Some(r) = &r {
        assert_eq!(r.format, LogFormat::Uwsgi);
        assert!((100..=999).contains(&r.status));
        for s in [r.method, r.target, r.path, r.time, r.remote_addr] {
            assert!(line.contains(s));
        }
        let joined = match r.query {
            Some(q) => format!("{}?{q}", r.path),
            None => r.path.to_string(),
        };
        assert_eq!(joined, r.target);
        if let Some(stamp) = r.request_start {
            assert!(line.contains(stamp) && r.start_us.is_some());
        }
        match (r.start_us, r.queue_micros()) {
            (None, None) => {}
            (Some(s), Some(q)) => assert_eq!(q, time::queue_micros(s, r.request_start)),
            other => panic!("start and queue disagree: {other:?}"),
        }
    }
    // The format sniffing of the processor agrees with the direct parser.
    if let Some(r) = r {
        assert_eq!(parse_line(line), Some(r));
    }
}

fn structured(u: &mut Unstructured<'_>) -> Result<()> {
    let pid: u32 = u.arbitrary()?;
    let app: Option<u32> = u.arbitrary()?;
    let (wr, tr): (Option<u64>, Option<u64>) = (u.arbitrary()?, u.arbitrary()?);
    let addr = field(u, 40, &['(', ')'])?;
    let user = if u.arbitrary()? {
        field(u, 12, &['(', ')'])?
    } else {
        String::new()
    };
    let (vars, vars_bytes): (u32, u64) = (u.arbitrary()?, u.arbitrary()?);
    let time = field(u, 30, &[']', '['])?;
    let method = u
        .choose(&["GET", "POST", "HEAD", "PURGE", "M-SEARCH"])?
        .to_string();
    let mut target = format!("/{}", field(u, 60, &[])?);
    if target.contains(" => generated ") {
        target = "/".into();
    }
    let bytes: u64 = u.arbitrary()?;
    let (dur, micros): (u32, bool) = (u.arbitrary()?, u.arbitrary()?);
    let proto = u.choose(&["HTTP/1.1", "HTTP/1.0", "HTTP/2.0"])?;
    let status: u16 = u.int_in_range(100..=999)?;
    let (headers, headers_bytes, switches, core): (u32, u64, u64, u32) = (
        u.arbitrary()?,
        u.arbitrary()?,
        u.arbitrary()?,
        u.arbitrary()?,
    );
    let queue: Option<(u64, String)> = if u.arbitrary()? {
        let stamp = if u.arbitrary()? {
            format!("t={}", u.arbitrary::<u64>()?)
        } else {
            field(u, 40, &[])?
        };
        Some((u.arbitrary()?, stamp))
    } else {
        None
    };
    let dash = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let line = format!(
        "[pid: {pid}|app: {}|req: {}/{}] {addr} ({user}) {{{vars} vars in {vars_bytes} bytes}} [{time}] \
{method} {target} => generated {bytes} bytes in {dur} {} ({proto} {status}) {headers} headers in \
{headers_bytes} bytes ({switches} switches on core {core}){}\n",
        app.map_or("-".to_string(), |a| a.to_string()),
        dash(wr),
        dash(tr),
        if micros { "micros" } else { "msecs" },
        queue
            .as_ref()
            .map_or(String::new(), |(t, s)| format!(" tmicros={t} x_request_start={s}")),
    );
    let r = uwsgi::parse(&line).unwrap_or_else(|| panic!("not parsed: {line:?}"));
    assert_eq!(r.pid, Some(pid));
    assert_eq!(r.app, app);
    assert_eq!((r.worker_requests, r.total_requests), (wr, tr));
    assert_eq!(r.remote_addr, addr);
    assert_eq!(
        r.remote_user,
        Some(user.as_str()).filter(|u| !u.is_empty() && *u != "-")
    );
    match &queue {
        Some((t, s)) => {
            let logged = Some(s.trim_end_matches(['\r', '\n']))
                .filter(|s| !s.is_empty() && *s != "-");
            assert_eq!((r.start_us, r.request_start), (Some(*t), logged));
        }
        None => assert_eq!((r.start_us, r.request_start), (None, None)),
    }
    assert_eq!((r.vars, r.vars_bytes), (Some(vars), Some(vars_bytes)));
    assert_eq!(r.time, time);
    assert_eq!((r.method, r.target), (method.as_str(), target.as_str()));
    assert_eq!(r.response_bytes, Some(bytes));
    let us = if micros {
        u64::from(dur)
    } else {
        u64::from(dur) * 1000
    };
    assert_eq!(r.duration_us, Some(us));
    assert_eq!((r.protocol, r.status), (Some(*proto), status));
    assert_eq!(
        (r.headers, r.headers_bytes),
        (Some(headers), Some(headers_bytes))
    );
    assert_eq!((r.switches, r.core), (Some(switches), Some(core)));
    raw(&line);
    Ok(())
}
