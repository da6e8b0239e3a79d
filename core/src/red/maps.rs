//! The hash maps of the red modules: std's, or with feature `sdk-hashbrown`
//! the `hashbrown` crate the proxy-wasm SDK already links, so a module
//! carries one hash table implementation instead of two. Same
//! API for what the red modules use; no caller depends on iteration order.
//! String-keyed maps name `RandomState` (SipHash) as their hasher: a module
//! links SipHash anyway (the interner's fact hash), and hashbrown's default
//! (foldhash) string hashing would be inlined code of its own.

#[cfg(feature = "sdk-hashbrown")]
pub(crate) use hashbrown::{HashMap, HashSet};
#[cfg(not(feature = "sdk-hashbrown"))]
pub(crate) use std::collections::{HashMap, HashSet};
