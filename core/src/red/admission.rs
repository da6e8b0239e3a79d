//! One admission policy for every plugin: a hard, process-wide cap on the
//! number of distinct label sets, with everything beyond it folded into one
//! overflow series per status class (the opentelemetry-rust SDK model).
//!
//! `max_series` means the same everywhere: the number of distinct
//! non-overflow label sets one plugin configuration may create in the whole
//! process, across all of its worker VMs. red-filter and uwsgi-tcp add at
//! most six overflow series (status class × protocol); uwsgi-stats has no
//! overflow series and counts the samples it leaves out.
//!
//! Worker VMs share nothing but a [`KvStore`], so the slots live there:
//! - `<ns>.adm.n`: slots granted so far (u64 LE);
//! - `<ns>.adm.<i>`: the sorted 64-bit hashes of the label sets admitted
//!   into shard `i` (a label set's shard is its hash modulo the shard
//!   count, so a membership check reads one small value, never all).
//!
//! A new label set first reserves a slot (CAS on the count, refused at the
//! cap), then inserts its hash into its shard (CAS). When two VMs race on
//! the same new set, the loser finds the hash already there and gives its
//! reservation back: one set never holds two slots, and the cap is never
//! exceeded (during such a race another new set can be refused that would
//! have fit: the cap errs on the safe side).
//!
//! When the store cannot decide (an error, a value the host refuses as too
//! large, a missing or unreadable key, [`MAX_CAS_ATTEMPTS`] lost races) the
//! answer is [`Decision::Undecided`]: the caller still counts the request,
//! in the overflow series, and counts the reason. Nothing is cached then,
//! so the next request of that set asks again.

use super::maps::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use super::kv::{CasWrite, KvError, KvStore};
use super::names;

pub const DEFAULT_MAX_SERIES: usize = 1000;
/// Each retry means another VM wrote in between, i.e. made progress; a VM
/// that loses this many races in one decision gives up for this request.
pub const MAX_CAS_ATTEMPTS: u32 = 32;
/// Label sets per shard the shard count aims at: small values to copy.
pub const SERIES_PER_SHARD: usize = 128;
pub const MAX_SHARDS: usize = 1024;

/// Shards of the admission sets and of the self-served state for a cap.
pub fn shard_count(cap: usize) -> usize {
    cap.div_ceil(SERIES_PER_SHARD).clamp(1, MAX_SHARDS)
}

/// Stable within one build of a plugin (SipHash with fixed keys), which is
/// all worker VMs of one configuration need: they run the same module.
pub fn stable_hash<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// Why admission could not be decided; the `reason` label of
/// `uwsgi_red_internal_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undecided {
    Store(KvError),
    Contended,
    MissingKey,
    Corrupt,
}

impl Undecided {
    pub fn reason(self) -> &'static str {
        match self {
            Undecided::Store(e) => e.reason(),
            Undecided::Contended => names::REASON_CAS_CONTENDED,
            Undecided::MissingKey => names::REASON_STORE_MISSING,
            Undecided::Corrupt => names::REASON_STORE_CORRUPT,
        }
    }
}

impl From<KvError> for Undecided {
    fn from(e: KvError) -> Self {
        Undecided::Store(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The label set has (or now holds) a slot: its own series.
    Admitted,
    /// The cap is reached: the overflow series, counted as dropped.
    Refused,
    /// The store could not say: the overflow series, counted as dropped
    /// and as an internal error with this reason.
    Undecided(Undecided),
}

/// The shared slots of one configuration namespace.
#[derive(Debug, Clone)]
pub struct Admission {
    prefix: String,
    cap: u64,
    shards: usize,
}

type Members = (Vec<u64>, Option<u32>);

impl Admission {
    /// `namespace` names the configuration (see [`namespace`]).
    pub fn new(namespace: &str, cap: usize) -> Self {
        Self {
            prefix: format!("{namespace}.adm."),
            cap: u64::try_from(cap).unwrap_or(u64::MAX),
            shards: shard_count(cap),
        }
    }

    pub fn cap(&self) -> u64 {
        self.cap
    }

    fn count_key(&self) -> String {
        format!("{}n", self.prefix)
    }

    fn shard_key(&self, hash: u64) -> String {
        let shards = u64::try_from(self.shards).unwrap_or(1).max(1);
        format!("{}{}", self.prefix, hash.checked_rem(shards).unwrap_or(0))
    }

    /// Creates the count and every shard (empty) where absent. Runs in
    /// `on_configure`, before the VM admits anything, and never overwrites
    /// a value that exists.
    pub fn ensure_created<S: KvStore>(&self, kv: &mut S) -> Result<(), KvError> {
        create_if_absent(kv, &self.count_key(), &0u64.to_le_bytes())?;
        for i in 0..self.shards {
            create_if_absent(kv, &format!("{}{i}", self.prefix), MEMBERS_TAG)?;
        }
        Ok(())
    }

    /// Decides whether the label set with this hash gets a series.
    pub fn admit<S: KvStore>(&self, kv: &mut S, hash: u64) -> Decision {
        match self.try_admit(kv, hash) {
            Ok(d) => d,
            Err(u) => Decision::Undecided(u),
        }
    }

    fn try_admit<S: KvStore>(&self, kv: &mut S, hash: u64) -> Result<Decision, Undecided> {
        let shard_key = self.shard_key(hash);
        let mut budget = MAX_CAS_ATTEMPTS;
        let (mut members, mut shard_cas) = self.read_shard(kv, &shard_key)?;
        if members.binary_search(&hash).is_ok() {
            return Ok(Decision::Admitted);
        }
        if !self.reserve(kv, &mut budget)? {
            return Ok(Decision::Refused);
        }
        loop {
            let at = match members.binary_search(&hash) {
                // Another VM admitted the same set meanwhile: its slot counts.
                Ok(_) => {
                    self.release(kv, &mut budget);
                    return Ok(Decision::Admitted);
                }
                Err(at) => at,
            };
            members.insert(at, hash);
            let bytes: Vec<u8> = MEMBERS_TAG
                .iter()
                .copied()
                .chain(members.iter().flat_map(|h| h.to_le_bytes()))
                .collect();
            let written = kv.set(&shard_key, &bytes, shard_cas);
            match written {
                Ok(CasWrite::Written) => return Ok(Decision::Admitted),
                Ok(CasWrite::Mismatch) if budget > 1 => {
                    budget = budget.saturating_sub(1);
                    match self.read_shard(kv, &shard_key) {
                        Ok(m) => (members, shard_cas) = m,
                        Err(e) => {
                            self.release(kv, &mut budget);
                            return Err(e);
                        }
                    }
                }
                Ok(CasWrite::Mismatch) => {
                    self.release(kv, &mut budget);
                    return Err(Undecided::Contended);
                }
                Err(e) => {
                    self.release(kv, &mut budget);
                    return Err(e.into());
                }
            }
        }
    }

    fn read_shard<S: KvStore>(&self, kv: &mut S, key: &str) -> Result<Members, Undecided> {
        match kv.get(key)? {
            (Some(bytes), cas) => Ok((decode_members(&bytes)?, cas)),
            (None, _) => {
                // Evicted or never created: recreate it empty for the next
                // request; this one cannot be decided.
                let _ = create_if_absent(kv, key, MEMBERS_TAG);
                Err(Undecided::MissingKey)
            }
        }
    }

    /// Takes one slot; false at the cap.
    fn reserve<S: KvStore>(&self, kv: &mut S, budget: &mut u32) -> Result<bool, Undecided> {
        let key = self.count_key();
        loop {
            let (n, cas) = match kv.get(&key)? {
                (Some(bytes), cas) => (decode_count(&bytes)?, cas),
                (None, _) => {
                    self.recreate_count(kv);
                    return Err(Undecided::MissingKey);
                }
            };
            if n >= self.cap {
                return Ok(false);
            }
            match kv.set(&key, &n.saturating_add(1).to_le_bytes(), cas)? {
                CasWrite::Written => return Ok(true),
                CasWrite::Mismatch if *budget > 1 => *budget = budget.saturating_sub(1),
                CasWrite::Mismatch => return Err(Undecided::Contended),
            }
        }
    }

    /// Gives a reservation back. If that fails the slot stays taken: the
    /// cap errs on the safe side, counts stay exact.
    fn release<S: KvStore>(&self, kv: &mut S, budget: &mut u32) {
        let key = self.count_key();
        while *budget > 0 {
            *budget = budget.saturating_sub(1);
            let Ok((Some(bytes), cas)) = kv.get(&key) else {
                return;
            };
            let Ok(n) = decode_count(&bytes) else { return };
            match kv.set(&key, &n.saturating_sub(1).to_le_bytes(), cas) {
                Ok(CasWrite::Mismatch) => continue,
                _ => return,
            }
        }
    }

    /// An evicted count is rebuilt from the shards, so the cap still
    /// counts every admitted set.
    fn recreate_count<S: KvStore>(&self, kv: &mut S) {
        let mut n = 0u64;
        for i in 0..self.shards {
            if let Ok((Some(b), _)) = kv.get(&format!("{}{i}", self.prefix)) {
                n = n.saturating_add(u64::try_from(b.len() / 8).unwrap_or(0));
                // (the 1-byte tag never makes up a whole hash)
            }
        }
        let _ = create_if_absent(kv, &self.count_key(), &n.to_le_bytes());
    }
}

fn create_if_absent<S: KvStore>(kv: &mut S, key: &str, empty: &[u8]) -> Result<(), KvError> {
    let (value, cas) = kv.get(key)?;
    if value.is_none() {
        // A mismatch means another VM created it first: just as good.
        kv.set(key, empty, cas)?;
    }
    Ok(())
}

fn decode_count(bytes: &[u8]) -> Result<u64, Undecided> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_le_bytes)
        .map_err(|_| Undecided::Corrupt)
}

/// Leads every shard value: proxy-wasm hosts may report an *empty* value
/// as an absent one, so no stored value is ever empty.
const MEMBERS_TAG: &[u8] = b"M";

fn decode_members(bytes: &[u8]) -> Result<Vec<u64>, Undecided> {
    let bytes = bytes.strip_prefix(MEMBERS_TAG).ok_or(Undecided::Corrupt)?;
    let chunks = bytes.chunks_exact(8);
    if !chunks.remainder().is_empty() {
        return Err(Undecided::Corrupt);
    }
    let v: Vec<u64> = chunks
        .filter_map(|c| <[u8; 8]>::try_from(c).ok().map(u64::from_le_bytes))
        .collect();
    if v.windows(2).any(|w| w.first() >= w.get(1)) {
        return Err(Undecided::Corrupt);
    }
    Ok(v)
}

/// The key namespace of one plugin configuration: `scope` (the filter
/// instance, e.g. its service) plus a hash of everything that shapes the
/// shared values (`format` facts such as the cap and bucket bounds). Two
/// configurations that could not read each other's values never share
/// keys, so one can never wipe or misread the other's counts. No `/`: ngx_wasm_module reads
/// what precedes one as a `shm_kv` zone name.
pub fn namespace<F: Hash + ?Sized>(plugin: &str, scope: &str, format: &F) -> String {
    let scope: String = scope
        .chars()
        .map(|c| if c == '/' { '_' } else { c })
        .collect();
    format!("uwsgi_red.{plugin}.{scope}.{:016x}", stable_hash(format))
}

/// One VM's memory of decisions, so a known label set costs no host call.
/// Both sets are bounded: admitted hashes by the cap (plus what collides),
/// refused ones by a budget after which they are forgotten (forgetting
/// only costs a store lookup, never a wrong count).
#[derive(Debug, Clone)]
pub struct Admitter {
    policy: Admission,
    admitted: HashSet<u64>,
    refused: HashSet<u64>,
    refused_budget: usize,
}

impl Admitter {
    pub fn new(policy: Admission) -> Self {
        let cap = usize::try_from(policy.cap).unwrap_or(usize::MAX);
        Self {
            policy,
            admitted: HashSet::new(),
            refused: HashSet::new(),
            refused_budget: cap.saturating_mul(4).max(1024),
        }
    }

    pub fn policy(&self) -> &Admission {
        &self.policy
    }

    pub fn decide<S: KvStore, T: Hash + ?Sized>(&mut self, kv: &mut S, item: &T) -> Decision {
        let h = stable_hash(item);
        if self.admitted.contains(&h) {
            return Decision::Admitted;
        }
        if self.refused.contains(&h) {
            return Decision::Refused;
        }
        let d = self.policy.admit(kv, h);
        match d {
            Decision::Admitted => {
                self.admitted.insert(h);
            }
            Decision::Refused => {
                if self.refused.len() >= self.refused_budget {
                    self.refused.clear();
                }
                self.refused.insert(h);
            }
            Decision::Undecided(_) => {}
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::red::kv::LocalKv;

    #[test]
    fn cap_is_hard_and_known_sets_stay_admitted() {
        let mut kv = LocalKv::new();
        let p = Admission::new("t", 2);
        p.ensure_created(&mut kv).unwrap();
        let mut a = Admitter::new(p.clone());
        assert_eq!(a.decide(&mut kv, "a"), Decision::Admitted);
        assert_eq!(a.decide(&mut kv, "b"), Decision::Admitted);
        assert_eq!(a.decide(&mut kv, "c"), Decision::Refused);
        // A second VM sees the same slots.
        let mut b = Admitter::new(p);
        assert_eq!(b.decide(&mut kv, "b"), Decision::Admitted);
        assert_eq!(b.decide(&mut kv, "d"), Decision::Refused);
        assert_eq!(kv.get("t.adm.n").unwrap().0.unwrap(), 2u64.to_le_bytes());
    }

    /// Each backend address makes its own label set, so an `upstream`
    /// label is bounded by the same cap; beyond it the request goes to the
    /// overflow series, whose `upstream` is the overflow value.
    #[test]
    fn upstream_addresses_share_the_one_cap() {
        use crate::red::labels::LabelSet;
        let mut kv = LocalKv::new();
        let p = Admission::new("u", 2);
        p.ensure_created(&mut kv).unwrap();
        let mut a = Admitter::new(p);
        let set = |u: &str| {
            LabelSet::new("GET", 200, "/".into(), "s".into(), "http")
                .with_upstream(Some(u.to_string()))
        };
        assert_eq!(a.decide(&mut kv, &set("10.0.0.1:80")), Decision::Admitted);
        assert_eq!(a.decide(&mut kv, &set("10.0.0.2:80")), Decision::Admitted);
        let third = set("10.0.0.3:80");
        assert_eq!(a.decide(&mut kv, &third), Decision::Refused);
        assert_eq!(third.overflow().upstream.as_deref(), Some("__overflow__"));
        assert_eq!(a.decide(&mut kv, &set("10.0.0.1:80")), Decision::Admitted);
    }

    #[test]
    fn namespaces_differ_by_format_and_never_hold_a_slash() {
        let a = namespace("red_filter", "a/b", &(1000usize, [0.1f64.to_bits()]));
        let b = namespace("red_filter", "a/b", &(1000usize, [0.2f64.to_bits()]));
        assert_ne!(a, b);
        assert!(!a.contains('/'));
    }

    #[test]
    fn corrupt_values_are_undecided_and_left_alone() {
        let mut kv = LocalKv::new();
        let p = Admission::new("t", 10);
        p.ensure_created(&mut kv).unwrap();
        kv.set("t.adm.n", b"xyz", None).unwrap();
        assert_eq!(p.admit(&mut kv, 7), Decision::Undecided(Undecided::Corrupt));
        assert_eq!(kv.get("t.adm.n").unwrap().0.unwrap(), b"xyz");
    }
}
