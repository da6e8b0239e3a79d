//! Reading host attributes. Each read is a host call (and a guest
//! allocation), so callers read only what they need.
//!
//! Hosts encode numbers differently: Envoy sends integers, timestamps and
//! durations as 8 little-endian bytes (nanoseconds for times), while
//! ngx_wasm_module sends every property as text (`"200"`, durations and
//! timestamps as decimal seconds such as `"0.012"`). Both are accepted.
//!
//! Every value is read as bytes (the SDK's string getters trap on bytes
//! that are not UTF-8, which any client can send); text is made with
//! `read::text`, whose `invalid` flag the caller counts.

use uwsgi_red_proxy_wasm::read;

use crate::count;

pub fn bytes(path: &[&str]) -> Option<Vec<u8>> {
    let v = read::property(path);
    count::host_call(v.is_some());
    v
}

/// A time or duration attribute, in nanoseconds.
pub fn nanos(path: &[&str]) -> Option<i64> {
    decode_nanos(&bytes(path)?)
}

/// Decimal text is recognised first: an Envoy 8-byte value is never all
/// ASCII digits and dots (its top byte is below `'0'` for any duration,
/// status or timestamp before 2079).
fn as_text(b: &[u8]) -> Option<&str> {
    let text = !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_digit() || *c == b'.' || *c == b'-');
    text.then(|| std::str::from_utf8(b).ok()).flatten()
}

fn as_le(b: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = b.try_into().ok()?;
    Some(i64::from_le_bytes(arr))
}

pub fn decode_nanos(b: &[u8]) -> Option<i64> {
    match as_text(b) {
        Some(t) => {
            // Exact decimal: a float would lose microseconds on timestamps.
            let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
            if frac.len() > 9 || frac.contains(['.', '-']) || whole.contains('-') {
                return None;
            }
            let secs: i64 = if whole.is_empty() {
                0
            } else {
                whole.parse().ok()?
            };
            let frac_ns: i64 = if frac.is_empty() {
                0
            } else {
                format!("{frac:0<9}").parse().ok()?
            };
            secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
        }
        None => as_le(b),
    }
}

/// Header reads are map lookups in Envoy, cheaper than attribute (CEL)
/// evaluation. In an access logger they read the logged request's headers.
pub fn request_header_bytes(name: &str) -> Option<Vec<u8>> {
    let v = read::request_header(name);
    count::host_call(v.is_some());
    v
}

pub fn response_header_bytes(name: &str) -> Option<Vec<u8>> {
    let v = read::response_header(name);
    count::host_call(v.is_some());
    v
}

/// An HTTP status from its header bytes; anything but 1 to 3 ASCII
/// digits is no status.
pub fn status_code(b: &[u8]) -> Option<u16> {
    if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_binary_values() {
        assert_eq!(decode_nanos(&12_345_678i64.to_le_bytes()), Some(12_345_678));
        let now_ns = 1_760_000_000_123_456_789i64;
        assert_eq!(decode_nanos(&now_ns.to_le_bytes()), Some(now_ns));
        assert_eq!(decode_nanos(&[1, 2, 3]), None);
    }

    #[test]
    fn status_codes_from_bytes() {
        assert_eq!(status_code(b"200"), Some(200));
        assert_eq!(status_code(b"599"), Some(599));
        assert_eq!(status_code(b""), None);
        assert_eq!(status_code(b"2\xff0"), None);
        assert_eq!(status_code(b"+20"), None);
        assert_eq!(status_code(b"2000"), None);
    }

    #[test]
    fn nginx_text_values() {
        assert_eq!(
            decode_nanos(b"20000000"),
            Some(20_000_000_000_000_000),
            "8 digits are text, not LE bytes"
        );
        assert_eq!(decode_nanos(b"0.012"), Some(12_000_000));
        assert_eq!(
            decode_nanos(b"1760000000.123").map(|n| n / 1_000_000),
            Some(1_760_000_000_123)
        );
        assert_eq!(decode_nanos(b"1.2.3"), None);
        assert_eq!(decode_nanos(b""), None);
    }
}
