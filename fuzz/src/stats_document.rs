//! uWSGI stats documents: transport + decode + repair + map + encode.
//!
//! Input: one option byte (per-core series, `--enable-metrics` values),
//! then a stats reply (raw or HTTP). Properties:
//! - decoding never panics and reports sizes within the input;
//! - a decoded document round-trips: serialised and decoded again it
//!   serialises to the same JSON;
//! - the Prometheus text holds no duplicate series (Prometheus rejects
//!   them) and stays within a linear bound of the input size.

use std::collections::HashSet;

use uwsgi_red_core::stats::families::{encode_text, map_document, MapOptions};
use uwsgi_red_core::stats::{decode, repair};

/// Output bytes per input byte: the smallest worker entry (`{"id":9},`,
/// 9 bytes) expands to about twenty series of ~90 bytes each.
const OUT_PER_IN: usize = 256;
const OUT_CONSTANT: usize = 64 * 1024;

pub fn check(data: &[u8]) {
    let Some((&opts, reply)) = data.split_first() else {
        return;
    };
    // The repair pass alone, on anything: it must never grow a string more
    // than an escape can (6 bytes per byte, `\u00XX`).
    if let Some((fixed, n)) = repair::repair(reply) {
        assert!(fixed.len() <= 6 * reply.len() + 64);
        assert!(n <= reply.len());
    }
    let Ok(decoded) = decode(reply) else {
        return;
    };
    assert!(decoded.body_bytes <= reply.len());
    assert!(decoded.repairs <= decoded.body_bytes);

    let json = serde_json::to_vec(&decoded.document).expect("a document serialises");
    let again = decode(&json).expect("our own serialisation decodes");
    assert_eq!(again.repairs, 0);
    let json2 = serde_json::to_vec(&again.document).expect("serialises");
    assert_eq!(json, json2, "round trip");

    let map_opts = MapOptions {
        per_core: opts & 1 != 0,
        uwsgi_metrics: opts & 2 != 0,
        cron_commands: opts & 4 != 0,
    };
    let text = encode_text(&map_document(&decoded.document, "fuzz", &map_opts));
    assert!(
        text.len() <= OUT_PER_IN * reply.len() + OUT_CONSTANT,
        "{} bytes of text from {} bytes",
        text.len(),
        reply.len()
    );
    let mut seen = HashSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let series = line.rsplit_once(' ').map_or(line, |(s, _)| s);
        assert!(seen.insert(series), "duplicate series {series}");
    }
}
