//! Head decoder: any bytes, split at positions chosen by the input, give
//! exactly the result of `decode_head` on the whole input, the decoder never
//! holds more than its limit, and a decoded vars block re-encodes to the very
//! bytes it came from (round trip).

use uwsgi_red_core::uwsgi::{decode_head, encode_head, HeadDecoder, Progress};

type Outcome = Result<Option<(Vec<u8>, usize, usize)>, uwsgi_red_core::uwsgi::DecodeError>;

pub fn check(data: &[u8]) {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    let limit = [4usize, 64, 1024, 65539][usize::from(seed & 3)];
    let step = usize::from(seed >> 2) + 1;
    let whole: Outcome = match decode_head(bytes, limit) {
        Ok(Progress::Head { head, consumed }) => {
            assert!(consumed <= bytes.len() && consumed <= limit);
            assert_eq!(consumed, head.header.head_len());
            if head.kind.has_vars() {
                let pairs: Vec<(&[u8], &[u8])> =
                    head.vars.iter().map(|v| (v.key, v.value)).collect();
                let mut again = Vec::new();
                encode_head(
                    head.header.modifier1,
                    head.header.modifier2,
                    &pairs,
                    &mut again,
                )
                .expect("a decoded head re-encodes");
                assert_eq!(again, bytes[..consumed], "vars round trip");
            }
            Ok(Some((head.payload.to_vec(), head.vars.len(), consumed)))
        }
        Ok(Progress::NeedMore) => Ok(None),
        Err(e) => Err(e),
    };
    let mut d = HeadDecoder::new(limit);
    let mut split: Outcome = Ok(None);
    let mut start = 0;
    for piece in bytes.chunks(step) {
        match d.feed(piece) {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Head { head, consumed }) => {
                split = Ok(Some((
                    head.payload.to_vec(),
                    head.vars.len(),
                    start + consumed,
                )));
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
}
