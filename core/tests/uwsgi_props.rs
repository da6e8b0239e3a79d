//! Property tests for the uwsgi codec: encode -> decode round trips, and
//! streaming decoding gives the same answer however the input is split.
//! The last tests are a bounded fuzz-like run (random bytes, random
//! splits) that must never panic or exceed the memory bound; the
//! coverage-guided version is the `fuzz/` crate.

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

    /// Fuzz-like: random request and response streams in random pieces
    /// through the connection tracker. It must not panic, must keep its
    /// buffer within the limit, and must report each request at most once.
    #[test]
    fn tracker_survives_random_streams(
        down in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            packet_then_tail().prop_map(|(p, _)| p),
        ],
        up in prop::collection::vec(any::<u8>(), 0..200),
        down_cuts in prop::collection::vec(1usize..64, 0..20),
        limit in prop::sample::select(vec![4usize, 100, 65539]),
    ) {
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
        prop_assert!(req_errors <= 1, "{out:?}");
        if req_errors == 1 { prop_assert!(t.is_passthrough()); }
        for e in &out {
            if let Event::Completed(ex) = e {
                prop_assert!(ex.end_us >= ex.start_us);
            }
        }
        prop_assert!(completed <= down.len() / 4 + 1);
    }
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
