//! Every line of the captured request logs, parsed (or rejected) as expected.
// Not shipped (tests, benches, native tools): the workspace's panic-free
// lints (Cargo.toml [workspace.lints.clippy]) do not apply here.
#![allow(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use uwsgi_red_core::logs::{gunicorn, parse_line, uwsgi, LogFormat};

fn lines(name: &str) -> Vec<String> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn uwsgi_http_socket_log_every_line() {
    let all = lines("uwsgi_reqlog_http_socket.log");
    assert_eq!(all.len(), 17);
    let recs: Vec<_> = all
        .iter()
        .map(|l| uwsgi::parse(l).unwrap_or_else(|| panic!("unparsed: {l}")))
        .collect();
    let methods: Vec<_> = recs.iter().map(|r| r.method).collect();
    assert_eq!(methods.iter().filter(|m| **m == "GET").count(), 12);
    assert!(methods.contains(&"OPTIONS") && methods.contains(&"PUT") && methods.contains(&"HEAD"));
    let statuses: Vec<u16> = recs.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 2);
    assert_eq!(statuses.iter().filter(|s| **s == 404).count(), 1);

    let first = &recs[0];
    assert_eq!(first.format, LogFormat::Uwsgi);
    assert_eq!(
        (
            first.pid,
            first.app,
            first.worker_requests,
            first.total_requests
        ),
        (Some(23926), Some(0), Some(1), Some(1))
    );
    assert_eq!((first.remote_addr, first.remote_user), ("127.0.0.1", None));
    assert_eq!((first.vars, first.vars_bytes), (Some(24), Some(244)));
    assert_eq!(first.time, "Sun Nov 22 04:01:24 2026");
    assert_eq!(
        (first.path, first.query, first.protocol_version()),
        ("/", None, Some("1.1"))
    );
    assert_eq!(
        (first.response_bytes, first.duration_us, first.core),
        (Some(19), Some(0), Some(0))
    );
    assert_eq!(
        (first.headers, first.headers_bytes, first.switches),
        (Some(3), Some(81), Some(1))
    );

    let q = recs
        .iter()
        .find(|r| r.target == "/?q=1&x=y")
        .expect("query line");
    assert_eq!((q.path, q.query, q.core), ("/", Some("q=1&x=y"), Some(1)));
    let slow = recs.iter().find(|r| r.path == "/slow").expect("slow line");
    assert_eq!(slow.duration_us, Some(2_000_000));
    assert_eq!(slow.duration_seconds(), Some(2.0));
    let raise = recs
        .iter()
        .find(|r| r.path == "/raise")
        .expect("raise line");
    assert_eq!(
        (
            raise.status,
            raise.response_bytes,
            raise.headers,
            raise.switches
        ),
        (500, Some(0), Some(0), Some(0))
    );
    let big = recs.iter().find(|r| r.path == "/big").unwrap();
    assert_eq!(big.response_bytes, Some(100_000));
    let cafe = recs.iter().find(|r| r.path.starts_with("/caf")).unwrap();
    assert_eq!((cafe.path, cafe.query), ("/caf%C3%A9", Some("x=%E2%9C%93")));
    let http10 = recs.iter().find(|r| r.path == "/http10").unwrap();
    assert_eq!(http10.protocol, Some("HTTP/1.0"));
}

#[test]
fn uwsgi_nginx_socket_log_has_remote_user() {
    let all = lines("uwsgi_reqlog_nginx_socket.log");
    assert!(!all.is_empty());
    for l in &all {
        assert!(
            parse_line(l).is_some_and(|r| r.format == LogFormat::Uwsgi),
            "unparsed: {l}"
        );
    }
    let alice: Vec<_> = all
        .iter()
        .filter_map(|l| uwsgi::parse(l))
        .filter(|r| r.remote_user == Some("alice"))
        .collect();
    assert_eq!(alice.len(), 1);
    assert_eq!((alice[0].path, alice[0].vars), ("/private", Some(36)));
}

#[test]
fn uwsgi_full_log_separates_request_lines_from_the_rest() {
    let all = lines("uwsgi_fulllog_logdate.log");
    let parsed: Vec<_> = all.iter().filter_map(|l| parse_line(l)).collect();
    let request_lines = all.iter().filter(|l| l.starts_with("[pid: ")).count();
    assert_eq!(request_lines, 7);
    assert_eq!(
        parsed.len(),
        request_lines,
        "exactly the request lines parse"
    );
    assert!(parsed.iter().all(|r| r.format == LogFormat::Uwsgi));
    assert_eq!(
        parsed.iter().map(|r| r.path).collect::<Vec<_>>(),
        [
            "/",
            "/notfound",
            "/error",
            "/raise",
            "/slow",
            "/big",
            "/submit"
        ]
    );
    assert_eq!(parsed[4].duration_us, Some(1_200_000));
    // Banner, traceback and shutdown lines are recognised as not requests.
    for l in all.iter().filter(|l| !l.starts_with("[pid: ")) {
        assert!(parse_line(l).is_none(), "should be unparsed: {l}");
    }
}

#[test]
fn gunicorn_default_log_every_line() {
    let all = lines("gunicorn_access_default.log");
    assert_eq!(all.len(), 20);
    let recs: Vec<_> = all
        .iter()
        .map(|l| gunicorn::parse(l).unwrap_or_else(|| panic!("unparsed: {l}")))
        .collect();
    assert!(recs
        .iter()
        .all(|r| r.format == LogFormat::Gunicorn && r.duration_us.is_none()));
    assert!(all
        .iter()
        .all(|l| parse_line(l).is_some_and(|r| r.format == LogFormat::Gunicorn)));
    let first = &recs[0];
    assert_eq!(
        (first.remote_addr, first.method, first.path, first.status),
        ("127.0.0.1", "GET", "/", 200)
    );
    assert_eq!(
        (first.response_bytes, first.user_agent, first.referer),
        (Some(19), Some("curl/7.88.1"), None)
    );
    assert_eq!(first.time_unix_nanos, Some(1_795_320_751_000_000_000));
    let raise = recs.iter().find(|r| r.path == "/raise").unwrap();
    assert_eq!(
        (raise.status, raise.response_bytes, raise.user_agent),
        (500, Some(0), None)
    );
    let with = recs.iter().find(|r| r.path == "/with-headers").unwrap();
    assert_eq!(with.referer, Some("http://ref.example/page?a=1"));
    assert_eq!(with.user_agent, Some("Mozilla/5.0 (compatible; Bot/1.0)"));
    let private = recs.iter().find(|r| r.path == "/private").unwrap();
    assert_eq!(private.remote_user, Some("alice"));
    let codes: Vec<u16> = recs.iter().map(|r| r.status).collect();
    for c in [204, 302, 404] {
        assert_eq!(codes.iter().filter(|s| **s == c).count(), 1, "{c}");
    }
    let head = recs.iter().find(|r| r.method == "HEAD").unwrap();
    assert_eq!(head.response_bytes, Some(0));
    assert_eq!(
        recs.iter()
            .find(|r| r.path == "/http10")
            .unwrap()
            .protocol_version(),
        Some("1.0")
    );
    assert_eq!(
        recs.iter().find(|r| r.method == "DELETE").unwrap().path,
        "/objects/1"
    );
}

#[test]
fn gunicorn_custom_millis_log_every_line() {
    let all = lines("gunicorn_access_custom_M.log");
    assert_eq!(all.len(), 20);
    let recs: Vec<_> = all
        .iter()
        .map(|l| parse_line(l).unwrap_or_else(|| panic!("unparsed: {l}")))
        .collect();
    assert!(recs
        .iter()
        .all(|r| r.format == LogFormat::GunicornWithMillis && r.duration_us.is_some()));
    let slow = recs.iter().find(|r| r.path == "/slow").unwrap();
    assert_eq!(
        (slow.query, slow.duration_us),
        (Some("s=1.5"), Some(1_500_000))
    );
}

#[test]
fn near_misses_are_unparsed() {
    for l in [
        "",
        "[pid: 1|app: 0|req: 1/1] 127.0.0.1 () {24 vars in 244 bytes} [d] GET / => generated x bytes in 0 msecs (HTTP/1.1 200) 3 headers in 81 bytes (1 switches on core 0)",
        "[pid: 1|app: 0|req: 1/1] 127.0.0.1 () {24 vars in 244 bytes} [d] GET / => generated 1 bytes in 0 secs (HTTP/1.1 200) 3 headers in 81 bytes (1 switches on core 0)",
        "[pid: 1|app: 0|req: 1/1] 127.0.0.1 () {24 vars in 244 bytes} [d] GET / => generated 1 bytes in 0 msecs (HTTP/1.1 20) 3 headers in 81 bytes (1 switches on core 0)",
        "127.0.0.1 - - [22/Nov/2026:04:12:31 +0000] \"GET / HTTP/1.1\" 2000 19 \"-\" \"curl\"",
        "127.0.0.1 - - [22/Nov/2026:04:12:31 +0000] \"GET / HTTP/1.1\" 200 19 \"-\" \"curl\" 12x",
        "Traceback (most recent call last):",
    ] {
        assert!(parse_line(l).is_none(), "{l}");
    }
    let micros = "[pid: 7|app: -|req: -/3] ::1 () {2 vars in 20 bytes} [d] GET /x => generated 1 bytes in 1234 micros (HTTP/2 201) 0 headers in 0 bytes (0 switches on core 3)";
    let r = parse_line(micros).expect("micros line");
    assert_eq!(
        (
            r.duration_us,
            r.app,
            r.worker_requests,
            r.total_requests,
            r.status
        ),
        (Some(1234), None, None, Some(3), 201)
    );
}

/// The documented queue-time `log-format`, captured from uWSGI 2.0.30 with
/// curl sending each kind of `X-Request-Start` (SOURCES.md).
#[test]
fn uwsgi_queue_format_every_line() {
    use uwsgi_red_core::logs::QueueError;
    let all = lines("uwsgi_reqlog_queue.log");
    let got: Vec<_> = all
        .iter()
        .map(|l| {
            let r = parse_line(l).unwrap_or_else(|| panic!("unparsed: {l}"));
            assert_eq!(
                (r.format, r.remote_user, r.app),
                (LogFormat::Uwsgi, None, None)
            );
            assert_eq!((r.worker_requests, r.total_requests), (None, None));
            (
                r.path,
                r.start_us.unwrap() % 1_000_000,
                r.queue_micros().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/a", 111_016, Err(QueueError::Missing)),
            // t=1796652821099032 (µs)
            ("/b", 117_810, Ok(18_778)),
            // t=1796652821.119 (nginx ${msec} shape)
            ("/c", 125_217, Ok(6_217)),
            // bare milliseconds
            ("/d", 132_417, Ok(5_417)),
            // a header that mimics uWSGI's own text
            ("/e", 138_647, Err(QueueError::Unparsable)),
            // 5 s in the future
            ("/f", 146_805, Err(QueueError::Skewed)),
            // empty header: uWSGI prints `-`
            ("/g", 153_584, Err(QueueError::Missing)),
            ("/h", 160_014, Err(QueueError::Missing)),
        ]
    );
    let e = uwsgi::parse(&all[4]).unwrap();
    assert_eq!(
        (e.request_start, e.duration_us, e.status, e.core),
        (
            Some("garbage here => generated 1 bytes"),
            Some(71),
            200,
            Some(0)
        )
    );
    let b = uwsgi::parse(&all[1]).unwrap();
    assert_eq!((b.path, b.query), ("/b", Some("x=1")));
    assert_eq!(b.queue_seconds(), Some(Ok(0.018778)));
    // The default format (no tmicros) has no queue to report.
    let plain = lines("uwsgi_reqlog_http_socket.log");
    assert_eq!(uwsgi::parse(&plain[0]).unwrap().queue_micros(), None);
}

/// gunicorn 27.0.1 with the documented `gunicorn.conf.py` (a `pre_request`
/// hook stamps the start; the access log ends in the queue-time fields):
/// one sync worker, then 4 concurrent clients on a 50 ms route.
#[test]
fn gunicorn_queue_format_every_line() {
    use uwsgi_red_core::logs::{DurationField, QueueError};
    let all = lines("gunicorn_access_queue.log");
    let got: Vec<_> = all
        .iter()
        .map(|l| {
            let r = gunicorn::parse_with(l, DurationField::D)
                .unwrap_or_else(|| panic!("unparsed: {l}"));
            assert_eq!(r.format, LogFormat::GunicornWithMillis);
            assert_eq!(r.user_agent, Some("curl/7.88.1"));
            (r.path, r.queue_micros().unwrap())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/a", Err(QueueError::Missing)),
            ("/b", Ok(223_128)),
            ("/slow", Ok(180_638)),
            // The client's own X-Uwsgi-Red-Tmicros: 5 is overridden by
            // the hook's (appended last, and the last header wins).
            ("/spoof", Ok(195_985)),
            ("/slow", Ok(174_616)),
            ("/slow", Ok(247_236)),
            ("/slow", Ok(348_562)),
            ("/slow", Ok(399_958)),
        ]
    );
    let slow = gunicorn::parse_with(&all[2], DurationField::D).unwrap();
    assert_eq!(
        (slow.duration_us, slow.request_start),
        (Some(61_899), Some("t=1796653430.510"))
    );
    // Client text shaped like the fields, at either end, splits correctly.
    let tricky = all[1].replace("\"curl/7.88.1\"", "\"curl tmicros=1 x_request_start=t=1\"")
        + " tmicros=2 x_request_start=x";
    let r = gunicorn::parse_with(&tricky, DurationField::D).unwrap();
    assert_eq!(
        (r.user_agent, r.start_us, r.request_start),
        (
            Some("curl tmicros=1 x_request_start=t=1"),
            Some(1_796_653_430_492_713),
            Some("t=1796653430269585 tmicros=2 x_request_start=x")
        )
    );
    // The default gunicorn formats have no queue to report.
    for name in [
        "gunicorn_access_default.log",
        "gunicorn_access_custom_M.log",
    ] {
        for l in lines(name) {
            let r = gunicorn::parse_with(&l, DurationField::M).unwrap();
            assert_eq!((r.start_us, r.queue_micros()), (None, None), "{l}");
        }
    }
}
