//! StatsD datagram lines as gunicorn and uWSGI send them
//! (`name:value|type[|@rate][|#tag:v,...]`), parsed the way the
//! OpenTelemetry Collector's statsd receiver reads them.

use std::fmt;

/// The metric types the receiver turns into OTLP (`s` sets are refused
/// there too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Counter,
    Gauge,
    Timing,
    Histogram,
    Distribution,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "c",
            Kind::Gauge => "g",
            Kind::Timing => "ms",
            Kind::Histogram => "h",
            Kind::Distribution => "d",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "c" => Kind::Counter,
            "g" => Kind::Gauge,
            "ms" => Kind::Timing,
            "h" => Kind::Histogram,
            "d" => Kind::Distribution,
            _ => return None,
        })
    }
}

/// One metric line. Strings borrow from the line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    pub name: &'a str,
    pub value: f64,
    /// A gauge written `+N` / `-N`: a change, not a level.
    pub relative: bool,
    pub kind: Kind,
    /// In (0, 1]; 1 when absent.
    pub sample_rate: f64,
    pub tags: Vec<(&'a str, &'a str)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    NoValue,
    EmptyName,
    BadValue,
    NoType,
    BadType(String),
    BadSampleRate,
    BadField(String),
    ControlCharacter,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::NoValue => f.write_str("no ':' between name and value"),
            LineError::EmptyName => f.write_str("empty metric name"),
            LineError::BadValue => f.write_str("value is not a finite number"),
            LineError::NoType => f.write_str("no '|type' after the value"),
            LineError::BadType(t) => write!(f, "unsupported metric type \"{t}\""),
            LineError::BadSampleRate => f.write_str("sample rate is not in (0, 1]"),
            LineError::BadField(s) => write!(f, "unknown field \"{s}\""),
            LineError::ControlCharacter => f.write_str("control character inside the line"),
        }
    }
}

impl std::error::Error for LineError {}

/// Longest text quoted back in an error, so an error stays one short line.
const MAX_QUOTED: usize = 32;

/// The start of `s`, escaped, at most `MAX_QUOTED` chars *after* escaping
/// (control bytes expand sixfold when escaped: the fuzzer found that).
fn quote(s: &str) -> String {
    s.escape_debug().take(MAX_QUOTED).collect()
}

pub fn parse(line: &str) -> Result<Line<'_>, LineError> {
    let line = line.trim_end_matches(['\r', '\n']);
    // Only the line end may hold CR/LF; any control character inside would
    // not survive the canonical form (the fuzzer found a tag ending in CR).
    if line.chars().any(char::is_control) {
        return Err(LineError::ControlCharacter);
    }
    let (name, rest) = line.split_once(':').ok_or(LineError::NoValue)?;
    if name.is_empty() {
        return Err(LineError::EmptyName);
    }
    let mut fields = rest.split('|');
    let value = fields.next().unwrap_or_default();
    let kind = fields.next().ok_or(LineError::NoType)?;
    let kind = Kind::parse(kind).ok_or_else(|| LineError::BadType(quote(kind)))?;
    let relative = kind == Kind::Gauge && value.starts_with(['+', '-']);
    let value = number(value).ok_or(LineError::BadValue)?;
    let mut sample_rate = 1.0;
    let mut tags = Vec::new();
    for f in fields {
        if let Some(r) = f.strip_prefix('@') {
            sample_rate = number(r)
                .filter(|r| *r > 0.0 && *r <= 1.0)
                .ok_or(LineError::BadSampleRate)?;
        } else if let Some(t) = f.strip_prefix('#') {
            // A tag without a name (`#:v`) carries nothing: dropped, so
            // the canonical form round-trips (the fuzzer found `#:`).
            tags.extend(
                t.split(',')
                    .map(|t| t.split_once(':').unwrap_or((t, "")))
                    .filter(|(k, _)| !k.is_empty()),
            );
        } else {
            return Err(LineError::BadField(quote(f)));
        }
    }
    Ok(Line {
        name,
        value,
        relative,
        kind,
        sample_rate,
        tags,
    })
}

/// A decimal number as StatsD clients write it; no `inf`/`nan` spellings.
fn number(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    s.parse::<f64>().ok().filter(|v| ok && v.is_finite())
}

impl fmt::Display for Line<'_> {
    /// The canonical line: parses back to an equal `Line`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.relative && !self.value.is_sign_negative() {
            "+"
        } else {
            ""
        };
        write!(
            f,
            "{}:{sign}{:?}|{}",
            self.name,
            self.value,
            self.kind.as_str()
        )?;
        #[allow(clippy::float_cmp)] // exactly 1 is "no sample rate"
        if self.sample_rate != 1.0 {
            write!(f, "|@{:?}", self.sample_rate)?;
        }
        if !self.tags.is_empty() {
            let tags: Vec<String> = self
                .tags
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        k.to_string()
                    } else {
                        format!("{k}:{v}")
                    }
                })
                .collect();
            write!(f, "|#{}", tags.join(","))?;
        }
        Ok(())
    }
}
