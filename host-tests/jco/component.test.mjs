// The component transpiled by jco, under Node's test runner: every case of
// the fixture written by the native Rust core (host-tests/wasmtime-host,
// bin jco-fixture) must give exactly the expected value.
//
//   UWSGI_RED_COMPONENT_JS=<jco output>/uwsgi-red.js \
//   UWSGI_RED_FIXTURE=<fixture.json> node --test host-tests/jco/
//
// Values are compared in the fixture's canonical JSON: BigInt as decimal
// strings, typed arrays as arrays, undefined as null, a thrown ComponentError
// as {err: payload} and a returned value of a `result` as {ok: value}.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const componentJs = process.env.UWSGI_RED_COMPONENT_JS;
const fixturePath = process.env.UWSGI_RED_FIXTURE;
if (!componentJs || !fixturePath) {
  throw new Error('set UWSGI_RED_COMPONENT_JS and UWSGI_RED_FIXTURE (host-tests/test_component.py does)');
}
const { uwsgi, stats, logs, red } = await import(pathToFileURL(componentJs).href);
const fixture = JSON.parse(readFileSync(fixturePath, 'utf8'));

function canon(v) {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return v.toString();
  // jco gives list<u8> as Uint8Array and list<f64> as Float64Array.
  if (ArrayBuffer.isView(v)) return Array.from(v);
  if (Array.isArray(v)) return v.map(canon);
  if (typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = canon(x);
    return out;
  }
  return v;
}

function result(f) {
  try {
    return { ok: canon(f()) };
  } catch (e) {
    if (e && Object.prototype.hasOwnProperty.call(e, 'payload')) return { err: canon(e.payload) };
    throw e;
  }
}

const files = new Map();
function file(name) {
  if (!files.has(name)) files.set(name, readFileSync(join(fixture.vectors, name)));
  return files.get(name);
}
function input(a) {
  const b = new Uint8Array(file(a.file));
  return a.prefix === undefined ? b : b.subarray(0, a.prefix);
}
const lines = (name) => file(name).toString('utf8').split('\n');
const octetBytes = (o) => (o.tag === 'text' ? new TextEncoder().encode(o.val) : o.val);

function replay(a) {
  const rec = red.Recorder.create(a.options);
  try {
    for (const line of lines(a.file)) {
      const r = logs.parseLine(line);
      if (r === undefined) continue;
      const seconds = r.durationUs === undefined ? 0 : Number(r.durationUs) / 1e6;
      rec.record(r.method, r.path, r.status, seconds);
    }
    return canon({
      seriesCount: rec.seriesCount(),
      dropped: rec.dropped(),
      text: rec.prometheusText(),
      families: rec.families(),
    });
  } finally {
    rec[Symbol.dispose]();
  }
}

const calls = {
  'uwsgi.decode-head': (a) => result(() => uwsgi.decodeHead(input(a), a.limit ?? undefined)),
  // vars is a Uint32Array (list<u32>): canon turns it into an array.
  'uwsgi.decode-head-spans': (a) => result(() => uwsgi.decodeHeadSpans(input(a), a.limit ?? undefined)),
  'uwsgi.encode-head': (a) => {
    // The vars as decoded by the component itself; decode-head is checked
    // by its own cases.
    const h = uwsgi.decodeHead(input(a), undefined);
    const vars = h.vars.map((v) => [octetBytes(v.key), octetBytes(v.value)]);
    return result(() => uwsgi.encodeHead(h.modifier1, h.modifier2, vars));
  },
  'uwsgi.response-status': (a) => result(() => uwsgi.responseStatus(input(a))),
  'uwsgi.modifier-name': () => canon(Array.from({ length: 256 }, (_, i) => uwsgi.modifierName(i))),
  'stats.decode': (a) => result(() => stats.decode(input(a))),
  'stats.families': (a) => result(() => stats.families(input(a), a.target, a.options)),
  'stats.prometheus-text': (a) => result(() => stats.prometheusText(input(a), a.target, a.options)),
  'logs.parse-line': (a) => canon(logs.parseLine(lines(a.file)[a.line])),
  'red.default-options': () => canon(red.defaultOptions()),
  'red.create': (a) =>
    result(() => {
      red.Recorder.create(a.options)[Symbol.dispose]();
      return 0;
    }),
  'red.replay': replay,
};

test('the fixture covers every WIT function', () => {
  const seen = new Set(fixture.cases.map((c) => c.call));
  assert.deepEqual([...seen].sort(), Object.keys(calls).sort());
  assert.ok(fixture.cases.length > 500, `only ${fixture.cases.length} cases`);
});

// One test per call kind, each checking all of its cases, so a failure
// lists every differing case without thousands of test lines.
for (const call of Object.keys(calls)) {
  test(call, () => {
    const cases = fixture.cases.filter((c) => c.call === call);
    assert.ok(cases.length > 0);
    const bad = [];
    for (const c of cases) {
      const got = calls[call](c.args);
      try {
        assert.deepStrictEqual(got, c.expected);
      } catch (e) {
        bad.push(`${c.id}\n${e.message.slice(0, 2000)}`);
      }
    }
    assert.equal(bad.length, 0, `${bad.length} of ${cases.length} cases differ:\n${bad.slice(0, 5).join('\n')}`);
  });
}
