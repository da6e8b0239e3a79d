//! `metrics` names the fast path skips (per-core) or keeps: whatever a name
//! holds (escapes, invalid UTF-8, control characters, surrogates, a length
//! over the label bound), the page, the repair count and the error are
//! exactly the owned path's, with and without per-core series. (Guards any
//! shortcut in how names are read: skipping a name must not skip a check.)

mod stats_paths;

use stats_paths::{fast_text, owned_text};
use uwsgi_red_core::stats::families::MapOptions;
use uwsgi_red_core::stats::limits::MAX_LABEL_BYTES;

/// A document whose `metrics` holds `name` (raw bytes between the quotes)
/// twice: once as a per-core name, once as a worker-level one.
fn doc(name: &[u8]) -> Vec<u8> {
    let mut d = b"{\"version\":\"2.0.30\",\"workers\":[{\"id\":1}],\"metrics\":{".to_vec();
    for prefix in [&b"worker.1.core.0."[..], b"worker.1."] {
        d.extend_from_slice(b"\"");
        d.extend_from_slice(prefix);
        d.extend_from_slice(name);
        d.extend_from_slice(b"\":{\"type\":1,\"value\":7},");
    }
    d.extend_from_slice(b"\"core.busy_workers\":{\"type\":1,\"value\":1}}}");
    d
}

#[test]
fn every_kind_of_name_gives_the_owned_paths_page_or_error() {
    let long = vec![b'a'; MAX_LABEL_BYTES];
    let names: Vec<&[u8]> = vec![
        b"requests",
        b"caf\xc3\xa9",      // UTF-8
        b"caf\xe9",          // Latin-1: invalid UTF-8, repaired
        b"a\x01b",           // raw control character
        b"tab\there",        // raw tab
        b"a\\nb",            // escaped newline: fine
        b"a\\u00e9",         // escaped é
        b"a\\ud800",         // lone surrogate escape
        b"a\\udc00b\\u0001", // lone trailing surrogate, escaped control
        b"a\\x",             // invalid escape
        b"quote\\\"d",       // escaped quote
        b"\x7f",             // DEL is allowed unescaped
        b"",
        &long, // with the prefix: over the label bound
    ];
    let mut pages = 0;
    for name in names {
        let d = doc(name);
        for opts in [
            MapOptions::default(),
            MapOptions {
                per_core: true,
                uwsgi_metrics: true,
                cron_commands: true,
            },
        ] {
            let want = owned_text(&d, &opts);
            assert_eq!(
                fast_text(&d, &opts),
                want,
                "{}",
                String::from_utf8_lossy(name)
            );
            pages += usize::from(want.is_ok());
        }
    }
    // Most are pages (some after repair), the rest errors.
    assert!(pages >= 16, "{pages} pages");
}

#[test]
fn names_are_exported_as_decoded_and_repairs_are_counted() {
    let opts = MapOptions::default();
    let page = fast_text(&doc(b"a\\u00e9"), &opts).unwrap();
    assert!(page.contains("name=\"worker.1.a\u{e9}\""), "{page}");
    assert!(!page.contains("core.0."), "{page}");
    // Both names repaired, the skipped per-core one too.
    let page = fast_text(&doc(b"caf\xe9"), &opts).unwrap();
    assert!(
        page.contains("uwsgi_stats_repaired_strings{target=\"app1\"} 2\n"),
        "{page}"
    );
    // Over the label bound, a per-core name too: a limit error, as before.
    let e = fast_text(&doc(&vec![b'a'; MAX_LABEL_BYTES]), &opts).unwrap_err();
    assert_eq!(e.reason(), "limit");
    assert_eq!(
        e,
        owned_text(&doc(&vec![b'a'; MAX_LABEL_BYTES]), &opts).unwrap_err()
    );
}
