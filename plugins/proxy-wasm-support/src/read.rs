//! Reading host values as bytes.
//!
//! The proxy-wasm SDK's string getters (`get_http_request_header`,
//! `hostcalls::get_map_value`, `get_map` and the other `String` ones) decode
//! with `String::from_utf8(..).unwrap()`: one header or path byte that is
//! not UTF-8, which any client can send, traps the VM. Every read here is
//! the SDK's byte variant, and text is made from the bytes by [`text`],
//! which never fails. The workspace `clippy.toml` forbids the string
//! getters, so no plugin can call them by accident.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

/// `reason` of `uwsgi_red_internal_errors_total` for a request whose
/// header, path or property held bytes that are not UTF-8 (the request is
/// still counted, with each invalid sequence shown as U+FFFD).
pub const REASON_INVALID_UTF8: &str = "invalid_utf8";

/// One value of a host map (`:path`, `accept`, `:status`...), as the host
/// holds it. `None`: absent, or the host refused the call.
pub fn map_value(map: MapType, name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(map, name).ok().flatten()
}

/// A request header (pseudo-headers included) of the current stream.
pub fn request_header(name: &str) -> Option<Vec<u8>> {
    map_value(MapType::HttpRequestHeaders, name)
}

/// A response header (pseudo-headers included) of the current stream.
pub fn response_header(name: &str) -> Option<Vec<u8>> {
    map_value(MapType::HttpResponseHeaders, name)
}

/// A header of the reply to this VM's `dispatch_http_call`.
pub fn http_call_response_header(name: &str) -> Option<Vec<u8>> {
    map_value(MapType::HttpCallResponseHeaders, name)
}

/// A host attribute (`xds.route_name`, `request.duration`...).
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

/// Text made from host bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text {
    pub value: String,
    /// The bytes were not UTF-8: each invalid sequence became U+FFFD (the
    /// caller counts it as [`REASON_INVALID_UTF8`]).
    pub invalid: bool,
}

/// Valid UTF-8 is moved, not copied; anything else is decoded lossily
/// (each maximal invalid sequence becomes one U+FFFD, as in every
/// Rust/WHATWG decoder), so distinct invalid values may share a label but
/// the result is always valid text, never longer than 3x the input.
pub fn text(bytes: Vec<u8>) -> Text {
    match String::from_utf8(bytes) {
        Ok(value) => Text {
            value,
            invalid: false,
        },
        Err(e) => Text {
            value: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            invalid: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_is_kept_and_not_flagged() {
        let t = text(b"/caf\xc3\xa9".to_vec());
        assert_eq!(t.value, "/caf\u{e9}");
        assert!(!t.invalid);
        assert_eq!(text(Vec::new()), Text::default());
    }

    #[test]
    fn invalid_bytes_become_replacement_characters_and_are_flagged() {
        let t = text(b"/caf\xff".to_vec());
        assert_eq!(t.value, "/caf\u{fffd}");
        assert!(t.invalid);
        let t = text(b"text/plain\xff\xfe".to_vec());
        assert_eq!(t.value, "text/plain\u{fffd}\u{fffd}");
        // A truncated multi-byte sequence is one replacement.
        let t = text(b"a\xe2\x82".to_vec());
        assert_eq!(t.value, "a\u{fffd}");
        assert!(t.invalid);
    }
}
