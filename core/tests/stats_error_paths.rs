//! The JSON path of a schema error, found from serde_json's error position
//! (core/src/stats/path.rs), is the path serde_path_to_error's tracking
//! deserializer names, for every value of every captured document turned
//! into each wrong type, and for every key removed.
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

use serde_json::error::Category;
use uwsgi_red_core::stats::families::MapOptions;
use uwsgi_red_core::stats::{
    decode, scrape, StatsDocument, StatsError, DEFAULT_MAX_DOCUMENT_BYTES,
};

/// The path serde_path_to_error gives for a data error, if there is one.
fn tracked_path(json: &[u8]) -> Option<String> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    let e = serde_path_to_error::deserialize::<_, StatsDocument>(de).err()?;
    (e.inner().classify() == Category::Data).then(|| e.path().to_string())
}

/// Byte ranges of every number and string that is the value of a key.
fn values(json: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'"' {
            // Skip a string (no escapes in the captured documents' keys).
            let end = i + 1 + json[i + 1..].iter().position(|&b| b == b'"').unwrap();
            let after = json[end + 1..]
                .iter()
                .position(|b| !b" \t\r\n".contains(b))
                .map(|p| end + 1 + p);
            if let Some(colon) = after.filter(|&p| json[p] == b':') {
                let start = colon
                    + 1
                    + json[colon + 1..]
                        .iter()
                        .position(|b| !b" \t\r\n".contains(b))
                        .unwrap();
                let len = match json[start] {
                    b'"' => json[start + 1..].iter().position(|&b| b == b'"').unwrap() + 2,
                    b'-' | b'0'..=b'9' => json[start..]
                        .iter()
                        .position(|b| !b"-0123456789".contains(b))
                        .unwrap(),
                    _ => 0,
                };
                if len > 0 {
                    out.push((start, start + len));
                }
            }
            i = end + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Every captured document that decodes as it is.
fn documents() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
    let mut docs: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("stats_") && name.ends_with(".json")
        })
        .map(|p| std::fs::read(p).unwrap())
        .filter(|d| decode(d).is_ok_and(|d| d.repairs == 0))
        .collect();
    docs.sort();
    assert!(docs.len() >= 8, "{} documents", docs.len());
    docs
}

fn check(doc: &[u8], compared: &mut usize) {
    let Some(want) = tracked_path(doc) else {
        return;
    };
    let got = decode(doc).unwrap_err();
    match &got {
        StatsError::Schema { path, .. } | StatsError::Limit { path, .. } => {
            assert_eq!(path, &want, "{got}");
        }
        other => panic!("expected a schema error at {want}, got {other}"),
    }
    // The fast path names the same place whenever it reads the value at all.
    if let Err(fast) = scrape(
        doc,
        "app1",
        &MapOptions::default(),
        DEFAULT_MAX_DOCUMENT_BYTES,
    ) {
        assert_eq!(fast, got);
    }
    *compared += 1;
}

#[test]
fn every_wrong_type_is_named_as_a_tracking_deserializer_names_it() {
    let mut compared = 0;
    for doc in documents() {
        for (start, end) in values(&doc) {
            for wrong in [&b"\"x\""[..], b"-1", b"[1]", b"{}", b"true"] {
                let mut bad = doc[..start].to_vec();
                bad.extend_from_slice(wrong);
                bad.extend_from_slice(&doc[end..]);
                check(&bad, &mut compared);
            }
        }
    }
    // Most values are typed somewhere (the rest: vars, cwd, unknown keys).
    assert!(compared > 2000, "{compared} errors compared");
}

#[test]
fn every_missing_key_is_named_as_a_tracking_deserializer_names_it() {
    let mut compared = 0;
    for doc in documents() {
        // Renaming a key removes it without touching the JSON around it.
        let keys = doc.windows(2).enumerate().filter(|(_, w)| w == b"\":");
        for i in keys.map(|(i, _)| i).collect::<Vec<_>>() {
            let mut bad = doc.clone();
            bad[i - 1] = b'~';
            check(&bad, &mut compared);
        }
    }
    assert!(compared >= 10, "{compared} missing keys compared");
}
