//! What a stats URL or a dropped file can hold: a uWSGI stats document (raw,
//! or a whole `--stats-http` reply) or the uwsgi-stats Envoy plugin's
//! snapshot (`core::stats::snapshot::Snapshot`: several targets, each with
//! its last document). Both become a list of [`Target`]s.

use uwsgi_red_core::stats::Snapshot;
use uwsgi_red_core::stats::{transport, StatsError};

use crate::doc::{self, Document};

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    /// The last poll of this target succeeded (always true for a document).
    pub up: bool,
    /// `document` is older than the last poll (the Envoy poller keeps the
    /// last good one when a poll fails).
    pub stale: bool,
    pub last_error: Option<String>,
    pub last_success_ms: Option<u64>,
    /// When the Envoy plugin wrote the snapshot; `None` for a document.
    pub generated_at_ms: Option<u64>,
    pub repairs: u64,
    pub document: Option<Document>,
}

/// Decodes `input`; a plain document becomes one target called `name`.
pub fn decode_targets(input: &[u8], name: &str) -> Result<Vec<Target>, StatsError> {
    let first = match doc::decode(input) {
        Ok(d) => {
            return Ok(vec![Target {
                name: name.to_string(),
                up: true,
                stale: false,
                last_error: None,
                last_success_ms: None,
                generated_at_ms: None,
                repairs: d.repairs as u64,
                document: Some(d.document),
            }])
        }
        Err(e) => e,
    };
    // Only valid JSON of another shape can be a snapshot (the plugin writes it
    // with serde); anything else keeps the document decoder's error.
    if !matches!(first, StatsError::Schema { .. }) {
        return Err(first);
    }
    let Ok(snap) = transport::body(input).map(serde_json::from_slice::<Snapshot>) else {
        return Err(first);
    };
    let Ok(snap) = snap else { return Err(first) };
    Ok(snap
        .targets
        .into_iter()
        .map(|t| Target {
            name: t.target,
            up: t.up,
            stale: t.stale,
            last_error: t.last_error,
            last_success_ms: t.last_success_ms,
            generated_at_ms: Some(snap.generated_at_ms),
            repairs: t.repairs,
            document: t.document.as_ref().map(Document::from),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uwsgi_red_core::stats;
    use uwsgi_red_core::stats::TargetSnapshot;

    fn vector(name: &str) -> Vec<u8> {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../core/tests/vectors/");
        std::fs::read(format!("{p}{name}")).unwrap()
    }

    #[test]
    fn document_is_one_target() {
        let t = decode_targets(&vector("stats_k_cwd_backslash_invalid_http.bin"), "drop").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name, "drop");
        assert!(t[0].up && !t[0].stale);
        assert!(t[0].repairs > 0);
        assert_eq!(t[0].document.as_ref().unwrap().workers.len(), 2);
    }

    #[test]
    fn envoy_snapshot_is_its_targets() {
        let doc = stats::decode(&vector("stats_j_exceptions_http.bin"))
            .unwrap()
            .document;
        let snap = Snapshot {
            generated_at_ms: 1_700_000_000_123,
            targets: vec![
                TargetSnapshot {
                    target: "app1".into(),
                    up: true,
                    last_success_ms: Some(1_700_000_000_000),
                    document: Some(doc.clone()),
                    ..Default::default()
                },
                TargetSnapshot {
                    target: "app2".into(),
                    up: false,
                    last_error: Some("connect: refused".into()),
                    ..Default::default()
                },
            ],
        };
        let mut reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n".to_vec();
        reply.extend(snap.to_json());
        for input in [snap.to_json(), reply] {
            let t = decode_targets(&input, "ignored").unwrap();
            assert_eq!(t.len(), 2);
            assert_eq!(t[0].name, "app1");
            assert_eq!(t[0].document, Some(Document::from(&doc)));
            assert_eq!(t[0].generated_at_ms, Some(1_700_000_000_123));
            assert_eq!(
                (t[1].up, t[1].last_error.as_deref()),
                (false, Some("connect: refused"))
            );
            assert!(t[1].document.is_none());
        }
    }

    #[test]
    fn other_json_keeps_the_document_error() {
        let e = decode_targets(br#"{"error":"no uWSGI stats snapshot yet"}"#, "x").unwrap_err();
        assert_eq!(e.reason(), "schema");
        assert!(e.to_string().contains("version"), "{e}");
        assert_eq!(
            decode_targets(b"<html>", "x").unwrap_err().reason(),
            "not_json"
        );
        assert_eq!(
            decode_targets(b"{\"version\":\"2.0.30\",\"workers\":[", "x")
                .unwrap_err()
                .reason(),
            "truncated"
        );
    }
}
