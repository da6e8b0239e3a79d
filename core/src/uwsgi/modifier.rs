//! The `modifier1` table from the uWSGI docs ("The uwsgi Protocol", packet
//! descriptions).
//!
//! Only modifiers whose payload is a vars block (`u16 key_len, key, u16
//! val_len, val`, repeated) are decoded into vars; the others carry a payload
//! of their own format (RPC arguments, code to eval, a raw response) that a
//! RED filter has no use for, so it is handed back as opaque bytes.

/// How the `datasize` bytes after the header are laid out, and whether the
/// packet is an application request (vars, then a body of CONTENT_LENGTH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// An application request: CGI-style vars followed by the body.
    Request,
    /// Key/value vars that are not a web request (spooler task, cache
    /// command, subscription...).
    Vars,
    /// Anything else: kept as raw bytes.
    Opaque,
}

impl Payload {
    pub fn has_vars(self) -> bool {
        matches!(self, Self::Request | Self::Vars)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modifier {
    pub code: u8,
    pub name: &'static str,
    pub payload: Payload,
}

const fn m(code: u8, name: &'static str, payload: Payload) -> Modifier {
    Modifier {
        code,
        name,
        payload,
    }
}

use Payload::{Opaque, Request, Vars};

/// Sorted by code so lookups can binary-search.
pub const MODIFIERS: &[Modifier] = &[
    m(0, "wsgi", Request),
    m(1, "unbit_1", Opaque),
    m(2, "unbit_2", Opaque),
    m(3, "unbit_3", Opaque),
    m(5, "psgi", Request),
    m(6, "lua_wsapi", Request),
    m(7, "rack", Request),
    m(8, "jvm", Request),
    m(9, "cgi", Request),
    m(10, "management", Vars),
    m(14, "php", Request),
    m(15, "mono", Request),
    m(17, "spooler", Vars),
    m(18, "symcall", Request),
    m(22, "eval", Opaque),
    m(23, "xslt", Request),
    m(24, "v8", Request),
    m(25, "gridfs", Request),
    m(26, "glusterfs", Request),
    m(27, "fastfuncs", Opaque),
    m(30, "wsgi_path_info_fix", Request),
    m(31, "message", Vars),
    m(32, "char_array", Opaque),
    m(33, "marshal", Opaque),
    m(48, "snmp", Opaque),
    m(72, "raw_http", Opaque),
    m(73, "announce", Opaque),
    m(74, "multicast", Opaque),
    m(95, "cluster_membership", Vars),
    m(96, "remote_log", Opaque),
    m(97, "brutal_reload", Opaque),
    m(98, "graceful_reload", Opaque),
    m(99, "config_request", Vars),
    m(100, "ping", Opaque),
    m(101, "echo", Opaque),
    m(109, "legion", Opaque),
    m(110, "signal", Opaque),
    m(111, "cache", Vars),
    m(173, "rpc", Opaque),
    m(200, "close_mark", Opaque),
    m(224, "subscription", Vars),
    m(255, "generic_response", Opaque),
];

pub fn lookup(code: u8) -> Option<&'static Modifier> {
    MODIFIERS
        .binary_search_by_key(&code, |m| m.code)
        .ok()
        .and_then(|i| MODIFIERS.get(i))
}

/// `"wsgi"` for 0, `"unknown"` for codes not in the table.
pub fn name(code: u8) -> &'static str {
    lookup(code).map_or("unknown", |m| m.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(MODIFIERS.windows(2).all(|w| w[0].code < w[1].code));
    }

    #[test]
    fn documented_codes_have_names() {
        assert_eq!(name(0), "wsgi");
        assert_eq!(name(5), "psgi");
        assert_eq!(name(7), "rack");
        assert_eq!(name(9), "cgi");
        assert_eq!(name(30), "wsgi_path_info_fix");
        assert_eq!(name(72), "raw_http");
        assert_eq!(name(100), "ping");
        assert_eq!(name(173), "rpc");
        assert_eq!(name(255), "generic_response");
        assert_eq!(name(b'G'), "unknown", "an HTTP request line is not uwsgi");
        assert_eq!(lookup(0).unwrap().payload, Payload::Request);
        assert_eq!(lookup(30).unwrap().payload, Payload::Request);
        assert_eq!(lookup(17).unwrap().payload, Payload::Vars);
        assert_eq!(lookup(173).unwrap().payload, Payload::Opaque);
    }
}
