//! The one thing the worker VMs of a proxy share: a key/value store with
//! compare-and-swap (proxy-wasm shared data in Envoy, `shm_kv` in
//! ngx_wasm_module). Admission ([`super::admission`]) and the self-served
//! state ([`super::shared`]) are written against this trait only, so every
//! failure a host can produce is injected by a fake store in native tests.

use std::hash::RandomState;

use super::maps::HashMap;
use super::names;

/// A stored value (absent when the key does not exist) and its CAS token.
pub type Versioned = (Option<Vec<u8>>, Option<u32>);

/// Result of a compare-and-swap write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasWrite {
    Written,
    Mismatch,
}

/// Why the store could not answer. Each maps to a `reason` of
/// `uwsgi_red_internal_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvError {
    /// The host refused the call (bad key, no shared data, ...).
    Unavailable,
    /// The host refused the value's size (zone full, value over a limit).
    TooLarge,
}

impl KvError {
    pub fn reason(self) -> &'static str {
        match self {
            KvError::Unavailable => names::REASON_STORE_UNAVAILABLE,
            KvError::TooLarge => names::REASON_STORE_TOO_LARGE,
        }
    }
}

/// `get` returns the value and its CAS token. `set` with `Some(cas)` fails
/// with [`CasWrite::Mismatch`] when the key changed since that token was
/// read. `set` with `None` is the creation of a key `get` reported absent:
/// ngx_wasm_module treats it as "only if still absent"; Envoy writes it
/// unconditionally, which is why creation only ever writes an *empty*
/// value, from `on_configure`, before the VM records anything.
pub trait KvStore {
    fn get(&mut self, key: &str) -> Result<Versioned, KvError>;
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<CasWrite, KvError>;
}

/// An in-process store with Envoy's (weaker) contract: a single-VM host's
/// admission state, and the reference the fault-injecting test stores wrap.
#[derive(Debug, Default, Clone)]
pub struct LocalKv {
    /// SipHash for string keys: see [`super::maps`].
    map: HashMap<String, (Vec<u8>, u32), RandomState>,
    next: u32,
}

impl LocalKv {
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes a key, as an evicting host would.
    pub fn remove(&mut self, key: &str) -> bool {
        self.map.remove(key).is_some()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

impl KvStore for LocalKv {
    fn get(&mut self, key: &str) -> Result<Versioned, KvError> {
        Ok(match self.map.get(key) {
            // Envoy hands an empty value back as a null buffer, which the
            // proxy-wasm SDK reports as absent: so does this store.
            Some((v, cas)) if v.is_empty() => (None, Some(*cas)),
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<CasWrite, KvError> {
        // Tokens only need to differ from the previous one; 0 means "none"
        // on the proxy-wasm ABI, so it is skipped.
        self.next = self.next.wrapping_add(1).max(1);
        let token = self.next;
        match self.map.get_mut(key) {
            Some((v, current)) => {
                if cas.is_some_and(|c| c != *current) {
                    return Ok(CasWrite::Mismatch);
                }
                *v = value.to_vec();
                *current = token;
            }
            None => {
                self.map.insert(key.to_string(), (value.to_vec(), token));
            }
        }
        Ok(CasWrite::Written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_token_is_a_mismatch() {
        let mut kv = LocalKv::new();
        assert_eq!(kv.get("k").unwrap(), (None, None));
        assert_eq!(kv.set("k", b"a", None).unwrap(), CasWrite::Written);
        let (_, cas) = kv.get("k").unwrap();
        assert_eq!(kv.set("k", b"b", cas).unwrap(), CasWrite::Written);
        assert_eq!(kv.set("k", b"c", cas).unwrap(), CasWrite::Mismatch);
        assert_eq!(kv.get("k").unwrap().0.as_deref(), Some(&b"b"[..]));
    }
}
