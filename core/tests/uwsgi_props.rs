//! Property tests for the uwsgi codec: encode -> decode round trips, and
//! streaming decoding gives the same answer however the input is split.
//! The last tests are a bounded fuzz-like run (random bytes, random
//! splits) that must never panic or exceed the memory bound; the
//! coverage-guided version is the `fuzz/` crate.
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

use proptest::prelude::*;
use uwsgi_red_core::uwsgi::modifier::{Payload, MODIFIERS};
use uwsgi_red_core::uwsgi::response::{StatusParser, StatusProgress};
use uwsgi_red_core::uwsgi::{
    decode_head, encode_head, ConnectionTracker, DecodeError, Event, HeadDecoder, Progress,
};

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// What a decode says, owned so whole and split runs can be compared.
#[derive(Debug, PartialEq)]
enum Outcome {
    NeedMore,
    Head {
        modifier1: u8,
        vars: Pairs,
        payload: Vec<u8>,
        head_len: usize,
    },
    Error(DecodeError),
}

fn whole(buf: &[u8], limit: usize) -> Outcome {
    match decode_head(buf, limit) {
        Ok(Progress::NeedMore) => Outcome::NeedMore,
        Ok(Progress::Head { head, consumed }) => Outcome::Head {
            modifier1: head.header.modifier1,
            vars: head
                .vars
                .iter()
                .map(|v| (v.key.to_vec(), v.value.to_vec()))
                .collect(),
            payload: head.payload.to_vec(),
            head_len: consumed,
        },
        Err(e) => Outcome::Error(e),
    }
}

/// Feeds `buf` in pieces cut at `cuts` (sorted, deduplicated, in range).
fn split(buf: &[u8], cuts: &[usize], limit: usize) -> Outcome {
    let mut d = HeadDecoder::new(limit);
    let mut start = 0;
    let ends = cuts.iter().copied().chain(std::iter::once(buf.len()));
    for end in ends {
        let piece = &buf[start..end];
        match d.feed(piece) {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Head { head, consumed }) => {
                return Outcome::Head {
                    modifier1: head.header.modifier1,
                    vars: head
                        .vars
                        .iter()
                        .map(|v| (v.key.to_vec(), v.value.to_vec()))
                        .collect(),
                    payload: head.payload.to_vec(),
                    head_len: start + consumed,
                }
            }
            Err(e) => return Outcome::Error(e),
        }
        assert!(
            d.buffered() <= limit,
            "buffered {} > limit {limit}",
            d.buffered()
        );
        start = end;
    }
    Outcome::NeedMore
}

fn cuts_for(len: usize, raw: Vec<usize>) -> Vec<usize> {
    let mut c: Vec<usize> = raw
        .into_iter()
        .filter(|_| len > 0)
        .map(|x| x % (len + 1))
        .collect();
    c.sort_unstable();
    c.dedup();
    c
}

fn pairs_strategy() -> impl Strategy<Value = Pairs> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(any::<u8>(), 0..300),
        ),
        0..24,
    )
}

fn request_modifier() -> impl Strategy<Value = u8> {
    let codes: Vec<u8> = MODIFIERS
        .iter()
        .filter(|m| m.payload.has_vars())
        .map(|m| m.code)
        .collect();
    prop::sample::select(codes)
}

/// A valid packet, then body/garbage bytes.
fn packet_then_tail() -> impl Strategy<Value = (Vec<u8>, usize)> {
    (
        request_modifier(),
        pairs_strategy(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(m1, pairs, tail)| {
            let mut p = Vec::new();
            encode_head(m1, 0, &pairs, &mut p).unwrap();
            let head_len = p.len();
            p.extend(tail);
            (p, head_len)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trip(m1 in request_modifier(), m2 in any::<u8>(), pairs in pairs_strategy()) {
        let mut p = Vec::new();
        encode_head(m1, m2, &pairs, &mut p).unwrap();
        let Ok(Progress::Head { head, consumed }) = decode_head(&p, 65539) else {
            panic!("no head");
        };
        prop_assert_eq!(consumed, p.len());
        prop_assert_eq!((head.header.modifier1, head.header.modifier2), (m1, m2));
        let got: Pairs = head.vars.iter().map(|v| (v.key.to_vec(), v.value.to_vec())).collect();
        prop_assert_eq!(got, pairs);
        // Re-encoding the decoded vars gives the same bytes.
        let mut again = Vec::new();
        let decoded: Vec<(&[u8], &[u8])> = head.vars.iter().map(|v| (v.key, v.value)).collect();
        encode_head(m1, m2, &decoded, &mut again).unwrap();
        prop_assert_eq!(again, p);
    }

    #[test]
    fn valid_packets_decode_the_same_split_anywhere(
        (p, head_len) in packet_then_tail(),
        raw_cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let cuts = cuts_for(p.len(), raw_cuts);
        let w = whole(&p, 65539);
        let Outcome::Head { head_len: hl, .. } = &w else { panic!("valid packet did not decode: {w:?}") };
        prop_assert_eq!(*hl, head_len);
        prop_assert_eq!(split(&p, &cuts, 65539), w);
    }

    #[test]
    fn any_bytes_decode_the_same_split_anywhere(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        first in prop::sample::select(vec![0u8, 5, 9, 30, 17, 173, 71, 250]),
        limit in prop::sample::select(vec![4usize, 64, 300, 65539]),
        raw_cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        // Steer the first byte so known modifiers (not just errors) are hit.
        let mut bytes = bytes;
        if let Some(b) = bytes.first_mut() { *b = first; }
        let cuts = cuts_for(bytes.len(), raw_cuts);
        prop_assert_eq!(split(&bytes, &cuts, limit), whole(&bytes, limit));
    }

    #[test]
    fn status_is_the_same_split_anywhere(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..80),
            (100u16..1000, "[ -~]{0,20}", prop::sample::select(vec!["HTTP/1.1 ", "HTTP/1.0 ", "Status: ", "X-A: b\r\nStatus:"]))
                .prop_map(|(c, rest, pre)| format!("{pre}{c} {rest}\r\n").into_bytes()),
        ],
        raw_cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let cuts = cuts_for(bytes.len(), raw_cuts);
        let mut a = StatusParser::new(64);
        let wa = a.feed(&bytes);
        let mut b = StatusParser::new(64);
        let mut start = 0;
        let mut wb = Ok(StatusProgress::NeedMore);
        for end in cuts.iter().copied().chain(std::iter::once(bytes.len())) {
            wb = b.feed(&bytes[start..end]);
            if !matches!(wb, Ok(StatusProgress::NeedMore)) { break; }
            start = end;
        }
        prop_assert_eq!(wb, wa);
        prop_assert_eq!(b.finish(), a.finish());
    }

    #[test]
    fn generated_status_lines_parse(code in 100u16..1000, v in prop::sample::select(vec!["1.0", "1.1"])) {
        let line = format!("HTTP/{v} {code} Whatever\r\n");
        let mut p = StatusParser::default();
        prop_assert_eq!(p.feed(line.as_bytes()).unwrap(), StatusProgress::Done(
            uwsgi_red_core::uwsgi::Status { code, source: uwsgi_red_core::uwsgi::response::StatusSource::StatusLine }));
    }

    /// Random request and response streams in random pieces through the
    /// connection tracker. Oracle: every complete request head yields
    /// exactly one completed exchange, whatever the splits, and the stream
    /// yields exactly one request error when it stops being uwsgi (or ends
    /// inside a head), none otherwise. The buffer stays within the limit.
    #[test]
    fn tracker_reports_every_complete_head_exactly_once(
        down in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            packet_then_tail().prop_map(|(p, _)| p),
            keepalive_stream(),
            keepalive_stream(),
        ],
        up in prop::collection::vec(any::<u8>(), 0..200),
        down_cuts in prop::collection::vec(1usize..64, 0..20),
        limit in prop::sample::select(vec![4usize, 100, 65539]),
    ) {
        let (want_completed, want_errors) = oracle(&down, limit);
        let mut t = ConnectionTracker::new(limit, 64);
        let mut out = Vec::new();
        let mut pos = 0usize;
        let mut now = 0u64;
        for step in down_cuts.iter().chain(std::iter::once(&usize::MAX)) {
            let end = pos.saturating_add(*step).min(down.len());
            let piece = &down[pos..end];
            now += 1;
            t.on_downstream(piece.len(), end == down.len(), now, |s, n| Some(&piece[s..s + n]), &mut out);
            prop_assert!(t.buffered() <= limit);
            now += 1;
            t.on_upstream(up.len(), false, now, |s, n| Some(&up[s..s + n]), &mut out);
            pos = end;
            if pos == down.len() { break; }
        }
        t.on_close(now + 1, &mut out);
        let completed = out.iter().filter(|e| matches!(e, Event::Completed(_))).count();
        let req_errors = out.iter().filter(|e| matches!(e, Event::RequestError(_))).count();
        prop_assert_eq!(completed, want_completed, "{:?}", out);
        prop_assert_eq!(req_errors, want_errors, "{:?}", out);
        if req_errors == 1 { prop_assert!(t.is_passthrough()); }
        for e in &out {
            if let Event::Completed(ex) = e {
                prop_assert!(ex.end_us >= ex.start_us);
            }
        }
        // Split-equivalence: the same exchanges and errors as one whole feed.
        prop_assert_eq!(summary(&out), summary(&whole_feed(&down, &up, limit)));
    }
}

/// What the tracker must report for `down` fed as one stream: complete
/// request heads (bodies skipped) until a non-request packet, a body of
/// unknown length, or an error; and 1 request error when the stream stops
/// being uwsgi or ends inside a head.
fn oracle(down: &[u8], limit: usize) -> (usize, usize) {
    let mut pos = 0usize;
    let mut completed = 0;
    while pos < down.len() {
        let rest = &down[pos..];
        match decode_head(rest, limit) {
            Err(_) | Ok(Progress::NeedMore) => return (completed, 1),
            Ok(Progress::Head { head, consumed }) => {
                if head.kind != Payload::Request {
                    return (completed, 0);
                }
                completed += 1;
                let Some(body) = head.content_length() else {
                    return (completed, 0);
                };
                let body = usize::try_from(body).unwrap_or(usize::MAX);
                pos = pos.saturating_add(consumed).saturating_add(body);
            }
        }
    }
    (completed, 0)
}

fn whole_feed(down: &[u8], up: &[u8], limit: usize) -> Vec<Event> {
    let mut t = ConnectionTracker::new(limit, 64);
    let mut out = Vec::new();
    t.on_downstream(down.len(), true, 1, |s, n| Some(&down[s..s + n]), &mut out);
    t.on_upstream(up.len(), false, 2, |s, n| Some(&up[s..s + n]), &mut out);
    t.on_close(3, &mut out);
    out
}

/// Events without their times (which depend on the splits).
fn summary(events: &[Event]) -> Vec<(String, String, Option<&'static str>)> {
    events
        .iter()
        .map(|e| match e {
            Event::Completed(ex) => (ex.method.clone(), ex.path.clone(), None),
            other => (String::new(), String::new(), other.reason()),
        })
        .filter(|(_, _, reason)| !matches!(reason, Some(r) if r.starts_with("response_")))
        .collect()
}

/// A keep-alive connection: several requests with bodies announced by
/// CONTENT_LENGTH, then maybe garbage or a cut-off head.
fn keepalive_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(
            (
                prop::sample::select(vec![0u8, 0, 0, 5, 17]),
                "\\PC{0,12}",
                prop::collection::vec(any::<u8>(), 0..40),
            ),
            1..6,
        ),
        prop::collection::vec(any::<u8>(), 0..12),
        any::<bool>(),
    )
        .prop_map(|(reqs, tail, cut)| {
            let mut s = Vec::new();
            for (m1, path, body) in reqs {
                let cl = body.len().to_string();
                let vars = [
                    ("CONTENT_LENGTH", cl.as_str()),
                    ("REQUEST_METHOD", "POST"),
                    ("PATH_INFO", path.as_str()),
                ];
                encode_head(m1, 0, &vars, &mut s).unwrap();
                s.extend_from_slice(&body);
            }
            if cut {
                let mut next = Vec::new();
                encode_head(0, 0, &[("REQUEST_METHOD", "GET")], &mut next).unwrap();
                s.extend_from_slice(&next[..next.len() / 2]);
            } else {
                s.extend_from_slice(&tail);
            }
            s
        })
}

#[test]
fn request_modifiers_are_the_web_handlers() {
    let req: Vec<u8> = MODIFIERS
        .iter()
        .filter(|m| m.payload == Payload::Request)
        .map(|m| m.code)
        .collect();
    assert!(req.contains(&0) && req.contains(&5) && req.contains(&7) && req.contains(&30));
    assert!(!req.contains(&100) && !req.contains(&17));
}
