//! Hard cap on the number of distinct label sets.

use std::collections::HashSet;
use std::hash::Hash;

pub const DEFAULT_MAX_SERIES: usize = 1000;

/// Admits label sets until `cap` distinct ones have been seen; later new
/// ones are refused (the caller folds them into the overflow series) and
/// counted.
#[derive(Debug, Clone)]
pub struct CardinalityLimiter<K> {
    admitted: HashSet<K>,
    cap: usize,
    dropped: u64,
}

impl<K: Hash + Eq> CardinalityLimiter<K> {
    pub fn new(cap: usize) -> Self {
        Self {
            admitted: HashSet::new(),
            cap,
            dropped: 0,
        }
    }

    /// True when `key` may have a series of its own.
    pub fn admit(&mut self, key: &K) -> bool
    where
        K: Clone,
    {
        if self.admitted.contains(key) {
            return true;
        }
        if self.admitted.len() < self.cap {
            self.admitted.insert(key.clone());
            return true;
        }
        self.dropped += 1;
        false
    }

    /// Requests whose label set was refused (one per refused record, so it
    /// can be compared with the overflow series' request count).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn len(&self) -> usize {
        self.admitted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.admitted.is_empty()
    }

    pub fn cap(&self) -> usize {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_is_hard_and_known_keys_stay_admitted() {
        let mut l = CardinalityLimiter::new(2);
        assert!(l.admit(&"a"));
        assert!(l.admit(&"b"));
        assert!(!l.admit(&"c"));
        assert!(!l.admit(&"c"));
        assert!(l.admit(&"a"));
        assert_eq!(l.len(), 2);
        assert_eq!(l.dropped(), 2);
    }
}
