//! Memory bound of the stats fast path, measured with a counting global
//! allocator (its own test binary, so no other test shares the counter).
//!
//! Stated bound: the peak heap `stats::scrape` uses — borrowed view, hash
//! sets, and the Prometheus page it returns — stays under 4× the document
//! (measured: 3.0× for the hostile document, whose 20 000-entry worker list
//! is held before de-duplication) when the page is at most 1.25× the
//! document (every captured document and the hostile one: the page buffer is
//! reserved at that size). A page larger than that (tiny entries with long
//! names) also pays its own growth, up to 2× the page, on top.
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
// A GlobalAlloc is unsafe to implement; it only forwards to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use uwsgi_red_core::stats::families::MapOptions;
use uwsgi_red_core::stats::{scrape, DEFAULT_MAX_DOCUMENT_BYTES};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Peak heap above the baseline while `f` runs, and `f`'s value.
fn peak_during<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let v = f();
    (PEAK.load(Relaxed) - base, v)
}

fn check(doc: &[u8], expect_out_ratio_below: f64) {
    let (peak, s) = peak_during(|| {
        scrape(
            doc,
            "app1",
            &MapOptions::default(),
            DEFAULT_MAX_DOCUMENT_BYTES,
        )
        .unwrap()
    });
    let out = s.text.len() as f64 / doc.len() as f64;
    assert!(
        out < expect_out_ratio_below,
        "page is {out:.3}x the document"
    );
    assert!(
        peak < 4 * doc.len(),
        "peak heap {peak} bytes for a {} byte document",
        doc.len()
    );
}

/// One test function: the counter is process-wide, and a second test
/// building its document on another thread would count against this one.
#[test]
fn peak_heap_is_under_four_times_the_document() {
    check(&uwsgi_red_testdata::stats::hostile(), 2.0);
    check(uwsgi_red_testdata::STATS_1MB, 0.2);
}
