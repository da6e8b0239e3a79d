//! `"mode": "nginx"`: uwsgi-stats inside nginx (ngx_wasm_module).
//!
//! Every nginx worker process has its own root context, and each ticks.
//! A lease in shared data (`uwsgi_red_core::lease`) lets exactly one of
//! them poll: all tick five times per interval, the holder renews and
//! polls once per interval, the others take over within one interval when
//! the holder exits or is killed. The holder renders the page exactly as
//! Envoy's `/stats/prometheus` would show the same poll results
//! ([`TextHost`]) and stores it with the snapshot in shared data; any
//! worker answers an allowed scrape of the page from there.
//!
//! Host differences handled here: `dispatch_http_call` takes `host:port`
//! (the target's `cluster`), its reply comes to the root context, a
//! failed call arrives with no headers and the reason in the
//! `:dispatch_status` pseudo-header; properties are read only on the HTTP
//! path (dotted properties fail in `on_tick`); nothing runs at worker exit.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel};
use uwsgi_red_core::lease::{new_holder_id, Lease, Outcome};
use uwsgi_red_core::red::HostRecorder;
use uwsgi_red_core::red::{CasWrite, KvError, KvStore};
use uwsgi_red_core::scrape_access::{is_page, maybe_page, ScrapeAccess};
use uwsgi_red_core::stats::NginxConfig;
use uwsgi_red_proxy_wasm::{read, ProxyKv};

use crate::keys::{metrics_key, snapshot_key};

use crate::poller::Poller;
use crate::texthost::TextHost;
use crate::{dispatch, log, now_ms};

/// The `reason` of `uwsgi_scrape_errors_total` for a dispatch that failed
/// (ngx_wasm_module's `:dispatch_status`); `None` status values are the
/// ones a host gives for a call that got no reply at all.
pub fn dispatch_reason(dispatch_status: Option<&[u8]>) -> &'static str {
    match dispatch_status {
        Some(b"timeout") => "timeout",
        Some(b"broken connection") => "connect",
        Some(b"resolver failure") => "connect",
        Some(b"tls handshake failure") => "connect",
        Some(b"reader failure") | Some(b"parser failure") => "protocol",
        _ => "unreachable",
    }
}

fn counters_key(prefix: &str) -> String {
    format!("{prefix}/counters")
}

/// Set by the example's stats relay (`$upstream_connect_time`): `-` when
/// the stats server could not be connected to.
pub const RELAY_CONNECT_HEADER: &str = "x-uwsgi-stats-connect";

/// A relay's 502/504 names what failed behind it, as Envoy's local replies
/// do; `None` for any other reply (decoded as usual).
pub fn relay_reason(status: Option<u16>, connect: Option<&[u8]>) -> Option<&'static str> {
    match (status, connect) {
        (Some(504), _) => Some("timeout"),
        (Some(502), Some(c)) if c.first() == Some(&b'-') || c.is_empty() => Some("connect"),
        (Some(502), Some(_)) => Some("protocol"),
        _ => None,
    }
}

/// What a tick decided (for tests and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickPlan {
    Idle,
    Poll,
}

/// The lease and the poll cadence, host-independent.
#[derive(Debug)]
pub struct Schedule {
    interval_ms: u64,
    tick_ms: u64,
    next_due_ms: u64,
    pub held: bool,
    /// Taken at the last tick, not yet confirmed by a renewal.
    confirming: bool,
}

impl Schedule {
    pub fn new(interval_ms: u64, tick_ms: u64) -> Self {
        Self {
            interval_ms,
            tick_ms,
            next_due_ms: 0,
            held: false,
            confirming: false,
        }
    }

    /// After a lease tick at `now_ms`: poll when the lease is held and a
    /// poll is due. A newly taken lease polls only at the next tick, if it
    /// is still held then: a worker's clock is the host's cached time,
    /// stale after a long stall (compiling the module at a reload), and a
    /// lease written with a stale clock is taken over at once by a worker
    /// with a fresh one; the stale worker learns it at its next tick, before
    /// it has polled. Ticks are not exact, so a poll due within half a tick
    /// is made now, and the next is due one interval after this one was due
    /// (no drift).
    pub fn on_lease(&mut self, outcome: Result<Outcome, KvError>, now_ms: u64) -> TickPlan {
        let acquired = match outcome {
            Ok(Outcome::Held { acquired, .. }) => acquired || !self.held,
            _ => {
                self.held = false;
                self.confirming = false;
                return TickPlan::Idle;
            }
        };
        self.held = true;
        if acquired {
            self.confirming = true;
            return TickPlan::Idle;
        }
        if self.confirming {
            self.confirming = false;
            self.next_due_ms = now_ms;
        }
        if now_ms.saturating_add(self.tick_ms / 2) < self.next_due_ms {
            return TickPlan::Idle;
        }
        let next = self.next_due_ms.saturating_add(self.interval_ms);
        self.next_due_ms = if next > now_ms {
            next
        } else {
            now_ms.saturating_add(self.interval_ms)
        };
        TickPlan::Poll
    }
}

#[derive(Debug)]
pub struct NginxRoot {
    config: NginxConfig,
    poller: Poller,
    host: TextHost,
    lease: Option<Lease>,
    schedule: Schedule,
    /// The direct-poll hint was logged.
    hinted: bool,
}

fn kv_write(key: &str, value: &[u8]) -> Result<(), KvError> {
    // ngx_wasm_module writes without a token only when the key is absent:
    // every overwrite carries the current token (only the holder writes).
    for _ in 0..2 {
        let (_, cas) = ProxyKv.get(key)?;
        if ProxyKv.set(key, value, cas)? == CasWrite::Written {
            return Ok(());
        }
    }
    Err(KvError::Unavailable)
}

impl NginxRoot {
    pub fn new(config: NginxConfig) -> Self {
        let poller = Poller::new(config.poller.clone());
        let schedule = Schedule::new(config.poller.interval_ms, config.tick_ms());
        Self {
            config,
            poller,
            host: TextHost::new(),
            lease: None,
            schedule,
            hinted: false,
        }
    }

    pub fn tick_period(&self) -> Duration {
        Duration::from_millis(self.config.tick_ms())
    }

    fn prefix(&self) -> &str {
        &self.config.poller.shared_data_prefix
    }

    fn count(&mut self, reason: &'static str) {
        HostRecorder::new().internal_error(&mut self.host, reason);
    }

    pub fn on_tick(&mut self) {
        let now = now_ms();
        if self.lease.is_none() {
            let ids = format!("{}/holders", self.prefix());
            match new_holder_id(&mut ProxyKv, &ids) {
                Ok(id) => {
                    let key = format!("{}/lease", self.prefix());
                    self.lease = Some(Lease::new(&key, id, self.config.lease_ttl_ms()));
                }
                Err(e) => {
                    self.count(e.reason());
                    return;
                }
            }
        }
        let Some(lease) = &self.lease else {
            return;
        };
        let was_held = self.schedule.held;
        let outcome = lease.tick(&mut ProxyKv, now);
        let id = lease.holder_id();
        if let Err(e) = outcome {
            self.count(e.reason());
        }
        let plan = self.schedule.on_lease(outcome, now);
        if self.schedule.held && !was_held {
            // Continue the last holder's own counters (errors, repairs):
            // they must not restart when the poller moves to this worker.
            if let Ok((Some(state), _)) = ProxyKv.get(&counters_key(self.prefix())) {
                self.host.seed(&state);
            }
        }
        if self.schedule.held != was_held {
            let what = if self.schedule.held {
                "holds the poller lease"
            } else {
                "lost the poller lease"
            };
            log(LogLevel::Info, &format!("worker lease id {id} {what}"));
        }
        if plan == TickPlan::Poll {
            self.poll_all(now);
        }
    }

    fn poll_all(&mut self, now: u64) {
        let p = &mut self.poller;
        let timeout = Duration::from_millis(p.config.timeout_ms);
        // A host that never called back must not stop polling forever.
        let stuck_after = p
            .config
            .timeout_ms
            .saturating_add(p.config.interval_ms.saturating_mul(2));
        for i in 0..p.targets.len() {
            let Some(state) = p.targets.get_mut(i) else {
                continue;
            };
            if state.in_flight.is_some()
                && now.saturating_sub(state.in_flight_since_ms) < stuck_after
            {
                continue;
            }
            state.in_flight = None;
            let Some(t) = p.config.targets.get(i) else {
                continue;
            };
            match dispatch(t, timeout) {
                Ok(token) => {
                    if let Some(s) = p.targets.get_mut(i) {
                        s.in_flight = Some(token);
                        s.in_flight_since_ms = now;
                    }
                }
                Err(msg) => {
                    log(LogLevel::Warn, &msg);
                    p.on_dispatch_error(&mut self.host, i, &msg);
                }
            }
        }
        self.publish(now);
    }

    pub fn on_response(&mut self, token: u32, num_headers: usize, body_size: usize) {
        let p = &mut self.poller;
        let Some(i) = p.targets.iter().position(|t| t.in_flight == Some(token)) else {
            return;
        };
        if let Some(t) = p.targets.get_mut(i) {
            t.in_flight = None;
        }
        if !self.schedule.held {
            // Lost the lease while the call was out: the new holder's
            // page is the one that counts.
            return;
        }
        let now = now_ms();
        let was_up = p.targets.get(i).is_some_and(|t| t.snapshot.up);
        if num_headers == 0 {
            let status = read::http_call_response_header(":dispatch_status");
            let reason = dispatch_reason(status.as_deref());
            let detail =
                String::from_utf8_lossy(status.as_deref().unwrap_or(b"no response")).into_owned();
            p.on_failure(&mut self.host, i, reason, &detail);
        } else {
            let status = read::http_call_response_header(":status")
                .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok());
            if let Some(reason) = relay_reason(
                status,
                read::http_call_response_header(RELAY_CONNECT_HEADER).as_deref(),
            ) {
                let detail = format!("HTTP {} from the stats relay", status.unwrap_or(0));
                p.on_failure(&mut self.host, i, reason, &detail);
                self.publish(now);
                return;
            }
            let mut body = |n: usize| {
                hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, n)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            };
            p.on_reply(&mut self.host, i, status, body_size, &mut body, now);
        }
        if let Some(t) = p.targets.get(i) {
            if was_up != t.snapshot.up {
                let state = if t.snapshot.up {
                    "up".to_string()
                } else {
                    format!("down ({:?})", t.snapshot.last_error)
                };
                log(LogLevel::Info, &format!("target {} is {state}", t.name));
            }
        }
        let empty = self.poller.targets.get(i).is_some_and(|t| {
            t.snapshot
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("empty"))
        });
        if empty && body_size == 0 && !self.hinted {
            // The usual cause, and not visible from the reply; once per worker.
            self.hinted = true;
            log(
                LogLevel::Warn,
                "an empty reply is what ngx_wasm_module reads from a stats server \
                 polled directly (uWSGI sends no Content-Length): poll it through \
                 an nginx relay location (examples/nginx-wasm/nginx-uwsgi-stats.conf)",
            );
        }
        self.publish(now);
    }

    fn publish(&mut self, now: u64) {
        let snapshot = self.poller.snapshot_json(now);
        let page = self.host.render();
        let counters = self.host.counters_state();
        let prefix = self.prefix().to_string();
        for (key, value) in [
            (snapshot_key(&prefix), snapshot.as_slice()),
            (metrics_key(&prefix), page.as_bytes()),
            (counters_key(&prefix), counters.as_slice()),
        ] {
            if let Err(e) = kv_write(&key, value) {
                log(LogLevel::Warn, &format!("set_shared_data {key}: {e:?}"));
                self.count(e.reason());
            }
        }
    }

    pub fn page_filter(&self) -> PageFilter {
        PageFilter {
            metrics_path: self.config.pages.metrics_path.clone(),
            snapshot_path: self.config.pages.snapshot_path.clone(),
            prefix: self.prefix().to_string(),
            access: self.config.access.clone(),
        }
    }
}

/// Answers an allowed scrape of the page or the snapshot from shared data;
/// every other request continues untouched.
#[derive(Debug)]
pub struct PageFilter {
    metrics_path: String,
    snapshot_path: String,
    prefix: String,
    access: ScrapeAccess,
}

impl PageFilter {
    /// `:path` first (cheap, almost never ours), then the raw request
    /// target (`request.path`, `$request_uri`: nginx's `:path` is decoded
    /// and normalised), the method, the client address and the token.
    fn page(&self) -> Option<(String, &'static str)> {
        let path = read::request_header(":path")?;
        let (page, key, ctype) = if maybe_page(&path, &self.metrics_path) {
            (
                &self.metrics_path,
                metrics_key(&self.prefix),
                "text/plain; version=0.0.4; charset=utf-8",
            )
        } else if maybe_page(&path, &self.snapshot_path) {
            (
                &self.snapshot_path,
                snapshot_key(&self.prefix),
                "application/json",
            )
        } else {
            return None;
        };
        if self.access.serves_nobody() {
            return None;
        }
        let raw = read::property(&["request", "path"])?;
        if !is_page(&raw, page) {
            return None;
        }
        let method = read::request_header(":method")?;
        if !matches!(method.as_slice(), b"GET" | b"HEAD") {
            return None;
        }
        let source = read::property(&["source", "address"]);
        if !self.access.source_allowed(source.as_deref()) {
            return None;
        }
        if self.access.needs_token()
            && !self
                .access
                .token_allowed(read::request_header("authorization").as_deref())
        {
            return None;
        }
        Some((key, ctype))
    }
}

impl Context for PageFilter {}

impl HttpContext for PageFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some((key, content_type)) = self.page() else {
            return Action::Continue;
        };
        match hostcalls::get_shared_data(&key) {
            Ok((Some(body), _)) => self.send_http_response(
                200,
                vec![
                    ("content-type", content_type),
                    ("cache-control", "no-store"),
                ],
                Some(&body),
            ),
            _ => self.send_http_response(
                503,
                vec![("content-type", "application/json"), ("retry-after", "1")],
                Some(b"{\"error\":\"no uWSGI stats polled yet\"}"),
            ),
        }
        Action::Pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(acquired: bool) -> Result<Outcome, KvError> {
        Ok(Outcome::Held {
            until_ms: 0,
            acquired,
        })
    }

    /// Five ticks per interval: one poll per interval, none without the
    /// lease, and at once after a takeover.
    #[test]
    fn polls_once_per_interval_while_held() {
        let mut s = Schedule::new(1000, 200);
        let mut polls = Vec::new();
        for k in 0..25u64 {
            // Ticks jitter by a few ms.
            let now = 10_000 + k * 200 + (k % 3);
            let outcome = if k == 0 { held(true) } else { held(false) };
            if s.on_lease(outcome, now) == TickPlan::Poll {
                polls.push(now);
            }
        }
        // The first poll is at the tick after the lease was taken.
        assert_eq!(polls[0], 10_201);
        assert_eq!(polls.len(), 5, "{polls:?}");
        assert!(polls
            .windows(2)
            .all(|w| (998..=1002).contains(&(w[1] - w[0]))));
        let other = Ok(Outcome::Other {
            holder: 2,
            until_ms: 0,
        });
        assert_eq!(s.on_lease(other, 20_000), TickPlan::Idle);
        assert!(!s.held);
        assert_eq!(
            s.on_lease(Err(KvError::Unavailable), 21_000),
            TickPlan::Idle
        );
        assert_eq!(s.on_lease(held(true), 21_100), TickPlan::Idle);
        assert_eq!(s.on_lease(held(false), 21_300), TickPlan::Poll);
        // Taken, then lost before the confirming tick: no poll at all.
        assert_eq!(s.on_lease(other, 21_500), TickPlan::Idle);
        assert_eq!(s.on_lease(held(true), 21_700), TickPlan::Idle);
        assert_eq!(s.on_lease(other, 21_900), TickPlan::Idle);
    }

    #[test]
    fn dispatch_reasons() {
        assert_eq!(dispatch_reason(Some(b"timeout")), "timeout");
        assert_eq!(dispatch_reason(Some(b"broken connection")), "connect");
        assert_eq!(dispatch_reason(Some(b"reader failure")), "protocol");
        assert_eq!(dispatch_reason(None), "unreachable");
        assert_eq!(relay_reason(Some(504), None), Some("timeout"));
        assert_eq!(relay_reason(Some(502), Some(b"-")), Some("connect"));
        assert_eq!(relay_reason(Some(502), Some(b"0.000")), Some("protocol"));
        assert_eq!(relay_reason(Some(502), None), None);
        assert_eq!(relay_reason(Some(200), Some(b"0.000")), None);
    }
}
