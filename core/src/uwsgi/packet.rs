//! uwsgi packet layout: the 4-byte header, the vars block, and an encoder.
//!
//! Header: `u8 modifier1, u16le datasize, u8 modifier2`. For request
//! modifiers the `datasize` bytes after it are vars, each
//! `u16le key_len, key, u16le val_len, val`; the request body follows the
//! vars and is not counted in `datasize`.

use std::fmt;

use super::modifier::Payload;

pub const HEADER_LEN: usize = 4;

/// Largest vars block the 16-bit `datasize` can describe.
pub const MAX_DATASIZE: usize = u16::MAX as usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub modifier1: u8,
    pub datasize: u16,
    pub modifier2: u8,
}

impl Header {
    pub fn parse(b: [u8; HEADER_LEN]) -> Self {
        Self {
            modifier1: b[0],
            datasize: u16::from_le_bytes([b[1], b[2]]),
            modifier2: b[3],
        }
    }

    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let [lo, hi] = self.datasize.to_le_bytes();
        [self.modifier1, lo, hi, self.modifier2]
    }

    /// Header plus vars: the bytes a decoder must hold to see the whole head.
    pub fn head_len(self) -> usize {
        HEADER_LEN + usize::from(self.datasize)
    }
}

/// One key/value pair, borrowed from the packet bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// A vars block that has been checked to be well-formed, so iterating it
/// cannot fail and costs no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Vars<'a> {
    block: &'a [u8],
}

/// Where and why a vars block is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarOverrun {
    /// Offset inside the vars block of the length field (or the lone byte
    /// of one) whose item runs past the end of the block.
    pub offset: usize,
}

impl<'a> Vars<'a> {
    pub const EMPTY: Vars<'static> = Vars { block: &[] };

    /// Checks every length field against the block end.
    pub fn parse(block: &'a [u8]) -> Result<Self, VarOverrun> {
        let mut pos = 0usize;
        while pos < block.len() {
            // A key and a value, each behind a 2-byte length.
            for _ in 0..2 {
                let start = pos;
                let Some(&[lo, hi]) = block.get(pos..pos.saturating_add(2)) else {
                    return Err(VarOverrun { offset: start });
                };
                // Saturation cannot hide an overrun: a slice is shorter
                // than usize::MAX, so a saturated position is past its end.
                pos = pos
                    .saturating_add(2)
                    .saturating_add(usize::from(u16::from_le_bytes([lo, hi])));
                if pos > block.len() {
                    return Err(VarOverrun { offset: start });
                }
            }
        }
        Ok(Self { block })
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.block
    }

    pub fn iter(&self) -> VarsIter<'a> {
        VarsIter { rest: self.block }
    }

    /// The first value for `key`; duplicates (two `X-Dup` headers) stay
    /// reachable through `iter`.
    pub fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.iter().find(|v| v.key == key).map(|v| v.value)
    }

    pub fn get_str(&self, key: &[u8]) -> Option<&'a str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.block.is_empty()
    }
}

impl fmt::Debug for Vars<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|v| {
                (
                    String::from_utf8_lossy(v.key),
                    String::from_utf8_lossy(v.value),
                )
            }))
            .finish()
    }
}

impl<'a> IntoIterator for Vars<'a> {
    type Item = Var<'a>;
    type IntoIter = VarsIter<'a>;
    fn into_iter(self) -> VarsIter<'a> {
        self.iter()
    }
}

#[derive(Debug, Clone)]
pub struct VarsIter<'a> {
    rest: &'a [u8],
}

impl<'a> VarsIter<'a> {
    /// Lengths were validated by `Vars::parse`, so this only returns
    /// `None` at the end of the block.
    fn take_item(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.rest.split_first_chunk::<2>()?;
        let (item, rest) = rest.split_at_checked(usize::from(u16::from_le_bytes(*len)))?;
        self.rest = rest;
        Some(item)
    }
}

impl<'a> Iterator for VarsIter<'a> {
    type Item = Var<'a>;

    fn next(&mut self) -> Option<Var<'a>> {
        let key = self.take_item();
        let value = self.take_item();
        match (key, value) {
            (Some(key), Some(value)) => Some(Var { key, value }),
            _ => {
                // Unreachable for a parsed block; stop cleanly regardless.
                self.rest = &[];
                None
            }
        }
    }
}

/// A decoded request head: header plus its vars (or the raw payload for
/// modifiers whose payload is not a vars block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    pub header: Header,
    /// From the modifier table: whether this is an application request.
    pub kind: Payload,
    pub vars: Vars<'a>,
    /// The `datasize` bytes after the header, whatever their layout.
    pub payload: &'a [u8],
}

impl<'a> RequestHead<'a> {
    pub fn var(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.vars.get(key)
    }

    pub fn var_str(&self, key: &[u8]) -> Option<&'a str> {
        self.vars.get_str(key)
    }

    /// `CONTENT_LENGTH` as a body size: `Some(0)` when absent or empty (nginx
    /// sends an empty value on GET), `None` when present but not a number.
    pub fn content_length(&self) -> Option<u64> {
        parse_content_length(self.var(b"CONTENT_LENGTH"))
    }

    /// The vars a RED measurement needs, found in one pass over the block
    /// (one lookup per key would walk it once per key).
    pub fn request_vars(&self) -> RequestVars<'a> {
        let mut r = RequestVars::default();
        for v in self.vars.iter() {
            let slot = match v.key {
                b"REQUEST_METHOD" => &mut r.method,
                b"PATH_INFO" => &mut r.path_info,
                b"REQUEST_URI" => &mut r.request_uri,
                b"SERVER_NAME" => &mut r.server_name,
                b"HTTP_HOST" => &mut r.http_host,
                b"CONTENT_LENGTH" => &mut r.content_length,
                _ => continue,
            };
            // First occurrence wins, as with `Vars::get`.
            slot.get_or_insert(v.value);
        }
        r
    }
}

/// The request vars the network filter labels and frames with.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RequestVars<'a> {
    pub method: Option<&'a [u8]>,
    pub path_info: Option<&'a [u8]>,
    pub request_uri: Option<&'a [u8]>,
    pub server_name: Option<&'a [u8]>,
    pub http_host: Option<&'a [u8]>,
    pub content_length: Option<&'a [u8]>,
}

impl RequestVars<'_> {
    /// See `RequestHead::content_length`.
    pub fn content_length(&self) -> Option<u64> {
        parse_content_length(self.content_length)
    }
}

fn parse_content_length(v: Option<&[u8]>) -> Option<u64> {
    match v {
        None | Some(b"") => Some(0),
        Some(v) => std::str::from_utf8(v).ok()?.trim().parse().ok(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A key or value longer than 65535 bytes.
    ItemTooLong { len: usize },
    /// The vars do not fit the 16-bit datasize.
    DatasizeTooLarge { datasize: usize },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ItemTooLong { len } => write!(f, "uwsgi var of {len} bytes exceeds 65535"),
            Self::DatasizeTooLarge { datasize } => {
                write!(f, "uwsgi vars block of {datasize} bytes exceeds 65535")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

/// Appends a packet head (header + vars) to `out`. On error `out` is left
/// as it was.
pub fn encode_head<K, V>(
    modifier1: u8,
    modifier2: u8,
    vars: &[(K, V)],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut datasize = 0usize;
    for (k, v) in vars {
        for item in [k.as_ref(), v.as_ref()] {
            if item.len() > usize::from(u16::MAX) {
                return Err(EncodeError::ItemTooLong { len: item.len() });
            }
            datasize = datasize.saturating_add(2).saturating_add(item.len());
        }
    }
    let ds = u16::try_from(datasize).map_err(|_| EncodeError::DatasizeTooLarge { datasize })?;
    out.reserve(HEADER_LEN.saturating_add(datasize));
    out.extend_from_slice(
        &Header {
            modifier1,
            datasize: ds,
            modifier2,
        }
        .to_bytes(),
    );
    for (k, v) in vars {
        for item in [k.as_ref(), v.as_ref()] {
            // Checked above: every item fits in u16.
            let len = u16::try_from(item.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(item);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_is_little_endian() {
        let h = Header {
            modifier1: 5,
            datasize: 0x0201,
            modifier2: 9,
        };
        assert_eq!(h.to_bytes(), [5, 0x01, 0x02, 9]);
        assert_eq!(Header::parse(h.to_bytes()), h);
        assert_eq!(h.head_len(), 4 + 0x0201);
    }

    #[test]
    fn vars_parse_and_lookup() {
        let mut p = Vec::new();
        encode_head(0, 0, &[("A", "1"), ("B", ""), ("A", "2")], &mut p).unwrap();
        let v = Vars::parse(&p[4..]).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v.get(b"A"), Some(&b"1"[..]), "first duplicate wins");
        assert_eq!(v.get(b"B"), Some(&b""[..]));
        assert_eq!(v.get(b"C"), None);
        assert_eq!(format!("{v:?}"), r#"[("A", "1"), ("B", ""), ("A", "2")]"#);
    }

    #[test]
    fn overruns_name_the_length_field() {
        // key length 5 but only 1 byte follows
        assert_eq!(Vars::parse(&[5, 0, b'x']), Err(VarOverrun { offset: 0 }));
        // a good key, then a value length that runs past the end
        assert_eq!(
            Vars::parse(&[1, 0, b'k', 9, 0, b'v']),
            Err(VarOverrun { offset: 3 })
        );
        // a lone trailing byte where a length should be
        assert_eq!(
            Vars::parse(&[1, 0, b'k', 0, 0, 7]),
            Err(VarOverrun { offset: 5 })
        );
        // a key without a value
        assert_eq!(Vars::parse(&[1, 0, b'k']), Err(VarOverrun { offset: 3 }));
        assert!(Vars::parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn encoder_refuses_what_the_format_cannot_hold() {
        let big = vec![b'x'; 70_000];
        let mut out = vec![1];
        assert_eq!(
            encode_head(0, 0, &[(&b"K"[..], &big[..])], &mut out),
            Err(EncodeError::ItemTooLong { len: 70_000 })
        );
        let half = vec![b'x'; 40_000];
        assert!(matches!(
            encode_head(
                0,
                0,
                &[(&b"K"[..], &half[..]), (&b"L"[..], &half[..])],
                &mut out
            ),
            Err(EncodeError::DatasizeTooLarge { .. })
        ));
        assert_eq!(out, vec![1], "nothing written on error");
    }

    #[test]
    fn content_length_semantics() {
        let head = |cl: Option<&str>| {
            let mut p = Vec::new();
            let mut vars = vec![("REQUEST_METHOD", "POST")];
            if let Some(c) = cl {
                vars.push(("CONTENT_LENGTH", c));
            }
            encode_head(0, 0, &vars, &mut p).unwrap();
            p
        };
        let cl = |p: &[u8]| {
            let vars = Vars::parse(&p[4..]).unwrap();
            RequestHead {
                header: Header::parse([p[0], p[1], p[2], p[3]]),
                kind: Payload::Request,
                vars,
                payload: &p[4..],
            }
            .content_length()
        };
        assert_eq!(cl(&head(None)), Some(0));
        assert_eq!(cl(&head(Some(""))), Some(0));
        assert_eq!(cl(&head(Some("10240"))), Some(10240));
        assert_eq!(cl(&head(Some("ten"))), None);
    }

    #[test]
    fn request_vars_in_one_pass_match_lookups() {
        let mut p = Vec::new();
        let vars = [
            ("REQUEST_METHOD", "GET"),
            ("PATH_INFO", "/a"),
            ("X", "y"),
            ("PATH_INFO", "/second"),
            ("SERVER_NAME", "s"),
            ("CONTENT_LENGTH", "12"),
        ];
        encode_head(0, 0, &vars, &mut p).unwrap();
        let head = RequestHead {
            header: Header::parse([p[0], p[1], p[2], p[3]]),
            kind: Payload::Request,
            vars: Vars::parse(&p[4..]).unwrap(),
            payload: &p[4..],
        };
        let r = head.request_vars();
        assert_eq!(r.method, head.var(b"REQUEST_METHOD"));
        assert_eq!(r.path_info, Some(&b"/a"[..]));
        assert_eq!(r.server_name, Some(&b"s"[..]));
        assert_eq!((r.request_uri, r.http_host), (None, None));
        assert_eq!(r.content_length(), Some(12));
        assert_eq!(r.content_length(), head.content_length());
    }
}
