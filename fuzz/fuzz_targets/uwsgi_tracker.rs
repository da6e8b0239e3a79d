//! Connection tracker: interleaved request/response bytes in arbitrary
//! pieces never panic and never grow its buffer past the head limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uwsgi_red_core::uwsgi::ConnectionTracker;

fuzz_target!(|data: &[u8]| {
    let mut t = ConnectionTracker::new(512, 64);
    let mut out = Vec::new();
    let mut now = 0;
    let mut rest = data;
    // Each record: 1 control byte (direction + length), then the bytes.
    while let Some((&ctl, tail)) = rest.split_first() {
        let n = usize::from(ctl & 0x3f).min(tail.len());
        let (piece, next) = tail.split_at(n);
        now += 1;
        let eos = ctl & 0x40 != 0;
        if ctl & 0x80 == 0 {
            t.on_downstream(piece.len(), eos, now, |s, l| Some(&piece[s..s + l]), &mut out);
        } else {
            t.on_upstream(piece.len(), eos, now, |s, l| Some(&piece[s..s + l]), &mut out);
        }
        assert!(t.buffered() <= 512);
        rest = next;
    }
    t.on_close(now + 1, &mut out);
});
