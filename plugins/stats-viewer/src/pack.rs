//! [`View`] and [`Rates`] as a flat tape for `js/unpack.js`: every number
//! (and every string's UTF-16 length) as one `f64`, in a fixed field order,
//! and the strings concatenated into one `String`. JS reads the numbers
//! through a `Float64Array` over Wasm memory and slices the strings out of
//! one decoded text, so no JSON is written or parsed and one boundary call
//! hands over the whole result. The field order here and in `js/unpack.js`
//! is one contract: change both together (the Node tests compare the
//! result with the plain-JS derivation on every vector).
//!
//! Numbers become what `JSON.parse` of serde_json's text gave before:
//! integers round to the nearest double (`as f64` rounds to nearest, as
//! `JSON.parse` does), and a non-finite float is `null` in JS.

use uwsgi_red_core::stats::{Cache, Socket, Spooler};

use crate::derive::{AppRow, Rates, StatusCounts, Totals, View, WorkerRow};

/// Codes of [`crate::derive::status_class`], decoded by index in
/// `js/unpack.js` (`CLASSES`).
const CLASSES: [&str; 6] = ["idle", "busy", "cheap", "pause", "signal", "other"];

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tape {
    pub nums: Vec<f64>,
    pub strs: String,
}

impl Tape {
    fn u(&mut self, v: u64) {
        self.nums.push(v as f64);
    }
    fn i(&mut self, v: i64) {
        self.nums.push(v as f64);
    }
    fn f(&mut self, v: f64) {
        self.nums.push(v);
    }
    fn n(&mut self, v: usize) {
        self.nums.push(v as f64);
    }
    fn b(&mut self, v: bool) {
        self.nums.push(if v { 1.0 } else { 0.0 });
    }
    /// The string's length in UTF-16 units (what JS `slice` counts).
    fn s(&mut self, v: &str) {
        let units = if v.is_ascii() {
            v.len()
        } else {
            v.encode_utf16().count()
        };
        self.n(units);
        self.strs.push_str(v);
    }
}

pub fn view(v: &View) -> Tape {
    let mut t = Tape {
        // 7 header + 19 per worker + 15 status/totals/avg + the lists.
        nums: Vec::with_capacity(32usize.saturating_add(v.workers.len().saturating_mul(19))),
        strs: String::new(),
    };
    t.s(&v.version);
    t.i(v.pid);
    t.s(&v.cwd);
    t.u(v.load);
    t.u(v.listen_queue);
    t.u(v.listen_queue_errors);
    t.u(v.signal_queue);
    t.n(v.workers.len());
    v.workers.iter().for_each(|w| worker(&mut t, w));
    status(&mut t, &v.status);
    totals(&mut t, &v.totals);
    t.f(v.avg_rt_us);
    t.n(v.sockets.len());
    v.sockets.iter().for_each(|s| socket(&mut t, s));
    t.n(v.apps.len());
    v.apps.iter().for_each(|a| app(&mut t, a));
    t.n(v.caches.len());
    v.caches.iter().for_each(|c| cache(&mut t, c));
    t.n(v.spoolers.len());
    v.spoolers.iter().for_each(|s| spooler(&mut t, s));
    t
}

fn worker(t: &mut Tape, w: &WorkerRow) {
    t.u(w.id);
    t.i(w.pid);
    t.s(&w.status);
    t.n(CLASSES
        .iter()
        .position(|c| *c == w.status_class)
        .unwrap_or(CLASSES.len().saturating_sub(1)));
    t.u(w.accepting);
    t.u(w.requests);
    t.u(w.exceptions);
    t.u(w.harakiri_count);
    t.u(w.respawn_count);
    t.u(w.signals);
    t.u(w.rss);
    t.u(w.vsz);
    t.u(w.tx);
    t.u(w.avg_rt_us);
    t.u(w.running_time_us);
    t.u(w.last_spawn);
    t.n(w.apps);
    t.n(w.cores);
    t.n(w.busy_cores);
}

fn status(t: &mut Tape, s: &StatusCounts) {
    for v in [s.idle, s.busy, s.cheap, s.pause, s.signal, s.other] {
        t.u(v);
    }
}

fn totals(t: &mut Tape, s: &Totals) {
    for v in [
        s.workers,
        s.requests,
        s.exceptions,
        s.harakiri,
        s.respawns,
        s.tx,
        s.rss,
        s.cores,
        s.busy_cores,
    ] {
        t.u(v);
    }
}

fn socket(t: &mut Tape, s: &Socket) {
    t.s(&s.name);
    t.s(&s.proto);
    t.u(s.queue);
    t.u(s.max_queue);
    t.u(s.shared);
    t.u(s.can_offload);
}

fn app(t: &mut Tape, a: &AppRow) {
    t.u(a.id);
    t.s(&a.mountpoint);
    t.s(&a.chdir);
    t.u(a.modifier1);
    t.u(a.workers);
    t.u(a.requests);
    t.u(a.exceptions);
}

fn cache(t: &mut Tape, c: &Cache) {
    t.s(&c.name);
    t.s(&c.hash);
    for v in [
        c.hashsize,
        c.keysize,
        c.max_items,
        c.blocks,
        c.blocksize,
        c.items,
        c.hits,
        c.miss,
        c.full,
        c.last_modified_at,
    ] {
        t.u(v);
    }
}

fn spooler(t: &mut Tape, s: &Spooler) {
    t.s(&s.dir);
    t.i(s.pid);
    t.u(s.tasks);
    t.u(s.respawns);
    t.u(s.running);
}

/// `mean_rt_us: None` is NaN on the tape (JS: `null`).
pub fn rates(r: &Rates) -> Vec<f64> {
    let mut t = Tape {
        nums: Vec::with_capacity(7usize.saturating_add(r.workers.len().saturating_mul(5))),
        strs: String::new(),
    };
    t.f(r.elapsed_s);
    t.f(r.requests_per_s);
    t.f(r.exceptions_per_s);
    t.f(r.tx_bytes_per_s);
    t.f(r.mean_rt_us.unwrap_or(f64::NAN));
    t.b(r.restarted);
    t.n(r.workers.len());
    for w in &r.workers {
        t.u(w.id);
        t.f(w.requests_per_s);
        t.f(w.exceptions_per_s);
        t.f(w.tx_bytes_per_s);
        t.b(w.reset);
    }
    t.nums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive;
    use crate::doc::{decode, Document};

    fn vector(name: &str) -> Document {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../core/tests/vectors/");
        decode(&std::fs::read(format!("{p}{name}")).unwrap())
            .unwrap()
            .document
    }

    #[test]
    fn view_tape_layout_and_string_lengths_in_utf16_units() {
        let mut doc = vector("stats_e_cache_spooler_cron_raw.bin");
        // 'é' is 2 UTF-8 bytes, 1 UTF-16 unit; '𝄞' 4 bytes, 2 units.
        doc.cwd = "/srv/é𝄞".into();
        let v = derive::view(&doc);
        let t = view(&v);
        let (w, s, a, c, sp) = (
            v.workers.len(),
            v.sockets.len(),
            v.apps.len(),
            v.caches.len(),
            v.spoolers.len(),
        );
        assert_eq!((w, s, a, c, sp), (2, 1, 1, 1, 1));
        assert_eq!(
            t.nums.len(),
            8 + 19 * w + 6 + 9 + 1 + 1 + 6 * s + 1 + 7 * a + 1 + 12 * c + 1 + 5 * sp
        );
        assert_eq!(t.nums[0], 6.0); // "2.0.30"
        assert_eq!(t.nums[1], doc.pid as f64);
        assert_eq!(t.nums[2], 8.0); // "/srv/é𝄞": 6 + 2
        assert!(t.strs.starts_with("2.0.30/srv/é𝄞"));
        assert_eq!(t.nums[7], w as f64);
        // First worker: id, then its status string's length and class code.
        assert_eq!(t.nums[8], v.workers[0].id as f64);
        assert_eq!(t.nums[11], 0.0); // idle
    }

    #[test]
    fn rates_tape_marks_no_mean_as_nan_and_flags_as_0_1() {
        let prev = vector("stats_b_4x4_after_load_http.json");
        let cur = vector("stats_b_4x4_load_http.json");
        // Reversed interval: counters went down, every worker reset.
        let r = derive::rates(&prev, &cur, 2.0).unwrap();
        let t = rates(&r);
        assert_eq!(t.len(), 7 + 5 * r.workers.len());
        assert_eq!(t[0], 2.0);
        assert_eq!(t[1], r.requests_per_s);
        assert_eq!(t[4], r.mean_rt_us.unwrap());
        assert_eq!(t[5], 0.0);
        assert_eq!(t[11], 1.0);
        let idle = derive::rates(&prev, &prev, 1.0).unwrap();
        assert!(rates(&idle)[4].is_nan());
    }
}
