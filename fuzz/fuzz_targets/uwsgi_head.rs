//! Head decoder: any bytes, split at positions chosen by the input, must
//! give the same outcome as decoding them whole, within the head limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uwsgi_red_core::uwsgi::{decode_head, HeadDecoder, Progress};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, bytes)) = data.split_first() else { return };
    let limit = [4usize, 64, 1024, 65539][usize::from(seed & 3)];
    let step = usize::from(seed >> 2) + 1;
    let whole = match decode_head(bytes, limit) {
        Ok(Progress::Head { head, consumed }) => Ok(Some((head.payload.to_vec(), head.vars.len(), consumed))),
        Ok(Progress::NeedMore) => Ok(None),
        Err(e) => Err(e),
    };
    let mut d = HeadDecoder::new(limit);
    let mut split = Ok(None);
    let mut start = 0;
    for piece in bytes.chunks(step) {
        match d.feed(piece) {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Head { head, consumed }) => {
                split = Ok(Some((head.payload.to_vec(), head.vars.len(), start + consumed)));
                break;
            }
            Err(e) => {
                split = Err(e);
                break;
            }
        }
        assert!(d.buffered() <= limit);
        start += piece.len();
    }
    assert_eq!(whole, split);
});
