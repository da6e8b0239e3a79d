//! Settings of the `uwsgi-stats` Envoy plugin. One module, two roles:
//!
//! - the **poller** (bootstrap singleton): `{"targets":[{"name":"app1",
//!   "cluster":"uwsgi_stats_app1"}],"interval_ms":1000,"timeout_ms":800}`;
//! - the **admin** HTTP filter that serves the latest snapshot:
//!   `{"mode":"admin","snapshot_path":"/uwsgi/snapshot.json"}`.
//!
//! Read key by key ([`crate::config::node`]): unknown keys and wrong types
//! are errors naming the key; [`UwsgiStatsConfig::from_json`] also validates.

use super::families::MapOptions;
use std::ops::RangeInclusive;

use super::model::Keep;
use super::upstream::Spelling;
use crate::config::node::{self, choice, Fields, FromNode, Node, Path};
use crate::config::schema::{names, Key, Ty};
use crate::config::ConfigError;
use crate::scrape_access::{validate_page_path, ScrapeAccess, ALLOW_CIDRS_KEY, BEARER_TOKEN_KEY};

/// Bounds the poller's validation enforces and its schema states.
pub const INTERVAL_MS: RangeInclusive<u64> = 100..=3_600_000;
pub const TIMEOUT_MS: RangeInclusive<u64> = 1..=60_000;
pub const MAX_DOCUMENT_BYTES: RangeInclusive<u64> = 1024..=256 * 1024 * 1024;
pub const MAX_SERIES: RangeInclusive<u64> = 1..=1_000_000;
pub const MAX_PREFIX_BYTES: usize = 128;
pub const MAX_TARGET_NAME_BYTES: usize = 64;
/// A DNS name's limit.
pub const MAX_UPSTREAM_HOST_BYTES: usize = 253;
/// A bracketed IPv6 with zone, or a DNS name, plus `:port`.
pub const MAX_UPSTREAM_BYTES: usize = 260;
/// One uWSGI rarely listens on more than a few sockets.
pub const MAX_UPSTREAMS: usize = 64;

const SHARED_DATA_PREFIX: Key = Key::new(
    "shared_data_prefix",
    Ty::Str {
        min: 1,
        max_bytes: MAX_PREFIX_BYTES,
        slash: false,
    },
    "prefix of the shared-data keys the poller writes and the admin filter reads",
)
.beyond("at most 128 bytes (the schema counts characters)");

/// One entry of the poller's `targets`.
pub const TARGET_KEYS: [Key; 6] = [
    Key::new(
        "name",
        Ty::Str {
            min: 1,
            max_bytes: MAX_TARGET_NAME_BYTES,
            slash: false,
        },
        "value of the `target` label",
    )
    .required()
    .beyond("only [A-Za-z0-9_-]; unique among the targets"),
    Key::new(
        "cluster",
        Ty::Str {
            min: 1,
            max_bytes: 0,
            slash: false,
        },
        "Envoy cluster whose endpoint is the uWSGI --stats socket (--stats-http)",
    )
    .required(),
    Key::new(
        "path",
        Ty::Str {
            min: 1,
            max_bytes: 0,
            slash: true,
        },
        "request path (uWSGI ignores it)",
    ),
    Key::new(
        "authority",
        Ty::OrNull(&Ty::Str {
            min: 0,
            max_bytes: 0,
            slash: false,
        }),
        ":authority of the poll request (default: the cluster name)",
    ),
    Key::new(
        "upstream_host",
        Ty::Str {
            min: 1,
            max_bytes: MAX_UPSTREAM_HOST_BYTES,
            slash: false,
        },
        "host the proxy connects to for this uWSGI: uwsgi_upstream_info spells each TCP listen socket as <upstream_host>:<port> (default: the socket name as uWSGI reports it)",
    )
    .beyond("a name or IPv4 of [A-Za-z0-9._-], or an IPv6 in brackets; excludes `upstreams`"),
    Key::new(
        "upstreams",
        Ty::List {
            item: &Ty::Str {
                min: 1,
                max_bytes: MAX_UPSTREAM_BYTES,
                slash: false,
            },
            min: 1,
            max: MAX_UPSTREAMS,
        },
        "exact upstream label values (host:port as the proxy spells the backend) for uwsgi_upstream_info, instead of the listen sockets",
    )
    .beyond("printable ASCII without spaces; excludes `upstream_host`"),
];

/// The poller's document (`mode` absent or `poller`).
pub const POLLER_KEYS: [Key; 11] = [
    Key::new(
        "mode",
        Ty::Choice(&["poller", "admin"]),
        "`poller` (bootstrap singleton, the default) or `admin` (HTTP filter)",
    ),
    Key::new(
        "targets",
        Ty::List {
            item: &Ty::Object(&TARGET_KEYS),
            min: 1,
            max: 0,
        },
        "uWSGI stats servers to poll",
    )
    .required(),
    Key::new(
        "interval_ms",
        Ty::UInt {
            min: *INTERVAL_MS.start(),
            max: *INTERVAL_MS.end(),
        },
        "poll interval",
    ),
    Key::new(
        "timeout_ms",
        Ty::UInt {
            min: *TIMEOUT_MS.start(),
            max: *TIMEOUT_MS.end(),
        },
        "timeout of one poll",
    ),
    Key::new(
        "per_core",
        Ty::Bool,
        "export uwsgi_worker_core_* (one series per worker and core)",
    ),
    Key::new(
        "uwsgi_metrics",
        Ty::Bool,
        "export --enable-metrics values as uwsgi_metric_value",
    ),
    Key::new(
        "max_document_bytes",
        Ty::UInt {
            min: *MAX_DOCUMENT_BYTES.start(),
            max: *MAX_DOCUMENT_BYTES.end(),
        },
        "largest stats document read",
    ),
    Key::new(
        "max_series",
        Ty::UInt {
            min: *MAX_SERIES.start(),
            max: *MAX_SERIES.end(),
        },
        "cap on distinct host series; beyond it new series are dropped and counted",
    ),
    SHARED_DATA_PREFIX,
    Key::new(
        "cron_commands",
        Ty::Bool,
        "export each cron's command line as a `command` label (off: crons by position only; a command line may hold secrets)",
    ),
    Key::new(
        "snapshot_process_details",
        Ty::Bool,
        "put uid, gid, cwd and daemons[].cmd into snapshot.json (off by default: they describe the host, and commands may hold secrets)",
    ),
];

/// The admin filter's document (`mode` is `admin`).
pub const ADMIN_KEYS: [Key; 6] = [
    Key::new(
        "mode",
        Ty::Choice(&["poller", "admin"]),
        "`admin`: the HTTP filter serving the latest snapshot",
    ),
    Key::new(
        "snapshot_path",
        Ty::Str {
            min: 1,
            max_bytes: 0,
            slash: true,
        },
        "path answered with the snapshot JSON",
    ),
    Key::new(
        "metrics_path",
        Ty::Str {
            min: 1,
            max_bytes: 0,
            slash: true,
        },
        "path answered with the Prometheus text of the last polls",
    )
    .beyond("differs from snapshot_path"),
    SHARED_DATA_PREFIX,
    ALLOW_CIDRS_KEY,
    BEARER_TOKEN_KEY,
];

/// Prefix of the proxy-wasm shared-data keys the poller writes and the admin
/// filter reads (the key names themselves are the plugin's).
pub const DEFAULT_SHARED_DATA_PREFIX: &str = "uwsgi_stats";

/// `"poller"` or `"admin"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Poller,
    Admin,
}

impl FromNode for Mode {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        choice(
            node,
            at,
            &[("poller", Mode::Poller), ("admin", Mode::Admin)],
        )
    }
}

/// `name` and `cluster` are required; unknown keys are refused by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    /// Value of the `target` label; `[A-Za-z0-9_-]`, 1–64 bytes.
    pub name: String,
    /// Envoy cluster whose endpoint is the uWSGI `--stats` socket (run with `--stats-http`).
    pub cluster: String,
    /// Request path; uWSGI ignores it.
    pub path: String,
    /// `:authority` of the poll request; defaults to the cluster name.
    pub authority: Option<String>,
    /// Host replacing the host of each TCP listen socket in
    /// `uwsgi_upstream_info` (see [`super::upstream`]).
    pub upstream_host: Option<String>,
    /// Exact `upstream` values instead of the listen sockets.
    pub upstreams: Vec<String>,
}

impl TargetConfig {
    /// How this target's sockets are spelled in `uwsgi_upstream_info`.
    pub fn spelling(&self) -> Spelling<'_> {
        Spelling {
            host: self.upstream_host.as_deref(),
            list: &self.upstreams,
        }
    }

    fn validate_upstream(&self, i: usize) -> Result<(), ConfigError> {
        if let Some(h) = &self.upstream_host {
            let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
            let v6 = |c: char| c.is_ascii_hexdigit() || matches!(c, ':' | '.' | '%');
            let ok = !h.is_empty()
                && h.len() <= MAX_UPSTREAM_HOST_BYTES
                && (h.chars().all(plain)
                    || h.strip_prefix('[')
                        .and_then(|r| r.strip_suffix(']'))
                        .is_some_and(|a| !a.is_empty() && a.chars().all(v6)));
            if !ok {
                return Err(ConfigError::new(
                    &format!("targets[{i}].upstream_host"),
                    "must be 1 to 253 bytes: a name or IPv4 of [A-Za-z0-9._-], or an IPv6 address in brackets",
                ));
            }
            if !self.upstreams.is_empty() {
                return Err(ConfigError::new(
                    &format!("targets[{i}].upstreams"),
                    "excludes upstream_host: give one of them",
                ));
            }
        }
        if self.upstreams.len() > MAX_UPSTREAMS {
            return Err(ConfigError::new(
                &format!("targets[{i}].upstreams"),
                "at most 64 values",
            ));
        }
        for (j, u) in self.upstreams.iter().enumerate() {
            let ok = !u.is_empty()
                && u.len() <= MAX_UPSTREAM_BYTES
                && u.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(ConfigError::new(
                    &format!("targets[{i}].upstreams[{j}]"),
                    "must be 1 to 260 bytes of printable ASCII without spaces",
                ));
            }
        }
        Ok(())
    }
}

impl FromNode for TargetConfig {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        const NAMES: [&str; TARGET_KEYS.len()] = names(&TARGET_KEYS);
        let mut f = Fields::new(node, at, &NAMES)?;
        let required = |key: &str| at.error(format!("missing key `{key}`"));
        Ok(Self {
            name: f.take("name")?.ok_or_else(|| required("name"))?,
            cluster: f.take("cluster")?.ok_or_else(|| required("cluster"))?,
            path: f.take("path")?.unwrap_or_else(|| "/".to_string()),
            authority: f.take("authority")?.unwrap_or_default(),
            upstream_host: f.take("upstream_host")?,
            upstreams: f.take("upstreams")?.unwrap_or_default(),
        })
    }
}

/// The poller's document. Every key but `targets` has a default; unknown
/// keys are refused by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollerConfig {
    pub mode: Mode,
    pub targets: Vec<TargetConfig>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Export `uwsgi_worker_core_*` (one series per worker × core).
    pub per_core: bool,
    /// Export `--enable-metrics` values as `uwsgi_metric_value`.
    pub uwsgi_metrics: bool,
    pub max_document_bytes: usize,
    /// Cap on distinct host series; beyond it new series are dropped and counted.
    pub max_series: usize,
    pub shared_data_prefix: String,
    /// The cron command line as a `command` label and in the snapshot.
    /// Off: a command line can carry credentials.
    pub cron_commands: bool,
    /// `uid`, `gid`, `cwd` and `daemons[].cmd` in the snapshot. Off.
    pub snapshot_process_details: bool,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Poller,
            targets: Vec::new(),
            interval_ms: 1000,
            timeout_ms: 800,
            per_core: false,
            uwsgi_metrics: true,
            max_document_bytes: super::DEFAULT_MAX_DOCUMENT_BYTES,
            max_series: 20_000,
            shared_data_prefix: DEFAULT_SHARED_DATA_PREFIX.to_string(),
            cron_commands: false,
            snapshot_process_details: false,
        }
    }
}

impl FromNode for PollerConfig {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        const NAMES: [&str; POLLER_KEYS.len()] = names(&POLLER_KEYS);
        let mut f = Fields::new(node, at, &NAMES)?;
        let d = Self::default();
        Ok(Self {
            mode: f.take("mode")?.unwrap_or(d.mode),
            targets: f.take("targets")?.unwrap_or(d.targets),
            interval_ms: f.take("interval_ms")?.unwrap_or(d.interval_ms),
            timeout_ms: f.take("timeout_ms")?.unwrap_or(d.timeout_ms),
            per_core: f.take("per_core")?.unwrap_or(d.per_core),
            uwsgi_metrics: f.take("uwsgi_metrics")?.unwrap_or(d.uwsgi_metrics),
            max_document_bytes: f
                .take("max_document_bytes")?
                .unwrap_or(d.max_document_bytes),
            max_series: f.take("max_series")?.unwrap_or(d.max_series),
            shared_data_prefix: f
                .take("shared_data_prefix")?
                .unwrap_or(d.shared_data_prefix),
            cron_commands: f.take("cron_commands")?.unwrap_or(d.cron_commands),
            snapshot_process_details: f
                .take("snapshot_process_details")?
                .unwrap_or(d.snapshot_process_details),
        })
    }
}

impl PollerConfig {
    pub fn map_options(&self) -> MapOptions {
        MapOptions {
            per_core: self.per_core,
            uwsgi_metrics: self.uwsgi_metrics,
            cron_commands: self.cron_commands,
        }
    }

    /// What the snapshot keeps of each document.
    pub fn snapshot_keep(&self) -> Keep {
        Keep {
            cron_commands: self.cron_commands,
            process_details: self.snapshot_process_details,
        }
    }

    pub fn validate(self) -> Result<Self, ConfigError> {
        if self.targets.is_empty() {
            return Err(ConfigError::new(
                "targets",
                "at least one target is required",
            ));
        }
        for (i, t) in self.targets.iter().enumerate() {
            let ok = !t.name.is_empty()
                && t.name.len() <= MAX_TARGET_NAME_BYTES
                && t.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(ConfigError::new(
                    &format!("targets[{i}].name"),
                    "must be 1 to 64 characters of [A-Za-z0-9_-]",
                ));
            }
            let earlier = self.targets.get(..i).unwrap_or_default();
            if earlier.iter().any(|o| o.name == t.name) {
                return Err(ConfigError::new(
                    &format!("targets[{i}].name"),
                    "duplicate target name",
                ));
            }
            if t.cluster.is_empty() {
                return Err(ConfigError::new(
                    &format!("targets[{i}].cluster"),
                    "must not be empty",
                ));
            }
            if !t.path.starts_with('/') {
                return Err(ConfigError::new(
                    &format!("targets[{i}].path"),
                    "must start with '/'",
                ));
            }
            t.validate_upstream(i)?;
        }
        if !INTERVAL_MS.contains(&self.interval_ms) {
            return Err(ConfigError::new(
                "interval_ms",
                "must be between 100 and 3600000",
            ));
        }
        if !TIMEOUT_MS.contains(&self.timeout_ms) {
            return Err(ConfigError::new(
                "timeout_ms",
                "must be between 1 and 60000",
            ));
        }
        if !MAX_DOCUMENT_BYTES.contains(&(self.max_document_bytes as u64)) {
            return Err(ConfigError::new(
                "max_document_bytes",
                "must be between 1024 and 268435456",
            ));
        }
        if !MAX_SERIES.contains(&(self.max_series as u64)) {
            return Err(ConfigError::new(
                "max_series",
                "must be between 1 and 1000000",
            ));
        }
        validate_prefix(&self.shared_data_prefix)?;
        Ok(self)
    }
}

/// The admin filter's document: `mode` is `"admin"`, every other key has a
/// default; unknown keys are refused by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub mode: Mode,
    /// Answers with the snapshot JSON (no `vars`).
    pub snapshot_path: String,
    /// Answers with the full-precision Prometheus text of the last polls.
    pub metrics_path: String,
    pub shared_data_prefix: String,
    /// Who is answered (`scrape_allow_cidrs`, default loopback only;
    /// `scrape_bearer_token`); everyone else passes through untouched.
    pub access: ScrapeAccess,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Admin,
            snapshot_path: "/uwsgi/snapshot.json".to_string(),
            metrics_path: "/uwsgi/metrics".to_string(),
            shared_data_prefix: DEFAULT_SHARED_DATA_PREFIX.to_string(),
            access: ScrapeAccess::default(),
        }
    }
}

impl FromNode for AdminConfig {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        const NAMES: [&str; ADMIN_KEYS.len()] = names(&ADMIN_KEYS);
        let mut f = Fields::new(node, at, &NAMES)?;
        let d = Self::default();
        let mode = f.take("mode")?.unwrap_or(d.mode);
        let snapshot_path = f.take("snapshot_path")?.unwrap_or(d.snapshot_path);
        let metrics_path = f.take("metrics_path")?.unwrap_or(d.metrics_path);
        let shared_data_prefix = f
            .take("shared_data_prefix")?
            .unwrap_or(d.shared_data_prefix);
        let cidrs: Option<Vec<String>> = f.take("scrape_allow_cidrs")?;
        let token: Option<String> = f.take("scrape_bearer_token")?;
        // Built here so the token lives only in the redacting ScrapeAccess.
        let access = ScrapeAccess::from_config(
            cidrs.as_deref(),
            token.as_deref(),
            "scrape_allow_cidrs",
            "scrape_bearer_token",
        )?;
        Ok(Self {
            mode,
            snapshot_path,
            metrics_path,
            shared_data_prefix,
            access,
        })
    }
}

impl AdminConfig {
    pub fn validate(self) -> Result<Self, ConfigError> {
        for (key, p) in [
            ("snapshot_path", &self.snapshot_path),
            ("metrics_path", &self.metrics_path),
        ] {
            validate_page_path(p, key)?;
        }
        if self.snapshot_path == self.metrics_path {
            return Err(ConfigError::new(
                "metrics_path",
                "must differ from snapshot_path",
            ));
        }
        validate_prefix(&self.shared_data_prefix)?;
        Ok(self)
    }
}

fn validate_prefix(p: &str) -> Result<(), ConfigError> {
    if p.is_empty() || p.len() > MAX_PREFIX_BYTES {
        return Err(ConfigError::new(
            "shared_data_prefix",
            "must be 1 to 128 bytes",
        ));
    }
    Ok(())
}

/// The validated configuration of one plugin instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UwsgiStatsConfig {
    Poller(PollerConfig),
    Admin(AdminConfig),
}

impl UwsgiStatsConfig {
    /// `mode` (default `poller`) picks the schema; the rest is read strictly.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let Some(doc) = node::parse(bytes)? else {
            // An empty document is a poller without targets: refused by
            // `validate`, naming `targets`.
            return Ok(Self::Poller(PollerConfig::default().validate()?));
        };
        // Only `mode` is looked at here; a document that is no object, or a
        // wrong `mode`, is reported by the poller's reader.
        let mode = match &doc {
            Node::Object(entries) => entries
                .iter()
                .find(|(k, _)| k == "mode")
                .map(|(_, v)| v.clone()),
            _ => None,
        };
        match mode.map(|m| Mode::from_node(m, Path::Key(&Path::Root, "mode"))) {
            Some(Ok(Mode::Admin)) => Ok(Self::Admin(
                AdminConfig::from_node(doc, Path::Root)?.validate()?,
            )),
            _ => Ok(Self::Poller(
                PollerConfig::from_node(doc, Path::Root)?.validate()?,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poller(json: &str) -> Result<PollerConfig, ConfigError> {
        match UwsgiStatsConfig::from_json(json.as_bytes())? {
            UwsgiStatsConfig::Poller(p) => Ok(p),
            other => panic!("expected poller, got {other:?}"),
        }
    }

    #[test]
    fn issue_example_parses_with_defaults() {
        let p = poller(r#"{"targets":[{"name":"app1","cluster":"uwsgi_stats_app1"}],"interval_ms":1000,"timeout_ms":800}"#)
            .unwrap();
        assert_eq!(p.targets[0].path, "/");
        assert_eq!(p.targets[0].cluster, "uwsgi_stats_app1");
        assert!(!p.per_core);
        assert_eq!(p.shared_data_prefix, "uwsgi_stats");
    }

    #[test]
    fn errors_name_the_key() {
        let e = poller(r#"{"targets":[{"name":"a","cluster":"c","clustr":1}]}"#).unwrap_err();
        assert!(e.to_string().contains("clustr"), "{e}");
        assert_eq!(
            poller(r#"{"targets":[{"name":"a","cluster":5}]}"#)
                .unwrap_err()
                .path,
            "targets[0].cluster"
        );
        assert_eq!(
            poller(r#"{"interval_ms":"fast"}"#).unwrap_err().path,
            "interval_ms"
        );
        assert_eq!(poller("{}").unwrap_err().path, "targets");
        assert_eq!(poller("").unwrap_err().path, "targets");
        assert_eq!(
            poller(r#"{"targets":[{"name":"a b","cluster":"c"}]}"#)
                .unwrap_err()
                .path,
            "targets[0].name"
        );
        assert_eq!(
            poller(r#"{"targets":[{"name":"a","cluster":"c"},{"name":"a","cluster":"d"}]}"#)
                .unwrap_err()
                .path,
            "targets[1].name"
        );
        assert_eq!(
            poller(r#"{"targets":[{"name":"a","cluster":"c"}],"timeout_ms":0}"#)
                .unwrap_err()
                .path,
            "timeout_ms"
        );
        assert_eq!(poller(r#"{"mode":"proxy"}"#).unwrap_err().path, "mode");
        assert!(UwsgiStatsConfig::from_json(b"{").is_err());
    }

    #[test]
    fn upstream_spelling_keys() {
        let p = poller(
            r#"{"targets":[{"name":"a","cluster":"c","upstream_host":"10.0.0.5"},
                {"name":"b","cluster":"d","upstreams":["lb:80","[::1]:81"]},
                {"name":"e","cluster":"f","upstream_host":"[fd00::5]"},{"name":"g","cluster":"h"}]}"#,
        )
        .unwrap();
        assert_eq!(p.targets[0].spelling().host, Some("10.0.0.5"));
        assert_eq!(p.targets[1].spelling().list, ["lb:80", "[::1]:81"]);
        assert_eq!(p.targets[2].upstream_host.as_deref(), Some("[fd00::5]"));
        assert_eq!(p.targets[3].spelling(), Spelling::default());
        let long = "h".repeat(254);
        for (json, key) in [
            (
                r#"{"targets":[{"name":"a","cluster":"c","upstream_host":""}]}"#.to_string(),
                "targets[0].upstream_host",
            ),
            (
                r#"{"targets":[{"name":"a","cluster":"c","upstream_host":"a b"}]}"#.to_string(),
                "targets[0].upstream_host",
            ),
            (
                r#"{"targets":[{"name":"a","cluster":"c","upstream_host":"::1"}]}"#.to_string(),
                "targets[0].upstream_host",
            ),
            (
                format!(r#"{{"targets":[{{"name":"a","cluster":"c","upstream_host":"{long}"}}]}}"#),
                "targets[0].upstream_host",
            ),
            (
                r#"{"targets":[{"name":"a","cluster":"c","upstream_host":"h","upstreams":["x:1"]}]}"#
                    .to_string(),
                "targets[0].upstreams",
            ),
            (
                r#"{"targets":[{"name":"a","cluster":"c","upstreams":["x:1","a b"]}]}"#.to_string(),
                "targets[0].upstreams[1]",
            ),
            (
                r#"{"targets":[{"name":"a","cluster":"c","upstreams":[7]}]}"#.to_string(),
                "targets[0].upstreams[0]",
            ),
            (
                r#"{"targets":[{"name":"a","cluster":"c","upstream_host":null}]}"#.to_string(),
                "targets[0].upstream_host",
            ),
        ] {
            assert_eq!(poller(&json).unwrap_err().path, key, "{json}");
        }
        let many: Vec<String> = (0..65).map(|i| format!("\"h:{i}\"")).collect();
        let json = format!(
            r#"{{"targets":[{{"name":"a","cluster":"c","upstreams":[{}]}}]}}"#,
            many.join(",")
        );
        assert_eq!(poller(&json).unwrap_err().path, "targets[0].upstreams");
    }

    #[test]
    fn admin_mode() {
        let c =
            UwsgiStatsConfig::from_json(br#"{"mode":"admin","snapshot_path":"/s.json"}"#).unwrap();
        let UwsgiStatsConfig::Admin(a) = c else {
            panic!("admin expected")
        };
        assert_eq!(a.snapshot_path, "/s.json");
        assert_eq!(a.metrics_path, "/uwsgi/metrics");
        let e = UwsgiStatsConfig::from_json(br#"{"mode":"admin","targets":[]}"#).unwrap_err();
        assert!(e.to_string().contains("targets"), "{e}");
        let e =
            UwsgiStatsConfig::from_json(br#"{"mode":"admin","snapshot_path":"x"}"#).unwrap_err();
        assert_eq!(e.path, "snapshot_path");
    }

    #[test]
    fn admin_access_is_loopback_unless_configured() {
        let admin = |json: &str| match UwsgiStatsConfig::from_json(json.as_bytes()) {
            Ok(UwsgiStatsConfig::Admin(a)) => Ok(a),
            Ok(other) => panic!("admin expected, got {other:?}"),
            Err(e) => Err(e),
        };
        let a = admin(r#"{"mode":"admin"}"#).unwrap();
        assert!(a.access.source_allowed(Some(b"127.0.0.1:9")));
        assert!(!a.access.source_allowed(Some(b"10.0.0.1:9")) && !a.access.needs_token());
        let t = admin(
            r#"{"mode":"admin","scrape_allow_cidrs":["10.0.0.0/8"],"scrape_bearer_token":"abcdefghijklmnop"}"#,
        )
        .unwrap();
        assert!(t.access.source_allowed(Some(b"10.0.0.1:9")) && t.access.needs_token());
        assert!(!format!("{t:?}").contains("abcdefghijklmnop"));
        for (json, key) in [
            (
                r#"{"mode":"admin","scrape_allow_cidrs":["x"]}"#,
                "scrape_allow_cidrs[0]",
            ),
            (
                r#"{"mode":"admin","scrape_bearer_token":"x"}"#,
                "scrape_bearer_token",
            ),
            (
                r#"{"mode":"admin","metrics_path":"/uwsgi/%6Detrics"}"#,
                "metrics_path",
            ),
            (
                r#"{"mode":"admin","snapshot_path":"/uwsgi//s.json"}"#,
                "snapshot_path",
            ),
        ] {
            assert_eq!(admin(json).unwrap_err().path, key, "{json}");
        }
    }
}
