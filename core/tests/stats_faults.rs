//! Broken stats replies: each gives a precise error (with its `reason`
//! label and, for wrong types, the JSON path), never a panic.
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

use std::path::PathBuf;

use uwsgi_red_core::stats::families::{map_document, MapOptions};
use uwsgi_red_core::stats::{decode, decode_with_limit, StatsError};

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(name),
    )
    .unwrap()
}

#[test]
fn truncated_json_is_truncated_at_every_cut() {
    let full = vector("stats_b_4x4_after_load_http.bin");
    let head = full.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    // Every cut inside the body (past its first byte) is reported, never decoded.
    for cut in (head + 1..full.len() - 2).step_by(97) {
        let e = decode(&full[..cut]).unwrap_err();
        assert!(
            matches!(
                e,
                StatsError::Truncated { .. } | StatsError::InvalidJson { .. }
            ),
            "cut {cut}: {e}"
        );
    }
    let e = decode(&full[..full.len() / 2]).unwrap_err();
    assert_eq!(e.reason(), "truncated");
    assert!(e.to_string().contains("truncated"), "{e}");
}

#[test]
fn garbage_is_not_json() {
    let e = decode(b"\x00\x01garbage\xff").unwrap_err();
    assert_eq!(e.reason(), "not_json");
    let e = decode(b"HTTP/1.0 200 OK\r\n\r\n<html>nope</html>").unwrap_err();
    assert_eq!(e.reason(), "not_json");
    assert!(e.to_string().contains("<html>"), "{e}");
    let e = decode(b"{\"version\": }}}").unwrap_err();
    assert_eq!(e.reason(), "invalid_json");
    assert_eq!(decode(b"").unwrap_err(), StatsError::Empty);
    assert_eq!(
        decode(b"HTTP/1.0 500 Oops\r\n\r\n{}").unwrap_err().reason(),
        "http_status"
    );
}

#[test]
fn wrong_types_name_the_json_path() {
    let good = String::from_utf8(vector("stats_f_minified_raw.json")).unwrap();
    let cases = [
        (
            good.replacen("\"requests\":0", "\"requests\":\"many\"", 1),
            "workers[0].requests",
        ),
        (
            good.replacen("\"version\":\"2.0.30\"", "\"version\":2", 1),
            "version",
        ),
        (
            good.replacen("\"max_queue\":100", "\"max_queue\":-3", 1),
            "sockets[0].max_queue",
        ),
        (
            good.replacen("\"status\":\"idle\"", "\"status\":[1]", 2)
                .replacen("\"status\":[1]", "\"status\":\"idle\"", 1),
            "workers[1].status",
        ),
        (
            good.replacen("\"user 0\":0", "\"user 0\":\"x\"", 1),
            "locks[0].user 0",
        ),
        (
            good.replacen("\"apps\":[{\"id\":0", "\"apps\":[{\"id\":true", 1),
            "workers[0].apps[0].id",
        ),
    ];
    for (doc, path) in cases {
        match decode(doc.as_bytes()).unwrap_err() {
            StatsError::Schema { path: p, message } => {
                assert_eq!(p, path, "{message}");
                assert!(!message.is_empty());
            }
            other => panic!("{path}: expected a schema error, got {other}"),
        }
    }
    let e = decode(br#"{"version":"2.0.30"}"#).unwrap_err();
    assert_eq!(e.reason(), "schema");
    assert!(e.to_string().contains("workers"), "{e}");
    assert_eq!(decode(b"[1,2]").unwrap_err().reason(), "schema");
}

#[test]
fn unknown_fields_and_missing_optional_sections_are_fine() {
    let d = decode(br#"{"version":"9.9","future":{"x":[1]},"workers":[{"id":1,"status":"sig9","new_key":1,"cores":[{"id":0,"vars":["A=1",""]}]}]}"#)
        .unwrap();
    assert_eq!(d.document.workers[0].status.as_string(), "sig9");
    assert_eq!(d.document.listen_queue_errors, 0);
    assert!(d.document.caches.is_none());
    assert!(!serde_json::to_string(&d.document).unwrap().contains("A=1"));
}

/// A 5 MB document: 64 workers × 64 cores, each busy core carrying ~1.2 KB of
/// vars (cookies), as a big busy server would emit.
fn huge_document() -> Vec<u8> {
    let cookie = "c".repeat(1200);
    let mut s = String::from(
        r#"{"version":"2.0.30","listen_queue":3,"cwd":"/srv","sockets":[],"workers":["#,
    );
    for w in 1..=64 {
        if w > 1 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"id":{w},"requests":{},"status":"busy","apps":[],"cores":["#,
            w * 10
        ));
        for c in 0..64 {
            if c > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                r#"{{"id":{c},"requests":{c},"in_request":1,"vars":["REQUEST_METHOD=GET","HTTP_COOKIE=session={cookie}",""],"req_info":{{"request_start":1}}}}"#
            ));
        }
        s.push_str("]}");
    }
    s.push_str("]}");
    s.into_bytes()
}

#[test]
fn five_megabyte_document_decodes_and_respects_the_limit() {
    let doc = huge_document();
    assert!(doc.len() > 5_000_000, "{}", doc.len());
    let d = decode(&doc).unwrap();
    assert_eq!(d.document.workers.len(), 64);
    assert_eq!(d.document.workers[63].requests, 640);
    assert_eq!(d.document.workers[5].cores.len(), 64);
    assert_eq!(d.body_bytes, doc.len());
    let fams = map_document(&d.document, "big", &MapOptions::default());
    let reqs = fams
        .iter()
        .find(|f| f.name == "uwsgi_worker_requests_total")
        .unwrap();
    assert_eq!(reqs.samples.len(), 64);
    let per_core = map_document(
        &d.document,
        "big",
        &MapOptions {
            per_core: true,
            uwsgi_metrics: true,
            cron_commands: true,
        },
    );
    let busy = per_core
        .iter()
        .find(|f| f.name == "uwsgi_worker_core_busy")
        .unwrap();
    assert_eq!(busy.samples.len(), 64 * 64);

    let e = decode_with_limit(&doc, 1_000_000).unwrap_err();
    assert_eq!(
        e,
        StatsError::TooLarge {
            size: doc.len(),
            limit: 1_000_000
        }
    );
    assert_eq!(e.reason(), "too_large");
}

#[test]
fn invalid_capture_recovers_with_the_repair_counted() {
    let d = decode(&vector("stats_k_cwd_backslash_invalid_http.bin")).unwrap();
    assert_eq!(d.repairs, 1);
    assert!(d.document.cwd.ends_with(r"dir\with\backslash"));
    // Repair never hides a real cut: a truncated invalid document is still an error.
    let raw = vector("stats_k_cwd_backslash_invalid_http.json");
    assert!(decode(&raw[..raw.len() - 40]).is_err());
}
