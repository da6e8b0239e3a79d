//! The join between a uWSGI stats target and the backend label of the proxy
//! in front of it: `uwsgi_upstream_info{target, upstream} 1`, one series per
//! listen socket of the target. red-filter's optional `upstream` label is the
//! backend address as the proxy reports it (`host:port`: Envoy's
//! `upstream.address`, nginx's upstream address), while the worker families
//! carry only `target`; this info series lets a query (or a recording rule)
//! move a per-backend proxy series onto that uWSGI's worker series.
//!
//! A socket name becomes an `upstream` value by these rules, in order:
//! 1. the target lists `upstreams`: exactly those values, whatever the
//!    sockets are (port mappings, DNS names, several proxies' spellings);
//! 2. a TCP socket (`host:port`, port all digits) with the target's
//!    `upstream_host` set: `<upstream_host>:<port>`;
//! 3. anything else: the socket name unchanged. `127.0.0.1:8001` and
//!    `[::1]:8001` are already spelled as the proxies spell an address;
//!    a wildcard (`:8001`, `0.0.0.0:8001`, `*:8001`, `[::]:8001`) names no
//!    address any proxy connects to, so it joins nothing until
//!    `upstream_host` says which address the proxy uses; a Unix socket
//!    keeps its path (Envoy's spelling of a pipe address).
//!
//! Values are bounded like every label of the mapping: a socket name by the
//! decoder's label limit, `upstream_host` and `upstreams` by the
//! configuration's; the series pass through the host's one admission policy
//! and label escaping like the other families. Equal values (one address
//! served under two protocols) are one series.

use std::borrow::Cow;
use std::collections::HashSet;

use super::families::{Family, Sample};
use super::model::StatsDocument;
use crate::prom::text::MetricType;

/// The info family's name.
pub const UPSTREAM_INFO: &str = "uwsgi_upstream_info";

const HELP: &str = "Always 1: a listen socket of the target, spelled as the proxy's upstream label spells that backend (join key between proxy and uWSGI series).";

/// How one target's sockets become `upstream` values (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spelling<'a> {
    /// Host that replaces the host of every TCP listen socket.
    pub host: Option<&'a str>,
    /// Explicit values; when non-empty, the sockets are not read.
    pub list: &'a [String],
}

/// Whether `host` (the part of a socket name before `:port`) binds every
/// address rather than naming one.
fn is_wildcard(host: &str) -> bool {
    matches!(host, "" | "*" | "0.0.0.0" | "::" | "[::]")
}

/// `(host, port)` of a TCP socket name; `None` for a Unix socket path or
/// anything without a numeric port.
fn split_tcp(name: &str) -> Option<(&str, &str)> {
    let (host, port) = name.rsplit_once(':')?;
    let numeric = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    (numeric && !host.starts_with('/') && !host.starts_with('@')).then_some((host, port))
}

/// The `upstream` value of one socket name (rules 2 and 3 of the module doc).
pub fn upstream_of<'n>(socket: &'n str, host: Option<&str>) -> Cow<'n, str> {
    match (split_tcp(socket), host) {
        (Some((_, port)), Some(h)) => Cow::Owned(format!("{h}:{port}")),
        _ => Cow::Borrowed(socket),
    }
}

/// Whether the socket name, taken as it is, joins nothing (a wildcard bind).
pub fn is_wildcard_socket(socket: &str) -> bool {
    split_tcp(socket).is_some_and(|(h, _)| is_wildcard(h))
}

/// The distinct `upstream` values of `sockets`, first occurrence first.
pub fn upstreams<'n, I>(sockets: I, spelling: &Spelling<'_>) -> Vec<String>
where
    I: IntoIterator<Item = &'n str>,
{
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let values: Box<dyn Iterator<Item = Cow<'_, str>>> = if spelling.list.is_empty() {
        Box::new(
            sockets
                .into_iter()
                .map(|s| upstream_of(s, spelling.host))
                .filter(|v| !v.is_empty()),
        )
    } else {
        Box::new(spelling.list.iter().map(|s| Cow::Borrowed(s.as_str())))
    };
    for v in values {
        if seen.insert(v.clone()) {
            out.push(v.into_owned());
        }
    }
    out
}

/// `uwsgi_upstream_info{target, upstream} 1` for the listen sockets of
/// `doc` (one family, possibly empty: a document without sockets).
pub fn upstream_family(doc: &StatsDocument, target: &str, spelling: &Spelling<'_>) -> Family {
    let values = upstreams(doc.sockets.iter().map(|s| s.name.as_str()), spelling);
    Family {
        name: UPSTREAM_INFO,
        help: HELP,
        kind: MetricType::Gauge,
        integer_form: None,
        samples: values
            .into_iter()
            .map(|u| Sample {
                labels: vec![("target", target.to_string()), ("upstream", u)],
                value: 1.0,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::families::encode_text;

    fn names(v: &[&str], s: &Spelling<'_>) -> Vec<String> {
        upstreams(v.iter().copied(), s)
    }

    #[test]
    fn concrete_addresses_are_kept_wildcards_need_a_host() {
        let none = Spelling::default();
        assert_eq!(upstream_of("127.0.0.1:8001", None), "127.0.0.1:8001");
        assert_eq!(upstream_of("[::1]:8001", None), "[::1]:8001");
        assert_eq!(upstream_of(":8001", None), ":8001");
        assert_eq!(upstream_of("/run/app.sock", None), "/run/app.sock");
        assert_eq!(upstream_of("@app", None), "@app");
        assert_eq!(upstream_of("/tmp/a:1", Some("h")), "/tmp/a:1");
        assert_eq!(upstream_of("host:http", Some("h")), "host:http");
        assert_eq!(upstream_of(":8001", Some("10.0.0.5")), "10.0.0.5:8001");
        assert_eq!(
            upstream_of("0.0.0.0:8001", Some("app.internal")),
            "app.internal:8001"
        );
        assert_eq!(
            upstream_of("[::]:8001", Some("[fd00::5]")),
            "[fd00::5]:8001"
        );
        assert_eq!(
            upstream_of("127.0.0.1:8001", Some("10.0.0.5")),
            "10.0.0.5:8001"
        );
        for w in [":1", "*:1", "0.0.0.0:1", "[::]:1", ":::1"] {
            assert!(is_wildcard_socket(w), "{w}");
        }
        for c in ["127.0.0.1:1", "/tmp/s", "@a", "[::1]:1", "h:x"] {
            assert!(!is_wildcard_socket(c), "{c}");
        }
        assert_eq!(names(&["", "127.0.0.1:1"], &none), ["127.0.0.1:1"]);
    }

    #[test]
    fn equal_values_are_one_series_and_a_list_wins() {
        let host = Spelling {
            host: Some("127.0.0.1"),
            list: &[],
        };
        assert_eq!(
            names(&[":8001", "0.0.0.0:8001", "127.0.0.1:8002"], &host),
            ["127.0.0.1:8001", "127.0.0.1:8002"]
        );
        let list = vec!["lb.example:80".to_string(), "lb.example:80".to_string()];
        let listed = Spelling {
            host: Some("ignored"),
            list: &list,
        };
        assert_eq!(names(&["127.0.0.1:8001"], &listed), ["lb.example:80"]);
    }

    #[test]
    fn family_text() {
        let doc = crate::stats::decode(
            br#"{"version":"2.0.30","workers":[],"sockets":[
                {"name":"127.0.0.1:8001","proto":"uwsgi"},
                {"name":"127.0.0.1:8001","proto":"http"},
                {"name":":8002","proto":"uwsgi"},
                {"name":"a\"b\\c","proto":"uwsgi"}]}"#,
        )
        .unwrap()
        .document;
        let f = upstream_family(&doc, "app1", &Spelling::default());
        assert_eq!(
            encode_text(&[f]),
            "# HELP uwsgi_upstream_info Always 1: a listen socket of the target, spelled as the proxy's upstream label spells that backend (join key between proxy and uWSGI series).\n\
             # TYPE uwsgi_upstream_info gauge\n\
             uwsgi_upstream_info{target=\"app1\",upstream=\"127.0.0.1:8001\"} 1\n\
             uwsgi_upstream_info{target=\"app1\",upstream=\":8002\"} 1\n\
             uwsgi_upstream_info{target=\"app1\",upstream=\"a\\\"b\\\\c\"} 1\n"
        );
        let empty = crate::stats::decode(br#"{"version":"2.0.30","workers":[]}"#).unwrap();
        assert!(upstream_family(&empty.document, "a", &Spelling::default())
            .samples
            .is_empty());
    }
}
