//! `uwsgi-red decode`: a uwsgi request head printed in the layout of the
//! project's `pkt_*.txt` vectors (header, counts, one `KEY=VALUE` per var in
//! wire order, bytes escaped: printable ASCII as is, `\` as `\\`, the rest
//! as `\xNN`).

use std::fmt::Write;

use uwsgi_red_core::uwsgi::{decode_head, modifier, DecodeError, Progress, DEFAULT_HEAD_LIMIT};

pub fn describe(packet: &[u8]) -> Result<String, String> {
    let (head, consumed) =
        match decode_head(packet, DEFAULT_HEAD_LIMIT).map_err(|e| e.to_string())? {
            Progress::Head { head, consumed } => (head, consumed),
            Progress::NeedMore => {
                let needed = if packet.len() < 4 {
                    4
                } else {
                    4 + u16::from_le_bytes([packet[1], packet[2]]) as usize
                };
                return Err(DecodeError::Truncated {
                    got: packet.len(),
                    needed,
                }
                .to_string());
            }
        };
    let h = head.header;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# header: modifier1={} datasize={} modifier2={}",
        h.modifier1, h.datasize, h.modifier2
    );
    let _ = writeln!(
        out,
        "# vars={} body_bytes={} total_bytes={}",
        head.vars.len(),
        packet.len() - consumed,
        packet.len()
    );
    if head.kind.has_vars() {
        for v in head.vars.iter() {
            let _ = writeln!(out, "{}={}", escape(v.key), escape(v.value));
        }
    } else {
        let _ = writeln!(
            out,
            "# payload ({}): {}",
            modifier::name(h.modifier1),
            escape(head.payload)
        );
    }
    if let Some(cl) = head.content_length() {
        let body = packet.len() - consumed;
        if cl as usize != body {
            let _ = writeln!(
                out,
                "# note: CONTENT_LENGTH={cl} but {body} body bytes follow"
            );
        }
    }
    Ok(out)
}

fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s
}
