// The JS-facing API (wasm-bindgen --target nodejs build of this crate) over
// every captured stats vector in core/tests/vectors/, with exact values.
// Build first: scripts/build.d/viewer.sh (run by ./build.sh build|test|viewer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { viewJs, ratesJs } from '../www/js-derive.js';

const here = dirname(fileURLToPath(import.meta.url));
const VECTORS = join(here, '../../../core/tests/vectors');
const cache = process.env.UWSGI_RED_CACHE || join(homedir(), '.cache/uwsgi-red');
const pkg = process.env.VIEWER_NODE_PKG || join(cache, 'stats-viewer/node-pkg/stats_viewer.js');
assert.ok(existsSync(pkg), `${pkg} missing: run scripts/build.d/viewer.sh (./build.sh build) first`);
const wasm = createRequire(import.meta.url)(pkg);

const vec = (name) => readFileSync(join(VECTORS, name));

// Expected per capture (both the .bin as received and the .json body), read
// off the vectors with an independent JSON parser.
const EXPECTED = {
  stats_a_2proc_idle_http: { pid: 16463, workers: 2, status: { idle: 2 }, requests: 0, perWorker: [0, 0], exceptions: 0, tx: 0, rss: 0, respawns: 2, cores: 2, busy: 0, avgRt: 0, body: 1990 },
  stats_a_2proc_idle_raw: { pid: 16407, workers: 2, status: { idle: 2 }, requests: 0, perWorker: [0, 0], exceptions: 0, tx: 0, rss: 0, respawns: 2, cores: 2, busy: 0, avgRt: 0, body: 1990 },
  stats_b_4x4_after_load_http: { pid: 16694, workers: 4, status: { idle: 4 }, requests: 54, perWorker: [22, 7, 13, 12], exceptions: 0, tx: 5415, rss: 0, respawns: 4, cores: 16, busy: 0, avgRt: 188525305 / 54, body: 6495 },
  stats_b_4x4_load_http: { pid: 16694, workers: 4, status: { busy: 4 }, requests: 42, perWorker: [19, 5, 10, 8], exceptions: 0, tx: 4167, rss: 0, respawns: 4, cores: 16, busy: 12, avgRt: 7928 / 42, body: 11116, appRequests: 54 },
  stats_c_memory_report_raw: { pid: 16937, workers: 2, status: { idle: 2 }, requests: 10, perWorker: [8, 2], exceptions: 0, tx: 1000850, rss: 21491712, respawns: 2, cores: 2, busy: 0, avgRt: 361.6, body: 2037 },
  stats_d_enable_metrics_http: { pid: 17005, workers: 2, status: { idle: 2 }, requests: 11, perWorker: [0, 11], exceptions: 0, tx: 1062, rss: 0, respawns: 2, cores: 4, busy: 0, avgRt: 123, body: 8166 },
  stats_e_cache_spooler_cron_raw: { pid: 17650, workers: 2, status: { idle: 2 }, requests: 16, perWorker: [0, 16], exceptions: 0, tx: 1072, rss: 0, respawns: 2, cores: 2, busy: 0, avgRt: 310, body: 2772, caches: 1, spoolers: 1 },
  stats_f_minified_raw: { pid: 17930, workers: 2, status: { idle: 2 }, requests: 0, perWorker: [0, 0], exceptions: 0, tx: 0, rss: 0, respawns: 2, cores: 2, busy: 0, avgRt: 0, body: 1387 },
  stats_j_exceptions_http: { pid: 17153, workers: 2, status: { idle: 2 }, requests: 10, perWorker: [9, 1], exceptions: 5, tx: 500, rss: 0, respawns: 2, cores: 2, busy: 0, avgRt: 312.2, body: 2003 },
  stats_k_cwd_backslash_invalid_http: { pid: 27059, workers: 2, status: { idle: 2 }, requests: 1, perWorker: [1, 0], exceptions: 0, tx: 100, rss: 0, respawns: 2, cores: 2, busy: 0, avgRt: 771, body: 2016, repaired: true, cwd: '/srv/capture-site/dir\\with\\backslash' },
};

test('every stats vector in core/tests/vectors has expectations', () => {
  const names = new Set(readdirSync(VECTORS).filter((f) => /^stats_.*\.(bin|json)$/.test(f)).map((f) => f.replace(/\.(bin|json)$/, '')));
  assert.deepEqual([...names].sort(), Object.keys(EXPECTED).sort());
});

const ZERO = { idle: 0, busy: 0, cheap: 0, pause: 0, signal: 0, other: 0 };

for (const [name, x] of Object.entries(EXPECTED)) {
  for (const ext of ['bin', 'json']) {
    test(`${name}.${ext}: decode + view`, () => {
      const bytes = vec(`${name}.${ext}`);
      // Bytes and text must give the same view.
      const s = wasm.decode(new Uint8Array(bytes));
      const t = wasm.decode(bytes.toString('utf8'));
      const ab = wasm.decode(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      const v = s.view();
      assert.deepEqual(t.view(), v);
      assert.deepEqual(ab.view(), v);
      assert.equal(s.bodyBytes, x.body);
      assert.equal(s.repairs > 0, Boolean(x.repaired));
      assert.equal(v.version, '2.0.30');
      assert.equal(v.pid, x.pid);
      assert.equal(v.cwd, x.cwd ?? '/srv/capture-site');
      assert.equal(v.workers.length, x.workers);
      assert.deepEqual(v.workers.map((w) => w.id), Array.from({ length: x.workers }, (_, i) => i + 1));
      assert.deepEqual(v.workers.map((w) => w.requests), x.perWorker);
      assert.deepEqual(v.status, { ...ZERO, ...x.status });
      assert.deepEqual(v.workers.map((w) => w.status_class).filter((c) => c === 'busy').length, x.status.busy ?? 0);
      assert.equal(v.totals.workers, x.workers);
      assert.equal(v.totals.requests, x.requests);
      assert.equal(v.totals.exceptions, x.exceptions);
      assert.equal(v.totals.tx, x.tx);
      assert.equal(v.totals.rss, x.rss);
      assert.equal(v.totals.respawns, x.respawns);
      assert.equal(v.totals.harakiri, 0);
      assert.equal(v.totals.cores, x.cores);
      assert.equal(v.totals.busy_cores, x.busy);
      assert.ok(Math.abs(v.avg_rt_us - x.avgRt) < 1e-9, `avg_rt ${v.avg_rt_us} != ${x.avgRt}`);
      assert.equal(v.listen_queue, 0);
      assert.equal(v.listen_queue_errors, 0);
      assert.equal(v.sockets.length, 1);
      assert.equal(v.apps.length, 1);
      assert.equal(v.apps[0].workers, x.workers);
      // An app counts a request when it starts, a worker when it ends.
      assert.equal(v.apps[0].requests, x.appRequests ?? x.requests);
      assert.equal(v.apps[0].exceptions, x.exceptions);
      assert.equal(v.caches.length, x.caches ?? 0);
      assert.equal(v.spoolers.length, x.spoolers ?? 0);
      // Nothing of the live request's vars (cookies) may reach JS.
      assert.doesNotMatch(JSON.stringify(v), /vars|HTTP_COOKIE|REQUEST_URI|X-Request-Id|HTTP_USER_AGENT/i);
      // Rates against itself: a zero interval is an error, any other is all zeros.
      assert.throws(() => s.rates(t, 0), /positive number of seconds/);
      const r = s.rates(t, 2);
      assert.deepEqual([r.requests_per_s, r.exceptions_per_s, r.tx_bytes_per_s, r.mean_rt_us, r.restarted], [0, 0, 0, null, false]);
      assert.equal(r.workers.length, x.workers);
      // decodeTargets wraps a document as one target.
      const [tg, ...rest] = wasm.decodeTargets(bytes, 'local');
      assert.equal(rest.length, 0);
      assert.deepEqual([tg.name, tg.up, tg.stale, tg.lastError, tg.generatedAtMs], ['local', true, false, undefined, undefined]);
      assert.deepEqual(tg.stats().view(), v);
      for (const o of [s, t, ab, tg]) o.free();
    });
  }
}

test('the load interval: rates per worker and total between two real captures', () => {
  const during = wasm.decode(vec('stats_b_4x4_load_http.bin'));
  const after = wasm.decode(vec('stats_b_4x4_after_load_http.bin'));
  const r = after.rates(during, 4);
  assert.equal(r.elapsed_s, 4);
  assert.equal(r.requests_per_s, 12 / 4);
  assert.deepEqual(r.workers.map((w) => w.requests_per_s), [3 / 4, 2 / 4, 3 / 4, 4 / 4]);
  assert.equal(r.tx_bytes_per_s, (5415 - 4167) / 4);
  assert.equal(r.exceptions_per_s, 0);
  assert.equal(r.restarted, false);
  assert.ok(r.workers.every((w) => !w.reset));
  assert.ok(r.mean_rt_us > 1e6, `12 slow requests of ~4 s: ${r.mean_rt_us}`);
  // Reversed (counters went down): a reset, counted from zero.
  const back = during.rates(after, 4);
  assert.ok(back.workers.every((w) => w.reset));
  assert.equal(back.requests_per_s, 42 / 4);
  // Different master pid: a restart.
  const other = wasm.decode(vec('stats_j_exceptions_http.bin'));
  assert.equal(other.rates(after, 1).restarted, true);
});

test('errors are JS exceptions with core messages', () => {
  assert.throws(() => wasm.decode(''), { message: 'empty stats reply' });
  assert.throws(() => wasm.decode('<html>'), /not a JSON stats document/);
  assert.throws(() => wasm.decode('{"version":"2.0.30","workers":['), /stats JSON is truncated/);
  assert.throws(() => wasm.decode('{"version":"2.0.30","workers":[{"id":"one"}]}'), /unexpected stats value at `workers\[0\]\.id`/);
  assert.throws(() => wasm.decode('HTTP/1.0 503 Busy\r\n\r\n{}'), /HTTP status 503/);
  assert.throws(() => wasm.decode(42), /string, Uint8Array or ArrayBuffer/);
  assert.throws(() => wasm.decodeTargets('{"error":"no snapshot yet"}', 'x'), /missing field `version`/);
  // Cut at byte 1000 of the largest vector: truncated, not a crash.
  assert.throws(() => wasm.decode(vec('stats_b_4x4_load_http.json').subarray(0, 1000)), /truncated|invalid stats JSON/);
});

test('Envoy uwsgi-stats snapshot: one target per polled server', () => {
  const during = JSON.parse(vec('stats_b_4x4_load_http.json'));
  during.workers.forEach((w) => w.cores.forEach((c) => delete c.vars));
  const snap = {
    generated_at_ms: 1763784000123,
    targets: [
      { target: 'app1', up: true, stale: false, last_success_ms: 1763784000000, last_error: null, repairs: 0, document: during },
      { target: 'app2', up: false, stale: false, last_success_ms: null, last_error: 'connect: connection refused', repairs: 0, document: null },
    ],
  };
  const ts = wasm.decodeTargets(JSON.stringify(snap), 'ignored');
  assert.deepEqual(ts.map((t) => [t.name, t.up, t.generatedAtMs, t.lastError ?? null]), [
    ['app1', true, 1763784000123, null],
    ['app2', false, 1763784000123, 'connect: connection refused'],
  ]);
  assert.equal(ts[0].lastSuccessMs, 1763784000000);
  assert.equal(ts[0].stats().view().totals.requests, 42);
  assert.equal(ts[1].stats(), undefined);
});

test('plain-JS derivation (benchmark baseline) equals the Wasm one on every valid vector', () => {
  const names = Object.keys(EXPECTED).filter((n) => !EXPECTED[n].repaired);
  for (const name of names) {
    const text = vec(`${name}.json`).toString('utf8');
    const w = wasm.decode(text).view();
    const j = viewJs(JSON.parse(text));
    for (const k of ['version', 'pid', 'cwd', 'load', 'listen_queue', 'listen_queue_errors', 'signal_queue', 'workers', 'status', 'totals', 'apps']) {
      assert.deepEqual(j[k], w[k], `${name}: ${k}`);
    }
    assert.ok(Math.abs(j.avg_rt_us - w.avg_rt_us) < 1e-9, name);
    assert.deepEqual(j.sockets.map((s) => [s.name, s.proto, s.queue, s.max_queue]), w.sockets.map((s) => [s.name, s.proto, s.queue, s.max_queue]));
  }
  const a = vec('stats_b_4x4_load_http.json').toString();
  const b = vec('stats_b_4x4_after_load_http.json').toString();
  assert.deepEqual(ratesJs(JSON.parse(a), JSON.parse(b), 4), wasm.decode(b).rates(wasm.decode(a), 4));
});

test('view() and rates() objects: every field, non-ASCII strings, rounding and non-finite rates', () => {
  const doc = (requests, runningTime) => JSON.stringify({
    version: '2.0.30-é',
    pid: 9007199254740993,
    cwd: '/srv/日本/𝄞"q\\',
    workers: [
      { id: 1, pid: 7, status: 'sig9', requests, running_time: runningTime, tx: 5, apps: [{ id: 0, mountpoint: 'ü', chdir: '/c', requests: 2 }], cores: [{ in_request: 1 }, {}] },
      { id: 0, status: 'cheap' },
      { id: 2, status: 'pause', avg_rt: 4, requests: 1 },
    ],
    sockets: [{ name: '日本:1', proto: 'http', queue: 2 }, { name: '日本:1', proto: 'http', queue: 9 }],
    caches: [{ name: 'c', hash: 'djb33x', items: 5, last_modified_at: 9 }],
    spoolers: [{ dir: '/sp/ü', pid: -1, tasks: 4 }],
  });
  const s = wasm.decode(doc(3, 30));
  const v = s.view();
  assert.equal(v.version, '2.0.30-é');
  // 2^53 + 1 rounds to 2^53, as JSON.parse rounds it.
  assert.equal(v.pid, 9007199254740992);
  assert.equal(v.cwd, '/srv/日本/𝄞"q\\');
  assert.deepEqual(v.workers.map((w) => [w.id, w.status, w.status_class, w.requests, w.apps, w.cores, w.busy_cores]),
    [[1, 'sig9', 'signal', 3, 1, 2, 1], [2, 'pause', 'pause', 1, 0, 0, 0]]);
  assert.deepEqual(v.status, { idle: 0, busy: 0, cheap: 0, pause: 1, signal: 1, other: 0 });
  assert.deepEqual(v.totals, { workers: 2, requests: 4, exceptions: 0, harakiri: 0, respawns: 0, tx: 5, rss: 0, cores: 2, busy_cores: 1 });
  assert.equal(v.avg_rt_us, 1);
  assert.deepEqual(v.sockets, [{ name: '日本:1', proto: 'http', queue: 2, max_queue: 0, shared: 0, can_offload: 0 }]);
  assert.deepEqual(v.apps, [{ id: 0, mountpoint: 'ü', chdir: '/c', modifier1: 0, workers: 1, requests: 2, exceptions: 0 }]);
  assert.deepEqual(v.caches, [{ name: 'c', hash: 'djb33x', hashsize: 0, keysize: 0, max_items: 0, blocks: 0, blocksize: 0, items: 5, hits: 0, miss: 0, full: 0, last_modified_at: 9 }]);
  assert.deepEqual(v.spoolers, [{ dir: '/sp/ü', pid: -1, tasks: 4, respawns: 0, running: 0 }]);
  const prev = wasm.decode(doc(1, 10));
  assert.deepEqual(s.rates(prev, 2), {
    elapsed_s: 2, requests_per_s: 1, exceptions_per_s: 0, tx_bytes_per_s: 0, mean_rt_us: 10, restarted: false,
    workers: [{ id: 1, requests_per_s: 1, exceptions_per_s: 0, tx_bytes_per_s: 0, reset: false }, { id: 2, requests_per_s: 0, exceptions_per_s: 0, tx_bytes_per_s: 0, reset: false }],
  });
  // A rate that overflows is null (as serde_json wrote it), no request finished: mean null.
  const tiny = s.rates(prev, 5e-324);
  assert.equal(tiny.requests_per_s, null);
  assert.equal(tiny.workers[0].requests_per_s, null);
  assert.equal(tiny.exceptions_per_s, 0);
  assert.equal(s.rates(s, 1).mean_rt_us, null);
});
