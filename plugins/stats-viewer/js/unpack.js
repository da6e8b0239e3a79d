// The objects `Stats.view()` and `Stats.rates()` return, read off the tape
// src/pack.rs writes: numbers through a Float64Array over Wasm memory
// (valid only during this call, so everything is copied into plain
// objects here) and strings sliced out of one text by their UTF-16
// lengths. wasm-bindgen copies this file into the generated package
// (pkg/snippets/); the field order is src/pack.rs's.

const CLASSES = ['idle', 'busy', 'cheap', 'pause', 'signal', 'other'];

// serde_json wrote a non-finite float as null.
const fin = (x) => (Number.isFinite(x) ? x : null);

export function unpackView(n, text) {
  let i = 0;
  let at = 0;
  const str = () => {
    const end = at + n[i++];
    const s = text.slice(at, end);
    at = end;
    return s;
  };
  const version = str();
  const pid = n[i++];
  const cwd = str();
  const load = n[i++];
  const listenQueue = n[i++];
  const listenQueueErrors = n[i++];
  const signalQueue = n[i++];
  const workers = new Array(n[i++]);
  for (let k = 0; k < workers.length; k += 1) {
    workers[k] = {
      id: n[i++],
      pid: n[i++],
      status: str(),
      status_class: CLASSES[n[i++]],
      accepting: n[i++],
      requests: n[i++],
      exceptions: n[i++],
      harakiri_count: n[i++],
      respawn_count: n[i++],
      signals: n[i++],
      rss: n[i++],
      vsz: n[i++],
      tx: n[i++],
      avg_rt_us: n[i++],
      running_time_us: n[i++],
      last_spawn: n[i++],
      apps: n[i++],
      cores: n[i++],
      busy_cores: n[i++],
    };
  }
  const status = { idle: n[i++], busy: n[i++], cheap: n[i++], pause: n[i++], signal: n[i++], other: n[i++] };
  const totals = {
    workers: n[i++],
    requests: n[i++],
    exceptions: n[i++],
    harakiri: n[i++],
    respawns: n[i++],
    tx: n[i++],
    rss: n[i++],
    cores: n[i++],
    busy_cores: n[i++],
  };
  const avgRt = fin(n[i++]);
  const sockets = new Array(n[i++]);
  for (let k = 0; k < sockets.length; k += 1) {
    sockets[k] = { name: str(), proto: str(), queue: n[i++], max_queue: n[i++], shared: n[i++], can_offload: n[i++] };
  }
  const apps = new Array(n[i++]);
  for (let k = 0; k < apps.length; k += 1) {
    apps[k] = {
      id: n[i++], mountpoint: str(), chdir: str(), modifier1: n[i++], workers: n[i++], requests: n[i++], exceptions: n[i++],
    };
  }
  const caches = new Array(n[i++]);
  for (let k = 0; k < caches.length; k += 1) {
    caches[k] = {
      name: str(),
      hash: str(),
      hashsize: n[i++],
      keysize: n[i++],
      max_items: n[i++],
      blocks: n[i++],
      blocksize: n[i++],
      items: n[i++],
      hits: n[i++],
      miss: n[i++],
      full: n[i++],
      last_modified_at: n[i++],
    };
  }
  const spoolers = new Array(n[i++]);
  for (let k = 0; k < spoolers.length; k += 1) {
    spoolers[k] = { dir: str(), pid: n[i++], tasks: n[i++], respawns: n[i++], running: n[i++] };
  }
  return {
    version,
    pid,
    cwd,
    load,
    listen_queue: listenQueue,
    listen_queue_errors: listenQueueErrors,
    signal_queue: signalQueue,
    workers,
    status,
    totals,
    avg_rt_us: avgRt,
    sockets,
    apps,
    caches,
    spoolers,
  };
}

export function unpackRates(n) {
  let i = 7;
  const workers = new Array(n[6]);
  for (let k = 0; k < workers.length; k += 1) {
    workers[k] = {
      id: n[i++],
      requests_per_s: fin(n[i++]),
      exceptions_per_s: fin(n[i++]),
      tx_bytes_per_s: fin(n[i++]),
      reset: n[i++] !== 0,
    };
  }
  return {
    elapsed_s: n[0],
    requests_per_s: fin(n[1]),
    exceptions_per_s: fin(n[2]),
    tx_bytes_per_s: fin(n[3]),
    mean_rt_us: fin(n[4]),
    restarted: n[5] !== 0,
    workers,
  };
}
