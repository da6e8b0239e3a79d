//! The decoder and status parser against real captures: uwsgi packets
//! exactly as nginx 1.22 sent them and uWSGI 2.0.30's replies
//! (`tests/vectors/`, see SOURCES.md there). The `.txt` files are the
//! capture tool's own decoding; ours must agree byte for byte.
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

use std::fs;
use std::path::{Path, PathBuf};

use uwsgi_red_core::uwsgi::response::{parse_status, StatusParser, StatusProgress};
use uwsgi_red_core::uwsgi::{ConnectionTracker, Event, HeadDecoder, Progress, DEFAULT_HEAD_LIMIT};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn files(prefix: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(vectors())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with(prefix) && n.ends_with(ext)
        })
        .collect();
    v.sort();
    v
}

/// `\\` is a backslash, `\xNN` a byte, anything else itself.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b.get(i + 1) {
                Some(b'\\') => {
                    out.push(b'\\');
                    i += 2;
                }
                Some(b'x') => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 4;
                }
                other => panic!("bad escape {other:?} in {s:?}"),
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[derive(Debug)]
struct Expected {
    modifier1: u8,
    datasize: u16,
    modifier2: u8,
    vars: Vec<(Vec<u8>, Vec<u8>)>,
    body_bytes: usize,
    total_bytes: usize,
    body: Option<Vec<u8>>,
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

fn parse_txt(path: &Path) -> Expected {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.split('\n');
    let h = lines.next().unwrap();
    assert!(h.starts_with("# header:"), "{h}");
    let counts = lines.next().unwrap();
    let mut e = Expected {
        modifier1: field(h, "modifier1").parse().unwrap(),
        datasize: field(h, "datasize").parse().unwrap(),
        modifier2: field(h, "modifier2").parse().unwrap(),
        vars: Vec::new(),
        body_bytes: field(counts, "body_bytes").parse().unwrap(),
        total_bytes: field(counts, "total_bytes").parse().unwrap(),
        body: None,
    };
    let nvars: usize = field(counts, "vars").parse().unwrap();
    for line in lines.by_ref() {
        if line.starts_with("# body_sha256=") {
            break;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("bad var line {line:?}"));
        e.vars.push((unescape(k), unescape(v)));
    }
    if lines.next() == Some("# body (escaped):") {
        e.body = Some(unescape(lines.next().unwrap()));
    }
    assert_eq!(e.vars.len(), nvars, "{}", path.display());
    e
}

fn pairs(head: &uwsgi_red_core::uwsgi::RequestHead<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    head.vars
        .iter()
        .map(|v| (v.key.to_vec(), v.value.to_vec()))
        .collect()
}

fn packets() -> Vec<(String, Vec<u8>, Expected)> {
    let txts = files("pkt_", ".txt");
    assert_eq!(txts.len(), 10, "every captured packet is tested");
    txts.iter()
        .map(|t| {
            let bin = fs::read(t.with_extension("bin")).unwrap();
            (
                t.file_stem().unwrap().to_str().unwrap().to_string(),
                bin,
                parse_txt(t),
            )
        })
        .collect()
}

#[test]
fn captured_packets_decode_to_the_expected_vars() {
    for (name, bin, e) in packets() {
        assert_eq!(bin.len(), e.total_bytes, "{name}");
        let mut d = HeadDecoder::default();
        let Ok(Progress::Head { head, consumed }) = d.feed(&bin) else {
            panic!("{name}: no head")
        };
        assert_eq!(
            (
                head.header.modifier1,
                head.header.datasize,
                head.header.modifier2
            ),
            (e.modifier1, e.datasize, e.modifier2),
            "{name}"
        );
        assert_eq!(consumed, 4 + usize::from(e.datasize), "{name}");
        assert_eq!(pairs(&head), e.vars, "{name}");
        let body = &bin[consumed..];
        assert_eq!(body.len(), e.body_bytes, "{name}");
        assert_eq!(
            head.content_length(),
            Some(e.body_bytes as u64),
            "{name}: CONTENT_LENGTH frames the body"
        );
        if let Some(b) = &e.body {
            assert_eq!(body, &b[..], "{name}");
        }
    }
}

#[test]
fn captured_packets_decode_the_same_split_anywhere() {
    for (name, bin, e) in packets() {
        let head_len = 4 + usize::from(e.datasize);
        for cut in 1..head_len {
            let mut d = HeadDecoder::default();
            assert_eq!(
                d.feed(&bin[..cut]),
                Ok(Progress::NeedMore),
                "{name} cut {cut}"
            );
            let Ok(Progress::Head { head, consumed }) = d.feed(&bin[cut..]) else {
                panic!("{name} cut {cut}")
            };
            assert_eq!(consumed, head_len - cut, "{name} cut {cut}");
            assert_eq!(pairs(&head), e.vars, "{name} cut {cut}");
        }
        // One byte at a time.
        let mut d = HeadDecoder::default();
        for (i, b) in bin[..head_len].chunks(1).enumerate() {
            let r = d.feed(b).map(|p| matches!(p, Progress::Head { .. }));
            assert_eq!(r, Ok(i + 1 == head_len), "{name} byte {i}");
        }
        assert!(d.buffered() <= DEFAULT_HEAD_LIMIT);
    }
}

fn expected_status(name: &str) -> u16 {
    match name {
        "resp_uwsgi_socket_404" => 404,
        "resp_uwsgi_socket_500" => 500,
        _ => 200,
    }
}

#[test]
fn captured_responses_give_their_status_split_anywhere() {
    let resps = files("resp_", ".bin");
    assert_eq!(resps.len(), 6, "every captured response is tested");
    for p in resps {
        let name = p.file_stem().unwrap().to_str().unwrap().to_string();
        let bin = fs::read(&p).unwrap();
        let want = expected_status(&name);
        assert_eq!(
            parse_status(&bin).unwrap().map(|s| s.code),
            Some(want),
            "{name}"
        );
        for cut in 0..bin.len().min(64) {
            let mut sp = StatusParser::default();
            let first = sp.feed(&bin[..cut]).unwrap();
            let got = match first {
                StatusProgress::Done(s) => s.code,
                StatusProgress::NeedMore => match sp.feed(&bin[cut..]).unwrap() {
                    StatusProgress::Done(s) => s.code,
                    StatusProgress::NeedMore => panic!("{name} cut {cut}: no status"),
                },
            };
            assert_eq!(got, want, "{name} cut {cut}");
        }
    }
}

/// Request vector -> the response uWSGI sent for it (per SOURCES.md).
const PAIRS: [(&str, &str, &str, u16); 6] = [
    ("pkt_get_root", "resp_uwsgi_socket_200", "GET", 200),
    ("pkt_get_notfound", "resp_uwsgi_socket_404", "GET", 404),
    ("pkt_get_error", "resp_uwsgi_socket_500", "GET", 500),
    ("pkt_head_root", "resp_uwsgi_socket_head", "HEAD", 200),
    (
        "pkt_post_10k_form",
        "resp_uwsgi_socket_post_echo",
        "POST",
        200,
    ),
    ("pkt_http10_no_host", "resp_uwsgi_socket_http10", "GET", 200),
];

#[test]
fn captured_exchanges_through_the_tracker() {
    for (req, resp, method, code) in PAIRS {
        let r = fs::read(vectors().join(format!("{req}.bin"))).unwrap();
        let s = fs::read(vectors().join(format!("{resp}.bin"))).unwrap();
        // Worst case for the tracker: every byte in its own callback.
        let mut t = ConnectionTracker::new(DEFAULT_HEAD_LIMIT, 16384);
        let mut out = Vec::new();
        for (i, b) in r.chunks(1).enumerate() {
            t.on_downstream(
                1,
                i + 1 == r.len(),
                1000 + i as u64,
                |_, n| Some(&b[..n]),
                &mut out,
            );
        }
        for (i, b) in s.chunks(3).enumerate() {
            t.on_upstream(
                b.len(),
                false,
                50_000 + i as u64,
                |st, n| Some(&b[st..st + n]),
                &mut out,
            );
        }
        t.on_upstream(0, true, 60_000, |_, _| Some(&[][..]), &mut out);
        let [Event::Completed(ex)] = out.as_slice() else {
            panic!("{req}: {out:?}")
        };
        assert_eq!(
            (ex.method.as_str(), ex.status),
            (method, Some(code)),
            "{req}"
        );
        assert_eq!(
            (ex.start_us, ex.first_byte_us, ex.end_us),
            (1000, Some(50_000), 60_000),
            "{req}"
        );
        assert_eq!(ex.server_name, "localhost", "{req}");
    }
}
