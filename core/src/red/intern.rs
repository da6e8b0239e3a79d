//! Label sets by the raw request facts, so a repeated request shape costs
//! one hash and one comparison instead of route normalisation, label
//! allocation and an admission lookup.
//!
//! The key is a hash of the facts; an entry keeps the facts themselves and
//! is used only when they are equal, so a hash collision can never put a
//! request under another request's labels. Bounded: facts longer than a
//! label could be are never interned, and a full table starts over (which
//! only costs the work the table saves).

use super::maps::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use super::admission::Decision;
use super::labels::LabelSet;
use super::route::MAX_PATH_BYTES;
use crate::red::facts::RequestFacts;

/// Entries before the table starts over.
pub const DEFAULT_MAX_ENTRIES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
struct OwnedFacts {
    method: String,
    path: String,
    route_name: Option<String>,
    code: u16,
    upstream: Option<String>,
    upstream_address: Option<String>,
}

impl OwnedFacts {
    fn of(f: &RequestFacts<'_>) -> Self {
        Self {
            method: f.method.to_string(),
            path: f.path.to_string(),
            route_name: f.route_name.map(str::to_string),
            code: f.code,
            upstream: f.upstream.map(str::to_string),
            upstream_address: f.upstream_address.map(str::to_string),
        }
    }

    fn same(&self, f: &RequestFacts<'_>) -> bool {
        self.code == f.code
            && self.method == f.method
            && self.path == f.path
            && self.route_name.as_deref() == f.route_name
            && self.upstream.as_deref() == f.upstream
            && self.upstream_address.as_deref() == f.upstream_address
    }
}

/// One request shape: its label set, and its admission decision once it
/// is final (admitted or refused; an undecided one is asked again).
#[derive(Debug, Clone)]
pub struct Interned {
    facts: OwnedFacts,
    pub labels: LabelSet,
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone)]
pub struct Interner {
    map: HashMap<u64, Interned>,
    max: usize,
}

impl Default for Interner {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ENTRIES)
    }
}

fn key(f: &RequestFacts<'_>) -> u64 {
    let mut h = DefaultHasher::new();
    (
        f.method,
        f.path,
        f.route_name,
        f.code,
        f.upstream,
        f.upstream_address,
    )
        .hash(&mut h);
    h.finish()
}

fn internable(f: &RequestFacts<'_>) -> bool {
    let short = |s: &str| s.len() <= MAX_PATH_BYTES;
    short(f.method)
        && short(f.path)
        && f.route_name.is_none_or(short)
        && f.upstream.is_none_or(short)
        && f.upstream_address.is_none_or(short)
}

impl Interner {
    pub fn new(max: usize) -> Self {
        Self {
            map: HashMap::new(),
            max: max.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entry for these facts, made with `labels` on first sight.
    /// `None` for facts too long to intern: the caller labels them itself.
    pub fn get(
        &mut self,
        facts: &RequestFacts<'_>,
        labels: impl FnOnce() -> LabelSet,
    ) -> Option<&mut Interned> {
        if !internable(facts) {
            return None;
        }
        let k = key(facts);
        let hit = self.map.get(&k).is_some_and(|e| e.facts.same(facts));
        if !hit {
            if self.map.len() >= self.max {
                self.map.clear();
            }
            self.map.insert(
                k,
                Interned {
                    facts: OwnedFacts::of(facts),
                    labels: labels(),
                    decision: None,
                },
            );
        }
        self.map.get_mut(&k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(path: &'a str, code: u16) -> RequestFacts<'a> {
        RequestFacts {
            method: "GET",
            path,
            route_name: None,
            code,
            upstream: Some("app"),
            upstream_address: None,
        }
    }

    fn labels(path: &str, code: u16) -> LabelSet {
        LabelSet::new("GET", code, path.to_string(), "app".into(), "http")
    }

    #[test]
    fn same_facts_reuse_the_entry_and_others_get_their_own() {
        let mut i = Interner::new(8);
        let mut made = 0;
        for _ in 0..3 {
            let e = i
                .get(&facts("/a", 200), || {
                    made += 1;
                    labels("/a", 200)
                })
                .unwrap();
            assert_eq!(e.labels.route, "/a");
        }
        assert_eq!(made, 1);
        let e = i.get(&facts("/a", 500), || labels("/a", 500)).unwrap();
        assert_eq!(e.labels.code, 500);
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn bounded_and_long_facts_are_not_interned() {
        let mut i = Interner::new(4);
        for n in 0..10 {
            let p = format!("/p{n}");
            i.get(&facts(&p, 200), || labels(&p, 200)).unwrap();
            assert!(i.len() <= 4);
        }
        let long = "/".repeat(MAX_PATH_BYTES + 1);
        assert!(i.get(&facts(&long, 200), || labels("/", 200)).is_none());
    }

    /// Two facts forced under one key: the stored facts decide, so the
    /// second request gets its own labels, never the first one's.
    #[test]
    fn a_colliding_key_never_reuses_other_labels() {
        let mut i = Interner::new(8);
        let a = facts("/a", 200);
        let b = facts("/b", 200);
        i.get(&a, || labels("/a", 200)).unwrap();
        // Simulate a collision: move /a's entry under /b's key.
        let e = i.map.remove(&key(&a)).unwrap();
        i.map.insert(key(&b), e);
        assert_eq!(i.get(&b, || labels("/b", 200)).unwrap().labels.route, "/b");
    }
}
