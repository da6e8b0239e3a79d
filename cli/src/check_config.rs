//! `uwsgi-red check-config`: runs a plugin's own configuration parser on a
//! file, offline, and words a refusal exactly as that plugin logs it.

use uwsgi_red_core::config::{json_schema, json_schema_switch};
use uwsgi_red_core::red::{RedFilterConfig, RED_KEYS};
use uwsgi_red_core::stats::{UwsgiStatsConfig, ADMIN_KEYS, NGINX_KEYS, POLLER_KEYS};
use uwsgi_red_core::statsd::OTEL_KEYS;
use uwsgi_red_core::uwsgi::{UwsgiTcpConfig, UWSGI_TCP_KEYS};

/// The plugins whose configuration can be checked, by their `dist/` name.
pub const PLUGINS: [&str; 4] = ["red-filter", "uwsgi-tcp", "uwsgi-stats", "otel-processor"];

/// How each Envoy plugin words a refused configuration in its critical log
/// line (`on_configure` in `plugins/<name>/src/lib.rs`; the CLI tests check
/// these against those sources so the two cannot drift apart).
pub fn envoy_log_line(plugin: &str, error: &str) -> String {
    match plugin {
        "uwsgi-stats" => format!("{error}; not polling, passing traffic through"),
        _ => format!("{plugin}: {error}; passing traffic through unmeasured"),
    }
}

/// The JSON Schema (draft-04) of `plugin`'s configuration, rendered from
/// the key tables its parser reads (`uwsgi_red_core::config::schema`).
/// `None` for an unknown plugin name.
pub fn schema(plugin: &str) -> Option<serde_json::Value> {
    let title = format!("uwsgi-red {plugin} plugin configuration");
    Some(match plugin {
        "red-filter" => json_schema(&title, &RED_KEYS),
        "uwsgi-tcp" => json_schema(&title, &UWSGI_TCP_KEYS),
        // `mode` picks the reader, as in `check` below: nginx's one
        // document, the admin filter's, else the poller's.
        "uwsgi-stats" => json_schema_switch(
            &title,
            "mode",
            &POLLER_KEYS,
            &[("admin", &ADMIN_KEYS), ("nginx", &NGINX_KEYS)],
        ),
        "otel-processor" => {
            let mut s = json_schema(&title, &OTEL_KEYS);
            // otelwasm hands the processor `null` when plugin_config is absent.
            if let Some(t) = s.get_mut("type") {
                *t = serde_json::json!(["object", "null"]);
            }
            s
        }
        _ => return None,
    })
}

/// `Ok(summary)` when `plugin` would accept `bytes`; `Err(message)` with the
/// very text the plugin reports when it refuses them (Envoy plugins: their
/// critical log line; otel-processor: the status reason of a metrics batch,
/// taken from the processor itself). `None` for an unknown plugin name.
pub fn check(plugin: &str, bytes: &[u8]) -> Option<Result<String, String>> {
    Some(match plugin {
        "red-filter" => RedFilterConfig::from_json(bytes)
            .map(|s| format!("max_series {}, exposition {:?}", s.max_series, s.exposition))
            .map_err(|e| envoy_log_line(plugin, &e.to_string())),
        "uwsgi-tcp" => UwsgiTcpConfig::from_json(bytes)
            .map(|s| {
                format!(
                    "head_limit {}, response_head_limit {}",
                    s.head_limit, s.response_head_limit
                )
            })
            .map_err(|e| envoy_log_line(plugin, &e.to_string())),
        // `"mode": "nginx"` is read first, as the plugin's on_configure does.
        "uwsgi-stats" => match uwsgi_red_core::stats::nginx::from_json(bytes) {
            Some(nginx) => nginx
                .map(|c| format!("nginx poller of {} target(s)", c.poller.targets.len()))
                .map_err(|e| envoy_log_line(plugin, &e.to_string())),
            None => UwsgiStatsConfig::from_json(bytes)
                .map(|c| match c {
                    UwsgiStatsConfig::Poller(p) => {
                        format!("poller of {} target(s)", p.targets.len())
                    }
                    UwsgiStatsConfig::Admin(_) => "admin".to_string(),
                })
                .map_err(|e| envoy_log_line(plugin, &e.to_string())),
        },
        "otel-processor" => match otel_processor::load_config(bytes) {
            Ok(c) => Ok(format!("uwsgi_prefixes {:?}", c.uwsgi_prefixes)),
            // The processor's own words: run an (empty) batch through it.
            Err(e) => Err(otel_processor::process_metrics(
                &Err(e.clone()),
                &mut otel_processor::NameBudget::default(),
                b"",
            )
            .status_reason
            .unwrap_or(e)),
        },
        _ => return None,
    })
}
