//! The facts of one finished request, fetched with as few host calls as the
//! host allows.
//!
//! Envoy (when built with its CEL parser) evaluates one list expression per
//! request through the foreign function `expr_evaluate`: one host call and
//! one guest allocation for method, path, status, duration, route and
//! cluster, where reading them one by one costs a host call and an
//! allocation each. ngx_wasm_module traps on an unknown foreign function, so
//! the module first asks for `ngx.pid` (a property only nginx has) and, in
//! nginx or when Envoy refuses the expression, reads the facts one by one.

use proxy_wasm::hostcalls;

use crate::{count, props};

/// How this VM reads request facts; decided on the first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Unprobed,
    /// Envoy CEL expression token.
    Cel(u32),
    /// Envoy without the one-call form: one attribute per host call.
    Properties,
    /// ngx_wasm_module: one property per host call, and no `xds.*`
    /// attributes to ask for (each would log an error and find nothing).
    Nginx,
}

/// What the labels and the histogram need from one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View<'a> {
    pub method: &'a str,
    pub path: Option<&'a str>,
    pub route_name: Option<&'a str>,
    pub upstream: Option<&'a str>,
    /// 0 when no response was sent.
    pub code: u16,
    /// The host's own request duration, when it gave one.
    pub duration_ns: Option<u64>,
}

/// Which facts the configuration needs beyond method, path and status.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub route_name: bool,
    pub upstream: bool,
    /// The host's `request.duration` (access logger, or no clock reads).
    pub duration: bool,
}

/// The CEL list, in [`decode`]'s order. `has()` keeps a missing attribute
/// (no response, no upstream) from failing the whole evaluation.
pub fn expression(w: Wanted) -> String {
    let mut e = String::from(
        "[has(request.method) ? request.method : '', \
         has(request.path) ? request.path : '', \
         has(response.code) ? response.code : 0",
    );
    e.push_str(if w.duration {
        ", has(request.duration) ? string(request.duration) : ''"
    } else {
        ", ''"
    });
    e.push_str(if w.route_name {
        ", has(xds.route_name) ? xds.route_name : ''"
    } else {
        ", ''"
    });
    e.push_str(if w.upstream {
        ", has(xds.cluster_name) ? xds.cluster_name : '']"
    } else {
        ", '']"
    });
    e
}

/// Picks the source for this VM. One probe per VM, never per request.
pub fn probe(w: Wanted) -> Source {
    let nginx = props::bytes(&["ngx", "pid"]).is_some();
    if nginx {
        return Source::Nginx;
    }
    let expr = expression(w);
    let created = hostcalls::call_foreign_function("expr_create", Some(expr.as_bytes()));
    count::host_call(matches!(created, Ok(Some(_))));
    match created {
        Ok(Some(token)) => token
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(Source::Properties, |b| Source::Cel(u32::from_le_bytes(b))),
        _ => Source::Properties,
    }
}

/// Calls `f` with this request's facts. A failed evaluation falls back to
/// reading them one by one, so no request goes uncounted.
pub fn with<R>(source: Source, w: Wanted, f: impl FnOnce(View<'_>) -> R) -> R {
    if let Source::Cel(token) = source {
        let out = hostcalls::call_foreign_function("expr_evaluate", Some(&token.to_le_bytes()));
        count::host_call(matches!(out, Ok(Some(_))));
        if let Ok(Some(buf)) = out {
            if let Some(view) = decode(&buf) {
                return f(view);
            }
        }
    }
    let method = props::request_header(":method").unwrap_or_default();
    let code = props::response_header(":status")
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(0);
    let xds = source != Source::Nginx;
    let route_name = if w.route_name && xds {
        props::string(&["xds", "route_name"])
    } else {
        None
    };
    let path = if route_name.as_deref().is_some_and(|r| !r.is_empty()) {
        None
    } else {
        props::request_header(":path")
    };
    let upstream = if w.upstream && xds {
        props::string(&["xds", "cluster_name"])
    } else {
        None
    };
    f(View {
        method: &method,
        path: path.as_deref(),
        route_name: route_name.as_deref(),
        upstream: upstream.as_deref(),
        code,
        duration_ns: None,
    })
}

/// The elements of a CEL list as Envoy serialises it: the proxy-wasm pairs
/// layout (`u32` count, `count` × (`u32` key size, `u32` value size), then
/// each key and value followed by a NUL byte), one element per key in its
/// native encoding: strings as bytes, integers as 8 little-endian bytes.
fn list(b: &[u8]) -> Option<[&[u8]; 6]> {
    let word = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(raw)).ok()
    };
    let mut out: [&[u8]; 6] = [&[]; 6];
    if word(0)? != out.len() {
        return None;
    }
    let mut data = 4usize.checked_add(out.len().checked_mul(8)?)?;
    for (i, slot) in out.iter_mut().enumerate() {
        let sizes = i.checked_mul(8)?.checked_add(4)?;
        let key = word(sizes)?;
        let value = word(sizes.checked_add(4)?)?;
        let key_end = data.checked_add(key)?;
        *slot = b.get(data..key_end)?;
        let value_end = key_end.checked_add(1)?.checked_add(value)?;
        if b.get(key_end) != Some(&0) || b.get(value_end) != Some(&0) {
            return None;
        }
        data = value_end.checked_add(1)?;
    }
    (data == b.len()).then_some(out)
}

fn int(b: &[u8]) -> Option<i64> {
    Some(i64::from_le_bytes(b.try_into().ok()?))
}

fn text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// `string(duration)` in CEL is seconds with an `s` suffix (`"0.000123s"`).
fn duration_ns(s: &str) -> Option<u64> {
    let secs = s.strip_suffix('s')?;
    u64::try_from(props::decode_nanos(secs.as_bytes())?).ok()
}

/// The facts from the result of [`expression`]; `None` when the host sent
/// something else (the caller then reads the facts one by one).
fn decode(b: &[u8]) -> Option<View<'_>> {
    let [method, path, code, duration, route, cluster] = list(b)?;
    let code = u16::try_from(int(code)?).ok()?;
    Some(View {
        method: text(method)?,
        path: non_empty(text(path)?),
        route_name: non_empty(text(route)?),
        upstream: non_empty(text(cluster)?),
        code,
        duration_ns: duration_ns(text(duration)?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// Envoy's serialisation of a CEL list (see [`list`]).
    fn pairs(items: &[&[u8]]) -> Vec<u8> {
        let mut out = u32::try_from(items.len()).unwrap().to_le_bytes().to_vec();
        for i in items {
            out.extend_from_slice(&u32::try_from(i.len()).unwrap().to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
        }
        for i in items {
            out.extend_from_slice(i);
            out.extend_from_slice(&[0, 0]);
        }
        out
    }

    /// Bytes Envoy 1.40 returned for `GET /healthz` (route `health`, no
    /// upstream cluster).
    const ENVOY_HEALTHZ: &[u8] = &[
        6, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 12, 0,
        0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 71, 69, 84, 0, 0, 47,
        104, 101, 97, 108, 116, 104, 122, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 48, 46, 48, 48, 50,
        53, 50, 53, 56, 56, 51, 115, 0, 0, 104, 101, 97, 108, 116, 104, 0, 0, 0, 0,
    ];

    #[test]
    fn decodes_what_envoy_sends() {
        assert_eq!(
            decode(ENVOY_HEALTHZ),
            Some(View {
                method: "GET",
                path: Some("/healthz"),
                route_name: Some("health"),
                upstream: None,
                code: 200,
                duration_ns: Some(2_525_883),
            })
        );
        let b = pairs(&[
            b"POST",
            b"/users/7?x=1",
            &503i64.to_le_bytes(),
            b"1.5s",
            b"",
            b"app",
        ]);
        let v = decode(&b).unwrap();
        assert_eq!(
            (
                v.method,
                v.path,
                v.code,
                v.duration_ns,
                v.route_name,
                v.upstream
            ),
            (
                "POST",
                Some("/users/7?x=1"),
                503,
                Some(1_500_000_000),
                None,
                Some("app")
            )
        );
    }

    #[test]
    fn no_response_and_no_duration() {
        let b = pairs(&[b"GET", b"/", &0i64.to_le_bytes(), b"", b"", b""]);
        let v = decode(&b).unwrap();
        assert_eq!((v.code, v.duration_ns), (0, None));
    }

    #[test]
    fn refuses_anything_else() {
        let ok: [&[u8]; 6] = [b"GET", b"/", &[200, 0, 0, 0, 0, 0, 0, 0], b"1s", b"r", b"c"];
        assert!(decode(&pairs(&ok)).is_some());
        assert_eq!(decode(b""), None);
        assert_eq!(decode(&pairs(&ok[..5])), None, "too few");
        let seven: [&[u8]; 7] = [
            b"GET",
            b"/",
            &[200, 0, 0, 0, 0, 0, 0, 0],
            b"",
            b"",
            b"",
            b"",
        ];
        assert_eq!(decode(&pairs(&seven)), None, "too many");
        let text_code: [&[u8]; 6] = [b"GET", b"/", b"200", b"", b"", b""];
        assert_eq!(decode(&pairs(&text_code)), None);
        let big: [&[u8]; 6] = [b"GET", b"/", &70_000i64.to_le_bytes(), b"", b"", b""];
        assert_eq!(decode(&pairs(&big)), None);
        let bad_utf8: [&[u8]; 6] = [b"GET", &[0xff], &200i64.to_le_bytes(), b"", b"", b""];
        assert_eq!(decode(&pairs(&bad_utf8)), None);
        let mut trailing = pairs(&ok);
        trailing.push(0);
        assert_eq!(decode(&trailing), None, "trailing bytes");
        let full = pairs(&ok);
        for cut in 0..full.len() {
            assert_eq!(decode(full.get(..cut).unwrap()), None, "cut at {cut}");
        }
        // Sizes pointing past the end never panic.
        let mut huge = full.clone();
        huge.splice(4..8, u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), None);
    }

    #[test]
    fn expression_asks_only_for_what_is_wanted() {
        let all = expression(Wanted {
            route_name: true,
            upstream: true,
            duration: true,
        });
        assert!(all.contains("xds.route_name") && all.contains("xds.cluster_name"));
        assert!(all.contains("string(request.duration)"));
        let none = expression(Wanted {
            route_name: false,
            upstream: false,
            duration: false,
        });
        assert!(!none.contains("xds.") && !none.contains("request.duration"));
    }
}
