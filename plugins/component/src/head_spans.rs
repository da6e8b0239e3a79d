//! `uwsgi.decode-head-spans`: a decoded head as places in the caller's
//! packet. Core's decoder already borrows every key and value from the
//! packet, so this only turns those borrows into offsets; nothing is
//! copied or allocated per var (the one allocation is the list itself).

use uwsgi_red_core::uwsgi::packet::RequestVars;
use uwsgi_red_core::uwsgi::{decode_head, DecodeError as CoreDecodeError, HeadDecoder, Progress};

use crate::bindings::exports::uwsgi_red::core::uwsgi as wu;
use crate::u32_of;
use crate::uwsgi::{decode_error, payload_kind};

/// Where `part`, a subslice of `packet`, lies in it. Core's slices borrow
/// from the buffer given to the stateless `decode_head`, so the address
/// difference is the offset (wrapping, not panicking, were that ever false;
/// the tests resolve every span against the packet).
fn span(packet: &[u8], part: &[u8]) -> wu::Span {
    wu::Span {
        offset: u32_of(part.as_ptr().addr().wrapping_sub(packet.as_ptr().addr())),
        len: u32_of(part.len()),
    }
}

pub(crate) fn decode_head_spans(
    packet: &[u8],
    limit: usize,
) -> Result<wu::HeadSpans, wu::DecodeError> {
    // The stateless decoder, so every slice borrows `packet` (the streaming
    // one may return its own buffer). It reports a short packet as "need
    // more"; the streaming decoder's `finish` gives the precise Truncated
    // error, the same as `decode-head`'s.
    let (head, consumed) = match decode_head(packet, limit).map_err(decode_error)? {
        Progress::Head { head, consumed } => (head, consumed),
        Progress::NeedMore => {
            let mut d = HeadDecoder::new(limit);
            let e = match d.feed(packet) {
                Err(e) => e,
                Ok(_) => d
                    .finish()
                    .unwrap_or(CoreDecodeError::Truncated { got: 0, needed: 4 }),
            };
            return Err(decode_error(e));
        }
    };
    // One pass over the vars (each pass costs ~40 instructions per var in
    // Wasm): the spans, and the three vars `decode-head` also reports, first
    // occurrence winning as in core's `RequestHead::request_vars`. The list
    // is sized by counting the vars first, which costs less than growing it
    // (12.5 k vs 12.8 k instructions a call on the bench packet), and
    // filled by single pushes: `extend([..4])` became a `memory.copy`
    // libcall per var (1.9 k instructions a call).
    let mut wanted = RequestVars::default();
    let mut vars = Vec::with_capacity(head.vars.len().saturating_mul(4));
    for v in head.vars.iter() {
        let slot = match v.key {
            b"REQUEST_METHOD" => Some(&mut wanted.method),
            b"PATH_INFO" => Some(&mut wanted.path_info),
            b"CONTENT_LENGTH" => Some(&mut wanted.content_length),
            _ => None,
        };
        if let Some(slot) = slot {
            slot.get_or_insert(v.value);
        }
        let (k, val) = (span(packet, v.key), span(packet, v.value));
        vars.push(k.offset);
        vars.push(k.len);
        vars.push(val.offset);
        vars.push(val.len);
    }
    Ok(wu::HeadSpans {
        modifier1: head.header.modifier1,
        modifier2: head.header.modifier2,
        datasize: head.header.datasize,
        kind: payload_kind(head.kind),
        head_len: u32_of(consumed),
        method: wanted.method.map(|m| span(packet, m)),
        path: wanted.path_info.map(|p| span(packet, p)),
        content_length: wanted.content_length(),
        vars,
    })
}
