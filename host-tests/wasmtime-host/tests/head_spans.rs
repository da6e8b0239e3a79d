//! `decode-head-spans` must say exactly what `decode-head` says: for every
//! input of the head cases, the spans resolved against the packet give the
//! same vars byte for byte, and every other field and error is equal. Native
//! (the component crate's code); the wasmtime and jco runs then require the
//! component to give the native results of both forms.
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

use uwsgi_red_component::bindings::exports::uwsgi_red::core::uwsgi::{
    Guest, HeadSpans, Octets, PayloadKind, RequestHead, Span,
};
use uwsgi_red_component::Component;
use uwsgi_red_wasmtime_host::cases;
use uwsgi_red_wasmtime_host::js::Js;

fn bytes(o: &Octets) -> &[u8] {
    match o {
        Octets::Text(s) => s.as_bytes(),
        Octets::Bytes(b) => b,
    }
}

fn at(packet: &[u8], s: Span) -> &[u8] {
    let start = s.offset as usize;
    packet
        .get(start..start + s.len as usize)
        .unwrap_or_else(|| panic!("span {s:?} outside the {}-byte packet", packet.len()))
}

/// `(key, value)` spans of each var from the flat list.
fn var_spans(h: &HeadSpans) -> Vec<(Span, Span)> {
    h.vars
        .chunks_exact(4)
        .map(|q| {
            let span = |offset, len| Span { offset, len };
            (span(q[0], q[1]), span(q[2], q[3]))
        })
        .collect()
}

fn same_head(id: &str, packet: &[u8], text: &RequestHead, spans: &HeadSpans) {
    assert_eq!(
        (text.modifier1, text.modifier2, text.datasize, text.head_len),
        (
            spans.modifier1,
            spans.modifier2,
            spans.datasize,
            spans.head_len
        ),
        "{id}: header fields"
    );
    assert_eq!(text.kind.js(), spans.kind.js(), "{id}: kind");
    assert_eq!(
        text.content_length, spans.content_length,
        "{id}: content-length"
    );
    assert_eq!(
        text.vars.len() * 4,
        spans.vars.len(),
        "{id}: four numbers per var"
    );
    for (i, (t, s)) in text.vars.iter().zip(var_spans(spans)).enumerate() {
        assert_eq!(bytes(&t.key), at(packet, s.0), "{id}: key {i}");
        assert_eq!(bytes(&t.value), at(packet, s.1), "{id}: value {i}");
    }
    // The text form carries method and path only when they are UTF-8.
    let utf8 = |s: Option<Span>| s.and_then(|s| std::str::from_utf8(at(packet, s)).ok());
    assert_eq!(text.method.as_deref(), utf8(spans.method), "{id}: method");
    assert_eq!(text.path.as_deref(), utf8(spans.path), "{id}: path");
    // An opaque payload is the head after the 4-byte header.
    let payload = packet
        .get(4..spans.head_len as usize)
        .expect("head within packet");
    let opaque = spans.kind == PayloadKind::Opaque;
    assert_eq!(
        text.payload.as_deref(),
        opaque.then_some(payload),
        "{id}: payload"
    );
}

#[test]
fn spans_say_what_the_text_form_says_on_every_head_case() {
    let dir = cases::vectors_dir();
    let (mut heads, mut errors) = (0, 0);
    for c in cases::all(&dir)
        .iter()
        .filter(|c| c.call == "uwsgi.decode-head")
    {
        let packet = cases::input(&dir, &c.args);
        let limit = c.args["limit"].as_u64().map(|l| l as u32);
        let text = Component::decode_head(packet.clone(), limit);
        let spans = Component::decode_head_spans(packet.clone(), limit);
        match (&text, &spans) {
            (Ok(t), Ok(s)) => {
                same_head(&c.id, &packet, t, s);
                heads += 1;
            }
            (Err(t), Err(s)) => {
                assert_eq!(t.js(), s.js(), "{}: error", c.id);
                errors += 1;
            }
            _ => panic!("{}: text {text:?} vs spans {spans:?}", c.id),
        }
    }
    // The 10 captured packets decode (plus the stats and log files that
    // happen to start like a uwsgi header); prefixes and limits fail.
    assert!(heads >= 10, "{heads} heads");
    assert!(errors >= 30, "{errors} errors");
}

#[test]
fn the_bench_packet_has_thirty_var_spans_in_order() {
    let packet = cases::read(&cases::vectors_dir(), "pkt_get_query_many_headers.bin");
    let h = Component::decode_head_spans(packet.clone(), None).expect("captured packet decodes");
    assert_eq!(h.vars.len(), 30 * 4);
    // Wire order: each key starts 2 bytes (its length field) after the
    // previous value ends, the first right after the 4-byte header.
    let mut next = 4;
    for (key, value) in var_spans(&h) {
        assert_eq!(key.offset, next + 2);
        assert_eq!(value.offset, key.offset + key.len + 2);
        next = value.offset + value.len;
    }
    assert_eq!(next, h.head_len);
    assert_eq!(at(&packet, h.method.expect("method")), b"GET");
}
