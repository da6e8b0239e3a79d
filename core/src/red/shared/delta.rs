//! What one VM records between flushes ([`Delta`]) and where one
//! configuration's state lives in the store ([`Layout`]: a totals key and
//! the series spread over shards by label hash).

use std::collections::BTreeMap;

use litemap::LiteMap;

use super::exemplar::{Exemplar, Exemplars, TraceId};
use super::format::fits_format;
use crate::red::admission::{shard_count, stable_hash, Decision};
use crate::red::aggregate::Series;
use crate::red::histogram::Buckets;
use crate::red::labels::LabelSet;
use crate::red::names::REASON_LABEL_TOO_LONG;

/// Where one configuration's state lives.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
    pub(super) shards: usize,
}

impl Layout {
    /// `namespace` from [`crate::red::admission::namespace`]; `cap` = `max_series`.
    pub fn new(namespace: &str, cap: usize) -> Self {
        Self {
            prefix: format!("{namespace}.st."),
            shards: shard_count(cap),
        }
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    pub(super) fn meta_key(&self) -> String {
        format!("{}m", self.prefix)
    }

    pub(super) fn shard_key(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    pub(super) fn shard_of(&self, labels: &LabelSet) -> usize {
        let n = u64::try_from(self.shards).unwrap_or(1).max(1);
        usize::try_from(stable_hash(labels).checked_rem(n).unwrap_or(0)).unwrap_or(0)
    }
}

/// What one VM saw since its last successful flush, per shard.
#[derive(Debug, Clone)]
pub struct Delta {
    pub(super) buckets: Buckets,
    pub(super) layout: Layout,
    pub(super) shards: LiteMap<usize, BTreeMap<LabelSet, Series>>,
    /// Exemplars by the same shards; only filled when exemplars are on.
    pub(super) exemplars: LiteMap<usize, BTreeMap<LabelSet, Exemplars>>,
    pub(super) dropped: u64,
    pub(super) internal: LiteMap<&'static str, u64>,
}

impl Delta {
    pub fn new(buckets: Buckets, layout: Layout) -> Self {
        Self {
            buckets,
            layout,
            shards: LiteMap::new(),
            exemplars: LiteMap::new(),
            dropped: 0,
            internal: LiteMap::new(),
        }
    }

    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Records one finished request under its admission decision: its own
    /// series, or the overflow series (counted as dropped, and by reason
    /// when the decision could not be made).
    pub fn record(
        &mut self,
        labels: LabelSet,
        decision: Decision,
        duration_seconds: f64,
        ttfb_seconds: Option<f64>,
    ) {
        self.record_ref(&labels, decision, duration_seconds, ttfb_seconds);
    }

    /// [`record`](Self::record) for a borrowed label set: a series this
    /// delta already holds costs lookups, no allocation.
    pub fn record_ref(
        &mut self,
        labels: &LabelSet,
        decision: Decision,
        duration_seconds: f64,
        ttfb_seconds: Option<f64>,
    ) {
        let too_long = !(fits_format(&labels.route) && fits_format(&labels.service));
        let folded;
        let key = match decision {
            Decision::Admitted if !too_long => labels,
            other => {
                match other {
                    Decision::Undecided(u) => self.internal_error(u.reason()),
                    Decision::Admitted => self.internal_error(REASON_LABEL_TOO_LONG),
                    Decision::Refused => {}
                }
                self.dropped = self.dropped.saturating_add(1);
                folded = labels.overflow();
                &folded
            }
        };
        let is_error = key.is_error();
        let shard = self.layout.shard_of(key);
        let buckets = &self.buckets;
        let map = self.shards.entry(shard).or_default();
        if let Some(s) = map.get_mut(key) {
            s.observe(buckets, is_error, duration_seconds, ttfb_seconds);
            return;
        }
        let mut s = Series::new(buckets);
        s.observe(buckets, is_error, duration_seconds, ttfb_seconds);
        map.insert(key.clone(), s);
    }

    /// Keeps a request's trace id as the exemplar of its bucket, in the
    /// series [`record_ref`](Self::record_ref) counted it in (called after
    /// it, with the same labels, decision and duration). Its own call, so
    /// a configuration without exemplars never runs any of this.
    pub fn record_exemplar(
        &mut self,
        labels: &LabelSet,
        decision: Decision,
        duration_seconds: f64,
        trace_id: TraceId,
        time_ns: u64,
    ) {
        let admitted = matches!(decision, Decision::Admitted)
            && fits_format(&labels.route)
            && fits_format(&labels.service);
        let folded;
        let key = if admitted {
            labels
        } else {
            folded = labels.overflow();
            &folded
        };
        let shard = self.layout.shard_of(key);
        let buckets = &self.buckets;
        let e = Exemplar {
            trace_id,
            value: duration_seconds,
            time_ns,
        };
        let map = self.exemplars.entry(shard).or_default();
        if let Some(x) = map.get_mut(key) {
            x.observe(buckets, e);
            return;
        }
        let mut x = Exemplars::new(buckets);
        x.observe(buckets, e);
        map.insert(key.clone(), x);
    }

    pub fn internal_error(&mut self, reason: &'static str) {
        let n = self.internal.entry(reason).or_insert(0);
        *n = n.saturating_add(1);
    }

    pub fn is_empty(&self) -> bool {
        self.shards.is_empty() && self.dropped == 0 && self.internal.is_empty()
    }

    /// Requests recorded and not yet stored.
    pub fn requests(&self) -> u64 {
        self.shards
            .values()
            .flat_map(|s| s.values())
            .fold(0u64, |n, s| n.saturating_add(s.requests))
    }
}
