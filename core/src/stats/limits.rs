//! Bounds on a stats document, enforced while it is parsed so a hostile or
//! broken server costs bounded time and memory, and fails with an error that
//! says which bound it crossed:
//!
//! | bound | value | error reason |
//! |---|---|---|
//! | document (JSON body) | [`super::DEFAULT_MAX_DOCUMENT_BYTES`], checked before parsing | `too_large` |
//! | entries of one list or object (`sockets`, `workers`, one worker's `cores`, `metrics`, …) | [`MAX_ENTRIES`] | `limit` |
//! | a string that becomes a label value (socket name, mountpoint, metric name, …) | [`MAX_LABEL_BYTES`] | `limit` |
//!
//! Nesting needs no bound of its own: the typed parts of the model are at
//! most five levels deep (anything deeper there is a `schema` error at its
//! path), and serde_json skips ignored values (`vars`, unknown keys) with a
//! loop and one byte of state per level, never recursion. Strings the mapping
//! never exports (`cwd`, `vars`) are skipped, not bounded: they cost parsing
//! time but no memory.
//!
//! Limit errors travel through serde as a custom message starting with
//! [`LIMIT_TAG`], which [`super::decode`] turns back into
//! [`super::StatsError::Limit`] with the JSON path.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Entries of one JSON list or object. uWSGI's own ceilings are far lower
/// (workers and cores are bounded by its process and thread limits); 100 000
/// still admits the adversarial 40 000-socket document.
pub const MAX_ENTRIES: usize = 100_000;

/// Bytes of one string exported as a label value: PATH_MAX, the longest a
/// socket path, mountpoint or chdir can legitimately be.
pub const MAX_LABEL_BYTES: usize = 4096;

/// Prefix of the serde message that carries a limit error.
pub const LIMIT_TAG: &str = "uwsgi-red limit: ";

fn too_many<E: de::Error>() -> E {
    E::custom(format_args!(
        "{LIMIT_TAG}more than {MAX_ENTRIES} entries in one list"
    ))
}

fn too_long<E: de::Error>(len: usize) -> E {
    E::custom(format_args!(
        "{LIMIT_TAG}string of {len} bytes exceeds {MAX_LABEL_BYTES} bytes"
    ))
}

/// `deserialize_with` for a list: at most [`MAX_ENTRIES`] elements. The
/// capacity grows with what was really parsed, never from a size hint.
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ListVisitor<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element()? {
                if out.len() >= MAX_ENTRIES {
                    return Err(too_many());
                }
                out.push(v);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(ListVisitor(PhantomData))
}

/// A [`list`] as a type, so it can sit inside an `Option`.
struct Bounded<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Bounded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        list(d).map(Bounded)
    }
}

/// [`list`] for an optional section (`caches`, `spoolers`, …): `null` is `None`.
pub fn opt_list<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Bounded<T>>::deserialize(d).map(|o| o.map(|b| b.0))
}

/// [`opt_list`] where absent and `null` both mean empty.
pub fn nullable_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    opt_list(d).map(Option::unwrap_or_default)
}

/// Checks the entry count of a map being visited; for hand-written visitors.
pub fn check_entries<E: de::Error>(count: usize) -> Result<(), E> {
    if count >= MAX_ENTRIES {
        Err(too_many())
    } else {
        Ok(())
    }
}

/// A label string, borrowed from the input when it holds no escapes.
pub fn label<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Cow<'a, str>, D::Error> {
    d.deserialize_str(LabelVisitor)
}

/// An owned label string (the owned model).
pub fn label_owned<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(LabelVisitor).map(Cow::into_owned)
}

/// A label string as a map key (metric names).
#[derive(Debug)]
pub struct LabelKey<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for LabelKey<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        label(d).map(LabelKey)
    }
}

struct LabelVisitor;

impl<'de> Visitor<'de> for LabelVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        if v.len() > MAX_LABEL_BYTES {
            return Err(too_long(v.len()));
        }
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.len() > MAX_LABEL_BYTES {
            return Err(too_long(v.len()));
        }
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// An optional object of label-named entries (the owned `metrics`): at most
/// [`MAX_ENTRIES`], keys bounded like labels, the first of a repeated key kept
/// (as the mapping keeps the first of any repeated identity).
pub fn opt_label_map<'de, D, V>(d: D) -> Result<Option<BTreeMap<String, V>>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct MapVisitor<V>(PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
        type Value = Option<BTreeMap<String, V>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            let mut entries = 0usize;
            while let Some((LabelKey(k), v)) = map.next_entry::<LabelKey, V>()? {
                check_entries(entries)?;
                entries = entries.saturating_add(1);
                out.entry(k.into_owned()).or_insert(v);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_option(MapVisitor(PhantomData))
}
