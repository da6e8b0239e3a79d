//! `request_start`: the upstream request carries `X-Request-Start:
//! t=<µs since the epoch>`, the moment this proxy saw its headers, so the
//! app's own log can tell its queue time (app start − stamp).
//!
//! The decision is core's ([`RequestStart::stamp`]); this module only
//! reads and writes the header, behind [`RequestHeaders`] so the modes are
//! tested natively. Off, nothing is read or written.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;
use uwsgi_red_core::red::config::REQUEST_START_HEADER;
use uwsgi_red_core::red::RequestStart;

use crate::props;

/// The request headers of the current stream.
pub trait RequestHeaders {
    fn get(&mut self, name: &str) -> Option<Vec<u8>>;
    /// Replaces every value of `name` with `value` (adds it when absent).
    fn set(&mut self, name: &str, value: &[u8]);
}

/// The host's request headers.
pub struct Proxy;

impl RequestHeaders for Proxy {
    fn get(&mut self, name: &str) -> Option<Vec<u8>> {
        props::request_header_bytes(name)
    }

    fn set(&mut self, name: &str, value: &[u8]) {
        crate::count::host_call(false);
        // A refusal leaves the request unstamped, never fails it.
        let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(value));
    }
}

/// Stamps the request whose headers passed at `now_ns` (none: the host
/// clock failed, and the request goes on unstamped).
pub fn apply<H: RequestHeaders>(mode: RequestStart, headers: &mut H, now_ns: Option<u64>) {
    if mode == RequestStart::Off {
        return;
    }
    let Some(now) = now_ns else { return };
    if let Some(v) = mode.stamp(|| headers.get(REQUEST_START_HEADER).is_some(), now) {
        headers.set(REQUEST_START_HEADER, v.as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fake {
        headers: Vec<(String, Vec<u8>)>,
        reads: usize,
        writes: usize,
    }

    impl RequestHeaders for Fake {
        fn get(&mut self, name: &str) -> Option<Vec<u8>> {
            self.reads += 1;
            self.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
        fn set(&mut self, name: &str, value: &[u8]) {
            self.writes += 1;
            self.headers.retain(|(k, _)| k != name);
            self.headers.push((name.to_string(), value.to_vec()));
        }
    }

    const NOW: Option<u64> = Some(1_765_000_000_123_456_789);
    const OUTER: &[u8] = b"t=1700000000.123";
    const OWN: &[u8] = b"t=1765000000123456";

    fn stamp(f: &Fake) -> Vec<&[u8]> {
        f.headers
            .iter()
            .filter(|(k, _)| k == "x-request-start")
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// (mode, an outer value present, the clock, header reads and writes
    /// the host sees, the values the request carries after).
    type Case = (
        RequestStart,
        bool,
        Option<u64>,
        (usize, usize),
        &'static [&'static [u8]],
    );
    const CASES: [Case; 7] = [
        // off: no host call at all, whatever arrived stays.
        (RequestStart::Off, true, NOW, (0, 0), &[OUTER]),
        (RequestStart::Off, false, NOW, (0, 0), &[]),
        // keep: one read; a write only when nothing arrived.
        (RequestStart::Keep, false, NOW, (1, 1), &[OWN]),
        (RequestStart::Keep, true, NOW, (1, 0), &[OUTER]),
        // replace: writes without reading.
        (RequestStart::Replace, true, NOW, (0, 1), &[OWN]),
        // No clock reading from the host: no stamp, no call.
        (RequestStart::Replace, true, None, (0, 0), &[OUTER]),
        (RequestStart::Keep, false, None, (0, 0), &[]),
    ];

    #[test]
    fn each_mode_reads_writes_and_leaves_what_it_says() {
        for (i, (mode, outer, now, calls, after)) in CASES.into_iter().enumerate() {
            let mut f = Fake::default();
            if outer {
                f.headers.push(("x-request-start".into(), OUTER.to_vec()));
            }
            apply(mode, &mut f, now);
            assert_eq!((f.reads, f.writes), calls, "case {i}");
            assert_eq!(stamp(&f), after, "case {i}");
        }
    }
}
