//! Response status parser: whole and byte-split input agree, and the
//! parser never reads past its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uwsgi_red_core::uwsgi::{StatusParser, StatusProgress};

fuzz_target!(|data: &[u8]| {
    let mut whole = StatusParser::new(256);
    let w = whole.feed(data);
    assert!(whole.seen() <= 256);
    let mut split = StatusParser::new(256);
    let mut s = Ok(StatusProgress::NeedMore);
    for b in data.chunks(1) {
        s = split.feed(b);
        if !matches!(s, Ok(StatusProgress::NeedMore)) {
            break;
        }
    }
    assert_eq!(w, s);
    assert_eq!(whole.finish(), split.finish());
});
