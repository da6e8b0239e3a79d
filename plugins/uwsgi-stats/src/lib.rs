//! `uwsgi-stats`: an Envoy plugin that polls uWSGI stats servers and exports
//! what uwsgi_exporter exports, without a separate exporter daemon.
//!
//! One module, two roles picked by the plugin configuration's `mode`:
//! - `poller` (default): run as a bootstrap singleton (`envoy.bootstrap.wasm`,
//!   `singleton: true`), so polling happens once per Envoy process. On each
//!   tick it calls every target's cluster with `dispatch_http_call`, decodes
//!   with `core::stats`, and updates host metrics. It also writes the latest
//!   snapshot JSON and Prometheus text to proxy-wasm shared data.
//! - `admin`: an HTTP filter that answers the snapshot and metrics paths from
//!   shared data. A bootstrap singleton cannot serve HTTP, so this filter does
//!   that part. Put it only on an admin listener bound to 127.0.0.1, never on
//!   the public one. Shared data is scoped by `vm_id`, so both roles must use
//!   the same `vm_config.vm_id`.
//! - `nginx`: both roles in every ngx_wasm_module worker, one poller among
//!   them by a lease in shared data (see [`nginx`]).
//!
//! All protocol logic is in `uwsgi-red-core`; this crate is the host adapter.
//!
//! Panic-free by construction (it runs inside the user's Envoy, built with
//! `panic = "abort"`: the workspace's panic-free lints apply).

pub mod export;
mod keys;
pub mod nginx;
pub mod poller;
pub mod texthost;

use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use uwsgi_red_core::red::names::REASON_CONFIG;
use uwsgi_red_core::red::HostRecorder;
use uwsgi_red_core::scrape_access::is_page;
use uwsgi_red_core::stats::{AdminConfig, TargetConfig, UwsgiStatsConfig};

use keys::{metrics_key, snapshot_key};

use poller::Poller;

// No `proxy_wasm::set_log_level`: it only installs a `log` crate backend
// (nothing here logs through `log`) and a panic hook that
// `-Cpanic=immediate-abort` never runs.
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// proxy-wasm metric calls (shared with the other plugins). A failing host
/// call is skipped: metrics must never take the proxy down.
use uwsgi_red_proxy_wasm::read;
use uwsgi_red_proxy_wasm::ProxyMetrics as Host;

fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, &format!("uwsgi-stats: {msg}"));
}

/// One GET of a target's stats page through the host's HTTP call (Envoy
/// names a cluster, ngx_wasm_module an address); the error names the target.
fn dispatch(t: &TargetConfig, timeout: Duration) -> Result<u32, String> {
    let authority = t.authority.clone().unwrap_or_else(|| t.cluster.clone());
    let headers = vec![
        (":method", "GET"),
        (":path", t.path.as_str()),
        (":authority", authority.as_str()),
    ];
    hostcalls::dispatch_http_call(&t.cluster, headers, None, vec![], timeout)
        .map_err(|e| format!("dispatch to {:?} failed: {e:?}", t.cluster))
}

fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Default)]
enum Role {
    #[default]
    Unconfigured,
    Poller(Box<Poller>),
    Admin(AdminConfig),
    Nginx(Box<nginx::NginxRoot>),
}

#[derive(Default)]
struct Root {
    role: Role,
}

impl Root {
    fn poll_all(&mut self) {
        let Role::Poller(p) = &mut self.role else {
            return;
        };
        let now = now_ms();
        let timeout = Duration::from_millis(p.config.timeout_ms);
        for i in 0..p.targets.len() {
            if p.targets.get(i).is_none_or(|t| t.in_flight.is_some()) {
                // Envoy always calls back (success, failure or timeout), so a
                // call in flight is waited for, never duplicated.
                continue;
            }
            let Some(t) = p.config.targets.get(i) else {
                continue;
            };
            match dispatch(t, timeout) {
                Ok(token) => {
                    if let Some(t) = p.targets.get_mut(i) {
                        t.in_flight = Some(token);
                        t.in_flight_since_ms = now;
                    }
                }
                Err(msg) => {
                    log(LogLevel::Warn, &msg);
                    p.on_dispatch_error(&mut Host, i, &msg);
                    publish(p, now);
                }
            }
        }
    }
}

fn publish(p: &Poller, now: u64) {
    let out = p.publish(now);
    let prefix = &p.config.shared_data_prefix;
    // cas None: only this singleton writes these keys.
    if let Err(e) =
        hostcalls::set_shared_data(&snapshot_key(prefix), Some(&out.snapshot_json), None)
    {
        log(LogLevel::Warn, &format!("set_shared_data snapshot: {e:?}"));
    }
    let _ = hostcalls::set_shared_data(
        &metrics_key(prefix),
        Some(out.metrics_text.as_bytes()),
        None,
    );
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if let Role::Nginx(n) = &mut self.role {
            n.on_response(token, num_headers, body_size);
            return;
        }
        let Role::Poller(p) = &mut self.role else {
            return;
        };
        let Some(i) = p.targets.iter().position(|t| t.in_flight == Some(token)) else {
            return;
        };
        let Some(target) = p.targets.get_mut(i) else {
            return;
        };
        target.in_flight = None;
        let was_up = target.snapshot.up;
        let status = if num_headers == 0 {
            None
        } else {
            // Bytes: the SDK's string getter traps on non-UTF-8.
            read::http_call_response_header(":status")
                .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok())
        };
        let mut body = |n: usize| {
            hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpCallResponseBody, 0, n)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let now = now_ms();
        p.on_reply(&mut Host, i, status, body_size, &mut body, now);
        let Some(t) = p.targets.get(i) else {
            return;
        };
        if was_up != t.snapshot.up {
            let state = if t.snapshot.up {
                "up".to_string()
            } else {
                format!("down ({:?})", t.snapshot.last_error)
            };
            log(LogLevel::Info, &format!("target {} is {state}", t.name));
        }
        publish(p, now);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        if let Some(nginx) = uwsgi_red_core::stats::nginx::from_json(&bytes) {
            self.role = match nginx {
                Ok(c) => {
                    let root = nginx::NginxRoot::new(c);
                    let _ = hostcalls::set_tick_period(root.tick_period());
                    Role::Nginx(Box::new(root))
                }
                Err(e) => {
                    // As below: returning false would make every nginx
                    // worker exit (fatal, not respawned).
                    log(
                        LogLevel::Critical,
                        &format!("{e}; not polling, passing traffic through"),
                    );
                    HostRecorder::new().internal_error(&mut Host, REASON_CONFIG);
                    Role::Unconfigured
                }
            };
            return true;
        }
        match UwsgiStatsConfig::from_json(&bytes) {
            Ok(UwsgiStatsConfig::Poller(c)) => {
                let _ = hostcalls::set_tick_period(Duration::from_millis(c.interval_ms));
                log(
                    LogLevel::Info,
                    &format!(
                        "polling {} target(s) every {} ms",
                        c.targets.len(),
                        c.interval_ms
                    ),
                );
                self.role = Role::Poller(Box::new(Poller::new(c)));
                true
            }
            Ok(UwsgiStatsConfig::Admin(c)) => {
                self.role = Role::Admin(c);
                true
            }
            Err(e) => {
                // A refused configuration never costs a request: refusing
                // it would stop Envoy from starting at all. Loud in the
                // log, counted; nothing is polled and every request on an
                // admin listener passes through.
                self.role = Role::Unconfigured;
                log(
                    LogLevel::Critical,
                    &format!("{e}; not polling, passing traffic through"),
                );
                HostRecorder::new().internal_error(&mut Host, REASON_CONFIG);
                true
            }
        }
    }

    fn on_tick(&mut self) {
        if let Role::Nginx(n) = &mut self.role {
            n.on_tick();
            return;
        }
        self.poll_all();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // proxy-wasm requires a context; a poller misplaced on a listener passes traffic through.
        if let Role::Nginx(n) = &self.role {
            return Some(Box::new(n.page_filter()));
        }
        let admin = match &self.role {
            Role::Admin(c) => Some(c.clone()),
            _ => None,
        };
        Some(Box::new(AdminFilter { config: admin }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Answers the admin paths from shared data to allowed clients; every
/// other request continues untouched.
struct AdminFilter {
    config: Option<AdminConfig>,
}

impl Context for AdminFilter {}

fn property(path: &[&str]) -> Option<Vec<u8>> {
    read::property(path)
}

/// The raw request target as the client sent it (`request.path`: Envoy's
/// `:path`, ngx_wasm_module's `$request_uri`), compared byte for byte, so a
/// decoded or normalised variant of a page path is never one.
fn requested_page(c: &AdminConfig) -> Option<(String, &'static str)> {
    let raw = property(&["request", "path"])?;
    if is_page(&raw, &c.snapshot_path) {
        Some((snapshot_key(&c.shared_data_prefix), "application/json"))
    } else if is_page(&raw, &c.metrics_path) {
        Some((
            metrics_key(&c.shared_data_prefix),
            "text/plain; version=0.0.4; charset=utf-8",
        ))
    } else {
        None
    }
}

/// Source in the allowed ranges and, when configured, the bearer token.
fn allowed(c: &AdminConfig) -> bool {
    let access = &c.access;
    access.source_allowed(property(&["source", "address"]).as_deref())
        && (!access.needs_token()
            || access.token_allowed(read::request_header("authorization").as_deref()))
}

impl HttpContext for AdminFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(c) = &self.config else {
            return Action::Continue;
        };
        // A refused client is not answered at all (not even 403): the
        // request goes on as if the filter were not there.
        let Some((key, content_type)) = requested_page(c).filter(|_| allowed(c)) else {
            return Action::Continue;
        };
        let method = read::request_header(":method").unwrap_or_default();
        if !matches!(method.as_slice(), b"GET" | b"HEAD") {
            self.send_http_response(
                405,
                vec![("allow", "GET, HEAD")],
                Some(b"method not allowed\n"),
            );
            return Action::Pause;
        }
        match hostcalls::get_shared_data(&key) {
            Ok((Some(body), _)) => self.send_http_response(
                200,
                vec![("content-type", content_type), ("cache-control", "no-store")],
                Some(&body),
            ),
            _ => self.send_http_response(
                503,
                vec![("content-type", "application/json"), ("retry-after", "1")],
                Some(b"{\"error\":\"no uWSGI stats snapshot yet (is the uwsgi-stats poller running with the same vm_id?)\"}"),
            ),
        }
        Action::Pause
    }
}

#[cfg(test)]
mod tests {
    use uwsgi_red_core::stats::LABEL_NAMES;

    /// The example bootstrap must extract every label the plugin encodes.
    #[test]
    fn example_has_a_stats_tag_per_label() {
        let yaml = include_str!("../../../examples/envoy-uwsgi-stats/envoy.yaml");
        for l in LABEL_NAMES {
            let rule = format!("{{tag_name: {l}, regex: \"({l}=\\\\.=(.*?);\\\\.;)\"}}");
            assert!(yaml.contains(&rule), "missing stats_tags rule {rule}");
        }
    }
}
