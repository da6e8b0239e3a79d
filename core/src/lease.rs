//! A lease in a host's shared key/value store: which one of several
//! worker VMs does a job that must run once per host (uwsgi-stats polling
//! under nginx, where every worker process has its own root context and
//! ticks on its own).
//!
//! The stored value is the holder's id and the lease's expiry (two
//! little-endian `u64`). Every VM calls [`Lease::tick`] on each of its ticks: the
//! holder renews, the others take the lease only once it has expired, and
//! every write is a compare-and-swap, so two VMs racing for a free or
//! expired lease cannot both win. A holder that exits or is killed stops
//! renewing and loses the lease `ttl` after its last renewal; nothing has
//! to notice its death (ngx_wasm_module runs no root `on_done` at worker
//! exit, and a killed process runs nothing at all).
//!
//! Sans-IO: only [`KvStore`] is used, so every interleaving is tested with
//! in-process stores.

use crate::red::kv::{CasWrite, KvError, KvStore};

/// Compare-and-swap rounds per call before giving up for this tick (each
/// lost round means another VM wrote in between; it is retried next tick).
const CAS_ROUNDS: usize = 4;

/// What this VM may do until its next tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This VM holds the lease until `until_ms`; `acquired` when it did not
    /// hold it before this tick (a start or a takeover).
    Held { until_ms: u64, acquired: bool },
    /// Another VM holds it until `until_ms`.
    Other { holder: u64, until_ms: u64 },
    /// Every compare-and-swap round was lost to other writers.
    Contended,
}

impl Outcome {
    pub fn is_held(&self) -> bool {
        matches!(self, Outcome::Held { .. })
    }
}

/// One VM's side of the lease stored under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    key: String,
    me: u64,
    ttl_ms: u64,
}

fn encode(holder: u64, until_ms: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    let (h, u) = out.split_at_mut(8);
    h.copy_from_slice(&holder.to_le_bytes());
    u.copy_from_slice(&until_ms.to_le_bytes());
    out
}

/// `None` for an empty (released, or just created) or malformed value: the
/// lease is free.
fn decode(v: &[u8]) -> Option<(u64, u64)> {
    let bytes: &[u8; 16] = v.try_into().ok()?;
    let (h, u) = bytes.split_at(8);
    let holder = u64::from_le_bytes(h.try_into().ok()?);
    let until = u64::from_le_bytes(u.try_into().ok()?);
    (holder != 0).then_some((holder, until))
}

impl Lease {
    /// `me` must be unique among the VMs sharing the store (see
    /// [`new_holder_id`]) and not 0; `ttl_ms` must exceed the tick period,
    /// or the holder loses the lease between two of its own ticks.
    pub fn new(key: &str, me: u64, ttl_ms: u64) -> Self {
        Self {
            key: key.to_string(),
            me,
            ttl_ms,
        }
    }

    pub fn holder_id(&self) -> u64 {
        self.me
    }

    /// Renews or takes the lease at `now_ms`. A store error is returned as
    /// is: the caller treats it as "not held" (never poll on doubt).
    pub fn tick(&self, kv: &mut dyn KvStore, now_ms: u64) -> Result<Outcome, KvError> {
        if self.me == 0 {
            return Err(KvError::Unavailable);
        }
        for _ in 0..CAS_ROUNDS {
            let (value, cas) = kv.get(&self.key)?;
            let Some(cas) = cas else {
                // Absent: create it free (an empty value). Only ever an
                // empty value is written without a token, so a racing
                // creation can never overwrite a holder's entry with a
                // holder (ngx_wasm_module creates only if still absent).
                kv.set(&self.key, &[], None)?;
                continue;
            };
            let current = value.as_deref().and_then(decode);
            let acquired = match current {
                Some((holder, _)) if holder == self.me => false,
                Some((holder, until)) if now_ms < until => {
                    return Ok(Outcome::Other {
                        holder,
                        until_ms: until,
                    })
                }
                _ => true,
            };
            let until_ms = now_ms.saturating_add(self.ttl_ms);
            match kv.set(&self.key, &encode(self.me, until_ms), Some(cas))? {
                CasWrite::Written => return Ok(Outcome::Held { until_ms, acquired }),
                CasWrite::Mismatch => continue,
            }
        }
        Ok(Outcome::Contended)
    }

    /// Gives the lease up if this VM holds it (a graceful stop), so another
    /// takes over on its next tick instead of after `ttl`.
    pub fn release(&self, kv: &mut dyn KvStore) -> Result<bool, KvError> {
        let (value, cas) = kv.get(&self.key)?;
        let mine = value
            .as_deref()
            .and_then(decode)
            .is_some_and(|(h, _)| h == self.me);
        if !mine || cas.is_none() {
            return Ok(false);
        }
        Ok(kv.set(&self.key, &[], cas)? == CasWrite::Written)
    }
}

/// A holder id unique among all VMs that share the store: a counter under
/// `key`, incremented with compare-and-swap. Never 0.
pub fn new_holder_id(kv: &mut dyn KvStore, key: &str) -> Result<u64, KvError> {
    for _ in 0..64 {
        let (value, cas) = kv.get(key)?;
        let Some(cas) = cas else {
            kv.set(key, &[], None)?;
            continue;
        };
        let last = value
            .as_deref()
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map_or(0, u64::from_le_bytes);
        let next = last.checked_add(1).ok_or(KvError::Unavailable)?;
        if kv.set(key, &next.to_le_bytes(), Some(cas))? == CasWrite::Written {
            return Ok(next);
        }
    }
    Err(KvError::Unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::red::kv::{LocalKv, Versioned};

    /// ngx_wasm_module's contract: a write without a token creates only.
    #[derive(Default)]
    struct NginxKv(LocalKv);
    impl KvStore for NginxKv {
        fn get(&mut self, key: &str) -> Result<Versioned, KvError> {
            self.0.get(key)
        }
        fn set(&mut self, key: &str, v: &[u8], cas: Option<u32>) -> Result<CasWrite, KvError> {
            if cas.is_none() && self.0.get(key)?.1.is_some() {
                return Ok(CasWrite::Mismatch);
            }
            self.0.set(key, v, cas)
        }
    }

    /// A store where another VM writes the key between every get and set.
    struct Racing<'a> {
        inner: &'a mut NginxKv,
        rival: Lease,
        now: u64,
    }
    impl KvStore for Racing<'_> {
        fn get(&mut self, key: &str) -> Result<Versioned, KvError> {
            let got = self.inner.get(key);
            let _ = self.rival.tick(self.inner, self.now);
            got
        }
        fn set(&mut self, key: &str, v: &[u8], cas: Option<u32>) -> Result<CasWrite, KvError> {
            self.inner.set(key, v, cas)
        }
    }

    struct Broken;
    impl KvStore for Broken {
        fn get(&mut self, _: &str) -> Result<Versioned, KvError> {
            Err(KvError::Unavailable)
        }
        fn set(&mut self, _: &str, _: &[u8], _: Option<u32>) -> Result<CasWrite, KvError> {
            Err(KvError::TooLarge)
        }
    }

    const TICK: u64 = 250;
    const TTL: u64 = 500;

    /// Four workers ticking with different phases: at every instant at most
    /// one holds the lease, the first holder keeps it while it ticks, and
    /// when it stops (killed) another holds it within `ttl + tick`.
    #[test]
    fn one_holder_and_takeover_after_a_kill() {
        let mut kv = NginxKv::default();
        let ids: Vec<u64> = (0..4)
            .map(|_| new_holder_id(&mut kv, "ids").unwrap())
            .collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        let leases: Vec<Lease> = ids.iter().map(|&i| Lease::new("l", i, TTL)).collect();
        let phase = [0u64, 40, 130, 210];
        let mut alive = [true; 4];
        let mut holder_at: Vec<(u64, u64)> = Vec::new();
        let kill_at = 3_000;
        for now in 0..8_000u64 {
            if now == kill_at {
                let h = holder_at.last().unwrap().1;
                alive[(h - 1) as usize] = false;
            }
            for w in 0..4 {
                if alive[w] && now % TICK == phase[w] {
                    if let Outcome::Held { until_ms, .. } = leases[w].tick(&mut kv, now).unwrap() {
                        assert_eq!(until_ms, now + TTL);
                        // Exclusive: nobody else holds a lease valid now.
                        if let Some(&(t, h)) = holder_at.last() {
                            assert!(h == ids[w] || now >= t + TTL, "two holders at {now}");
                        }
                        holder_at.push((now, ids[w]));
                    }
                }
            }
        }
        let first = holder_at[0].1;
        assert!(holder_at
            .iter()
            .filter(|(t, _)| *t < kill_at)
            .all(|(_, h)| *h == first));
        let next = holder_at.iter().find(|(t, _)| *t >= kill_at).unwrap();
        assert_ne!(next.1, first);
        let last_renewal = holder_at.iter().rfind(|(t, _)| *t < kill_at).unwrap().0;
        assert!(
            next.0 - last_renewal <= TTL + TICK,
            "{next:?} {last_renewal}"
        );
        assert!(next.0 - last_renewal >= TTL);
    }

    #[test]
    fn a_lost_race_is_not_a_hold() {
        let mut kv = NginxKv::default();
        let a = Lease::new("l", 1, TTL);
        let b = Lease::new("l", 2, TTL);
        let mut racing = Racing {
            inner: &mut kv,
            rival: b,
            now: 0,
        };
        // The rival wins each round (it writes between our get and set).
        assert_eq!(
            a.tick(&mut racing, 0).unwrap(),
            Outcome::Other {
                holder: 2,
                until_ms: TTL
            }
        );
        assert_eq!(
            a.tick(&mut kv, 1).unwrap(),
            Outcome::Other {
                holder: 2,
                until_ms: TTL
            }
        );
    }

    #[test]
    fn renewal_release_and_garbage() {
        let mut kv = LocalKv::new();
        let a = Lease::new("l", 1, TTL);
        let b = Lease::new("l", 2, TTL);
        assert_eq!(
            a.tick(&mut kv, 10).unwrap(),
            Outcome::Held {
                until_ms: 510,
                acquired: true
            }
        );
        assert_eq!(
            a.tick(&mut kv, 260).unwrap(),
            Outcome::Held {
                until_ms: 760,
                acquired: false
            }
        );
        assert!(!b.tick(&mut kv, 759).unwrap().is_held());
        assert!(!b.release(&mut kv).unwrap(), "not b's to release");
        assert!(a.release(&mut kv).unwrap());
        assert_eq!(
            b.tick(&mut kv, 300).unwrap(),
            Outcome::Held {
                until_ms: 800,
                acquired: true
            }
        );
        // Someone else's bytes under the key: treated as free.
        kv.set("l", b"junk", None).unwrap();
        assert!(a.tick(&mut kv, 301).unwrap().is_held());
        assert_eq!(a.tick(&mut Broken, 0), Err(KvError::Unavailable));
        assert_eq!(new_holder_id(&mut Broken, "ids"), Err(KvError::Unavailable));
        assert_eq!(
            Lease::new("l", 0, TTL).tick(&mut kv, 0),
            Err(KvError::Unavailable)
        );
    }
}
