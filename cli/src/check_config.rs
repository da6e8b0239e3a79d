//! `uwsgi-red check-config`: runs a plugin's own configuration parser on a
//! file, offline, and words a refusal exactly as that plugin logs it.

use uwsgi_red_core::config::RedConfig;
use uwsgi_red_core::stats::config::PluginConfig;
use uwsgi_red_core::uwsgi::config::UwsgiFilterConfig;

/// The plugins whose configuration can be checked, by their `dist/` name.
pub const PLUGINS: [&str; 4] = ["red-filter", "uwsgi-tcp", "uwsgi-stats", "otel-processor"];

/// `Ok(summary)` when `plugin` would accept `bytes`; `Err(message)` with the
/// very text the plugin logs when it refuses them (Envoy: the `on_configure`
/// log line; otel-processor: the error in its batch status reason).
/// `None` for an unknown plugin name.
pub fn check(plugin: &str, bytes: &[u8]) -> Option<Result<String, String>> {
    Some(match plugin {
        "red-filter" => RedConfig::from_json(bytes)
            .map(|s| format!("max_series {}, exposition {:?}", s.max_series, s.exposition))
            .map_err(|e| format!("red-filter: {e}")),
        "uwsgi-tcp" => UwsgiFilterConfig::from_json(bytes)
            .map(|s| {
                format!(
                    "head_limit {}, response_head_limit {}",
                    s.head_limit, s.response_head_limit
                )
            })
            .map_err(|e| format!("uwsgi-tcp: {e}")),
        "uwsgi-stats" => PluginConfig::from_json(bytes)
            .map(|c| match c {
                PluginConfig::Poller(p) => format!("poller of {} target(s)", p.targets.len()),
                PluginConfig::Admin(_) => "admin".to_string(),
            })
            .map_err(|e| e.to_string()),
        "otel-processor" => otel_processor::load_config(bytes)
            .map(|c| format!("uwsgi_prefixes {:?}", c.uwsgi_prefixes)),
        _ => return None,
    })
}
