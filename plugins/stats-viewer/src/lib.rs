//! JS bindings of the browser stats viewer: a thin wasm-bindgen adapter over
//! `core::stats` (decoding, invalid-JSON repair, HTTP stripping) and this
//! crate's [`derive`] (views and rates). Errors become JS exceptions carrying
//! core's message. `vars` never reach JS: the viewer's model ([`doc`]) does not hold them.
//!
//! ```js
//! import init, { decode, decodeTargets } from './pkg/stats_viewer.js';
//! await init();
//! const s = decode(text);          // string, Uint8Array or ArrayBuffer
//! s.view();                        // workers, status counts, queues, apps, caches
//! s.rates(prev, seconds);          // req/s, exceptions/s, tx bytes/s per worker and total
//! ```

// Runs inside the user's browser page / component host: no input may reach
// a panic: the workspace's panic-free lints (root Cargo.toml) apply.

pub mod derive;
pub mod doc;
pub mod pack;
pub mod source;

use std::rc::Rc;

use doc::Document;
use js_sys::{ArrayBuffer, JsString, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// One decoded uWSGI stats document.
#[wasm_bindgen]
#[derive(Debug, Clone)]
pub struct Stats {
    // Shared, not copied: `Target::stats()` hands out the target's document
    // (a deep copy cost as much as decoding it).
    doc: Rc<Document>,
    repairs: usize,
    body_bytes: usize,
}

#[wasm_bindgen]
impl Stats {
    /// Strings rewritten by core's invalid-JSON repair (0 for valid JSON).
    #[wasm_bindgen(getter)]
    pub fn repairs(&self) -> u32 {
        u32::try_from(self.repairs).unwrap_or(u32::MAX)
    }

    /// Size of the JSON body after any HTTP head.
    #[wasm_bindgen(getter, js_name = bodyBytes)]
    pub fn body_bytes(&self) -> u32 {
        u32::try_from(self.body_bytes).unwrap_or(u32::MAX)
    }

    /// Worker rows, status counts, totals, listen/socket queues, apps, caches.
    pub fn view(&self) -> JsValue {
        let t = pack::view(&derive::view(&self.doc));
        unpack_view(&t.nums, &t.strs)
    }

    /// Rates from `prev` (an earlier snapshot of the same server) to this one,
    /// `elapsed_seconds` apart.
    pub fn rates(&self, prev: &Stats, elapsed_seconds: f64) -> Result<JsValue, JsError> {
        let r = derive::rates(&prev.doc, &self.doc, elapsed_seconds)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(unpack_rates(&pack::rates(&r)))
    }
}

/// One target of a decoded source: the document itself, or one entry of the
/// Envoy uwsgi-stats plugin's snapshot.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Target {
    inner: source::Target,
    /// `inner.document`, taken out so that `stats()` shares it.
    doc: Option<Rc<Document>>,
}

#[wasm_bindgen]
impl Target {
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.name.clone()
    }
    #[wasm_bindgen(getter)]
    pub fn up(&self) -> bool {
        self.inner.up
    }
    #[wasm_bindgen(getter)]
    pub fn stale(&self) -> bool {
        self.inner.stale
    }
    #[wasm_bindgen(getter, js_name = lastError)]
    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.clone()
    }
    #[wasm_bindgen(getter, js_name = lastSuccessMs)]
    pub fn last_success_ms(&self) -> Option<f64> {
        self.inner.last_success_ms.map(|v| v as f64)
    }
    #[wasm_bindgen(getter, js_name = generatedAtMs)]
    pub fn generated_at_ms(&self) -> Option<f64> {
        self.inner.generated_at_ms.map(|v| v as f64)
    }
    #[wasm_bindgen(getter)]
    pub fn repairs(&self) -> f64 {
        self.inner.repairs as f64
    }
    /// The target's document, or `undefined` when it has none yet.
    pub fn stats(&self) -> Option<Stats> {
        self.doc.clone().map(|doc| Stats {
            doc,
            repairs: self.inner.repairs as usize,
            body_bytes: 0,
        })
    }
}

/// Decodes a uWSGI stats document: raw JSON or a whole `--stats-http` reply,
/// as a string, `Uint8Array` or `ArrayBuffer`. Throws with core's message.
#[wasm_bindgen]
pub fn decode(input: JsValue) -> Result<Stats, JsError> {
    let bytes = bytes_of(&input)?;
    let d = doc::decode(&bytes).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(Stats {
        doc: Rc::new(d.document),
        repairs: d.repairs,
        body_bytes: d.body_bytes,
    })
}

/// Like [`decode`], but also accepts the Envoy uwsgi-stats snapshot; a plain
/// document becomes one target called `name`.
#[wasm_bindgen(js_name = decodeTargets)]
pub fn decode_targets(input: JsValue, name: &str) -> Result<Vec<Target>, JsError> {
    let bytes = bytes_of(&input)?;
    let targets = source::decode_targets(&bytes, name).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(targets
        .into_iter()
        .map(|mut inner| Target {
            doc: inner.document.take().map(Rc::new),
            inner,
        })
        .collect())
}

#[wasm_bindgen]
extern "C" {
    /// The engine's UTF-8 encoder (browsers and Node alike).
    type TextEncoder;
    #[wasm_bindgen(constructor)]
    fn new() -> TextEncoder;
    /// `{read, written}`
    type EncodeResult;
    #[wasm_bindgen(method, js_name = encodeInto)]
    fn encode_into(this: &TextEncoder, s: &JsString, dest: &mut [u8]) -> EncodeResult;
    #[wasm_bindgen(method, getter)]
    fn written(this: &EncodeResult) -> f64;
}

// Builds the plain objects from the tapes of [`pack`]: one boundary call
// per result, no JSON text (see js/unpack.js).
#[wasm_bindgen(module = "/js/unpack.js")]
extern "C" {
    #[wasm_bindgen(js_name = unpackView)]
    fn unpack_view(nums: &[f64], strs: &str) -> JsValue;
    #[wasm_bindgen(js_name = unpackRates)]
    fn unpack_rates(nums: &[f64]) -> JsValue;
}

thread_local! {
    static ENCODER: TextEncoder = TextEncoder::new();
}

/// `s` as UTF-8, written by the engine straight into Wasm memory. The glue
/// of `as_string` copies an ASCII string into Wasm a char at a time in JS,
/// which cost about as much as decoding the document.
fn utf8_of(s: &JsString) -> Vec<u8> {
    // At most 3 bytes per UTF-16 unit.
    let mut buf = vec![0u8; (s.length() as usize).saturating_mul(3)];
    let written = ENCODER.with(|e| e.encode_into(s, &mut buf).written());
    buf.truncate(written as usize);
    buf
}

fn bytes_of(input: &JsValue) -> Result<Vec<u8>, JsError> {
    if let Some(s) = input.dyn_ref::<JsString>() {
        return Ok(utf8_of(s));
    }
    if let Some(a) = input.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if let Some(b) = input.dyn_ref::<ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    Err(JsError::new(
        "expected the stats document as a string, Uint8Array or ArrayBuffer",
    ))
}
