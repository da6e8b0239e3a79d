//! Who may read a page a plugin serves itself (red-filter's `self`/`both`
//! `metrics_path`, uwsgi-stats' admin paths), and which request paths are
//! that page.
//!
//! The plugins sit on the data path, so a page they answer is reachable by
//! every client of that listener unless they check. The check is two
//! conditions, both required: the client's address is in an allowed range
//! (default: loopback only) and, when a bearer token is configured, the
//! request carries it. A request that fails either is not answered: it
//! passes on untouched, as if the plugin were not there.
//!
//! Paths are compared on the bytes the client sent (the raw request
//! target), never on a decoded or normalised form: a host that decodes
//! `%3F` into `?` or resolves `/./` would otherwise let `/metrics%3F` be
//! answered while the host's own routing (an nginx `location =` with an
//! ACL) did not match it. Configured paths are restricted to characters and
//! segments that no host decodes or normalises, so a raw match is also a
//! match of the decoded path, and the cheap decoded check can come first.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::ConfigError;

/// Most entries of an allow list: each scrape tries them in order.
pub const MAX_ALLOW_CIDRS: usize = 64;
/// A shorter token is guessable over the network; refused.
pub const MIN_TOKEN_BYTES: usize = 16;
pub const MAX_TOKEN_BYTES: usize = 256;
/// The default allow list: the host itself only.
pub const DEFAULT_ALLOW_CIDRS: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// An IPv4 or IPv6 network. IPv4 addresses, and IPv4-mapped IPv6 ones
/// (`::ffff:127.0.0.1`, what a dual-stack listener reports), are compared
/// as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    v6: bool,
    net: u128,
    mask: u128,
}

impl Cidr {
    /// `a.b.c.d/n`, `x::y/n`, or an address alone (a single host).
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| "not an IP address or CIDR")?;
        let (v6, width, value) = match ip {
            IpAddr::V4(a) => (false, 32u32, u128::from(u32::from(a))),
            IpAddr::V6(a) => (true, 128u32, u128::from(a)),
        };
        let prefix = match bits {
            None => width,
            Some(b) => {
                let n: u32 = if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) {
                    b.parse().map_err(|_| "prefix length out of range")?
                } else {
                    return Err("prefix length is not a number");
                };
                if n > width {
                    return Err("prefix length out of range");
                }
                n
            }
        };
        let full: u128 = if v6 { u128::MAX } else { u128::from(u32::MAX) };
        let mask = full
            .checked_shl(width.saturating_sub(prefix))
            .filter(|_| prefix > 0)
            .map_or(0, |m| m & full);
        if value & !mask != 0 {
            return Err("host bits set (write the network address)");
        }
        Ok(Self {
            v6,
            net: value,
            mask,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v6, value) = match canonical(ip) {
            IpAddr::V4(a) => (false, u128::from(u32::from(a))),
            IpAddr::V6(a) => (true, u128::from(a)),
        };
        v6 == self.v6 && value & self.mask == self.net
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client address as the host reports it: Envoy's `source.address` is
/// `ip:port` or `[v6]:port`; ngx_wasm_module's is `$remote_addr`, the
/// address alone. Anything else (a Unix socket path, an internal listener's
/// name) is no address, and so never allowed.
pub fn parse_source(b: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(b).ok()?;
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, _port) = rest.split_once(']')?;
        return addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let (addr, port) = s.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    addr.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Equality of two byte strings in time that depends only on their
/// lengths: every byte pair is combined, with no early exit, so how long a
/// wrong token takes says nothing about how much of it was right. A crate
/// (`subtle`) would add a dependency to every module for these few lines;
/// `black_box` keeps the optimiser from turning the fold back into a
/// short-circuit compare. The length is not secret (and is compared first).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    diff == 0
}

/// The credentials of an `Authorization: Bearer <token>` header (the
/// scheme is case-insensitive, RFC 9110 §11.1; one space, RFC 6750 §2.1).
pub fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = (header.get(..7)?, header.get(7..)?);
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
}

/// RFC 6750 `b64token` characters; anything else could never be sent in
/// the header as configured.
fn token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// The access rule of one served page.
#[derive(Clone, PartialEq, Eq)]
pub struct ScrapeAccess {
    allow: Vec<Cidr>,
    token: Option<Vec<u8>>,
}

/// Never prints the token (configuration dumps, error messages).
impl fmt::Debug for ScrapeAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScrapeAccess")
            .field("allow", &self.allow)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Default for ScrapeAccess {
    fn default() -> Self {
        Self {
            allow: DEFAULT_ALLOW_CIDRS
                .iter()
                .filter_map(|c| Cidr::parse(c).ok())
                .collect(),
            token: None,
        }
    }
}

impl ScrapeAccess {
    /// From the two configuration keys (`None`: the key is absent).
    /// `cidrs_key`/`token_key` name them in errors.
    pub fn from_config(
        cidrs: Option<&[String]>,
        token: Option<&str>,
        cidrs_key: &str,
        token_key: &str,
    ) -> Result<Self, ConfigError> {
        let mut access = Self::default();
        if let Some(list) = cidrs {
            if list.len() > MAX_ALLOW_CIDRS {
                return Err(ConfigError::new(
                    cidrs_key,
                    format!("at most {MAX_ALLOW_CIDRS} entries, got {}", list.len()),
                ));
            }
            access.allow = list
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    Cidr::parse(c).map_err(|e| ConfigError::new(&format!("{cidrs_key}[{i}]"), e))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(t) = token {
            let ok =
                (MIN_TOKEN_BYTES..=MAX_TOKEN_BYTES).contains(&t.len()) && t.bytes().all(token_char);
            if !ok {
                // The value is never echoed: it is a secret.
                return Err(ConfigError::new(
                    token_key,
                    format!(
                        "must be {MIN_TOKEN_BYTES} to {MAX_TOKEN_BYTES} characters of [A-Za-z0-9-._~+/=]"
                    ),
                ));
            }
            access.token = Some(t.as_bytes().to_vec());
        }
        Ok(access)
    }

    /// No request can pass (an empty allow list): the plugin measures and
    /// never answers, as on a public listener.
    pub fn serves_nobody(&self) -> bool {
        self.allow.is_empty()
    }

    pub fn needs_token(&self) -> bool {
        self.token.is_some()
    }

    /// The source check: `source` is the host's `source.address` bytes.
    pub fn source_allowed(&self, source: Option<&[u8]>) -> bool {
        let Some(ip) = source.and_then(parse_source) else {
            return false;
        };
        self.allow.iter().any(|c| c.contains(ip))
    }

    /// The token check: `authorization` is the request's `authorization`
    /// header. Passes when no token is configured.
    pub fn token_allowed(&self, authorization: Option<&[u8]>) -> bool {
        match &self.token {
            None => true,
            Some(want) => authorization
                .and_then(bearer)
                .is_some_and(|got| ct_eq(got, want)),
        }
    }
}

/// The raw request target is the page: exactly `path`, or `path` followed
/// by a query string. Compared byte for byte, case-sensitive: `%3F`,
/// `%6D`, `//`, `/./`, `/x/../` and `#` never match.
pub fn is_page(raw: &[u8], path: &str) -> bool {
    match raw.strip_prefix(path.as_bytes()) {
        Some(rest) => rest.is_empty() || rest.first() == Some(&b'?'),
        None => false,
    }
}

/// The cheap first look, on the path as the host decoded it (Envoy's
/// `:path` is raw; ngx_wasm_module's is nginx's decoded, normalised URI
/// plus `?args`): a raw match of a [`validate_page_path`] path always
/// passes this, so only requests passing it need the raw path read.
pub fn maybe_page(decoded: &[u8], path: &str) -> bool {
    decoded
        .split(|c| *c == b'?' || *c == b'#')
        .next()
        .is_some_and(|p| p == path.as_bytes())
}

/// A served path must start with `/` and use only unreserved characters
/// (RFC 3986) and `/`, with no empty, `.` or `..` segment: no host decodes
/// or normalises such a path, so its raw and decoded forms are equal.
pub fn validate_page_path(p: &str, key: &str) -> Result<(), ConfigError> {
    if !p.starts_with('/') {
        return Err(ConfigError::new(key, "must start with '/'"));
    }
    let chars_ok = p
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'/'));
    let segments_ok = p.split('/').all(|s| s != "." && s != "..");
    if !chars_ok || !segments_ok || p.contains("//") {
        return Err(ConfigError::new(
            key,
            "only [A-Za-z0-9-._~] segments separated by single '/', no '.' or '..' segment",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains(ip("127.0.0.1")) && c.contains(ip("127.255.0.2")));
        assert!(!c.contains(ip("128.0.0.1")) && !c.contains(ip("::1")));
        assert!(c.contains(ip("::ffff:127.0.0.9")), "v4-mapped is v4");
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.7")) && !all.contains(ip("2001:db8::1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("::1/128").unwrap().contains(ip("::1")));
        for bad in [
            "127.0.0.1/33",
            "10.0.0.1/8",
            "::1/129",
            "x",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "1.2.3.4/ 8",
            "",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_as_hosts_report_them() {
        assert_eq!(parse_source(b"127.0.0.2:54321"), Some(ip("127.0.0.2")));
        assert_eq!(parse_source(b"127.0.0.2"), Some(ip("127.0.0.2")));
        assert_eq!(parse_source(b"[::1]:8080"), Some(ip("::1")));
        assert_eq!(parse_source(b"::1"), Some(ip("::1")));
        assert_eq!(
            parse_source(b"[::ffff:127.0.0.1]:1"),
            Some(ip("::ffff:127.0.0.1"))
        );
        for bad in [
            &b"/tmp/envoy.sock"[..],
            b"",
            b"127.0.0.1:",
            b"127.0.0.1:x",
            b"[::1",
            b"\xff",
            b"envoy://internal",
        ] {
            assert_eq!(parse_source(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn default_is_loopback_only() {
        let a = ScrapeAccess::default();
        for ok in [
            &b"127.0.0.1:1"[..],
            b"127.0.0.2",
            b"[::1]:9",
            b"[::ffff:127.0.0.1]:2",
        ] {
            assert!(a.source_allowed(Some(ok)), "{ok:?}");
        }
        for no in [&b"10.0.0.1:1"[..], b"[2001:db8::1]:9", b"/sock"] {
            assert!(!a.source_allowed(Some(no)), "{no:?}");
        }
        assert!(!a.source_allowed(None), "no address: refused");
        assert!(a.token_allowed(None) && !a.needs_token() && !a.serves_nobody());
    }

    #[test]
    fn config_keys() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = ScrapeAccess::from_config(Some(&list(&["127.0.0.1/32"])), None, "c", "t").unwrap();
        assert!(a.source_allowed(Some(b"127.0.0.1:5")) && !a.source_allowed(Some(b"127.0.0.2:5")));
        let none = ScrapeAccess::from_config(Some(&[]), None, "c", "t").unwrap();
        assert!(none.serves_nobody() && !none.source_allowed(Some(b"127.0.0.1:5")));
        let e = ScrapeAccess::from_config(Some(&list(&["10.0.0.0/8", "nope"])), None, "c", "t")
            .unwrap_err();
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("c[1]", "not an IP address or CIDR")
        );
        let many = list(&["10.0.0.0/8"; 65]);
        assert_eq!(
            ScrapeAccess::from_config(Some(&many), None, "c", "t")
                .unwrap_err()
                .path,
            "c"
        );
        for bad in ["short", "has space in the token!", &"x".repeat(257)] {
            let e = ScrapeAccess::from_config(None, Some(bad), "c", "t").unwrap_err();
            assert_eq!(e.path, "t");
            assert!(!e.message.contains(bad), "the secret is never echoed");
        }
        let t = ScrapeAccess::from_config(None, Some("s3cr3t-T0KEN-0123456789"), "c", "t").unwrap();
        assert!(t.needs_token());
        assert!(!format!("{t:?}").contains("s3cr3t"), "Debug redacts");
        assert!(t.token_allowed(Some(b"Bearer s3cr3t-T0KEN-0123456789")));
        assert!(t.token_allowed(Some(b"bearer s3cr3t-T0KEN-0123456789")));
        for no in [
            &b"Bearer s3cr3t-T0KEN-012345678"[..],
            b"Bearer s3cr3t-T0KEN-01234567890",
            b"Bearer  s3cr3t-T0KEN-0123456789",
            b"Basic s3cr3t-T0KEN-0123456789",
            b"s3cr3t-T0KEN-0123456789",
            b"Bearer S3cr3t-T0KEN-0123456789",
            b"Bearer \xff",
            b"",
        ] {
            assert!(!t.token_allowed(Some(no)), "{no:?}");
        }
        assert!(!t.token_allowed(None));
    }

    #[test]
    fn constant_time_compare_is_equality() {
        assert!(ct_eq(b"", b"") && ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd") && !ct_eq(b"abc", b"ab") && !ct_eq(b"\x00", b"\x80"));
    }

    #[test]
    fn only_the_raw_path_or_its_query_is_the_page() {
        let p = "/metrics";
        assert!(is_page(b"/metrics", p) && is_page(b"/metrics?x=1", p) && is_page(b"/metrics?", p));
        for no in [
            &b"/metrics%3F"[..],
            b"/metrics%3f",
            b"/metrics%23",
            b"/metrics%3Fx=1",
            b"//metrics",
            b"/./metrics",
            b"/x/../metrics",
            b"/%6Detrics",
            b"/Metrics",
            b"/METRICS",
            b"/metrics/",
            b"/metrics#x",
            b"/metricsx",
            b"/metric",
            b"",
        ] {
            assert!(!is_page(no, p), "{:?}", String::from_utf8_lossy(no));
        }
        // The decoded look lets the raw check see what nginx decoded.
        assert!(maybe_page(b"/metrics?", p) && maybe_page(b"/metrics#", p));
        assert!(maybe_page(b"/metrics", p) && !maybe_page(b"/metricsx", p));
    }

    #[test]
    fn served_paths_are_ones_no_host_rewrites() {
        for ok in ["/metrics", "/uwsgi/snapshot.json", "/a-b_c~d/e", "/m/", "/"] {
            assert!(validate_page_path(ok, "k").is_ok(), "{ok}");
        }
        for bad in [
            "metrics",
            "//metrics",
            "/a//b",
            "/./m",
            "/a/../m",
            "/a/.",
            "/m%3F",
            "/m?x",
            "/m#",
            "/M e",
        ] {
            assert_eq!(validate_page_path(bad, "k").unwrap_err().path, "k", "{bad}");
        }
    }
}
