//! Settings of `uwsgi-stats` in nginx (ngx_wasm_module), `"mode": "nginx"`:
//! one document for both roles, because there one `proxy_wasm` directive
//! gives every worker process a root context (the poller, of which a lease
//! lets only one poll) and serves the pages from its HTTP contexts.
//!
//! `{"mode":"nginx","targets":[{"name":"app1","cluster":"127.0.0.1:9191"}]}`:
//! the poller's keys ([`PollerConfig`]; a target's `cluster` is what
//! ngx_wasm_module's `dispatch_http_call` takes, `host:port`), the admin
//! role's page paths ([`AdminConfig`]), and the scrape access keys of
//! red-filter's self mode (`scrape_allow_cidrs`, default loopback only;
//! `scrape_bearer_token`). Unknown keys are refused by name.

use super::config::{AdminConfig, PollerConfig, ADMIN_KEYS, INTERVAL_MS, POLLER_KEYS};
use crate::config::node::{self, FromNode, Node, Path};
use crate::config::{ConfigError, Key, Ty};
use crate::scrape_access::{ScrapeAccess, ALLOW_CIDRS_KEY, BEARER_TOKEN_KEY};

/// Keys of the admin role's document (page paths) besides `mode`.
const PAGE_KEYS: [&str; 2] = [ADMIN_KEYS[1].name, ADMIN_KEYS[2].name];
const ACCESS_KEYS: [&str; 2] = [ALLOW_CIDRS_KEY.name, BEARER_TOKEN_KEY.name];

/// Five ticks per interval: ticks shorter than 100 ms would cost every
/// worker for nothing.
const MIN_INTERVAL_MS: u64 = 500;

/// The document as the JSON Schema (`uwsgi-red schema uwsgi-stats`) states
/// it: `mode` `nginx`, the poller's keys but its `mode`, the admin role's
/// page paths and the scrape access keys; the table `split` reads by.
pub const NGINX_KEYS: [Key; 15] = [
    Key::new(
        "mode",
        Ty::Choice(&["nginx"]),
        "`nginx`: poller and pages in one document (ngx_wasm_module)",
    )
    .required(),
    POLLER_KEYS[1],
    Key {
        ty: Ty::UInt {
            min: MIN_INTERVAL_MS,
            max: *INTERVAL_MS.end(),
        },
        ..POLLER_KEYS[2]
    },
    POLLER_KEYS[3],
    POLLER_KEYS[4],
    POLLER_KEYS[5],
    POLLER_KEYS[6],
    POLLER_KEYS[7],
    POLLER_KEYS[8],
    POLLER_KEYS[9],
    POLLER_KEYS[10],
    ADMIN_KEYS[1],
    ADMIN_KEYS[2],
    ALLOW_CIDRS_KEY,
    BEARER_TOKEN_KEY,
];

#[derive(Debug, Clone)]
pub struct NginxConfig {
    pub poller: PollerConfig,
    pub pages: AdminConfig,
    pub access: ScrapeAccess,
}

impl NginxConfig {
    /// Three fifths of an interval: the holder renews every tick (a fifth),
    /// so it keeps the lease through a stall of two ticks (a worker starved
    /// while its siblings compile the module at a reload).
    pub fn lease_ttl_ms(&self) -> u64 {
        self.poller.interval_ms.saturating_mul(3) / 5
    }

    /// Every worker ticks five times per interval: a dead holder's lease
    /// expires three fifths of an interval after its last renewal, is taken
    /// at the next tick of another worker and polled at the tick after
    /// (once the take is confirmed) - within one interval.
    pub fn tick_ms(&self) -> u64 {
        self.poller.interval_ms / 5
    }
}

/// `Some(..)` when the document says `"mode": "nginx"`; `None` for any
/// other document (the Envoy roles read it).
pub fn from_json(bytes: &[u8]) -> Option<Result<NginxConfig, ConfigError>> {
    let doc = node::parse(bytes).ok()??;
    let Node::Object(entries) = doc else {
        return None;
    };
    let is_nginx = entries
        .iter()
        .any(|(k, v)| k == "mode" && matches!(v, Node::Str(s) if s == "nginx"));
    if !is_nginx {
        return None;
    }
    Some(split(entries))
}

fn split(entries: Vec<(String, Node)>) -> Result<NginxConfig, ConfigError> {
    let mut poller = Vec::new();
    let mut pages = vec![("mode".to_string(), Node::Str("admin".to_string()))];
    let mut cidrs = None;
    let mut token = None;
    for (k, v) in entries {
        match k.as_str() {
            "mode" => {}
            k if PAGE_KEYS.contains(&k) => pages.push((k.to_string(), v)),
            k if k == ACCESS_KEYS[0] => {
                cidrs = Some(<Vec<String>>::from_node(v, Path::Key(&Path::Root, k))?)
            }
            k if k == ACCESS_KEYS[1] => {
                token = Some(String::from_node(v, Path::Key(&Path::Root, k))?)
            }
            _ => poller.push((k, v)),
        }
    }
    let poller = PollerConfig::from_node(Node::Object(poller), Path::Root)?.validate()?;
    let pages = AdminConfig::from_node(Node::Object(pages), Path::Root)?.validate()?;
    if poller.interval_ms < MIN_INTERVAL_MS {
        return Err(ConfigError::new(
            "interval_ms",
            "must be at least 500 in nginx mode",
        ));
    }
    let access = ScrapeAccess::from_config(
        cidrs.as_deref(),
        token.as_deref(),
        ACCESS_KEYS[0],
        ACCESS_KEYS[1],
    )?;
    Ok(NginxConfig {
        poller,
        pages,
        access,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_documents_split_into_poller_pages_and_access() {
        assert!(from_json(br#"{"targets":[]}"#).is_none());
        assert!(from_json(br#"{"mode":"admin"}"#).is_none());
        assert!(from_json(b"[1]").is_none());
        let c = from_json(
            br#"{"mode":"nginx","targets":[{"name":"a","cluster":"127.0.0.1:9191"}],
                "interval_ms":2000,"metrics_path":"/uwsgi/m",
                "scrape_allow_cidrs":["10.0.0.0/8"]}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.poller.targets[0].cluster, "127.0.0.1:9191");
        assert_eq!(c.pages.metrics_path, "/uwsgi/m");
        assert_eq!(c.pages.snapshot_path, "/uwsgi/snapshot.json");
        assert!(c.access.source_allowed(Some(b"10.1.1.1")));
        assert!(!c.access.source_allowed(Some(b"127.0.0.1")));
        assert_eq!((c.tick_ms(), c.lease_ttl_ms()), (400, 1200));
        let d = from_json(br#"{"mode":"nginx","targets":[{"name":"a","cluster":"h:1"}]}"#)
            .unwrap()
            .unwrap();
        assert!(d.access.source_allowed(Some(b"127.0.0.1")));
        for (doc, key) in [
            (
                &br#"{"mode":"nginx","targets":[{"name":"a","cluster":"h:1"}],"x":1}"#[..],
                "x",
            ),
            (br#"{"mode":"nginx"}"#, "targets"),
            (
                br#"{"mode":"nginx","targets":[{"name":"a","cluster":"h:1"}],"interval_ms":400}"#,
                "interval_ms",
            ),
            (
                br#"{"mode":"nginx","targets":[{"name":"a","cluster":"h:1"}],"metrics_path":"m"}"#,
                "metrics_path",
            ),
            (
                br#"{"mode":"nginx","targets":[{"name":"a","cluster":"h:1"}],"scrape_bearer_token":"short"}"#,
                "scrape_bearer_token",
            ),
        ] {
            let e = from_json(doc).unwrap().unwrap_err();
            assert_eq!(e.path, key, "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn schema_table_is_what_split_reads() {
        // NGINX_KEYS picks from the other tables by position: a reordered
        // table must fail here, not drift silently.
        let names: Vec<&str> = NGINX_KEYS.iter().map(|k| k.name).collect();
        let mut expected = vec!["mode"];
        expected.extend(POLLER_KEYS.iter().map(|k| k.name).filter(|n| *n != "mode"));
        expected.extend(PAGE_KEYS);
        expected.extend(ACCESS_KEYS);
        assert_eq!(names, expected);
        assert_eq!(NGINX_KEYS[2].name, "interval_ms");
        assert_eq!(PAGE_KEYS, ["snapshot_path", "metrics_path"]);
        assert!(NGINX_KEYS[0].required);
    }
}
