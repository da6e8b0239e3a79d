//! Exact counts under injected shared-data faults: a fake host (metrics and
//! a CAS key/value store) fails the way proxy-wasm hosts can, and every
//! request sent must be counted exactly once — in its own series or in the
//! overflow series, with the failure counted by reason.
//!
//! Each test prints `FAULT <name> sent=<n> counted=<n>` (one line per fault, to
//! tabulate).
// Not shipped (tests, benches, native tools): the workspace's panic-free
// lints (Cargo.toml [workspace.lints.clippy]) do not apply here.
#![allow(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use uwsgi_red_core::prom::text::MetricType;
use uwsgi_red_core::red::admission::{namespace, Admission, Admitter, Decision};
use uwsgi_red_core::red::histogram::Buckets;
use uwsgi_red_core::red::host::{HostError, HostRecorder, MetricsHost, SeriesNames};
use uwsgi_red_core::red::kv::{CasWrite, KvError, KvStore, LocalKv, Versioned};
use uwsgi_red_core::red::labels::LabelSet;
use uwsgi_red_core::red::shared::{self, Delta, Layout, SharedState};

/// What the store does wrong right now.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Every CAS write loses (another VM always wrote in between).
    CasStorm,
    /// Every call fails.
    StoreError,
    /// Writes of values over this many bytes are refused.
    SizeLimit(usize),
}

/// The store every VM of one fake process shares.
#[derive(Debug, Clone)]
struct FaultKv {
    inner: Rc<RefCell<LocalKv>>,
    fault: Rc<RefCell<Fault>>,
}

impl FaultKv {
    fn new() -> Self {
        Self {
            inner: Rc::new(RefCell::new(LocalKv::new())),
            fault: Rc::new(RefCell::new(Fault::None)),
        }
    }

    fn set_fault(&self, f: Fault) {
        *self.fault.borrow_mut() = f;
    }

    /// Evicts every key (a host that lost its store, or evicted it).
    fn evict_all(&self) {
        let keys: Vec<String> = self.inner.borrow().keys().map(str::to_string).collect();
        for k in keys {
            self.inner.borrow_mut().remove(&k);
        }
    }
}

impl KvStore for FaultKv {
    fn get(&mut self, key: &str) -> Result<Versioned, KvError> {
        if *self.fault.borrow() == Fault::StoreError {
            return Err(KvError::Unavailable);
        }
        self.inner.borrow_mut().get(key)
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<CasWrite, KvError> {
        match *self.fault.borrow() {
            Fault::StoreError => return Err(KvError::Unavailable),
            Fault::CasStorm if cas.is_some() => return Ok(CasWrite::Mismatch),
            Fault::SizeLimit(n) if value.len() > n => return Err(KvError::TooLarge),
            _ => {}
        }
        self.inner.borrow_mut().set(key, value, cas)
    }
}

/// Envoy-like host metrics: counters sum, histograms count records.
#[derive(Debug, Default)]
struct FakeMetrics {
    names: Vec<String>,
    values: Vec<u64>,
}

/// Names in Envoy's `key=.=value;.;metric` form (the real encoder, with its
/// escaping, lives with the proxy-wasm adapters; these tests use plain
/// label values).
fn test_series_name(metric: &str, labels: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (k, v) in labels {
        s.push_str(&format!("{k}=.={v};.;"));
    }
    s + metric
}

impl SeriesNames for FakeMetrics {
    fn series_name(&self, metric: &'static str, labels: &[(&'static str, &str)]) -> String {
        test_series_name(metric, labels)
    }
}

impl SeriesNames for SharedMetrics {
    fn series_name(&self, metric: &'static str, labels: &[(&'static str, &str)]) -> String {
        test_series_name(metric, labels)
    }
}

impl MetricsHost for FakeMetrics {
    fn define(&mut self, _: MetricType, name: &str) -> Result<u32, HostError> {
        // Envoy returns the same id for the same name.
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Ok(i as u32);
        }
        self.names.push(name.to_string());
        self.values.push(0);
        Ok(self.names.len() as u32 - 1)
    }
    fn increment(&mut self, id: u32, by: u64) -> Result<(), HostError> {
        self.values[id as usize] += by;
        Ok(())
    }
    fn record(&mut self, id: u32, _: u64) -> Result<(), HostError> {
        self.values[id as usize] += 1;
        Ok(())
    }
}

impl FakeMetrics {
    fn sum(&self, pred: impl Fn(&str) -> bool) -> u64 {
        self.names
            .iter()
            .zip(&self.values)
            .filter(|(n, _)| pred(n))
            .map(|(_, v)| *v)
            .sum()
    }
    fn requests(&self) -> u64 {
        self.sum(|n| n.ends_with(";.;uwsgi_red_requests_total"))
    }
    fn overflow_requests(&self) -> u64 {
        self.sum(|n| {
            n.ends_with(";.;uwsgi_red_requests_total") && n.contains("route=.=__overflow__")
        })
    }
    fn own_series(&self) -> usize {
        self.names
            .iter()
            .filter(|n| n.ends_with(";.;uwsgi_red_requests_total") && !n.contains("__overflow__"))
            .count()
    }
    fn durations(&self) -> u64 {
        self.sum(|n| n.ends_with("uwsgi_red_request_duration_microseconds"))
    }
    fn dropped(&self) -> u64 {
        self.sum(|n| n == "uwsgi_red_dropped_label_sets_total")
    }
    fn internal(&self, reason: &str) -> u64 {
        let name = format!("reason=.={reason};.;uwsgi_red_internal_errors_total");
        self.sum(|n| n == name)
    }
}

const CAP: usize = 60;

/// Routes change at each quarter of a 400-request run, so label sets are
/// still new (and slots still free) while a fault is active, and the cap
/// is exceeded by the end.
fn labels(i: u64) -> LabelSet {
    let code = if i % 7 == 0 { 503 } else { 200 };
    let route = format!("/q{}/r{}", i / 100, i % 30);
    LabelSet::new("GET", code, route, "app".into(), "http")
}

fn ns() -> String {
    namespace("test", "app", &CAP)
}

/// One host-mode worker VM.
struct HostVm {
    admitter: Admitter,
    recorder: HostRecorder,
}

impl HostVm {
    fn new(kv: &mut FaultKv, metrics: &mut FakeMetrics) -> Self {
        let policy = Admission::new(&ns(), CAP);
        policy.ensure_created(kv).unwrap();
        let mut recorder = HostRecorder::new();
        recorder.start(metrics);
        Self {
            admitter: Admitter::new(policy),
            recorder,
        }
    }

    fn request(&mut self, kv: &mut FaultKv, metrics: &mut FakeMetrics, l: LabelSet) {
        let d = if self.recorder.knows(&l) {
            Decision::Admitted
        } else {
            self.admitter.decide(kv, &l)
        };
        self.recorder.record(metrics, l, d, 1000, Some(500));
    }
}

/// Sends `n` requests round-robin over two VMs, with `fault` active for
/// the middle half; returns the shared fake metrics.
fn host_run(name: &str, fault: Fault, n: u64) -> FakeMetrics {
    let mut kv = FaultKv::new();
    let mut m = FakeMetrics::default();
    let mut vms = [HostVm::new(&mut kv, &mut m), HostVm::new(&mut kv, &mut m)];
    for i in 0..n {
        if i == n / 4 {
            kv.set_fault(fault);
        }
        if i == 3 * n / 4 {
            kv.set_fault(Fault::None);
        }
        vms[(i % 2) as usize].request(&mut kv, &mut m, labels(i));
    }
    println!("FAULT host/{name} sent={n} counted={}", m.requests());
    assert_eq!(m.requests(), n, "{name}: every request counted once");
    assert_eq!(m.durations(), n, "{name}: every duration recorded once");
    assert_eq!(
        m.dropped(),
        m.overflow_requests(),
        "{name}: dropped == overflow"
    );
    assert!(m.own_series() <= CAP, "{name}: cap holds");
    m
}

#[test]
fn host_no_fault_baseline() {
    let m = host_run("none", Fault::None, 400);
    assert_eq!(m.own_series(), CAP);
    assert!(m.dropped() > 0);
}

#[test]
fn host_cas_mismatch_storm() {
    let m = host_run("cas_storm", Fault::CasStorm, 400);
    assert!(m.internal("cas_contended") > 0);
}

#[test]
fn host_store_errors() {
    let m = host_run("store_error", Fault::StoreError, 400);
    assert!(m.internal("shared_data") > 0);
}

#[test]
fn host_size_limit_rejections() {
    // A shard holding one hash is 9 bytes: the second set of a shard fails.
    let m = host_run("size_limit", Fault::SizeLimit(9), 400);
    assert!(m.internal("shared_data_too_large") > 0);
}

#[test]
fn host_missing_key() {
    let n = 400u64;
    let mut kv = FaultKv::new();
    let mut m = FakeMetrics::default();
    let mut vms = [HostVm::new(&mut kv, &mut m), HostVm::new(&mut kv, &mut m)];
    for i in 0..n {
        // An evicted count is rebuilt from the shards; an evicted shard
        // only forgets members (the count keeps their slots).
        if i == 50 {
            kv.inner.borrow_mut().remove(&format!("{}.adm.n", ns()));
        }
        if i == 150 {
            kv.inner.borrow_mut().remove(&format!("{}.adm.0", ns()));
        }
        vms[(i % 2) as usize].request(&mut kv, &mut m, labels(i));
    }
    println!("FAULT host/missing_key sent={n} counted={}", m.requests());
    assert_eq!(m.requests(), n);
    assert_eq!(m.dropped(), m.overflow_requests());
    assert!(m.internal("shared_data_missing") > 0);
    assert!(m.own_series() <= CAP);
}

/// A store that lets a second VM run a whole admission between the first
/// VM's slot reservation and its shard write: the same new label set.
type Hook = Box<dyn FnOnce(&mut FaultKv)>;

struct RacingKv {
    kv: FaultKv,
    hook: Option<Hook>,
}

impl KvStore for RacingKv {
    fn get(&mut self, key: &str) -> Result<Versioned, KvError> {
        self.kv.get(key)
    }
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<CasWrite, KvError> {
        if !key.ends_with(".adm.n") {
            if let Some(hook) = self.hook.take() {
                hook(&mut self.kv.clone());
            }
        }
        self.kv.set(key, value, cas)
    }
}

#[test]
fn two_vms_racing_on_one_new_label_set_take_one_slot() {
    let mut kv = FaultKv::new();
    let mut m = FakeMetrics::default();
    let mut a = HostVm::new(&mut kv, &mut m);
    let b = Rc::new(RefCell::new(HostVm::new(&mut kv, &mut m)));
    let m = Rc::new(RefCell::new(m));
    let l = labels(1);
    let (b2, m2, l2) = (b.clone(), m.clone(), l.clone());
    let mut racing = RacingKv {
        kv: kv.clone(),
        hook: Some(Box::new(move |kv: &mut FaultKv| {
            b2.borrow_mut().request(kv, &mut m2.borrow_mut(), l2);
        })),
    };
    let d = a.admitter.decide(&mut racing, &l);
    assert_eq!(d, Decision::Admitted);
    a.recorder
        .record(&mut *m.borrow_mut(), l.clone(), d, 1000, None);
    assert!(racing.hook.is_none(), "the race happened");
    let slots = kv.get(&format!("{}.adm.n", ns())).unwrap().0.unwrap();
    assert_eq!(slots, 1u64.to_le_bytes(), "one set, one slot");
    let m = m.borrow();
    println!("FAULT host/two_vms_race sent=2 counted={}", m.requests());
    assert_eq!(m.requests(), 2);
    assert_eq!(m.own_series(), 1);
    assert_eq!(m.dropped(), 0);
}

/// One self-mode worker VM.
struct SelfVm {
    admitter: Admitter,
    delta: Delta,
}

fn layout() -> Layout {
    Layout::new(&ns(), CAP)
}

impl SelfVm {
    fn new(kv: &mut FaultKv) -> Self {
        let policy = Admission::new(&ns(), CAP);
        policy.ensure_created(kv).unwrap();
        shared::ensure_created(kv, &layout(), &Buckets::default(), 100).unwrap();
        Self {
            admitter: Admitter::new(policy),
            delta: Delta::new(Buckets::default(), layout()),
        }
    }

    fn request(&mut self, kv: &mut FaultKv, l: LabelSet) {
        let d = self.admitter.decide(kv, &l);
        self.delta.record(l, d, 0.01, Some(0.005));
    }
}

fn stored(kv: &mut FaultKv) -> SharedState {
    shared::read(kv, &layout(), &Buckets::default()).0
}

fn totals(s: &SharedState) -> BTreeMap<LabelSet, u64> {
    s.series().map(|(l, x)| (l.clone(), x.requests)).collect()
}

/// Two VMs, flushing every 10 requests; `fault` active for the middle
/// half; a scrape (read) after every flush must never show less than the
/// one before, series by series; after the fault clears, stored == sent.
fn self_run(name: &str, fault: Fault, n: u64) -> SharedState {
    let mut kv = FaultKv::new();
    let mut vms = [SelfVm::new(&mut kv), SelfVm::new(&mut kv)];
    let mut last = BTreeMap::new();
    for i in 0..n {
        if i == n / 4 {
            kv.set_fault(fault);
        }
        if i == 3 * n / 4 {
            kv.set_fault(Fault::None);
        }
        let vm = &mut vms[(i % 2) as usize];
        vm.request(&mut kv, labels(i));
        if i % 10 == 9 {
            shared::flush(&mut vm.delta, &mut kv, 200);
            if *kv.fault.borrow() != Fault::StoreError {
                let now = totals(&stored(&mut kv));
                for (l, v) in &last {
                    assert!(
                        now.get(l).copied().unwrap_or(0) >= *v,
                        "{name}: {l:?} went down"
                    );
                }
                last = now;
            }
        }
    }
    for vm in &mut vms {
        let r = shared::flush(&mut vm.delta, &mut kv, 200);
        assert_eq!(r.failed, None, "{name}");
        // The first flush after a failure also stores the failure count.
        shared::flush(&mut vm.delta, &mut kv, 200);
        assert!(vm.delta.is_empty(), "{name}");
    }
    let s = stored(&mut kv);
    println!("FAULT self/{name} sent={n} counted={}", s.requests());
    assert_eq!(s.requests(), n, "{name}: every request stored once");
    let hist: u64 = s.series().map(|(_, x)| x.duration.count()).sum();
    assert_eq!(hist, n);
    let over: u64 = s
        .series()
        .filter(|(l, _)| l.is_overflow())
        .map(|(_, x)| x.requests)
        .sum();
    assert_eq!(s.dropped(), over, "{name}: dropped == overflow");
    assert!(s.series().filter(|(l, _)| !l.is_overflow()).count() <= CAP);
    assert_eq!(s.started_s(), 100, "{name}: no reset");
    s
}

fn internal(s: &SharedState, reason: &str) -> u64 {
    s.internal()
        .find(|(r, _)| *r == reason)
        .map_or(0, |(_, n)| n)
}

#[test]
fn self_no_fault_baseline() {
    let s = self_run("none", Fault::None, 400);
    assert_eq!(s.internal().count(), 0);
}

#[test]
fn self_cas_mismatch_storm() {
    let s = self_run("cas_storm", Fault::CasStorm, 400);
    assert!(internal(&s, "cas_contended") > 0);
}

#[test]
fn self_store_errors() {
    let s = self_run("store_error", Fault::StoreError, 400);
    assert!(internal(&s, "shared_data") > 0);
}

#[test]
fn self_size_limit_rejections() {
    let s = self_run("size_limit", Fault::SizeLimit(9), 400);
    assert!(internal(&s, "shared_data_too_large") > 0);
}

/// Keys evicted mid-run: recreated, counted; the totals key's loss shows
/// as a reset (a new start time), never as a partial rewind of a series.
#[test]
fn self_missing_keys() {
    let n = 400u64;
    let mut kv = FaultKv::new();
    let mut vms = [SelfVm::new(&mut kv), SelfVm::new(&mut kv)];
    let mut flushed_before_evict = 0;
    for i in 0..n {
        if i == 200 {
            for vm in &mut vms {
                shared::flush(&mut vm.delta, &mut kv, 200);
            }
            flushed_before_evict = stored(&mut kv).requests();
            kv.evict_all();
        }
        let vm = &mut vms[(i % 2) as usize];
        vm.request(&mut kv, labels(i));
        if i % 10 == 9 {
            shared::flush(&mut vm.delta, &mut kv, 300);
        }
    }
    for vm in &mut vms {
        shared::flush(&mut vm.delta, &mut kv, 300);
        shared::flush(&mut vm.delta, &mut kv, 300);
        assert!(vm.delta.is_empty());
    }
    let s = stored(&mut kv);
    println!(
        "FAULT self/missing_key sent={n} counted={} (reset at eviction: {flushed_before_evict} before + {} after)",
        flushed_before_evict + s.requests(),
        s.requests()
    );
    assert_eq!(flushed_before_evict, 200);
    assert_eq!(
        s.requests(),
        n - 200,
        "after the reset, every later request"
    );
    assert_eq!(s.started_s(), 300, "the reset is visible");
    assert!(internal(&s, "shared_data_missing") > 0);
}

/// A value this VM cannot decode (foreign bytes, or another format) is
/// never replaced: the counts of the other shards stay, the VM keeps the
/// affected part of its delta, and stored + pending == sent.
#[test]
fn self_undecodable_state_never_wipes() {
    let n = 200u64;
    let mut kv = FaultKv::new();
    let mut vm = SelfVm::new(&mut kv);
    for i in 0..n / 2 {
        vm.request(&mut kv, labels(i));
    }
    shared::flush(&mut vm.delta, &mut kv, 200);
    let before = stored(&mut kv).requests();
    assert_eq!(before, n / 2);
    let victim = format!("{}.st.0", ns());
    kv.set(&victim, b"not a RED state", None).unwrap();
    let lost_with_victim = before - stored(&mut kv).requests();
    for i in n / 2..n {
        vm.request(&mut kv, labels(i));
    }
    let r = shared::flush(&mut vm.delta, &mut kv, 200);
    assert!(r.failed.is_some());
    assert_eq!(
        kv.get(&victim).unwrap().0.unwrap(),
        b"not a RED state",
        "never overwritten"
    );
    let s = stored(&mut kv);
    let counted = s.requests() + lost_with_victim + vm.delta.requests();
    println!("FAULT self/undecodable sent={n} counted={counted} (stored + in the foreign value + kept in delta)");
    assert_eq!(counted, n);
    assert!(vm.delta.requests() > 0);
}

/// The store shared by real threads, failing a random share of calls
/// (store errors, lost CAS races, size refusals) from a seeded generator.
#[derive(Clone)]
struct ThreadKv {
    inner: std::sync::Arc<std::sync::Mutex<LocalKv>>,
    seed: u64,
    fail_per_mille: u64,
}

impl ThreadKv {
    fn roll(&mut self) -> u64 {
        // xorshift64: deterministic per thread, no dependency needed.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed % 1000
    }
}

impl KvStore for ThreadKv {
    fn get(&mut self, key: &str) -> Result<Versioned, KvError> {
        if self.roll() < self.fail_per_mille / 3 {
            return Err(KvError::Unavailable);
        }
        self.inner.lock().unwrap().get(key)
    }
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<CasWrite, KvError> {
        match self.roll() {
            r if r < self.fail_per_mille / 3 => Err(KvError::TooLarge),
            r if r < self.fail_per_mille => Ok(CasWrite::Mismatch),
            _ => self.inner.lock().unwrap().set(key, value, cas),
        }
    }
}

/// Host metrics shared by the threads (Envoy sums one stat across workers).
#[derive(Clone, Default)]
struct SharedMetrics(std::sync::Arc<std::sync::Mutex<FakeMetrics>>);

impl MetricsHost for SharedMetrics {
    fn define(&mut self, kind: MetricType, name: &str) -> Result<u32, HostError> {
        self.0.lock().unwrap().define(kind, name)
    }
    fn increment(&mut self, id: u32, by: u64) -> Result<(), HostError> {
        self.0.lock().unwrap().increment(id, by)
    }
    fn record(&mut self, id: u32, v: u64) -> Result<(), HostError> {
        self.0.lock().unwrap().record(id, v)
    }
}

/// Four worker threads race on the same new label sets with and without
/// random faults: every request is counted exactly once, the cap holds,
/// no label set is in two slots, and without faults every slot is used by
/// exactly one set.
#[test]
fn threads_racing_with_random_faults_count_exactly() {
    for fail_per_mille in [0u64, 50, 300] {
        let inner = std::sync::Arc::new(std::sync::Mutex::new(LocalKv::new()));
        let metrics = SharedMetrics::default();
        Admission::new(&ns(), CAP)
            .ensure_created(&mut *inner.lock().unwrap())
            .unwrap();
        let threads = 4u64;
        let per_thread = 1_000u64;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mut kv = ThreadKv {
                    inner: inner.clone(),
                    seed: 0x9e37_79b9_7f4a_7c15 ^ (t + 1),
                    fail_per_mille,
                };
                let mut m = metrics.clone();
                std::thread::spawn(move || {
                    let mut admitter = Admitter::new(Admission::new(&ns(), CAP));
                    let mut recorder = HostRecorder::new();
                    recorder.start(&mut m);
                    for i in 0..per_thread {
                        // Every thread walks the same sets in the same order.
                        let l = labels(i % 400);
                        let d = if recorder.knows(&l) {
                            Decision::Admitted
                        } else {
                            admitter.decide(&mut kv, &l)
                        };
                        recorder.record(&mut m, l, d, 1000, None);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let m = metrics.0.lock().unwrap();
        let sent = threads * per_thread;
        println!(
            "FAULT host/threads_random_{fail_per_mille}permille sent={sent} counted={}",
            m.requests()
        );
        assert_eq!(m.requests(), sent);
        assert_eq!(m.durations(), sent);
        assert_eq!(m.dropped(), m.overflow_requests());
        assert!(m.own_series() <= CAP);
        let mut kv = inner.lock().unwrap();
        let slots = u64::from_le_bytes(
            kv.get(&format!("{}.adm.n", ns())).unwrap().0.unwrap()[..8]
                .try_into()
                .unwrap(),
        );
        let mut members = 0u64;
        let shards = uwsgi_red_core::red::admission::shard_count(CAP);
        for i in 0..shards {
            if let (Some(b), _) = kv.get(&format!("{}.adm.{i}", ns())).unwrap() {
                members += (b.len() as u64 - 1) / 8;
            }
        }
        // A leaked reservation (a failed give-back) only makes the cap err
        // on the safe side; a set in two slots would make members < own.
        assert!(slots >= members, "{slots} slots, {members} members");
        assert_eq!(members, m.own_series() as u64, "one slot per set");
        if fail_per_mille == 0 {
            assert_eq!(slots, CAP as u64);
            assert_eq!(m.own_series(), CAP);
        }
    }
}
