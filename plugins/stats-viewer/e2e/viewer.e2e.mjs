// End-to-end test of the stats viewer page in real headless Chromium
// (Debian /usr/bin/chromium driven by playwright-core). Run by
// host-tests/test_stats_viewer.py, which owns uWSGI and the page server and
// answers the `CONTROL stop|start` lines this script prints with `ok` on stdin.
//
// Environment: VIEWER_PAGE_URL, VIEWER_STATS_URL, VIEWER_APP_URL,
// VIEWER_VECTORS (core/tests/vectors), VIEWER_ARTIFACTS (dir for PNGs),
// VIEWER_DOCS_SCREENSHOT (optional second copy of the screenshot).
// `--bench-only` skips everything but the Wasm-vs-JS benchmark (needs only
// VIEWER_PAGE_URL and VIEWER_VECTORS; VIEWER_BASELINE_PKG adds another
// build to the same rounds).
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';

const env = process.env;
const PAGE = env.VIEWER_PAGE_URL;
const VECTORS = env.VIEWER_VECTORS;
const ARTIFACTS = env.VIEWER_ARTIFACTS || '.';
const BENCH_ONLY = process.argv.includes('--bench-only');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run'];

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function control(cmd) {
  console.log(`CONTROL ${cmd}`);
  const { value, done } = await stdinLines.next();
  assert.ok(!done && value.trim() === 'ok', `controller answered ${JSON.stringify(value)} to ${cmd}`);
}

const step = (msg) => console.log(`STEP ${msg}`);
const num = (text) => Number(String(text).replace(/,/g, '').replace(/[^\d.]+$/, ''));

// Bounded loopback load: at most `max` requests and `ms` milliseconds.
// Eight clients on four workers: requests wait in the listen queue and the
// workers are busy most of the time, which the page shows.
async function drive(url, { max = 4000, ms = 20000, concurrency = 8, stop }) {
  const until = Date.now() + ms;
  let sent = 0;
  let ok = 0;
  async function loop() {
    while (sent < max && Date.now() < until && !stop.flag) {
      const i = sent++;
      // Every 4th request is slow, so busy workers show on the chart.
      const path = i % 4 === 0 ? 'slow?s=0.15' : `item/${i % 50}`;
      try {
        const r = await fetch(`${url}/${path}`);
        await r.arrayBuffer();
        if (r.ok) ok += 1;
      } catch { /* counted as not ok */ }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { sent, ok };
}

async function bench(page) {
  const files = readdirSync(VECTORS).filter((f) => /^stats_.*\.json$/.test(f));
  // The largest document that is valid JSON (JSON.parse cannot read the
  // invalid one), and the smaller capture of the same server as the earlier snapshot.
  const largest = files.filter((f) => !f.includes('invalid'))
    .sort((a, b) => statSync(join(VECTORS, b)).size - statSync(join(VECTORS, a)).size)[0];
  const prev = files.find((f) => f !== largest && f.startsWith(largest.split('_').slice(0, 2).join('_'))) ?? largest;
  const text = readFileSync(join(VECTORS, largest), 'utf8');
  const prevText = readFileSync(join(VECTORS, prev), 'utf8');
  // VIEWER_BASELINE_PKG: another build's www/ subfolder (e.g. a copy of an
  // older pkg/), timed in the same rounds, for before/after from one run.
  const baseline = env.VIEWER_BASELINE_PKG || null;
  const res = await page.evaluate(async ({ text, prevText, baseline }) => {
    // Both sides start where the page's poll starts: the bytes of the
    // fetched body (app.js passes `new Uint8Array(await r.arrayBuffer())`
    // to decodeTargets). Wasm: the page's own calls (decodeTargets, the
    // target's getters and stats(), view(), rates() against the previous
    // Stats). JS: UTF-8 decoding, then
    // JSON.parse and the same derivation (www/js-derive.js). Both keep the
    // previous snapshot in decoded form and return plain objects.
    const enc = new TextEncoder();
    const bytes = enc.encode(text);
    const prevBytes = enc.encode(prevText);
    const j = await import('./js-derive.js');
    const wasmSide = async (path) => {
      const m = await import(path);
      await m.default();
      const prevW = m.decodeTargets(prevBytes, 'bench')[0].stats();
      // What app.js's poll and ingest() read per target, in their order.
      return () => {
        const t = m.decodeTargets(bytes, 'bench')[0];
        const name = t.name;
        const s = t.stats();
        const sampleAt = t.generatedAtMs ?? 1;
        const meta = { up: t.up, stale: t.stale, lastError: t.lastError, repairs: t.repairs, generatedAt: t.generatedAtMs };
        t.free();
        const v = s.view();
        const r = s.rates(prevW, 2);
        s.free();
        return v.totals.requests + r.requests_per_s + v.status.busy + name.length + sampleAt + meta.repairs;
      };
    };
    const utf8 = new TextDecoder();
    const prevJ = JSON.parse(utf8.decode(prevBytes));
    const sides = {
      wasm: await wasmSide('./pkg/stats_viewer.js'),
      js: () => {
        const d = JSON.parse(utf8.decode(bytes));
        const v = j.viewJs(d);
        const r = j.ratesJs(prevJ, d, 2);
        return v.totals.requests + r.requests_per_s + v.status.busy;
      },
    };
    if (baseline) sides.baseline = await wasmSide(`./${baseline}/stats_viewer.js`);
    let sink = 0;
    // Rounds alternate between the sides so a burst of load on the
    // shared machine hits all of them; the median round of each is reported.
    // Enough warm-up rounds for both JITs to tier up, and enough rounds that
    // one garbage collection or descheduling moves no median.
    const ITER = 200;
    const ROUNDS = 21;
    const time = (f) => {
      const t0 = performance.now();
      for (let i = 0; i < ITER; i += 1) sink += f();
      return (performance.now() - t0) / ITER;
    };
    const names = Object.keys(sides);
    for (let i = 0; i < 5; i += 1) names.forEach((k) => time(sides[k]));
    const rounds = Object.fromEntries(names.map((k) => [k, []]));
    for (let round = 0; round < ROUNDS; round += 1) names.forEach((k) => rounds[k].push(time(sides[k])));
    const median = (a) => a.sort((x, y) => x - y)[a.length >> 1];
    return { ms: Object.fromEntries(names.map((k) => [k, median(rounds[k])])), sink };
  }, { text, prevText, baseline });
  assert.ok(res.sink > 0);
  const us = (k) => (res.ms[k] * 1000).toFixed(1);
  console.log(`# viewer bench: ${largest} (${text.length} bytes) against ${prev}, from the fetched bytes on both sides; median of 21 rounds x 200 iterations`);
  console.log(`BENCH viewer_wasm_decode_derive_us ${us('wasm')} us`);
  console.log(`BENCH viewer_js_parse_derive_us ${us('js')} us`);
  console.log(`BENCH viewer_wasm_vs_js_ratio ${(res.ms.wasm / res.ms.js).toFixed(2)} x`);
  if (baseline) {
    console.log(`BENCH viewer_baseline_wasm_decode_derive_us ${us('baseline')} us`);
    console.log(`BENCH viewer_baseline_wasm_vs_js_ratio ${(res.ms.baseline / res.ms.js).toFixed(2)} x`);
  }
}

async function e2e(page) {
  const STATS = env.VIEWER_STATS_URL;
  const APP = env.VIEWER_APP_URL;
  const src = page.locator(`section.source[data-source="${STATS}"]`);
  const rows = src.locator('table.workers tbody tr');

  step('add the target');
  await page.fill('#url', STATS);
  await page.click('#add');
  await rows.nth(3).waitFor({ timeout: 15000 });
  assert.equal(await rows.count(), 4, 'worker table rows');
  assert.equal(await src.locator('.workers-count .v').textContent(), '4');

  step('drive load and wait for req/s');
  const stop = { flag: false };
  const load = drive(APP, { stop });
  const totalSel = `section.source[data-source="${STATS}"] .total-rps .v`;
  await page.waitForFunction((sel) => {
    const v = Number(document.querySelector(sel)?.textContent.replace(/,/g, ''));
    return v > 0;
  }, totalSel, { timeout: 15000 });
  // A few more polls under load so the charts have a line.
  await page.waitForTimeout(6500);
  const total = num(await page.locator(totalSel).textContent());
  const perWorker = (await src.locator('table.workers td.rps').allTextContents()).map(num);
  console.log(`E2E req/s total=${total} per worker=${perWorker.join(',')}`);
  assert.ok(total > 0, `total req/s ${total}`);
  assert.ok(perWorker.some((v) => v > 0), `per-worker req/s ${perWorker}`);
  // Utilisation and the true per-worker mean, from running_time between polls.
  const util = num(await src.locator('.utilisation .v').textContent());
  const means = (await src.locator('table.workers td.mean').allTextContents()).filter((t) => t !== '–').map(num);
  const shares = (await src.locator('table.workers td.share').allTextContents()).filter((t) => t !== '–').map(num);
  console.log(`E2E utilisation=${util} % worker means=${means.join(',')} ms busy=${shares.join(',')} % `
    + `listen queue=${await src.locator('.listen-queue .v').textContent()}`);
  assert.ok(util > 0 && util <= 100, `utilisation ${util}`);
  assert.ok(shares.length === 4 && shares.every((v) => v >= 0 && v <= 100), `busy shares ${shares}`);
  // A mix of 0.15 s and sub-millisecond requests: every mean is a mean of
  // those (with slack for a loaded machine), never uWSGI's avg_rt halving.
  assert.ok(means.length > 0 && means.every((v) => v > 0 && v < 500), `worker means ${means}`);
  assert.match(await src.locator('.avg-rt .k').textContent(), /not a mean/);
  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = join(ARTIFACTS, 'viewer.png');
  await page.screenshot({ path: shot, fullPage: false });
  if (env.VIEWER_DOCS_SCREENSHOT) copyFileSync(shot, env.VIEWER_DOCS_SCREENSHOT);
  console.log(`E2E screenshot ${shot}`);
  stop.flag = true;
  const { sent, ok } = await load;
  console.log(`E2E load sent=${sent} ok=${ok}`);
  assert.ok(ok > 0);
  const served = num(await src.locator('table.workers tbody tr td:nth-child(4)').first().textContent());
  assert.ok(served >= 0);

  step('stop uWSGI: error banner');
  await control('stop');
  const err = page.locator(`#banners .banner.error[data-source="${STATS}"]`);
  await err.waitFor({ timeout: 15000 });
  const errText = await err.textContent();
  console.log(`E2E banner: ${errText}`);
  assert.match(errText, /is down since/);
  assert.match(await src.getAttribute('class'), /\bdown\b/);
  assert.equal(await src.locator('.head .pill').textContent(), 'down');
  await page.screenshot({ path: join(ARTIFACTS, 'viewer-down.png') });

  step('restart uWSGI: recovery');
  await control('start');
  const okBanner = page.locator(`#banners .banner.ok[data-source="${STATS}"]`);
  await okBanner.waitFor({ timeout: 20000 });
  assert.match(await okBanner.textContent(), /recovered after \d+ s down/);
  assert.equal(await err.count(), 0, 'error banner gone');
  assert.equal(await src.locator('.head .pill').textContent(), 'up');
  assert.doesNotMatch(await src.getAttribute('class'), /\bdown\b/);
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 4,
    `section.source[data-source="${STATS}"] table.workers tbody tr`, { timeout: 10000 });

  step('pause stops polling, resume restarts it');
  await page.click('#pause');
  assert.equal(await page.locator('#pause').textContent(), 'Resume');
  const before = await src.locator('.head .meta').textContent();
  await page.waitForTimeout(2500);
  assert.equal(await src.locator('.head .meta').textContent(), before, 'no poll while paused');
  await page.click('#pause');
  await page.waitForFunction(([sel, b]) => document.querySelector(sel).textContent !== b,
    [`section.source[data-source="${STATS}"] .head .meta`, before], { timeout: 10000 });

  step('open the invalid-JSON vector through the file input (the drop path)');
  const vector = join(VECTORS, 'stats_k_cwd_backslash_invalid_http.json');
  await page.setInputFiles('#file', vector);
  const f = page.locator(`section.source[data-source="${basename(vector)}"]`);
  await f.locator('table.workers tbody tr').first().waitFor({ timeout: 10000 });
  assert.equal(await f.locator('table.workers tbody tr').count(), 2);
  assert.match(await f.locator('.repaired').textContent(), /repaired/);
  assert.equal(await f.locator('.cwd .v').textContent(), '/srv/capture-site/dir\\with\\backslash');
  assert.equal(await f.locator('.head .pill').textContent(), 'file');

  step('a real drop event with a DataTransfer');
  const raw = readFileSync(join(VECTORS, 'stats_e_cache_spooler_cron_raw.bin'), 'latin1');
  const dt = await page.evaluateHandle(({ raw }) => {
    const d = new DataTransfer();
    d.items.add(new File([raw], 'dropped.bin', { type: 'application/octet-stream' }));
    return d;
  }, { raw });
  await page.dispatchEvent('body', 'drop', { dataTransfer: dt });
  const dropped = page.locator('section.source[data-source="dropped.bin"]');
  await dropped.locator('table.caches tbody tr').first().waitFor({ timeout: 10000 });
  assert.equal(await dropped.locator('table.caches tbody tr td').first().textContent(), 'mycache');

  step('vars never reach the page');
  const html = await page.content();
  assert.doesNotMatch(html, /HTTP_COOKIE|REQUEST_URI|"vars"/);
}

async function main() {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, timeout: 60000 });
  const errors = [];
  let page;
  try {
    page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') console.log(`console.error: ${m.text()}`); });
    await page.goto(`${PAGE}?fresh=1&interval=1000`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 15000 });
    if (!BENCH_ONLY) await e2e(page);
    await bench(page);
    assert.deepEqual(errors, [], 'uncaught page errors');
    console.log(BENCH_ONLY ? 'BENCH-ONLY ok' : 'E2E ok');
  } catch (e) {
    if (page) await page.screenshot({ path: join(ARTIFACTS, 'viewer-failure.png') }).catch(() => {});
    console.log(`E2E FAILED: ${e.stack || e}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
    process.stdin.destroy();
  }
}

main();
