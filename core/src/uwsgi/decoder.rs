//! Streaming decoder for uwsgi request heads.
//!
//! Bytes arrive in arbitrary chunks (a proxy sees whatever the socket
//! delivered, split anywhere, even inside the header or a length field).
//! When a chunk holds the whole head the result borrows from the chunk;
//! only a head split across chunks is copied, and never more of it than
//! the head itself, bounded by the configured limit.

use std::fmt;

use super::modifier::{self, Payload};
use super::packet::{Header, RequestHead, Vars, HEADER_LEN, MAX_DATASIZE};

/// 64 KiB: the largest head the 16-bit datasize can describe, which is also
/// uWSGI's own maximum (`buffer-size` 65535), so the default never refuses
/// a head uWSGI would accept.
pub const DEFAULT_HEAD_LIMIT: usize = HEADER_LEN + MAX_DATASIZE;

/// Smallest useful limit: the header alone.
pub const MIN_HEAD_LIMIT: usize = HEADER_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The stream ended `got` bytes into a head that needs `needed`
    /// (`needed` is 4 while the header itself is incomplete).
    Truncated { got: usize, needed: usize },
    /// A length field at `offset` (from the start of the packet) points past
    /// the end of the vars block.
    VarOverrun { offset: usize },
    /// The header announces a head larger than the limit.
    DatasizeTooLarge { datasize: u16, limit: usize },
    /// `modifier1` is not in the uwsgi table: this is not a uwsgi stream
    /// (an HTTP request line starts with `G`, 71, for example).
    UnknownModifier { modifier1: u8 },
}

impl DecodeError {
    /// Short, closed-set name: the `reason` label of the error counter.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::VarOverrun { .. } => "var_overrun",
            Self::DatasizeTooLarge { .. } => "datasize_too_large",
            Self::UnknownModifier { .. } => "unknown_modifier",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { got, needed } => {
                write!(
                    f,
                    "uwsgi head truncated: stream ended after {got} of {needed} bytes"
                )
            }
            Self::VarOverrun { offset } => {
                write!(
                    f,
                    "uwsgi var length at byte {offset} runs past the end of the vars block"
                )
            }
            Self::DatasizeTooLarge { datasize, limit } => write!(
                f,
                "uwsgi datasize {datasize} makes a head of {} bytes, over the {limit}-byte limit",
                HEADER_LEN + usize::from(*datasize)
            ),
            Self::UnknownModifier { modifier1 } => {
                write!(f, "unknown uwsgi modifier1 {modifier1}: not a uwsgi stream")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Result of one `feed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Every byte of the chunk was taken; the head is not complete yet.
    NeedMore,
    /// The head is complete. `consumed` bytes of the chunk belonged to it;
    /// the rest is body (or the next packet).
    Head {
        head: RequestHead<'a>,
        consumed: usize,
    },
}

/// Validates a header as soon as its 4 bytes are known, so a non-uwsgi
/// stream is refused after 4 bytes rather than after a whole "head".
fn check_header(h: Header, limit: usize) -> Result<Payload, DecodeError> {
    let m = modifier::lookup(h.modifier1).ok_or(DecodeError::UnknownModifier {
        modifier1: h.modifier1,
    })?;
    if h.head_len() > limit {
        return Err(DecodeError::DatasizeTooLarge {
            datasize: h.datasize,
            limit,
        });
    }
    Ok(m.payload)
}

fn build_head(
    header: Header,
    payload_kind: Payload,
    payload: &[u8],
) -> Result<RequestHead<'_>, DecodeError> {
    let vars = if payload_kind.has_vars() {
        Vars::parse(payload).map_err(|e| DecodeError::VarOverrun {
            offset: HEADER_LEN.saturating_add(e.offset),
        })?
    } else {
        Vars::EMPTY
    };
    Ok(RequestHead {
        header,
        kind: payload_kind,
        vars,
        payload,
    })
}

/// Decodes a head from a buffer that starts at a packet boundary, without
/// keeping state: `NeedMore` when `buf` is too short.
pub fn decode_head(buf: &[u8], limit: usize) -> Result<Progress<'_>, DecodeError> {
    let Some(hb) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(Progress::NeedMore);
    };
    let header = Header::parse(*hb);
    let kind = check_header(header, limit)?;
    let end = header.head_len();
    let Some(payload) = buf.get(HEADER_LEN..end) else {
        return Ok(Progress::NeedMore);
    };
    let head = build_head(header, kind, payload)?;
    Ok(Progress::Head {
        head,
        consumed: end,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a head; `buf` holds what came so far.
    Reading,
    /// A head was returned (it may borrow `buf`); the next feed starts over.
    Done,
    Failed(DecodeError),
}

/// Incremental head decoder; one per connection direction.
#[derive(Debug, Clone)]
pub struct HeadDecoder {
    limit: usize,
    /// Only used when a head is split across chunks; never longer than the
    /// head (so never longer than `limit`).
    buf: Vec<u8>,
    /// Header of the head being assembled, once its 4 bytes are known.
    header: Option<(Header, Payload)>,
    state: State,
}

impl Default for HeadDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_HEAD_LIMIT)
    }
}

impl HeadDecoder {
    /// `limit` is clamped to at least the 4-byte header.
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(MIN_HEAD_LIMIT),
            buf: Vec::new(),
            header: None,
            state: State::Reading,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held for a split head.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True when some bytes of a head were seen but the head is incomplete.
    pub fn in_head(&self) -> bool {
        self.state == State::Reading && !self.buf.is_empty()
    }

    /// How many more bytes, at most, the decoder wants before it can answer:
    /// a host can fetch no more than this from its buffer.
    pub fn wants(&self) -> usize {
        match (self.state, self.header) {
            (State::Failed(_), _) => 0,
            (State::Done, _) => self.limit,
            (State::Reading, Some((h, _))) => h.head_len().saturating_sub(self.buf.len()),
            (State::Reading, None) => self.limit.saturating_sub(self.buf.len()),
        }
    }

    /// Forgets everything, including an error: the next byte starts a packet.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.header = None;
        self.state = State::Reading;
    }

    /// Feeds the next chunk. After a `Head` the next `feed` starts a new
    /// packet; after an error every call returns the same error.
    pub fn feed<'a>(&'a mut self, chunk: &'a [u8]) -> Result<Progress<'a>, DecodeError> {
        match self.state {
            State::Failed(e) => return Err(e),
            State::Done => self.reset(),
            State::Reading => {}
        }
        if self.buf.is_empty() {
            // Fast path: the whole head is in this chunk, borrow it.
            return match decode_head(chunk, self.limit) {
                Ok(Progress::Head { head, consumed }) => {
                    self.state = State::Done;
                    Ok(Progress::Head { head, consumed })
                }
                Ok(Progress::NeedMore) => {
                    // Shorter than the head, so all of it is head bytes.
                    self.buf.extend_from_slice(chunk);
                    if let Some(hb) = chunk.first_chunk::<HEADER_LEN>() {
                        let h = Header::parse(*hb);
                        // decode_head accepted this header, so it is known.
                        let kind =
                            modifier::lookup(h.modifier1).map_or(Payload::Opaque, |m| m.payload);
                        self.header = Some((h, kind));
                    }
                    Ok(Progress::NeedMore)
                }
                Err(e) => Err(self.fail(e)),
            };
        }
        let mut rest = chunk;
        let (h, kind) = match self.header {
            Some(known) => known,
            None => {
                let take = HEADER_LEN.saturating_sub(self.buf.len());
                let (part, after) = rest.split_at_checked(take).unwrap_or((rest, &[]));
                self.buf.extend_from_slice(part);
                rest = after;
                let Some(hb) = self.buf.first_chunk::<HEADER_LEN>() else {
                    return Ok(Progress::NeedMore);
                };
                let h = Header::parse(*hb);
                match check_header(h, self.limit) {
                    Ok(kind) => {
                        self.header = Some((h, kind));
                        (h, kind)
                    }
                    Err(e) => return Err(self.fail(e)),
                }
            }
        };
        let take = h.head_len().saturating_sub(self.buf.len());
        let (part, after) = rest.split_at_checked(take).unwrap_or((rest, &[]));
        self.buf.extend_from_slice(part);
        let consumed = chunk.len().saturating_sub(after.len());
        // The buffer holds at most the head, so the payload is all of it
        // after the header once it is complete.
        let payload = match self.buf.get(HEADER_LEN..) {
            Some(p) if self.buf.len() >= h.head_len() => p,
            _ => return Ok(Progress::NeedMore),
        };
        // Validate before borrowing the buffer for the result, so an error
        // can still update the state.
        if let Err(e) = build_head(h, kind, payload) {
            return Err(self.fail(e));
        }
        self.state = State::Done;
        let payload = self.buf.get(HEADER_LEN..).unwrap_or_default();
        let head = build_head(h, kind, payload)?;
        Ok(Progress::Head { head, consumed })
    }

    /// The stream ended: an error when it stopped inside a head. A stream
    /// that ends between packets (or never started one) is fine.
    pub fn finish(&self) -> Option<DecodeError> {
        match self.state {
            State::Reading if !self.buf.is_empty() => Some(DecodeError::Truncated {
                got: self.buf.len(),
                needed: self.header.map_or(HEADER_LEN, |(h, _)| h.head_len()),
            }),
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.state = State::Failed(e);
        self.buf = Vec::new();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uwsgi::packet::encode_head;

    fn packet(vars: &[(&str, &str)]) -> Vec<u8> {
        let mut p = Vec::new();
        encode_head(0, 0, vars, &mut p).unwrap();
        p
    }

    #[test]
    fn whole_head_borrows_the_chunk() {
        let mut p = packet(&[("REQUEST_METHOD", "GET"), ("PATH_INFO", "/")]);
        p.extend_from_slice(b"BODY");
        let mut d = HeadDecoder::default();
        let Ok(Progress::Head { head, consumed }) = d.feed(&p) else {
            panic!("no head")
        };
        assert_eq!(consumed, p.len() - 4);
        assert_eq!(head.var_str(b"PATH_INFO"), Some("/"));
        assert!(
            std::ptr::eq(head.payload.as_ptr(), p[4..].as_ptr()),
            "zero-copy"
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn split_inside_header_and_length() {
        let p = packet(&[("REQUEST_METHOD", "POST")]);
        let mut d = HeadDecoder::default();
        assert_eq!(d.feed(&p[..1]), Ok(Progress::NeedMore));
        assert_eq!(d.wants(), DEFAULT_HEAD_LIMIT - 1);
        assert_eq!(d.feed(&p[1..3]), Ok(Progress::NeedMore));
        assert_eq!(
            d.feed(&p[3..5]),
            Ok(Progress::NeedMore),
            "inside the key length"
        );
        assert_eq!(d.wants(), p.len() - 5);
        assert!(d.in_head());
        let Ok(Progress::Head { head, consumed }) = d.feed(&p[5..]) else {
            panic!()
        };
        assert_eq!(consumed, p.len() - 5);
        assert_eq!(head.var(b"REQUEST_METHOD"), Some(&b"POST"[..]));
        // The next feed starts a new packet.
        assert_eq!(d.feed(&p[..2]), Ok(Progress::NeedMore));
        assert_eq!(
            d.finish(),
            Some(DecodeError::Truncated { got: 2, needed: 4 })
        );
    }

    #[test]
    fn precise_errors() {
        let mut d = HeadDecoder::default();
        assert_eq!(
            d.feed(b"GET / HTTP/1.1\r\n"),
            Err(DecodeError::UnknownModifier { modifier1: b'G' })
        );
        assert_eq!(
            d.feed(b"more"),
            Err(DecodeError::UnknownModifier { modifier1: b'G' }),
            "sticky"
        );
        assert_eq!(d.wants(), 0);
        let mut d = HeadDecoder::new(100);
        assert_eq!(
            d.feed(&[0, 200, 0, 0]),
            Err(DecodeError::DatasizeTooLarge {
                datasize: 200,
                limit: 100
            })
        );
        assert_eq!(d.buffered(), 0);
        // datasize 6 but the vars say the key is 9 bytes long
        let mut d = HeadDecoder::default();
        assert_eq!(
            d.feed(&[0, 6, 0, 0, 9, 0, b'a', b'b', b'c', b'd']),
            Err(DecodeError::VarOverrun { offset: 4 })
        );
        let mut d = HeadDecoder::default();
        assert_eq!(d.feed(&[0, 50, 0, 0, 1, 0]), Ok(Progress::NeedMore));
        assert_eq!(
            d.finish(),
            Some(DecodeError::Truncated { got: 6, needed: 54 })
        );
        assert_eq!(
            HeadDecoder::default().finish(),
            None,
            "an empty stream is not an error"
        );
    }

    #[test]
    fn split_errors_match_whole_errors() {
        let bad = [0u8, 6, 0, 0, 1, 0, b'k', 7, 0, b'v'];
        let whole = decode_head(&bad, DEFAULT_HEAD_LIMIT).unwrap_err();
        assert_eq!(whole, DecodeError::VarOverrun { offset: 7 });
        let mut d = HeadDecoder::default();
        let mut last = Ok(());
        for b in bad.chunks(1) {
            last = d.feed(b).map(|_| ());
        }
        assert_eq!(last, Err(whole));
    }

    #[test]
    fn opaque_modifiers_keep_their_payload() {
        let p = [173u8, 3, 0, 0, 1, 0, b'f'];
        let Ok(Progress::Head { head, .. }) = decode_head(&p, 64) else {
            panic!()
        };
        assert_eq!(head.kind, Payload::Opaque);
        assert!(head.vars.is_empty());
        assert_eq!(head.payload, &[1, 0, b'f']);
        let ping = [100u8, 0, 0, 0];
        assert!(matches!(
            decode_head(&ping, 64),
            Ok(Progress::Head { consumed: 4, .. })
        ));
    }

    #[test]
    fn memory_stays_within_the_limit() {
        let p = packet(&[("K", &"v".repeat(5000))]);
        let mut d = HeadDecoder::new(p.len());
        for c in p.chunks(7) {
            let _ = d.feed(c);
            assert!(d.buffered() <= p.len());
        }
        let mut small = HeadDecoder::new(1000);
        assert!(matches!(
            small.feed(&p[..10]),
            Err(DecodeError::DatasizeTooLarge { .. })
        ));
    }
}
