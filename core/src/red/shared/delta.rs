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
        let mut folded = None;
        let key = self.key(labels, decision, &mut folded);
        let shard = self.layout.shard_of(key);
        self.observe(shard, key, duration_seconds, ttfb_seconds);
    }

    /// [`record_ref`](Self::record_ref) for a request with a trace id
    /// (`exemplars` on): the id becomes the exemplar of the bucket the
    /// request lands in, in the series it is counted in. Its own call, so
    /// a configuration without exemplars never runs any of this.
    pub fn record_traced(
        &mut self,
        labels: &LabelSet,
        decision: Decision,
        duration_seconds: f64,
        ttfb_seconds: Option<f64>,
        trace_id: TraceId,
        time_ns: u64,
    ) {
        let mut folded = None;
        let key = self.key(labels, decision, &mut folded);
        let shard = self.layout.shard_of(key);
        self.observe(shard, key, duration_seconds, ttfb_seconds);
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

    /// The series a request is counted in: its own, or the overflow series
    /// (counted as dropped, and by reason when the decision could not be
    /// made), held in `folded`.
    #[inline(always)]
    fn key<'a>(
        &mut self,
        labels: &'a LabelSet,
        decision: Decision,
        folded: &'a mut Option<LabelSet>,
    ) -> &'a LabelSet {
        let too_long = !(fits_format(&labels.route) && fits_format(&labels.service));
        match decision {
            Decision::Admitted if !too_long => labels,
            other => {
                match other {
                    Decision::Undecided(u) => self.internal_error(u.reason()),
                    Decision::Admitted => self.internal_error(REASON_LABEL_TOO_LONG),
                    Decision::Refused => {}
                }
                self.dropped = self.dropped.saturating_add(1);
                folded.insert(labels.overflow())
            }
        }
    }

    #[inline(always)]
    fn observe(
        &mut self,
        shard: usize,
        key: &LabelSet,
        duration_seconds: f64,
        ttfb_seconds: Option<f64>,
    ) {
        let is_error = key.is_error();
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
