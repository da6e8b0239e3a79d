//! Connection tracker oracle: every complete request head yields exactly one
//! completed exchange, whatever the splits and whatever follows it.
//!
//! Input: 8 seed bytes, then a downstream byte stream (seeds are real
//! captures, one or more packets back to back). The expected exchanges come
//! from a plain reference walk over the whole stream with the stateless
//! `decode_head`: a request head counts once it is complete; its body
//! (CONTENT_LENGTH) is skipped; the walk stops at the first head that is not
//! a request, has no usable length, is truncated or fails to decode.
//!
//! The tracker then runs three ways and must agree with the walk:
//! 1. the whole stream in one callback, no response;
//! 2. the stream in seed-chosen pieces, no response: events identical to 1;
//! 3. the pieces interleaved with response bytes and upstream ends of stream
//!    at seed-chosen points, times advancing: same number of completed
//!    exchanges, with the same methods and paths in order, every end time ≥
//!    start time, buffer within the head limit.

use crate::rng::{pieces, seed_and_rest, SplitMix};
use uwsgi_red_core::uwsgi::{decode_head, ConnectionTracker, Event, Exchange, Progress};

const HEAD_LIMIT: usize = 4096;
const RESPONSE_LIMIT: usize = 256;
const RESPONSES: [&[u8]; 4] = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"Status: 503 Service Unavailable\r\n\r\n",
    b"HTTP/1.0 404 Not Found\r\n\r\n",
    b"garbage",
];

/// (method, path) of every exchange the stream must produce, in order.
fn reference(stream: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < stream.len() {
        let Ok(Progress::Head { head, consumed }) = decode_head(&stream[pos..], HEAD_LIMIT) else {
            break;
        };
        if head.kind != uwsgi_red_core::uwsgi::modifier::Payload::Request {
            break;
        }
        let vars = head.request_vars();
        let path = vars
            .path_info
            .filter(|p| !p.is_empty())
            .or(vars.request_uri)
            .unwrap_or_default();
        out.push((vars.method.unwrap_or_default().to_vec(), path.to_vec()));
        let Some(body) = vars.content_length() else {
            break;
        };
        let next = (pos + consumed) as u64 + body;
        if next >= stream.len() as u64 {
            break;
        }
        pos = next as usize;
    }
    out
}

fn completed(events: &[Event]) -> Vec<&Exchange> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Completed(x) => Some(x),
            _ => None,
        })
        .collect()
}

/// The tracker keeps a bounded, lossily decoded prefix of method and path:
/// the expected value is a prefix-compatible rendering of the raw bytes.
fn same_field(got: &str, raw: &[u8]) -> bool {
    let full = String::from_utf8_lossy(raw);
    full.starts_with(got.trim_end_matches('\u{fffd}'))
}

fn feed_down(t: &mut ConnectionTracker, piece: &[u8], eos: bool, now: u64, out: &mut Vec<Event>) {
    t.on_downstream(
        piece.len(),
        eos,
        now,
        |s, n| piece.get(s..(s + n).min(piece.len())),
        out,
    );
    assert!(t.buffered() <= HEAD_LIMIT);
}

pub fn check(data: &[u8]) {
    let (seed, stream) = seed_and_rest(data);
    let expected = reference(stream);

    // 1. whole
    let mut t = ConnectionTracker::new(HEAD_LIMIT, RESPONSE_LIMIT);
    let mut whole = Vec::new();
    feed_down(&mut t, stream, false, 0, &mut whole);
    t.on_close(0, &mut whole);
    let got = completed(&whole);
    assert_eq!(got.len(), expected.len(), "whole stream: {whole:?}");
    for (x, (m, p)) in got.iter().zip(&expected) {
        assert!(
            same_field(&x.method, m),
            "method {:?} vs {:?}",
            x.method,
            String::from_utf8_lossy(m)
        );
        assert!(
            same_field(&x.path, p),
            "path {:?} vs {:?}",
            x.path,
            String::from_utf8_lossy(p)
        );
        assert_eq!(x.status, None);
    }

    // 2. split, no response: identical events
    let parts = pieces(stream, seed);
    let mut t = ConnectionTracker::new(HEAD_LIMIT, RESPONSE_LIMIT);
    let mut split = Vec::new();
    for p in &parts {
        feed_down(&mut t, p, false, 0, &mut split);
    }
    t.on_close(0, &mut split);
    assert_eq!(whole, split, "split-equivalence");

    // 3. interleaved with responses, times advancing
    let mut r = SplitMix::new(seed ^ 0x5eed);
    let mut t = ConnectionTracker::new(HEAD_LIMIT, RESPONSE_LIMIT);
    let mut mixed = Vec::new();
    let mut now = 1u64;
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        feed_down(
            &mut t,
            p,
            last && r.next_u64().is_multiple_of(2),
            now,
            &mut mixed,
        );
        now += r.next_u64() % 1000;
        if r.next_u64().is_multiple_of(3) {
            let resp = RESPONSES[(r.next_u64() % 4) as usize];
            let cut = r.piece(resp.len());
            let eos = r.next_u64().is_multiple_of(4);
            let piece = &resp[..cut];
            t.on_upstream(
                piece.len(),
                eos,
                now,
                |s, n| piece.get(s..(s + n).min(piece.len())),
                &mut mixed,
            );
            now += r.next_u64() % 1000;
        }
    }
    t.on_close(now, &mut mixed);
    t.on_close(now + 1, &mut mixed); // idempotent
    let got = completed(&mixed);
    assert_eq!(got.len(), expected.len(), "interleaved: {mixed:?}");
    for (x, (m, p)) in got.iter().zip(&expected) {
        assert!(same_field(&x.method, m));
        assert!(same_field(&x.path, p));
        assert!(x.end_us >= x.start_us);
        if let Some(f) = x.first_byte_us {
            assert!(f >= x.start_us && f <= x.end_us.max(f));
        }
        if let Some(c) = x.status {
            assert!((100..=999).contains(&c));
        }
    }
}
