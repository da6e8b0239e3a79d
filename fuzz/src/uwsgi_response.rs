//! Response status parser: whole and piecewise input agree, the parser
//! never reads past its limit, and a status it reports is a real HTTP status
//! (100..=999; 000–099 would read as "no response").

use crate::rng::{pieces, seed_and_rest};
use uwsgi_red_core::uwsgi::{StatusParser, StatusProgress};

const LIMIT: usize = 256;

pub fn check(data: &[u8]) {
    let (seed, data) = seed_and_rest(data);
    let mut whole = StatusParser::new(LIMIT);
    let w = whole.feed(data);
    assert!(whole.seen() <= LIMIT);
    let mut split = StatusParser::new(LIMIT);
    let mut s = Ok(StatusProgress::NeedMore);
    for b in pieces(data, seed) {
        s = split.feed(b);
        assert!(split.seen() <= LIMIT);
        if !matches!(s, Ok(StatusProgress::NeedMore)) {
            break;
        }
    }
    assert_eq!(w, s);
    let (wf, sf) = (whole.finish(), split.finish());
    assert_eq!(wf, sf);
    if let Ok(StatusProgress::Done(st)) = w {
        assert!((100..=999).contains(&st.code), "status {}", st.code);
    }
    if let Some(Ok(st)) = wf {
        assert!((100..=999).contains(&st.code), "status {}", st.code);
    }
}
