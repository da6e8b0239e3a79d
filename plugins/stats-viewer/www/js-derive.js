// The viewer's derivation written in plain JS over JSON.parse output: the
// baseline of the `viewer_wasm_vs_js_ratio` benchmark. The page itself uses
// the Wasm module (which also repairs uWSGI's invalid JSON and strips HTTP
// heads, which this does not). Kept field-for-field equal to src/derive.rs;
// tests/api.test.mjs checks that on every valid vector.

const CLASSES = new Set(['idle', 'busy', 'cheap', 'pause']);

export function statusClass(s) {
  if (CLASSES.has(s)) return s;
  return /^sig\d{1,3}$/.test(s) && Number(s.slice(3)) < 256 ? 'signal' : 'other';
}

const n = (v) => (typeof v === 'number' ? v : 0);

export function viewJs(doc) {
  const workers = [];
  const status = { idle: 0, busy: 0, cheap: 0, pause: 0, signal: 0, other: 0 };
  const totals = { workers: 0, requests: 0, exceptions: 0, harakiri: 0, respawns: 0, tx: 0, rss: 0, cores: 0, busy_cores: 0 };
  let rtW = 0;
  let rtN = 0;
  const apps = [];
  for (const w of doc.workers) {
    if (!w.id) continue;
    const cores = w.cores || [];
    const row = {
      id: w.id,
      pid: n(w.pid),
      status: w.status ?? 'idle',
      status_class: statusClass(w.status ?? 'idle'),
      accepting: n(w.accepting),
      requests: n(w.requests),
      exceptions: n(w.exceptions),
      harakiri_count: n(w.harakiri_count),
      respawn_count: n(w.respawn_count),
      signals: n(w.signals),
      rss: n(w.rss),
      vsz: n(w.vsz),
      tx: n(w.tx),
      avg_rt_us: n(w.avg_rt),
      running_time_us: n(w.running_time),
      last_spawn: n(w.last_spawn),
      apps: (w.apps || []).length,
      cores: cores.length,
      busy_cores: cores.filter((c) => c.in_request).length,
    };
    workers.push(row);
    status[row.status_class] += 1;
    totals.workers += 1;
    totals.requests += row.requests;
    totals.exceptions += row.exceptions;
    totals.harakiri += row.harakiri_count;
    totals.respawns += row.respawn_count;
    totals.tx += row.tx;
    totals.rss += row.rss;
    totals.cores += row.cores;
    totals.busy_cores += row.busy_cores;
    if (row.requests > 0) {
      rtW += row.avg_rt_us * row.requests;
      rtN += row.requests;
    }
    for (const a of w.apps || []) {
      const mp = a.mountpoint ?? '';
      const r = apps.find((x) => x.id === n(a.id) && x.mountpoint === mp);
      if (r) {
        r.workers += 1;
        r.requests += n(a.requests);
        r.exceptions += n(a.exceptions);
      } else {
        apps.push({ id: n(a.id), mountpoint: mp, chdir: a.chdir ?? '', modifier1: n(a.modifier1), workers: 1, requests: n(a.requests), exceptions: n(a.exceptions) });
      }
    }
  }
  const sockets = [];
  for (const s of doc.sockets || []) {
    if (!sockets.some((k) => k.name === s.name && k.proto === s.proto)) sockets.push(s);
  }
  return {
    version: doc.version,
    pid: n(doc.pid),
    cwd: doc.cwd ?? '',
    load: n(doc.load),
    listen_queue: n(doc.listen_queue),
    listen_queue_errors: n(doc.listen_queue_errors),
    signal_queue: n(doc.signal_queue),
    workers,
    status,
    totals,
    avg_rt_us: rtN > 0 ? rtW / rtN : 0,
    sockets,
    apps,
    caches: doc.caches || [],
    spoolers: doc.spoolers || [],
  };
}

const inc = (p, c) => (c >= p ? [c - p, false] : [c, true]);

export function ratesJs(prev, cur, elapsed) {
  if (!(Number.isFinite(elapsed) && elapsed > 0)) {
    throw new Error(`interval between snapshots must be a positive number of seconds, got ${elapsed}`);
  }
  let dReq = 0;
  let dExc = 0;
  let dTx = 0;
  let dRt = 0;
  const byId = new Map(prev.workers.filter((w) => w.id).map((w) => [w.id, w]));
  const workers = [];
  for (const w of cur.workers) {
    if (!w.id) continue;
    const p = byId.get(w.id);
    if (!p) continue;
    const [req, r1] = inc(n(p.requests), n(w.requests));
    const [exc, r2] = inc(n(p.exceptions), n(w.exceptions));
    const [tx, r3] = inc(n(p.tx), n(w.tx));
    const [rt, r4] = inc(n(p.running_time), n(w.running_time));
    dReq += req;
    dExc += exc;
    dTx += tx;
    dRt += rt;
    workers.push({ id: w.id, requests_per_s: req / elapsed, exceptions_per_s: exc / elapsed, tx_bytes_per_s: tx / elapsed, reset: r1 || r2 || r3 || r4 });
  }
  return {
    elapsed_s: elapsed,
    requests_per_s: dReq / elapsed,
    exceptions_per_s: dExc / elapsed,
    tx_bytes_per_s: dTx / elapsed,
    mean_rt_us: dReq > 0 ? dRt / dReq : null,
    restarted: n(prev.pid) !== n(cur.pid),
    workers,
  };
}
