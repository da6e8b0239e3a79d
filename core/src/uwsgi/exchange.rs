//! Request/response exchanges on one proxied uwsgi connection.
//!
//! A proxy sees two byte streams. Downstream carries request heads (decoded),
//! each followed by CONTENT_LENGTH body bytes (skipped without being read);
//! upstream carries the responses, whose status is parsed. An exchange
//! starts with the first byte of a request head and ends with the upstream
//! end of stream, the connection close, or the next request head (nginx
//! sends one request per connection; a client that reuses the connection
//! gets each exchange measured separately, responses attributed to the
//! latest complete request).
//!
//! The tracker never asks the host for more bytes than the head it is
//! decoding (or the few it needs for a status), and once the stream turns
//! out not to be uwsgi it stops looking: the host passes bytes through
//! untouched whatever happens here.

use super::decoder::{DecodeError, HeadDecoder, Progress};
use super::modifier::Payload;
use super::packet::{RequestHead, RequestVars};
use super::response::{ResponseError, StatusParser, StatusProgress};
use crate::red::labels::LabelSet;
use crate::red::route::{RouteNormalizer, MAX_PATH_BYTES};

/// The `protocol` label of every uwsgi series.
pub const PROTOCOL: &str = "uwsgi";

/// Longest SERVER_NAME / HTTP_HOST kept for the service label.
const MAX_HOST_BYTES: usize = 255;
/// Longer than any known method, so truncation never turns an unknown
/// method into a known one.
const MAX_METHOD_BYTES: usize = 16;
/// Upstream bytes fetched per host call while looking for a status.
const STATUS_FETCH: usize = 1024;

/// One finished request, times in microseconds on the host's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub modifier1: u8,
    pub method: String,
    /// PATH_INFO, or REQUEST_URI when PATH_INFO is absent.
    pub path: String,
    pub server_name: String,
    pub host: String,
    /// `None` when no status was seen (no response, or not a parsable one).
    pub status: Option<u16>,
    pub start_us: u64,
    pub first_byte_us: Option<u64>,
    pub end_us: u64,
    /// A var read for the labels was not UTF-8 (its invalid sequences are
    /// U+FFFD in the text above); the plugin counts it.
    pub invalid_utf8: bool,
}

impl Exchange {
    pub fn code(&self) -> u16 {
        self.status.unwrap_or(0)
    }

    pub fn duration_us(&self) -> u64 {
        self.end_us.saturating_sub(self.start_us)
    }

    pub fn ttfb_us(&self) -> Option<u64> {
        self.first_byte_us.map(|t| t.saturating_sub(self.start_us))
    }

    /// The `service` label: the configured one, else nginx's SERVER_NAME
    /// (set by its config), else HTTP_HOST (client-controlled: the
    /// cardinality cap is what bounds it), else `unknown`.
    pub fn service<'a>(&'a self, configured: Option<&'a str>) -> &'a str {
        configured
            .filter(|s| !s.is_empty())
            .or_else(|| Some(self.server_name.as_str()).filter(|s| !s.is_empty() && *s != "_"))
            .or_else(|| Some(self.host.as_str()).filter(|s| !s.is_empty()))
            .unwrap_or("unknown")
    }

    pub fn labels(&self, routes: &RouteNormalizer, service: Option<&str>) -> LabelSet {
        LabelSet::new(
            &self.method,
            self.code(),
            routes.route(None, &self.path),
            self.service(service).to_string(),
            PROTOCOL,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Completed(Exchange),
    RequestError(DecodeError),
    ResponseError(ResponseError),
}

impl Event {
    /// The `reason` label for error events.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Self::Completed(_) => None,
            Self::RequestError(e) => Some(e.reason()),
            Self::ResponseError(e) => Some(e.reason()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Expecting (more of) a request head.
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// Nothing more to learn from downstream: a packet that is not a web
    /// request, or a body of unknown length.
    Ignore,
    /// The stream is not uwsgi: stop everything.
    Passthrough,
}

#[derive(Debug, Clone)]
struct Active {
    ex: Exchange,
    last_upstream_us: Option<u64>,
    response_error: bool,
}

#[derive(Debug, Clone)]
pub struct ConnectionTracker {
    decoder: HeadDecoder,
    response: StatusParser,
    phase: Phase,
    head_start_us: Option<u64>,
    active: Option<Active>,
    closed: bool,
}

/// At most `max` bytes of text: the first `max` bytes, decoded lossily
/// (each invalid byte becomes a 3-byte U+FFFD), then cut again on a
/// character boundary so the result never exceeds `max` either.
fn lossy_prefix(bytes: &[u8], max: usize) -> String {
    let mut s = String::from_utf8_lossy(bytes.get(..max).unwrap_or(bytes)).into_owned();
    if s.len() > max {
        let end = s
            .char_indices()
            .map(|(i, c)| i.saturating_add(c.len_utf8()))
            .take_while(|end| *end <= max)
            .last()
            .unwrap_or(0);
        s.truncate(end);
    }
    s
}

fn exchange_from(head: &RequestHead<'_>, vars: &RequestVars<'_>, start_us: u64) -> Exchange {
    let mut invalid_utf8 = false;
    let mut get = |v: Option<&[u8]>, max| {
        v.map(|v| {
            invalid_utf8 |= std::str::from_utf8(v).is_err();
            lossy_prefix(v, max)
        })
        .unwrap_or_default()
    };
    let mut path = get(vars.path_info, MAX_PATH_BYTES);
    if path.is_empty() {
        path = get(vars.request_uri, MAX_PATH_BYTES);
    }
    let method = get(vars.method, MAX_METHOD_BYTES);
    let server_name = get(vars.server_name, MAX_HOST_BYTES);
    let host = get(vars.http_host, MAX_HOST_BYTES);
    Exchange {
        modifier1: head.header.modifier1,
        method,
        path,
        server_name,
        host,
        status: None,
        start_us,
        first_byte_us: None,
        end_us: start_us,
        invalid_utf8,
    }
}

impl ConnectionTracker {
    pub fn new(head_limit: usize, response_head_limit: usize) -> Self {
        Self {
            decoder: HeadDecoder::new(head_limit),
            response: StatusParser::new(response_head_limit),
            phase: Phase::Head,
            head_start_us: None,
            active: None,
            closed: false,
        }
    }

    /// True once the stream was found not to be uwsgi.
    pub fn is_passthrough(&self) -> bool {
        self.phase == Phase::Passthrough
    }

    /// True after `on_close`: later callbacks are no-ops.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes held for a head split across callbacks (≤ the head limit).
    pub fn buffered(&self) -> usize {
        self.decoder.buffered()
    }

    /// `available` new downstream bytes arrived; `fetch(start, len)` reads
    /// up to `len` of them from offset `start` (host buffer access).
    pub fn on_downstream<F, B>(
        &mut self,
        available: usize,
        end_of_stream: bool,
        now_us: u64,
        mut fetch: F,
        out: &mut Vec<Event>,
    ) where
        F: FnMut(usize, usize) -> Option<B>,
        B: AsRef<[u8]>,
    {
        if self.closed {
            return;
        }
        // `pos` only grows, by at most what is left of `available`, so the
        // loop is linear in the bytes the host delivered.
        let mut pos = 0usize;
        while pos < available {
            let left = available.saturating_sub(pos);
            match self.phase {
                Phase::Ignore | Phase::Passthrough => break,
                Phase::Body(remaining) => {
                    // `skip` is at most `left`, so it fits in usize.
                    let skip = usize::try_from(remaining).map_or(left, |r| r.min(left));
                    pos = pos.saturating_add(skip);
                    self.phase = match remaining.saturating_sub(skip as u64) {
                        0 => Phase::Head,
                        more => Phase::Body(more),
                    };
                }
                Phase::Head => {
                    let want = self.decoder.wants().min(left);
                    let Some(bytes) = fetch(pos, want) else { break };
                    // A host that returns more than asked is not trusted
                    // beyond what was asked.
                    let chunk = bytes.as_ref();
                    let chunk = chunk.get(..want).unwrap_or(chunk);
                    if chunk.is_empty() {
                        break;
                    }
                    let start = *self.head_start_us.get_or_insert(now_us);
                    match self.decoder.feed(chunk) {
                        Ok(Progress::NeedMore) => pos = pos.saturating_add(chunk.len()),
                        Ok(Progress::Head { head, consumed }) => {
                            pos = pos.saturating_add(consumed);
                            let next = if head.kind == Payload::Request {
                                let vars = head.request_vars();
                                let ex = exchange_from(&head, &vars, start);
                                match vars.content_length() {
                                    Some(0) => Some((ex, Phase::Head)),
                                    Some(n) => Some((ex, Phase::Body(n))),
                                    None => Some((ex, Phase::Ignore)),
                                }
                            } else {
                                None
                            };
                            self.head_start_us = None;
                            // The previous exchange is over once the next
                            // request is complete.
                            self.finish_active(now_us, out);
                            match next {
                                Some((ex, phase)) => {
                                    self.response.reset();
                                    self.active = Some(Active {
                                        ex,
                                        last_upstream_us: None,
                                        response_error: false,
                                    });
                                    self.phase = phase;
                                }
                                None => self.phase = Phase::Ignore,
                            }
                        }
                        Err(e) => {
                            // The previous exchange was complete before
                            // this head began: it is reported (ending now,
                            // as a good next head would end it), then the
                            // error, then nothing more on this stream.
                            self.finish_active(now_us, out);
                            out.push(Event::RequestError(e));
                            self.phase = Phase::Passthrough;
                        }
                    }
                }
            }
        }
        if end_of_stream {
            self.downstream_ended(out);
        }
    }

    /// `available` new upstream (response) bytes arrived.
    pub fn on_upstream<F, B>(
        &mut self,
        available: usize,
        end_of_stream: bool,
        now_us: u64,
        mut fetch: F,
        out: &mut Vec<Event>,
    ) where
        F: FnMut(usize, usize) -> Option<B>,
        B: AsRef<[u8]>,
    {
        if self.closed || self.phase == Phase::Passthrough {
            return;
        }
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if available > 0 {
            a.ex.first_byte_us.get_or_insert(now_us);
            a.last_upstream_us = Some(now_us);
            let mut pos = 0usize;
            while pos < available && self.response.result().is_none() {
                let want = STATUS_FETCH.min(available.saturating_sub(pos));
                let Some(bytes) = fetch(pos, want) else {
                    break;
                };
                let chunk = bytes.as_ref();
                let chunk = chunk.get(..want).unwrap_or(chunk);
                if chunk.is_empty() {
                    break;
                }
                pos = pos.saturating_add(chunk.len());
                match self.response.feed(chunk) {
                    Ok(StatusProgress::NeedMore) => {}
                    Ok(StatusProgress::Done(s)) => a.ex.status = Some(s.code),
                    Err(e) => {
                        a.response_error = true;
                        out.push(Event::ResponseError(e));
                    }
                }
            }
        }
        if end_of_stream {
            self.finish_active(now_us, out);
        }
    }

    /// Either side closed (or the host is done with the connection).
    pub fn on_close(&mut self, now_us: u64, out: &mut Vec<Event>) {
        if self.closed {
            return;
        }
        self.downstream_ended(out);
        // Without an upstream end of stream, the last response byte is the
        // best end time; with no response at all, the close is.
        let end = self
            .active
            .as_ref()
            .and_then(|a| a.last_upstream_us)
            .unwrap_or(now_us);
        self.finish_active(end, out);
        self.closed = true;
    }

    fn downstream_ended(&mut self, out: &mut Vec<Event>) {
        if self.phase == Phase::Head {
            if let Some(e) = self.decoder.finish() {
                out.push(Event::RequestError(e));
                self.phase = Phase::Passthrough;
            }
        }
    }

    fn finish_active(&mut self, end_us: u64, out: &mut Vec<Event>) {
        let Some(mut a) = self.active.take() else {
            return;
        };
        if a.ex.status.is_none() && !a.response_error {
            match self.response.finish() {
                Some(Ok(s)) => a.ex.status = Some(s.code),
                Some(Err(e)) => out.push(Event::ResponseError(e)),
                None => {}
            }
        }
        a.ex.end_us = end_us.max(a.ex.start_us);
        out.push(Event::Completed(a.ex));
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::red::route::PathTemplate;
    use crate::uwsgi::packet::encode_head;

    fn request(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
        let cl = body.len().to_string();
        let mut p = Vec::new();
        encode_head(
            0,
            0,
            &[
                ("REQUEST_METHOD", method),
                ("PATH_INFO", path),
                ("CONTENT_LENGTH", if body.is_empty() { "" } else { &cl }),
                ("SERVER_NAME", "localhost"),
                ("HTTP_HOST", "example.org"),
            ],
            &mut p,
        )
        .unwrap();
        p.extend_from_slice(body);
        p
    }

    fn slice<'a>(data: &'a [u8]) -> impl FnMut(usize, usize) -> Option<&'a [u8]> + 'a {
        move |s, n| Some(&data[s..(s + n).min(data.len())])
    }

    fn down(t: &mut ConnectionTracker, data: &[u8], eos: bool, now: u64) -> Vec<Event> {
        let mut out = Vec::new();
        t.on_downstream(data.len(), eos, now, slice(data), &mut out);
        out
    }

    fn up(t: &mut ConnectionTracker, data: &[u8], eos: bool, now: u64) -> Vec<Event> {
        let mut out = Vec::new();
        t.on_upstream(data.len(), eos, now, slice(data), &mut out);
        out
    }

    fn tracker() -> ConnectionTracker {
        ConnectionTracker::new(crate::uwsgi::DEFAULT_HEAD_LIMIT, 4096)
    }

    /// A packet with arbitrary bytes in its vars (`encode_head` takes text).
    fn raw_request(vars: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, v) in vars {
            body.extend_from_slice(&(k.len() as u16).to_le_bytes());
            body.extend_from_slice(k.as_bytes());
            body.extend_from_slice(&(v.len() as u16).to_le_bytes());
            body.extend_from_slice(v);
        }
        let mut p = vec![0];
        p.extend_from_slice(&(body.len() as u16).to_le_bytes());
        p.push(0);
        p.extend_from_slice(&body);
        p
    }

    #[test]
    fn non_utf8_vars_are_replacement_characters_and_flagged() {
        let mut t = tracker();
        let head = raw_request(&[
            ("REQUEST_METHOD", b"G\xffT"),
            ("PATH_INFO", b"/caf\xff"),
            ("HTTP_HOST", b"h\xc3"),
        ]);
        assert!(down(&mut t, &head, false, 100).is_empty());
        up(
            &mut t,
            b"HTTP/1.1 200 O\xffK\r\nX-A: \xfe\r\n\r\n",
            false,
            200,
        );
        let ev = up(&mut t, b"", true, 300);
        let [Event::Completed(ex)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert!(ex.invalid_utf8);
        assert_eq!(
            (
                ex.method.as_str(),
                ex.path.as_str(),
                ex.host.as_str(),
                ex.status
            ),
            ("G\u{fffd}T", "/caf\u{fffd}", "h\u{fffd}", Some(200))
        );
        let l = ex.labels(&RouteNormalizer::new(vec![], true), None);
        assert_eq!((l.method, l.route.as_str()), ("_OTHER", "/caf\u{fffd}"));

        let mut t = tracker();
        assert!(down(&mut t, &request("GET", "/caf\u{e9}", b""), false, 100).is_empty());
        up(&mut t, b"HTTP/1.1 200 OK\r\n\r\n", false, 200);
        let ev = up(&mut t, b"", true, 300);
        let [Event::Completed(ex)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert!(!ex.invalid_utf8, "valid UTF-8 is not flagged");
    }

    #[test]
    fn one_request_one_response() {
        let mut t = tracker();
        assert!(down(
            &mut t,
            &request("POST", "/items/42", b"0123456789"),
            false,
            100
        )
        .is_empty());
        assert!(up(&mut t, b"HTTP/1.1 201 Created\r\n", false, 250).is_empty());
        assert!(up(&mut t, b"Content-Length: 0\r\n\r\n", false, 300).is_empty());
        let ev = up(&mut t, b"", true, 400);
        let [Event::Completed(ex)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (ex.method.as_str(), ex.path.as_str(), ex.status),
            ("POST", "/items/42", Some(201))
        );
        assert_eq!((ex.duration_us(), ex.ttfb_us()), (300, Some(150)));
        let routes = RouteNormalizer::new(vec![PathTemplate::parse("/items/{id}").unwrap()], true);
        let l = ex.labels(&routes, None);
        assert_eq!(
            (l.route.as_str(), l.service.as_str(), l.protocol, l.code),
            ("/items/{id}", "localhost", "uwsgi", 201)
        );
        assert_eq!(ex.labels(&routes, Some("shop")).service, "shop");
        let mut out = Vec::new();
        t.on_close(500, &mut out);
        assert!(out.is_empty(), "already finished");
        assert!(t.is_closed());
    }

    #[test]
    fn head_split_across_callbacks_and_body_skipped_unread() {
        let p = request("PUT", "/a", &[b'x'; 3000]);
        let mut t = tracker();
        let mut fetched = 0;
        for (i, c) in p.chunks(5).enumerate() {
            let mut out = Vec::new();
            t.on_downstream(
                c.len(),
                false,
                10 + i as u64,
                |s, n| {
                    fetched += n;
                    Some(&c[s..s + n])
                },
                &mut out,
            );
            assert!(out.is_empty());
        }
        assert!(
            fetched < 200,
            "body bytes are skipped, not fetched ({fetched})"
        );
        up(
            &mut t,
            b"HTTP/1.0 500 Internal Server Error\r\n\r\n",
            false,
            900,
        );
        let mut out = Vec::new();
        t.on_close(1000, &mut out);
        let [Event::Completed(ex)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!((ex.start_us, ex.end_us, ex.status), (10, 900, Some(500)));
    }

    #[test]
    fn second_request_on_the_same_connection() {
        let mut t = tracker();
        let mut both = request("POST", "/one", b"abc");
        down(&mut t, &both, false, 0);
        up(&mut t, b"HTTP/1.1 200 OK\r\n\r\n", false, 5);
        both = request("GET", "/two", b"");
        let ev = down(&mut t, &both, false, 10);
        let [Event::Completed(first)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (first.path.as_str(), first.status, first.end_us),
            ("/one", Some(200), 10)
        );
        up(&mut t, b"HTTP/1.1 404 Not Found\r\n\r\n", true, 20);
        // Pipelined in one chunk: request, body, request.
        let mut t = tracker();
        let mut pipe = request("POST", "/p1", b"body!");
        pipe.extend(request("GET", "/p2", b""));
        let ev = down(&mut t, &pipe, false, 0);
        assert_eq!(ev.len(), 1);
        let mut out = Vec::new();
        t.on_close(7, &mut out);
        let [Event::Completed(second)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            (second.path.as_str(), second.status, second.code()),
            ("/p2", None, 0)
        );
    }

    /// Regression: a finished exchange was dropped when the next
    /// head on the connection failed to decode.
    #[test]
    fn bad_next_head_keeps_the_finished_exchange() {
        let mut t = tracker();
        down(&mut t, &request("GET", "/ok", b""), false, 0);
        up(&mut t, b"HTTP/1.1 200 OK\r\n\r\n", false, 5);
        let ev = down(&mut t, b"GET / HTTP/1.1\r\n", false, 9);
        let [Event::Completed(ex), Event::RequestError(e)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (ex.path.as_str(), ex.status, ex.end_us),
            ("/ok", Some(200), 9)
        );
        assert_eq!(*e, DecodeError::UnknownModifier { modifier1: b'G' });
        assert!(t.is_passthrough());
        let mut out = Vec::new();
        t.on_close(10, &mut out);
        assert!(out.is_empty(), "reported exactly once: {out:?}");
        // The same when the bad head arrives in the chunk after a body.
        let mut t = tracker();
        let mut p = request("POST", "/b", b"xyz");
        p.extend_from_slice(&[0, 5, 0, 0, 200, 0]);
        let ev = down(&mut t, &p, false, 3);
        assert!(ev.is_empty(), "{ev:?}");
        let ev = down(&mut t, &[1, 2, 3], true, 4);
        let [Event::Completed(ex), Event::RequestError(e)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!((ex.path.as_str(), ex.status), ("/b", None));
        assert_eq!(*e, DecodeError::VarOverrun { offset: 4 });
    }

    #[test]
    fn garbage_turns_to_passthrough() {
        let mut t = tracker();
        let ev = down(&mut t, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false, 0);
        assert_eq!(
            ev,
            vec![Event::RequestError(DecodeError::UnknownModifier {
                modifier1: b'G'
            })]
        );
        assert!(t.is_passthrough());
        assert!(up(&mut t, b"HTTP/1.1 200 OK\r\n", true, 1).is_empty());
        assert!(
            down(&mut t, &request("GET", "/", b""), false, 2).is_empty(),
            "never resyncs"
        );
        let mut out = Vec::new();
        t.on_close(3, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn truncated_head_is_reported_at_end_of_stream() {
        let p = request("GET", "/", b"");
        let mut t = tracker();
        assert!(down(&mut t, &p[..10], false, 0).is_empty());
        let ev = down(&mut t, b"", true, 1);
        assert_eq!(
            ev,
            vec![Event::RequestError(DecodeError::Truncated {
                got: 10,
                needed: p.len()
            })]
        );
        let mut out = Vec::new();
        t.on_close(2, &mut out);
        assert!(out.is_empty(), "reported once");
        // The same when only the close tells.
        let mut t = tracker();
        down(&mut t, &p[..3], false, 0);
        let mut out = Vec::new();
        t.on_close(2, &mut out);
        assert_eq!(
            out,
            vec![Event::RequestError(DecodeError::Truncated {
                got: 3,
                needed: 4
            })]
        );
    }

    #[test]
    fn bad_response_counts_the_request_with_code_zero() {
        let mut t = tracker();
        down(&mut t, &request("GET", "/", b""), false, 0);
        let ev = up(&mut t, b"\x00\x01\x02", false, 1);
        assert_eq!(
            ev,
            vec![Event::ResponseError(ResponseError::NotHttp { offset: 0 })]
        );
        let ev = up(&mut t, b"", true, 2);
        let [Event::Completed(ex)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(ex.code(), 0);
        // A response cut before its status.
        let mut t = tracker();
        down(&mut t, &request("GET", "/", b""), false, 0);
        up(&mut t, b"HTTP/1.1 5", false, 1);
        let ev = up(&mut t, b"", true, 2);
        assert_eq!(ev.len(), 2);
        assert_eq!(
            ev[0],
            Event::ResponseError(ResponseError::Truncated { got: 10 })
        );
        assert_eq!(ev[0].reason(), Some("response_truncated"));
    }

    #[test]
    fn no_response_at_all() {
        let mut t = tracker();
        down(&mut t, &request("GET", "/", b""), true, 0);
        let mut out = Vec::new();
        t.on_close(50, &mut out);
        let [Event::Completed(ex)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!((ex.code(), ex.duration_us(), ex.ttfb_us()), (0, 50, None));
    }

    #[test]
    fn non_request_packets_are_not_measured() {
        let mut t = tracker();
        let mut p = Vec::new();
        encode_head(17, 0, &[("task", "x")], &mut p).unwrap();
        assert!(down(&mut t, &p, false, 0).is_empty());
        up(&mut t, b"\xff\x00\x00\x01", true, 1);
        let mut out = Vec::new();
        t.on_close(2, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn service_fallbacks() {
        let mut t = tracker();
        let mut p = Vec::new();
        encode_head(
            0,
            0,
            &[
                ("REQUEST_METHOD", "GET"),
                ("SERVER_NAME", "_"),
                ("HTTP_HOST", "h.example"),
            ],
            &mut p,
        )
        .unwrap();
        down(&mut t, &p, true, 0);
        let mut out = Vec::new();
        t.on_close(1, &mut out);
        let [Event::Completed(ex)] = out.as_slice() else {
            panic!()
        };
        assert_eq!(ex.service(None), "h.example");
        assert_eq!(ex.path, "");
        let l = ex.labels(&RouteNormalizer::new(vec![], true), None);
        assert_eq!(l.route, "/");
    }
}
