//! A configuration document as a tree, read key by key, so that every error
//! names the key it is about.
//!
//! Why not `#[derive(Deserialize)]` + serde_path_to_error: the path tracking
//! wraps every deserializer and visitor of every config type, and each field
//! type instantiates serde_json's parser again; that was the largest part of
//! each proxy-wasm module. Here serde_json parses the document
//! once into [`Node`] (one instantiation of its parser; syntax errors keep
//! its text with line and column), and the typed reading below is plain code
//! that knows the key path. Objects keep their entries as a list in document
//! order, so a repeated key is still refused (serde_json's `Value` would keep
//! the last one silently) and unknown keys are reported in document order.
//!
//! Bounds: the document is at most `MAX_CONFIG_BYTES` and serde_json refuses
//! nesting deeper than 128; every lookup is one pass over one object's
//! entries, and the readers ask for a fixed handful of keys per object.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ConfigError;

/// One JSON value of a configuration document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    /// A non-negative integer (serde_json's `u64` range).
    UInt(u64),
    /// A negative integer.
    Int(i64),
    /// Any other number (a fraction, an exponent or beyond `u64`).
    Float(f64),
    Str(String),
    List(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    /// What the value is, for "expected …, got …" messages. The value itself
    /// is not quoted: a string may be long, and a number would need the
    /// float formatter in every module.
    fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::UInt(_) => "a non-negative integer",
            Node::Int(_) => "a negative integer",
            Node::Float(_) => "a number with a fraction or exponent",
            Node::Str(_) => "a string",
            Node::List(_) => "a list",
            Node::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        // serde_json reports only negative integers this way; keep the
        // invariant "UInt for every non-negative integer" anyway.
        Ok(u64::try_from(v).map_or(Node::Int(v), Node::UInt))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Node>()? {
            entries.push(entry);
        }
        Ok(Node::Object(entries))
    }
}

/// Where a value sits in the document, rendered only for an error:
/// `route_patterns[3]`, `targets[0].cluster`, `.` for the document.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

impl Path<'_> {
    pub(crate) fn error(&self, message: impl Into<String>) -> ConfigError {
        let path = match self {
            Path::Root => ".".to_string(),
            other => other.to_string(),
        };
        ConfigError {
            path,
            message: message.into(),
        }
    }

    fn type_error(&self, expected: &str, got: &Node) -> ConfigError {
        self.error(format!("expected {expected}, got {}", got.kind()))
    }
}

/// A typed value read from a [`Node`] at a known path.
pub(crate) trait FromNode: Sized {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError>;
}

impl FromNode for bool {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        match node {
            Node::Bool(b) => Ok(b),
            other => Err(at.type_error("a boolean", &other)),
        }
    }
}

impl FromNode for String {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        match node {
            Node::Str(s) => Ok(s),
            other => Err(at.type_error("a string", &other)),
        }
    }
}

impl FromNode for u64 {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        match node {
            Node::UInt(n) => Ok(n),
            other => Err(at.type_error("a non-negative integer", &other)),
        }
    }
}

impl FromNode for usize {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        let n = u64::from_node(node, at)?;
        usize::try_from(n).map_err(|_| at.error(format!("{n} is out of range")))
    }
}

/// Any JSON number, as serde reads one into `f64` (integers converted).
impl FromNode for f64 {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        match node {
            Node::Float(x) => Ok(x),
            #[allow(clippy::cast_precision_loss)] // as serde_json's `f64` from an integer
            Node::UInt(n) => Ok(n as f64),
            #[allow(clippy::cast_precision_loss)]
            Node::Int(n) => Ok(n as f64),
            other => Err(at.type_error("a number", &other)),
        }
    }
}

/// `null` is `None`, as with serde.
impl<T: FromNode> FromNode for Option<T> {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        match node {
            Node::Null => Ok(None),
            other => T::from_node(other, at).map(Some),
        }
    }
}

impl<T: FromNode> FromNode for Vec<T> {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        match node {
            Node::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| T::from_node(item, Path::Index(&at, i)))
                .collect(),
            other => Err(at.type_error("a list", &other)),
        }
    }
}

/// A string naming one of `choices` (an enum written in lowercase).
pub(crate) fn choice<T: Copy>(
    node: Node,
    at: Path<'_>,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let s = String::from_node(node, at)?;
    choices
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            at.error(format!(
                "unknown value `{s}`, expected one of {}",
                quoted(&names)
            ))
        })
}

fn quoted(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// The entries of one object whose keys are all known; values are taken
/// out by key.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    entries: Vec<(String, Node)>,
    at: Path<'a>,
}

impl<'a> Fields<'a> {
    /// Refuses anything but an object, and the first key (in document
    /// order) that is not in `known`, by name.
    pub(crate) fn new(node: Node, at: Path<'a>, known: &[&str]) -> Result<Self, ConfigError> {
        let entries = match node {
            Node::Object(entries) => entries,
            other => return Err(at.type_error("an object", &other)),
        };
        if let Some((key, _)) = entries.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(Path::Key(&at, key)
                .error(format!("unknown key, expected one of {}", quoted(known))));
        }
        Ok(Self { entries, at })
    }

    /// The value of `key` read as `T`, or `None` when the key is absent (the
    /// caller's default applies). A key given twice is refused.
    pub(crate) fn take<T: FromNode>(&mut self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.take_node(key)? {
            Some(node) => T::from_node(node, Path::Key(&self.at, key)).map(Some),
            None => Ok(None),
        }
    }

    /// The untyped half of [`Fields::take`], kept out of line: inlined, it
    /// was copied into every `take::<T>` of every config of a module.
    #[inline(never)]
    fn take_node(&mut self, key: &str) -> Result<Option<Node>, ConfigError> {
        let mut found = None;
        for (k, value) in &mut self.entries {
            if k == key {
                if found.is_some() {
                    return Err(Path::Key(&self.at, key).error("key given more than once"));
                }
                found = Some(std::mem::replace(value, Node::Null));
            }
        }
        Ok(found)
    }
}

/// Parses a whole document: `None` for an empty (or all-whitespace) one,
/// which means "all defaults". Syntax errors are serde_json's text (with
/// line and column) at `.`.
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<Node>, ConfigError> {
    if bytes.len() > super::MAX_CONFIG_BYTES {
        return Err(Path::Root.error(format!(
            "document of {} bytes is over the {}-byte limit",
            bytes.len(),
            super::MAX_CONFIG_BYTES
        )));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<Node>(bytes)
        .map(Some)
        .map_err(|e| Path::Root.error(e.to_string()))
}

/// Reads a whole document as `T` (the defaults for an empty one).
pub(crate) fn read<T: FromNode + Default>(bytes: &[u8]) -> Result<T, ConfigError> {
    match parse(bytes)? {
        Some(node) => T::from_node(node, Path::Root),
        None => Ok(T::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Inner {
        n: u64,
    }

    impl FromNode for Inner {
        fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
            let mut f = Fields::new(node, at, &["n"])?;
            Ok(Self {
                n: f.take("n")?.unwrap_or(7),
            })
        }
    }

    #[derive(Debug, Default, PartialEq)]
    struct Outer {
        list: Vec<Inner>,
        name: Option<String>,
    }

    impl FromNode for Outer {
        fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
            let mut f = Fields::new(node, at, &["list", "name"])?;
            Ok(Self {
                list: f.take("list")?.unwrap_or_default(),
                name: f.take("name")?.unwrap_or(Some("d".into())),
            })
        }
    }

    fn err(doc: &str) -> (String, String) {
        let e = read::<Outer>(doc.as_bytes()).unwrap_err();
        (e.path, e.message)
    }

    #[test]
    fn reads_values_and_defaults() {
        assert_eq!(
            read::<Outer>(br#"{"list":[{"n":1},{}],"name":null}"#).unwrap(),
            Outer {
                list: vec![Inner { n: 1 }, Inner { n: 7 }],
                name: None
            }
        );
        assert_eq!(read::<Outer>(b" \n").unwrap(), Outer::default());
        assert_eq!(read::<Outer>(b"{}").unwrap().name.as_deref(), Some("d"));
    }

    #[test]
    fn errors_name_the_key_path() {
        assert_eq!(
            err(r#"{"list":[{"n":1},{"n":-1}]}"#),
            (
                "list[1].n".into(),
                "expected a non-negative integer, got a negative integer".into()
            )
        );
        assert_eq!(
            err(r#"{"list":[{"m":1}]}"#),
            (
                "list[0].m".into(),
                "unknown key, expected one of `n`".into()
            )
        );
        assert_eq!(
            err(r#"{"name":"a","name":"b"}"#),
            ("name".into(), "key given more than once".into())
        );
        assert_eq!(
            err(r#"{"list":{}}"#),
            ("list".into(), "expected a list, got an object".into())
        );
        assert_eq!(
            err(r#"[1]"#),
            (".".into(), "expected an object, got a list".into())
        );
        assert_eq!(err(r#"{"": 1}"#).0, "");
        assert_eq!(
            err(r#"{"list":[}"#),
            (".".into(), "expected value at line 1 column 10".into())
        );
    }

    #[test]
    fn numbers_as_serde_reads_them() {
        let at = Path::Root;
        let num = |s: &str| serde_json::from_str::<Node>(s).unwrap();
        assert_eq!(f64::from_node(num("2"), at).unwrap(), 2.0);
        assert_eq!(f64::from_node(num("-2"), at).unwrap(), -2.0);
        assert_eq!(f64::from_node(num("0.25"), at).unwrap(), 0.25);
        assert!(u64::from_node(num("1.0"), at).is_err());
        assert_eq!(
            u64::from_node(num("18446744073709551615"), at).unwrap(),
            u64::MAX
        );
        assert!(u64::from_node(num("18446744073709551616"), at).is_err());
        let e = choice(num(r#""x""#), at, &[("a", 1), ("b", 2)]).unwrap_err();
        assert_eq!(e.message, "unknown value `x`, expected one of `a`, `b`");
    }
}
