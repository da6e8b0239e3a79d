//! The uwsgi decoders against hostile input: the largest heads the format
//! allows, heads over the limit, invalid UTF-8 in every labelled var,
//! absurd CONTENT_LENGTHs, status codes below 100. Each must end in a
//! bounded result or a counted error, never a panic or unbounded memory.
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

use uwsgi_red_core::red::route::{RouteNormalizer, MAX_PATH_BYTES};
use uwsgi_red_core::uwsgi::response::ResponseError;
use uwsgi_red_core::uwsgi::{
    decode_head, encode_head, ConnectionTracker, DecodeError, Event, HeadDecoder, Progress,
    DEFAULT_HEAD_LIMIT,
};

fn head(vars: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut p = Vec::new();
    encode_head(0, 0, vars, &mut p).unwrap();
    p
}

/// Feeds `down` in `chunk`-byte pieces, `up` whole, then closes.
fn run(t: &mut ConnectionTracker, down: &[u8], chunk: usize, up: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut now = 0;
    for piece in down.chunks(chunk.max(1)) {
        now += 1;
        t.on_downstream(
            piece.len(),
            false,
            now,
            |s, n| piece.get(s..s + n),
            &mut out,
        );
    }
    t.on_upstream(up.len(), true, now + 1, |s, n| up.get(s..s + n), &mut out);
    t.on_close(now + 2, &mut out);
    out
}

fn completed(events: &[Event]) -> Vec<&uwsgi_red_core::uwsgi::Exchange> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Completed(ex) => Some(ex),
            _ => None,
        })
        .collect()
}

#[test]
fn largest_head_the_format_allows_byte_by_byte() {
    // One var filling the whole 16-bit datasize: 2 + 1 + 2 + 65530.
    let big = vec![b'v'; 65_530];
    let p = head(&[(b"K", &big)]);
    assert_eq!(p.len(), DEFAULT_HEAD_LIMIT);
    let mut d = HeadDecoder::default();
    let mut got = None;
    for (i, b) in p.chunks(1).enumerate() {
        match d.feed(b).unwrap() {
            Progress::NeedMore => assert!(d.buffered() <= DEFAULT_HEAD_LIMIT),
            Progress::Head { head, consumed } => {
                assert_eq!((i + 1, consumed), (p.len(), 1));
                got = Some(head.var(b"K").map(<[u8]>::len));
            }
        }
    }
    assert_eq!(got, Some(Some(65_530)));
}

#[test]
fn many_vars_and_duplicate_keys() {
    // 13 000 empty vars (5 bytes each) then the ones that matter: the first
    // occurrence wins, found in one pass.
    let mut vars: Vec<(&[u8], &[u8])> = vec![(b"X", b""); 13_000];
    vars.push((b"PATH_INFO", b"/first"));
    vars.push((b"PATH_INFO", b"/second"));
    vars.push((b"REQUEST_METHOD", b"GET"));
    let p = head(&vars);
    let Ok(Progress::Head { head, .. }) = decode_head(&p, DEFAULT_HEAD_LIMIT) else {
        panic!()
    };
    assert_eq!(head.vars.len(), 13_003);
    assert_eq!(head.request_vars().path_info, Some(&b"/first"[..]));
    let mut t = ConnectionTracker::new(DEFAULT_HEAD_LIMIT, 4096);
    let ev = run(&mut t, &p, 997, b"HTTP/1.1 204 No Content\r\n\r\n");
    let ex = completed(&ev);
    assert_eq!(ex.len(), 1);
    assert_eq!((ex[0].path.as_str(), ex[0].status), ("/first", Some(204)));
}

#[test]
fn head_over_the_limit_is_refused_after_its_header() {
    let p = head(&[(b"K", &vec![b'x'; 9000][..])]);
    let mut t = ConnectionTracker::new(8192, 4096);
    let ev = run(&mut t, &p, 3, b"HTTP/1.1 200 OK\r\n");
    assert_eq!(
        ev,
        vec![Event::RequestError(DecodeError::DatasizeTooLarge {
            datasize: 9005,
            limit: 8192
        })]
    );
    assert!(t.is_passthrough());
    assert_eq!(t.buffered(), 0, "nothing kept after the refusal");
}

#[test]
fn invalid_utf8_in_labelled_vars() {
    let bad_path = [b"/a/".as_slice(), &[0xff; 400]].concat();
    let p = head(&[
        (b"REQUEST_METHOD", b"G\xffT"),
        (b"PATH_INFO", &bad_path),
        (b"SERVER_NAME", &[0xc3; 300]),
        (b"HTTP_HOST", b"h\xe2\x82"),
    ]);
    let mut t = ConnectionTracker::new(DEFAULT_HEAD_LIMIT, 4096);
    let ev = run(&mut t, &p, 64, b"Status: 500 Oops\r\n\r\n");
    let ex = completed(&ev);
    assert_eq!(ex.len(), 1);
    let ex = ex[0];
    // Lossy, and cut so that replacement characters cannot triple a bound.
    assert!(ex.path.starts_with("/a/\u{fffd}"));
    assert!(ex.path.len() <= MAX_PATH_BYTES, "{}", ex.path.len());
    assert!(ex.server_name.len() <= 255 && ex.host.len() <= 255);
    assert_eq!(ex.method, "G\u{fffd}T");
    let l = ex.labels(&RouteNormalizer::new(vec![], true), None);
    assert_eq!((l.method, l.code, l.code_class), ("_OTHER", 500, "5xx"));
    assert!(l.route.len() <= MAX_PATH_BYTES);
}

#[test]
fn absurd_content_lengths() {
    // Larger than u64: not a number, so the body length is unknown and the
    // rest of the stream is not looked at.
    let mut p = head(&[
        (b"REQUEST_METHOD", b"POST"),
        (b"CONTENT_LENGTH", b"99999999999999999999999"),
    ]);
    p.extend(std::iter::repeat_n(0u8, 100_000));
    let mut t = ConnectionTracker::new(DEFAULT_HEAD_LIMIT, 4096);
    let ev = run(&mut t, &p, 4096, b"HTTP/1.1 413 Too Large\r\n");
    assert_eq!(completed(&ev).len(), 1);
    assert_eq!(completed(&ev)[0].status, Some(413));
    // u64::MAX: skipped (never read) for as long as the stream lasts.
    let mut p = head(&[
        (b"REQUEST_METHOD", b"PUT"),
        (b"CONTENT_LENGTH", b"18446744073709551615"),
    ]);
    let mut fetched = 0usize;
    p.extend(std::iter::repeat_n(b'x', 1 << 20));
    let mut t = ConnectionTracker::new(DEFAULT_HEAD_LIMIT, 4096);
    let mut out = Vec::new();
    for piece in p.chunks(65_536) {
        t.on_downstream(
            piece.len(),
            false,
            1,
            |s, n| {
                fetched += n;
                piece.get(s..s + n)
            },
            &mut out,
        );
    }
    t.on_close(2, &mut out);
    assert_eq!(completed(&out).len(), 1);
    assert!(
        fetched < 65_536 + 100,
        "body bytes are not fetched ({fetched})"
    );
}

#[test]
fn status_codes_below_100_are_counted_errors() {
    for resp in [
        &b"HTTP/1.1 000 Zero\r\n"[..],
        b"HTTP/1.1 099 X\r\n",
        b"Status: 042\r\n",
    ] {
        let mut t = ConnectionTracker::new(DEFAULT_HEAD_LIMIT, 4096);
        let ev = run(&mut t, &head(&[(b"REQUEST_METHOD", b"GET")]), 7, resp);
        let errors: Vec<_> = ev.iter().filter_map(Event::reason).collect();
        assert_eq!(errors, vec!["response_bad_status"]);
        assert!(matches!(
            ev[0],
            Event::ResponseError(ResponseError::BadStatus { .. })
        ));
        let ex = completed(&ev);
        assert_eq!((ex.len(), ex[0].status, ex[0].code()), (1, None, 0));
    }
}

#[test]
fn keep_alive_exchange_survives_a_bad_next_head() {
    let mut down = head(&[(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/ok")]);
    down.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    for chunk in [1, 3, 17, down.len()] {
        let mut t = ConnectionTracker::new(DEFAULT_HEAD_LIMIT, 4096);
        let mut out = Vec::new();
        let (a, b) = down.split_at(down.len() - 27);
        for piece in a.chunks(chunk) {
            t.on_downstream(piece.len(), false, 1, |s, n| piece.get(s..s + n), &mut out);
        }
        let up = b"HTTP/1.1 200 OK\r\n\r\n";
        t.on_upstream(up.len(), false, 2, |s, n| up.get(s..s + n), &mut out);
        for piece in b.chunks(chunk) {
            t.on_downstream(piece.len(), false, 3, |s, n| piece.get(s..s + n), &mut out);
        }
        t.on_close(4, &mut out);
        let ex = completed(&out);
        assert_eq!(ex.len(), 1, "chunk {chunk}: {out:?}");
        assert_eq!((ex[0].path.as_str(), ex[0].status), ("/ok", Some(200)));
        let errors: Vec<_> = out.iter().filter_map(Event::reason).collect();
        assert_eq!(errors, vec!["unknown_modifier"], "chunk {chunk}");
    }
}

#[test]
fn megabyte_of_response_headers_before_a_status() {
    let mut resp = b"Content-Type: text/plain\r\n".to_vec();
    while resp.len() < 1 << 20 {
        resp.extend_from_slice(
            b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    resp.extend_from_slice(b"Status: 201 Created\r\n\r\n");
    let mut t = ConnectionTracker::new(DEFAULT_HEAD_LIMIT, 16_384);
    let mut out = Vec::new();
    let down = head(&[(b"REQUEST_METHOD", b"GET")]);
    t.on_downstream(down.len(), false, 1, |s, n| down.get(s..s + n), &mut out);
    let mut fetched = 0usize;
    t.on_upstream(
        resp.len(),
        true,
        2,
        |s, n| {
            fetched += n;
            resp.get(s..s + n)
        },
        &mut out,
    );
    assert_eq!(
        out.first(),
        Some(&Event::ResponseError(ResponseError::TooLarge {
            limit: 16_384
        }))
    );
    let ex = completed(&out);
    assert_eq!((ex.len(), ex[0].status), (1, None));
    assert!(
        fetched <= 16_384 + 1024,
        "stops reading at the limit ({fetched})"
    );
}
