//! Configuration machinery shared by every plugin: JSON in, typed settings
//! out. Unknown keys and wrong types are errors that name the key, never
//! silently defaulted. The schemas themselves live beside the domain they
//! configure (`red::config`, `stats::config`, `uwsgi::config`,
//! `statsd::config`); this module knows no domain, so every domain may
//! depend on it and it on none.
//!
//! Bounds: a document over `MAX_CONFIG_BYTES` is refused before parsing;
//! typed fields stop deep nesting at the first wrong type (and serde_json
//! refuses nesting deeper than 128 anyway); each schema states a limit for
//! every list and string its settings keep.

use std::fmt;

use serde::de::DeserializeOwned;

pub(crate) mod node;
pub mod schema;

pub use schema::{json_schema, json_schema_switch, Key, Ty};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the offending key (`.` for the document itself).
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid plugin configuration at `{}`: {}",
            self.path, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// Largest configuration document: far above any real one (1000 templates
/// of 256 bytes are 250 KiB), small enough that parsing stays cheap.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Parses any serde type, reporting the JSON path of the first error.
/// An empty (or all-whitespace) document means "all defaults". The
/// proxy-wasm plugins' configs are read by [`node`] instead (a fraction of
/// the module bytes); this stays for the native and WASI users.
pub fn parse_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ConfigError> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::new(
            ".",
            format!(
                "document of {} bytes is over the {MAX_CONFIG_BYTES}-byte limit",
                bytes.len()
            ),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ConfigError {
            path,
            message: e.into_inner().to_string(),
        }
    })?;
    Ok(value)
}
