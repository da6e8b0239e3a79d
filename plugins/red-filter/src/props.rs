//! Reading Envoy attributes. Each read is a host call (and a guest
//! allocation), so callers read only what they need.

use proxy_wasm::hostcalls;

pub fn bytes(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

pub fn string(path: &[&str]) -> Option<String> {
    bytes(path).and_then(|b| String::from_utf8(b).ok())
}

/// Integers, timestamps and durations arrive as 8 little-endian bytes
/// (timestamps and durations in nanoseconds).
pub fn int64(path: &[&str]) -> Option<i64> {
    let b = bytes(path)?;
    let arr: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some(i64::from_le_bytes(arr))
}
