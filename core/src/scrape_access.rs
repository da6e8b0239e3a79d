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

use crate::config::schema::{Key, Ty};
use crate::config::ConfigError;

/// Most entries of an allow list: each scrape tries them in order.
pub const MAX_ALLOW_CIDRS: usize = 64;
/// A shorter token is guessable over the network; refused.
pub const MIN_TOKEN_BYTES: usize = 16;
pub const MAX_TOKEN_BYTES: usize = 256;
/// The default allow list: the host itself only.
pub const DEFAULT_ALLOW_CIDRS: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// The two keys of every configuration that serves a page (red-filter's
/// self/both mode, uwsgi-stats' admin and nginx roles), for the key tables
/// the parsers and the JSON Schemas read.
pub const ALLOW_CIDRS_KEY: Key = Key::new(
    "scrape_allow_cidrs",
    Ty::List {
        item: &Ty::Str {
            min: 1,
            max_bytes: 0,
            slash: false,
        },
        min: 0,
        max: MAX_ALLOW_CIDRS,
    },
    "client ranges whose request for the page is answered (default loopback; [] = nobody)",
)
.beyond("each an IPv4 or IPv6 CIDR");

pub const BEARER_TOKEN_KEY: Key = Key::new(
    "scrape_bearer_token",
    Ty::Str {
        min: 1,
        max_bytes: 0,
        slash: false,
    },
    "a page request must also carry Authorization: Bearer <token> (compared in constant time)",
)
.beyond("16 to 256 bytes");

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
        // Byte-wise throughout: str patterns and integer parsing would
        // each add their machinery to every module.
        let s = s.as_bytes();
        let (addr, bits) = match s.iter().position(|c| *c == b'/') {
            Some(i) => (s.get(..i).unwrap_or_default(), s.get(i.saturating_add(1)..)),
            None => (s, None),
        };
        let ip = parse_ip(addr).ok_or("not an IP address or CIDR")?;
        let (v6, width, value) = match ip {
            IpAddr::V4(a) => (false, 32u32, u128::from(u32::from(a))),
            IpAddr::V6(a) => (true, 128u32, u128::from(a)),
        };
        let prefix = match bits {
            None => width,
            Some(b) => {
                if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
                    return Err("prefix length is not a number");
                }
                if b.len() > 3 {
                    return Err("prefix length out of range");
                }
                let n = b.iter().fold(0u32, |a, d| {
                    a.wrapping_mul(10)
                        .wrapping_add(u32::from(d.wrapping_sub(b'0')))
                });
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
    let is_port = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
    if let Some(rest) = b.strip_prefix(b"[") {
        let end = rest.iter().position(|c| *c == b']')?;
        let (addr, after) = (rest.get(..end)?, rest.get(end.checked_add(1)?..)?);
        if !(after.is_empty() || after.strip_prefix(b":").is_some_and(is_port)) {
            return None;
        }
        return parse_v6(addr).map(|a| IpAddr::V6(Ipv6Addr::from(a)));
    }
    if let Some(ip) = parse_ip(b) {
        return Some(ip);
    }
    let colon = b.iter().rposition(|c| *c == b':')?;
    let (addr, port) = (b.get(..colon)?, b.get(colon.checked_add(1)?..)?);
    if !is_port(port) {
        return None;
    }
    parse_v4(addr).map(|a| IpAddr::V4(Ipv4Addr::from(a)))
}

/// An IPv4 or IPv6 address in its textual form (as `std`'s `IpAddr`
/// parser reads it; a property test checks the two agree). Written here
/// because `std`'s parser would be linked into every proxy-wasm module.
pub fn parse_ip(b: &[u8]) -> Option<IpAddr> {
    parse_v4(b)
        .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
        .or_else(|| parse_v6(b).map(|a| IpAddr::V6(Ipv6Addr::from(a))))
}

/// Dotted quad: four decimal parts 0-255, no leading zeros.
fn parse_v4(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    let mut parts = 0u8;
    for p in b.split(|c| *c == b'.') {
        let ok = !p.is_empty()
            && p.len() <= 3
            && p.iter().all(u8::is_ascii_digit)
            && !(p.len() > 1 && p.first() == Some(&b'0'));
        if !ok {
            return None;
        }
        let v = p.iter().fold(0u32, |a, d| {
            a.wrapping_mul(10)
                .wrapping_add(u32::from(d.wrapping_sub(b'0')))
        });
        if v > 255 {
            return None;
        }
        n = n.wrapping_shl(8) | v;
        parts = parts.checked_add(1)?;
    }
    (parts == 4).then_some(n)
}

/// The groups of one side of an IPv6 address (`a:b:c`, empty: none); the
/// last may be a dotted quad (two groups) when `v4_last`.
fn v6_groups(b: &[u8], v4_last: bool, out: &mut Vec<u16>) -> Option<()> {
    if b.is_empty() {
        return Some(());
    }
    let n = b.split(|c| *c == b':').count();
    for (i, p) in b.split(|c| *c == b':').enumerate() {
        if v4_last && i.checked_add(1) == Some(n) && p.contains(&b'.') {
            let [a, b2, c, d] = parse_v4(p)?.to_be_bytes();
            out.push(u16::from_be_bytes([a, b2]));
            out.push(u16::from_be_bytes([c, d]));
        } else {
            if p.is_empty() || p.len() > 4 || !p.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let g = p.iter().fold(0u16, |a, h| {
                let d = match h {
                    b'0'..=b'9' => h.wrapping_sub(b'0'),
                    b'a'..=b'f' => h.wrapping_sub(b'a').wrapping_add(10),
                    _ => h.wrapping_sub(b'A').wrapping_add(10),
                };
                a.wrapping_shl(4) | u16::from(d)
            });
            out.push(g);
        }
        if out.len() > 8 {
            return None;
        }
    }
    Some(())
}

/// Eight groups, or fewer around one `::` standing for at least one zero
/// group; a dotted quad may end it.
fn parse_v6(b: &[u8]) -> Option<u128> {
    let mut head = Vec::new();
    let mut tail = Vec::new();
    match b.windows(2).position(|w| w == b"::") {
        Some(i) => {
            let (h, t) = (b.get(..i)?, b.get(i.checked_add(2)?..)?);
            if t.windows(2).any(|w| w == b"::") {
                return None;
            }
            v6_groups(h, false, &mut head)?;
            v6_groups(t, true, &mut tail)?;
            if head.len().checked_add(tail.len())? > 7 {
                return None;
            }
        }
        None => {
            v6_groups(b, true, &mut head)?;
            if head.len() != 8 {
                return None;
            }
        }
    }
    let fill = 8usize.checked_sub(head.len())?.checked_sub(tail.len())?;
    let zeros = std::iter::repeat_n(&0u16, fill);
    Some(
        head.iter()
            .chain(zeros)
            .chain(tail.iter())
            .fold(0u128, |a, g| a.wrapping_shl(16) | u128::from(*g)),
    )
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
    let p = p.as_bytes();
    if p.first() != Some(&b'/') {
        return Err(ConfigError::new(key, "must start with '/'"));
    }
    let chars_ok = p
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'/'));
    let segments_ok = p.split(|c| *c == b'/').all(|s| s != b"." && s != b"..");
    let no_empty = !p.windows(2).any(|w| w == b"//");
    if !chars_ok || !segments_ok || !no_empty {
        return Err(ConfigError::new(
            key,
            "only [A-Za-z0-9-._~] segments separated by single '/', no '.' or '..' segment",
        ));
    }
    Ok(())
}

#[cfg(test)]
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// The hand-written parser reads exactly what std's does.
        #[test]
        fn parser_agrees_with_std(s in "[0-9a-fA-F:.]{0,45}") {
            let ours = parse_ip(s.as_bytes());
            let std_: Option<IpAddr> = s.parse().ok();
            proptest::prop_assert_eq!(ours, std_, "{}", s);
        }

        #[test]
        fn parser_agrees_with_std_on_near_addresses(
            groups in proptest::collection::vec("[0-9a-f]{0,5}", 0..10),
            sep in "(:|::|\\.)",
            v4 in proptest::option::of("[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,4}"),
        ) {
            let mut s = groups.join(":");
            if let Some(v4) = v4 { s.push_str(&sep); s.push_str(&v4); }
            let ours = parse_ip(s.as_bytes());
            let std_: Option<IpAddr> = s.parse().ok();
            proptest::prop_assert_eq!(ours, std_, "{}", s);
        }
    }

    #[test]
    fn parser_cases() {
        for ok in [
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1::8",
            "::ffff:127.0.0.1",
            "1:2:3:4:5:6:1.2.3.4",
            "::1.2.3.4",
            "FE80::aB:1",
            "0001:2::",
        ] {
            assert_eq!(parse_ip(ok.as_bytes()), Some(ip(ok)), "{ok}");
        }
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "256.1.1.1",
            "1::2::3",
            ":::",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7::8:9",
            "12345::",
            "1.2.3.4::",
            "::1.2.3",
            "g::",
            ":1",
            "1:",
            "+1::",
        ] {
            assert_eq!(parse_ip(bad.as_bytes()), None, "{bad}");
            assert!(bad.parse::<IpAddr>().is_err(), "std agrees on {bad}");
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
