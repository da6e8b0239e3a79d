//! Self-mode shared state (`red::shared`): structure-aware, so mutations
//! land past the `URED` magic and header instead of dying on them.
//!
//! The input builds a real state (label sets with Unicode routes and
//! services, durations, exemplars with trace ids and times, internal-error
//! reasons) from observed requests in
//! merged parts, then a list of byte patches, a cut and an insertion damages its
//! encoding. Properties:
//! - the valid encoding decodes to the same state (round trip);
//! - damaged bytes never panic; when they still decode, the result is
//!   canonical: re-encoding it is stable, and never longer than what was
//!   accepted (bounded memory: decoding is at most linear in the input).

use arbitrary::{Result, Unstructured};
use uwsgi_red_core::red::histogram::Buckets;
use uwsgi_red_core::red::labels::LabelSet;
use uwsgi_red_core::red::shared::{SharedState, TraceId};

use crate::text::field;

const METHODS: [&str; 5] = ["GET", "POST", "BREW", "", "get"];
const REASONS: [&str; 3] = ["flush_failed", "decode", "cas_lost"];

fn build(u: &mut Unstructured<'_>, buckets: &Buckets) -> Result<SharedState> {
    let mut state = SharedState::new(buckets.clone());
    // Several partial states merged, as VMs' flushes merge into the store.
    for _ in 0..u.int_in_range(1..=3)? {
        let mut part = SharedState::new(buckets.clone());
        for _ in 0..u.int_in_range(0..=12)? {
            let method = *u.choose(&METHODS)?;
            let labels = LabelSet::new(
                method,
                u.arbitrary()?,
                field(u, 20, &[])?,
                field(u, 10, &[])?,
                u.choose(&["http", "uwsgi"])?,
            );
            let d = f64::from(u.int_in_range(0u32..=20_000_000)?) / 1e6;
            let ttfb = if u.arbitrary()? { Some(d / 2.0) } else { None };
            // Some requests carry a trace (few distinct ids and times, so
            // merges meet ties and replacements).
            let trace = TraceId::from_bytes([u.int_in_range(0u8..=3)?; 16]);
            match trace {
                Some(id) if u.arbitrary()? => {
                    let t = u64::from(u.int_in_range(0u8..=4)?) * 1_000_000_007;
                    part.observe_with_exemplar(labels, d, ttfb, id, t);
                }
                _ => part.observe(labels, d, ttfb),
            }
        }
        for _ in 0..u.int_in_range(0..=2)? {
            part.add_internal(u.choose(&REASONS)?, u.int_in_range(1..=1000)?);
        }
        state.merge(&part);
    }
    Ok(state)
}

pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let buckets = match u.int_in_range(0u8..=2).unwrap_or(0) {
        0 => Buckets::default(),
        1 => Buckets::new(vec![0.1, 1.0]).expect("valid bounds"),
        _ => Buckets::new(vec![0.005, 0.05, 0.5, 5.0, 50.0]).expect("valid bounds"),
    };
    let Ok(state) = build(&mut u, &buckets) else {
        return;
    };
    let bytes = state.encode();
    assert_eq!(
        SharedState::decode(&bytes, &buckets).as_ref(),
        Ok(&state),
        "round trip"
    );

    // Damage: patches, then maybe a cut and an inserted run.
    let mut bad = bytes.clone();
    let patches: Vec<(u16, u8)> = u.arbitrary().unwrap_or_default();
    for (at, x) in patches {
        if let Some(b) = bad.get_mut(usize::from(at) % bytes.len().max(1)) {
            *b ^= x;
        }
    }
    if let Ok(cut) = u.arbitrary::<u16>() {
        if cut & 1 == 1 {
            bad.truncate(usize::from(cut >> 1) % (bad.len() + 1));
        }
    }
    if let Ok(at) = u.arbitrary::<u16>() {
        let run: Vec<u8> = u.arbitrary().unwrap_or_default();
        let at = usize::from(at) % (bad.len() + 1);
        bad.splice(at..at, run);
    }
    if let Ok(s2) = SharedState::decode(&bad, &buckets) {
        let again = s2.encode();
        assert!(again.len() <= bad.len(), "{} > {}", again.len(), bad.len());
        let s3 = SharedState::decode(&again, &buckets).expect("own encoding decodes");
        assert_eq!(s3.encode(), again, "stable re-encoding");
    }
}
