//! A cron command line carrying a credential (and a daemon's, and the
//! process's cwd/uid/gid) never reaches any output by default: not the
//! Prometheus text, not a label, not the Envoy stat names built from those
//! labels, not the snapshot JSON. Each appears only with its opt-in.
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

use uwsgi_red_core::stats::families::{encode_text, map_document, MapOptions};
use uwsgi_red_core::stats::model::Keep;
use uwsgi_red_core::stats::snapshot::{Snapshot, TargetSnapshot};
use uwsgi_red_core::stats::{decode, StatsDocument};

const SECRET: &str = "s3cr3t-T0KEN";
const CRON: &str = "curl -s -H 'Authorization: Bearer s3cr3t-T0KEN' https://internal/api/cleanup";
const DAEMON: &str = "/usr/bin/worker --password=s3cr3t-T0KEN";
const CWD: &str = "/srv/s3cr3t-T0KEN-site";

/// The captured document with a cron and a daemon whose command lines hold
/// the secret, and a cwd that does.
fn document() -> StatsDocument {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/stats_e_cache_spooler_cron_raw.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("vector")).expect("json");
    v["crons"][1]["command"] = CRON.into();
    v["cwd"] = CWD.into();
    v["uid"] = 1000.into();
    v["gid"] = 1000.into();
    v["daemons"] = serde_json::json!([{"cmd": DAEMON, "pid": 77, "respawns": 0}]);
    decode(&serde_json::to_vec(&v).expect("json"))
        .expect("decodes")
        .document
}

/// Every output a plugin makes of one document: the text page, every label
/// value (Envoy stat names are built from these; the uwsgi-stats unit tests
/// check the recorded names themselves), and the snapshot JSON.
fn outputs(doc: &StatsDocument, opts: &MapOptions, keep: Keep) -> Vec<String> {
    let fams = map_document(doc, "app1", opts);
    let mut out = vec![encode_text(&fams)];
    for f in &fams {
        for s in &f.samples {
            out.extend(s.labels.iter().map(|(_, v)| v.clone()));
        }
    }
    let mut snap_doc = doc.clone();
    snap_doc.redact(keep);
    let snap = Snapshot {
        generated_at_ms: 1,
        targets: vec![TargetSnapshot {
            target: "app1".into(),
            up: true,
            document: Some(snap_doc),
            ..TargetSnapshot::default()
        }],
    };
    out.push(String::from_utf8(snap.to_json()).expect("utf-8"));
    out
}

#[test]
fn the_secret_reaches_no_output_by_default() {
    let doc = document();
    assert_eq!(
        doc.crons.as_ref().expect("crons")[1].command,
        CRON,
        "decoded"
    );
    for opts in [
        MapOptions::default(),
        MapOptions {
            per_core: true,
            uwsgi_metrics: true,
            cron_commands: false,
        },
    ] {
        for o in outputs(&doc, &opts, Keep::default()) {
            assert!(!o.contains(SECRET), "secret in {o}");
            assert!(!o.contains("\"uid\"") && !o.contains("\"gid\""), "{o}");
        }
    }
    // Crons are still there, by position.
    let text = encode_text(&map_document(&doc, "app1", &MapOptions::default()));
    assert!(
        text.contains("uwsgi_cron_running{target=\"app1\",cron_id=\"1\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("uwsgi_cron_running{target=\"app1\",cron_id=\"0\"} 0\n"),
        "{text}"
    );
}

#[test]
fn the_redacted_snapshot_reads_back_without_the_fields() {
    let mut doc = document();
    doc.redact(Keep::default());
    let json = serde_json::to_vec(&doc).expect("json");
    let back: StatsDocument = serde_json::from_slice(&json).expect("reads back");
    assert_eq!((back.uid, back.gid, back.cwd.as_str()), (None, None, ""));
    assert_eq!(back.daemons.as_ref().expect("daemons")[0].pid, 77);
    assert_eq!(back.daemons.as_ref().expect("daemons")[0].cmd, "");
    assert_eq!(back.crons.as_ref().expect("crons")[1].command, "");
    assert_eq!(back.crons.as_ref().expect("crons")[1].hour, 3);
    assert_eq!(back.workers, doc.workers);
}

#[test]
fn each_opt_in_brings_back_only_its_fields() {
    let doc = document();
    let with_cron = MapOptions {
        cron_commands: true,
        ..MapOptions::default()
    };
    let keep_cron = Keep {
        cron_commands: true,
        process_details: false,
    };
    let all = outputs(&doc, &with_cron, keep_cron).join("\n");
    let text = encode_text(&map_document(&doc, "app1", &with_cron));
    assert!(
        text.contains(&format!(
            "uwsgi_cron_running{{target=\"app1\",cron_id=\"1\",command=\"{}\"}} 0\n",
            CRON.replace('"', "\\\"")
        )),
        "{text}"
    );
    assert!(all.contains(CRON) && !all.contains(DAEMON) && !all.contains(CWD));
    let keep_proc = Keep {
        cron_commands: false,
        process_details: true,
    };
    let all = outputs(&doc, &MapOptions::default(), keep_proc).join("\n");
    assert!(!all.contains(CRON) && all.contains(DAEMON) && all.contains(CWD));
    assert!(all.contains("\"uid\":1000") && all.contains("\"gid\":1000"));
}
