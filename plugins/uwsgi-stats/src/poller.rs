//! One poll result per target -> host metrics, snapshot and full-precision
//! Prometheus text. Host-independent (the host calls go through
//! [`MetricsHost`]), so the whole poll outcome logic is tested natively.

use uwsgi_red_core::stats::families::{
    encode_text, map_document, scrape_families, Family, ScrapeStatus, LAST_SUCCESS_TIMESTAMP,
    REPAIRS_TOTAL,
};
use uwsgi_red_core::stats::upstream::upstream_family;
use uwsgi_red_core::stats::PollerConfig;
use uwsgi_red_core::stats::{decode_with_limit, Decoded};
use uwsgi_red_core::stats::{Snapshot, TargetSnapshot};

use crate::export::{Exporter, MetricsHost};

/// Why a poll failed before a document was decoded (Envoy-side reasons);
/// decode failures use `StatsError::reason()`. All values are fixed strings
/// so `uwsgi_scrape_errors_total{reason}` stays bounded.
pub fn transport_reason(status: Option<u16>, body_prefix: &[u8]) -> &'static str {
    // Envoy's local replies: 503 connect failures, 504 timeouts, 502 (or
    // 503) "reset reason: protocol error" when the reply is not HTTP (a
    // stats server without --stats-http, or garbage).
    match status {
        None => "unreachable",
        Some(502..=504) if contains(body_prefix, b"protocol error") => "protocol",
        Some(504) => "timeout",
        Some(503) => "connect",
        Some(502) if contains(body_prefix, b"connection failure") => "connect",
        Some(_) => "http_status",
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[derive(Debug, Default)]
pub struct TargetState {
    pub name: String,
    /// Token of the call in flight, if any.
    pub in_flight: Option<u32>,
    pub in_flight_since_ms: u64,
    pub snapshot: TargetSnapshot,
    /// Families of the last successful poll (for the admin text).
    pub families: Vec<Family>,
}

#[derive(Debug)]
pub struct Poller {
    pub config: PollerConfig,
    pub targets: Vec<TargetState>,
    pub exporter: Exporter,
}

/// What to publish after a poll: the snapshot JSON and the Prometheus text.
#[derive(Debug)]
pub struct Published {
    pub snapshot_json: Vec<u8>,
    pub metrics_text: String,
}

impl Poller {
    pub fn new(config: PollerConfig) -> Self {
        let targets = config
            .targets
            .iter()
            .map(|t| TargetState {
                name: t.name.clone(),
                snapshot: TargetSnapshot {
                    target: t.name.clone(),
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect();
        let exporter = Exporter::new(config.max_series);
        Self {
            config,
            targets,
            exporter,
        }
    }

    /// A reply arrived for target `i`: `status` is `None` when Envoy gave no
    /// headers (reset, no route). `body` is fetched lazily so oversized
    /// bodies are never copied into the VM.
    pub fn on_reply(
        &mut self,
        host: &mut dyn MetricsHost,
        i: usize,
        status: Option<u16>,
        body_size: usize,
        body: &mut dyn FnMut(usize) -> Vec<u8>,
        now_ms: u64,
    ) {
        let limit = self.config.max_document_bytes;
        let result = match status {
            Some(200) if body_size > limit => Err((
                "too_large",
                format!("document of {body_size} bytes exceeds {limit}"),
            )),
            Some(200) => {
                decode_with_limit(&body(body_size), limit).map_err(|e| (e.reason(), e.to_string()))
            }
            other => {
                let prefix = body(body_size.min(512));
                let reason = transport_reason(other, &prefix);
                let detail = String::from_utf8_lossy(&prefix).trim().to_string();
                let status = other.map_or("no response".to_string(), |s| format!("HTTP {s}"));
                Err((reason, format!("{status}: {detail}")))
            }
        };
        match result {
            Ok(decoded) => self.success(host, i, decoded, now_ms),
            Err((reason, message)) => self.failure(host, i, reason, &message),
        }
    }

    /// The call failed with no reply, for a reason the host named
    /// (ngx_wasm_module's `:dispatch_status`).
    pub fn on_failure(
        &mut self,
        host: &mut dyn MetricsHost,
        i: usize,
        reason: &'static str,
        message: &str,
    ) {
        self.failure(host, i, reason, message);
    }

    /// `dispatch_http_call` itself failed (unknown cluster, bad headers).
    pub fn on_dispatch_error(&mut self, host: &mut dyn MetricsHost, i: usize, message: &str) {
        self.failure(host, i, "dispatch", message);
    }

    fn success(&mut self, host: &mut dyn MetricsHost, i: usize, d: Decoded, now_ms: u64) {
        let opts = self.config.map_options();
        let Some(t) = self.targets.get_mut(i) else {
            return;
        };
        let status = ScrapeStatus {
            up: true,
            repairs: d.repairs as u64,
            document_bytes: d.body_bytes as u64,
        };
        let mut fams = scrape_families(&t.name, &status);
        fams.extend(map_document(&d.document, &t.name, &opts));
        if let Some(tc) = self.config.targets.get(i) {
            fams.push(upstream_family(&d.document, &t.name, &tc.spelling()));
        }
        let name = t.name.clone();
        self.exporter.export(host, &name, &fams);
        let labels = [("target", name.as_str())];
        self.exporter
            .add(host, REPAIRS_TOTAL, &labels, d.repairs as u64);
        self.exporter
            .set_gauge(host, LAST_SUCCESS_TIMESTAMP, &labels, now_ms / 1000);
        let Some(t) = self.targets.get_mut(i) else {
            return;
        };
        let mut document = d.document;
        document.redact(self.config.snapshot_keep());
        t.families = fams;
        t.snapshot = TargetSnapshot {
            target: name,
            up: true,
            stale: false,
            last_success_ms: Some(now_ms),
            last_error: None,
            repairs: d.repairs as u64,
            document: Some(document),
        };
    }

    fn failure(&mut self, host: &mut dyn MetricsHost, i: usize, reason: &str, message: &str) {
        let Some(name) = self.targets.get(i).map(|t| t.name.clone()) else {
            return;
        };
        self.exporter.zero_gauges(host, &name);
        let down = ScrapeStatus::default();
        let fams = scrape_families(&name, &down);
        // Re-exporting only the self-metrics: uwsgi_up=0, size 0.
        self.exporter.export(host, &name, &fams);
        self.exporter.add(
            host,
            "uwsgi_scrape_errors_total",
            &[("target", &name), ("reason", reason)],
            1,
        );
        let Some(t) = self.targets.get_mut(i) else {
            return;
        };
        t.families = fams;
        t.snapshot.up = false;
        t.snapshot.stale = t.snapshot.document.is_some();
        t.snapshot.last_error = Some(format!("{reason}: {message}"));
    }

    /// The snapshot JSON alone (nginx serves its own page, not the
    /// full-precision text).
    pub fn snapshot_json(&self, now_ms: u64) -> Vec<u8> {
        Snapshot {
            generated_at_ms: now_ms,
            targets: self.targets.iter().map(|t| t.snapshot.clone()).collect(),
        }
        .to_json()
    }

    pub fn publish(&self, now_ms: u64) -> Published {
        let snapshot = Snapshot {
            generated_at_ms: now_ms,
            targets: self.targets.iter().map(|t| t.snapshot.clone()).collect(),
        };
        // One text for all targets: same family from several targets must be
        // one block, so merge samples by family name in first-seen order.
        let mut merged: Vec<Family> = Vec::new();
        for f in self.targets.iter().flat_map(|t| &t.families) {
            match merged.iter_mut().find(|m| m.name == f.name) {
                Some(m) => m.samples.extend(f.samples.iter().cloned()),
                None => merged.push(f.clone()),
            }
        }
        Published {
            snapshot_json: snapshot.to_json(),
            metrics_text: encode_text(&merged),
        }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use uwsgi_red_core::prom::MetricType;
    use uwsgi_red_core::red::HostError;
    use uwsgi_red_core::stats::UwsgiStatsConfig;

    #[derive(Default)]
    struct Host(Vec<(String, u64)>);
    impl MetricsHost for Host {
        fn define(&mut self, _: MetricType, name: &str) -> Result<u32, HostError> {
            self.0.push((name.to_string(), 0));
            Ok(self.0.len() as u32 - 1)
        }
        fn record(&mut self, id: u32, v: u64) -> Result<(), HostError> {
            self.0[id as usize].1 = v;
            Ok(())
        }
        fn increment(&mut self, id: u32, by: u64) -> Result<(), HostError> {
            self.0[id as usize].1 += by;
            Ok(())
        }
    }
    impl Host {
        fn get(&self, n: &str) -> Option<u64> {
            self.0.iter().find(|(k, _)| k == n).map(|(_, v)| *v)
        }
    }

    fn poller() -> Poller {
        let UwsgiStatsConfig::Poller(c) = UwsgiStatsConfig::from_json(
            br#"{"targets":[{"name":"a","cluster":"ca"},{"name":"b","cluster":"cb"}],"max_document_bytes":4096}"#,
        )
        .unwrap() else {
            panic!()
        };
        Poller::new(c)
    }

    const DOC: &[u8] =
        br#"{"version":"2.0.30","cwd":"/x\y","workers":[{"id":1,"requests":4,"status":"busy"}]}"#;

    #[test]
    fn success_then_failures_with_reasons() {
        let mut p = poller();
        let mut h = Host::default();
        p.on_reply(
            &mut h,
            0,
            Some(200),
            DOC.len(),
            &mut |_| DOC.to_vec(),
            5_000,
        );
        assert_eq!(h.get("target=.=a;.;uwsgi_up"), Some(1));
        assert_eq!(h.get("target=.=a;.;uwsgi_stats_repairs_total"), Some(1));
        assert_eq!(
            h.get("target=.=a;.;worker_id=.=1;.;uwsgi_worker_busy"),
            Some(1)
        );
        assert_eq!(
            h.get("target=.=a;.;uwsgi_scrape_last_success_timestamp_seconds"),
            Some(5)
        );
        let out = p.publish(6_000);
        let text = out.metrics_text;
        assert!(
            text.contains("uwsgi_worker_requests_total{target=\"a\",worker_id=\"1\"} 4"),
            "{text}"
        );
        let snap: Snapshot = serde_json_from(&out.snapshot_json);
        // cwd is a process detail, not in the snapshot by default.
        assert_eq!(snap.target("a").unwrap().document.as_ref().unwrap().cwd, "");

        let body = b"upstream connect error or disconnect/reset before headers. reset reason: protocol error";
        p.on_reply(
            &mut h,
            0,
            Some(503),
            body.len(),
            &mut |n| body[..n].to_vec(),
            7_000,
        );
        assert_eq!(h.get("target=.=a;.;uwsgi_up"), Some(0));
        assert_eq!(
            h.get("target=.=a;.;worker_id=.=1;.;uwsgi_worker_busy"),
            Some(0)
        );
        assert_eq!(
            h.get("target=.=a;.;reason=.=protocol;.;uwsgi_scrape_errors_total"),
            Some(1)
        );
        assert_eq!(
            h.get("target=.=a;.;worker_id=.=1;.;uwsgi_worker_requests_total"),
            Some(4)
        );
        let snap: Snapshot = serde_json_from(&p.publish(8_000).snapshot_json);
        let a = snap.target("a").unwrap();
        assert!(!a.up && a.stale);
        assert!(a.last_error.as_deref().unwrap().starts_with("protocol:"));

        p.on_reply(
            &mut h,
            1,
            Some(200),
            5000,
            &mut |_| panic!("oversized body must not be fetched"),
            9_000,
        );
        assert_eq!(
            h.get("target=.=b;.;reason=.=too_large;.;uwsgi_scrape_errors_total"),
            Some(1)
        );
        p.on_reply(
            &mut h,
            1,
            Some(200),
            10,
            &mut |_| b"{\"version\":".to_vec(),
            9_000,
        );
        assert_eq!(
            h.get("target=.=b;.;reason=.=truncated;.;uwsgi_scrape_errors_total"),
            Some(1)
        );
        p.on_reply(&mut h, 1, None, 0, &mut |_| Vec::new(), 9_000);
        assert_eq!(
            h.get("target=.=b;.;reason=.=unreachable;.;uwsgi_scrape_errors_total"),
            Some(1)
        );
        p.on_reply(&mut h, 1, Some(504), 0, &mut |_| Vec::new(), 9_000);
        assert_eq!(
            h.get("target=.=b;.;reason=.=timeout;.;uwsgi_scrape_errors_total"),
            Some(1)
        );
        p.on_dispatch_error(&mut h, 1, "BadArgument");
        assert_eq!(
            h.get("target=.=b;.;reason=.=dispatch;.;uwsgi_scrape_errors_total"),
            Some(1)
        );
        let text = p.publish(10_000).metrics_text;
        assert!(text.contains("uwsgi_up{target=\"b\"} 0"), "{text}");
        assert_eq!(text.matches("# TYPE uwsgi_up gauge").count(), 1, "{text}");
    }

    /// The join series: one per listen socket, spelled with the target's
    /// `upstream_host`, set to 0 with every gauge when a poll fails.
    #[test]
    fn upstream_info_per_socket() {
        let UwsgiStatsConfig::Poller(c) = UwsgiStatsConfig::from_json(
            br#"{"targets":[{"name":"a","cluster":"ca"},{"name":"b","cluster":"cb","upstream_host":"10.0.0.5"}]}"#,
        )
        .unwrap() else {
            panic!()
        };
        let mut p = Poller::new(c);
        let mut h = Host::default();
        let doc = br#"{"version":"2.0.30","workers":[],"sockets":[{"name":"127.0.0.1:8001","proto":"uwsgi"},{"name":":8002","proto":"http"}]}"#;
        for i in 0..2 {
            p.on_reply(
                &mut h,
                i,
                Some(200),
                doc.len(),
                &mut |_| doc.to_vec(),
                1_000,
            );
        }
        let info =
            |t: &str, u: &str| format!("target=.={t};.;upstream=.={u};.;uwsgi_upstream_info");
        assert_eq!(h.get(&info("a", "127.0.0.1:8001")), Some(1));
        assert_eq!(h.get(&info("a", ":8002")), Some(1));
        assert_eq!(h.get(&info("b", "10.0.0.5:8001")), Some(1));
        assert_eq!(h.get(&info("b", "10.0.0.5:8002")), Some(1));
        assert_eq!(
            h.0.iter()
                .filter(|(k, _)| k.ends_with("uwsgi_upstream_info"))
                .count(),
            4
        );
        let text = p.publish(2_000).metrics_text;
        assert!(
            text.contains("uwsgi_upstream_info{target=\"b\",upstream=\"10.0.0.5:8001\"} 1\n"),
            "{text}"
        );
        p.on_reply(&mut h, 0, None, 0, &mut |_| Vec::new(), 3_000);
        assert_eq!(h.get(&info("a", "127.0.0.1:8001")), Some(0));
        assert_eq!(h.get(&info("b", "10.0.0.5:8001")), Some(1));
    }

    /// A cron whose command line holds a credential: by default it is in
    /// no host metric name, no text and no snapshot; `cron_commands` brings
    /// it back as the `command` label (and `snapshot_process_details` the
    /// daemon's command line and the cwd/uid/gid).
    #[test]
    fn secret_command_lines_stay_out_unless_opted_in() {
        const SECRET: &str = "s3cr3t-T0KEN";
        let doc = br#"{"version":"2.0.30","uid":1000,"gid":1000,"cwd":"/srv/s3cr3t-T0KEN","workers":[{"id":1}],
            "crons":[{"minute":-1,"command":"curl -s -H 'Authorization: Bearer s3cr3t-T0KEN' https://internal/api/cleanup","pid":-1}],
            "daemons":[{"cmd":"/bin/d --key=s3cr3t-T0KEN","pid":9}]}"#;
        let run = |extra: &str| {
            let json = format!(r#"{{"targets":[{{"name":"a","cluster":"ca"}}]{extra}}}"#);
            let UwsgiStatsConfig::Poller(c) = UwsgiStatsConfig::from_json(json.as_bytes()).unwrap()
            else {
                panic!()
            };
            let mut p = Poller::new(c);
            let mut h = Host::default();
            p.on_reply(
                &mut h,
                0,
                Some(200),
                doc.len(),
                &mut |_| doc.to_vec(),
                5_000,
            );
            let out = p.publish(6_000);
            let names: Vec<String> = h.0.iter().map(|(n, _)| n.clone()).collect();
            (
                names,
                out.metrics_text,
                String::from_utf8(out.snapshot_json).unwrap(),
            )
        };
        let (names, text, snap) = run("");
        assert!(names
            .iter()
            .any(|n| n == "target=.=a;.;cron_id=.=0;.;uwsgi_cron_running"));
        assert!(names.iter().all(|n| !n.contains(SECRET)), "{names:?}");
        assert!(
            !text.contains(SECRET) && !snap.contains(SECRET),
            "{text}\n{snap}"
        );
        assert!(
            !snap.contains("\"uid\"") && snap.contains("\"pid\":9"),
            "{snap}"
        );
        let (names, text, snap) = run(r#","cron_commands":true"#);
        assert!(names
            .iter()
            .any(|n| n.contains("command=.=curl -s -H 'Authorization: Bearer s3cr3t-T0KEN'")));
        assert!(
            text.contains("command=\"curl -s -H 'Authorization: Bearer s3cr3t-T0KEN'"),
            "{text}"
        );
        assert!(
            snap.contains("Bearer s3cr3t-T0KEN") && !snap.contains("--key="),
            "{snap}"
        );
        let (names, _, snap) = run(r#","snapshot_process_details":true"#);
        assert!(names.iter().all(|n| !n.contains(SECRET)));
        assert!(snap.contains("--key=s3cr3t-T0KEN") && snap.contains("\"uid\":1000"));
        assert!(!snap.contains("Bearer"), "{snap}");
    }

    fn serde_json_from(b: &[u8]) -> Snapshot {
        // The snapshot JSON must read back into the same types the viewer uses.
        uwsgi_red_core::config::parse_json::<Snapshot>(b).unwrap()
    }

    #[test]
    fn reasons() {
        assert_eq!(
            transport_reason(Some(503), b"upstream connect error ... connection failure"),
            "connect"
        );
        assert_eq!(transport_reason(Some(404), b""), "http_status");
        assert_eq!(
            transport_reason(Some(502), b"... reset reason: protocol error"),
            "protocol"
        );
        assert_eq!(
            transport_reason(Some(504), b"upstream request timeout"),
            "timeout"
        );
        assert_eq!(transport_reason(None, b""), "unreachable");
    }
}
