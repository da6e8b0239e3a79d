//! What each plugin configuration accepts, as data: one table of [`Key`]s
//! per document type. The parser takes its known keys from the table
//! ([`names`], evaluated at compile time: the table itself costs a Wasm
//! module nothing), and `uwsgi-red schema <plugin>` renders the same table
//! as a JSON Schema ([`json_schema`]). A new key is one entry in its table
//! plus the line of the parser that reads it; a key the parser reads but
//! the table lacks is refused as unknown, so the two cannot drift apart
//! silently (and `host-tests/test_config_schema.py` runs both over every
//! committed configuration and the fuzz corpus).
//!
//! The schema states what JSON Schema can: types, known keys, required
//! keys, choices, numeric ranges, list and string bounds, a leading `/`.
//! The parsers check a little more (path template syntax, increasing
//! buckets, lengths in bytes where the schema counts characters, duplicate
//! keys and names); `beyond` on a key lists those checks, and the
//! generated schema carries them in the key's `description`.

use serde_json::{json, Map, Value};

/// One key of a configuration object.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    /// One line for editors (the schema's `description`).
    pub about: &'static str,
    /// What the parser checks beyond `ty`, in words ("" when nothing).
    pub beyond: &'static str,
}

/// The value a key takes.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Bool,
    /// A string of at least `min` and at most `max_bytes` bytes (0: no
    /// limit); `slash`: it must start with `/`.
    Str {
        min: usize,
        max_bytes: usize,
        slash: bool,
    },
    /// A non-negative integer in `min..=max`.
    UInt {
        min: u64,
        max: u64,
    },
    /// Any JSON number.
    Number,
    /// One of these strings.
    Choice(&'static [&'static str]),
    /// A list of at least `min` and at most `max` items (0: no limit).
    List {
        item: &'static Ty,
        min: usize,
        max: usize,
    },
    /// An object with these keys and no others.
    Object(&'static [Key]),
    /// An object of string values under any keys.
    StrMap,
    /// `null` (the default) or the value.
    OrNull(&'static Ty),
}

impl Key {
    pub const fn new(name: &'static str, ty: Ty, about: &'static str) -> Self {
        Self {
            name,
            ty,
            required: false,
            about,
            beyond: "",
        }
    }

    pub const fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }

    pub const fn beyond(self, beyond: &'static str) -> Self {
        Self { beyond, ..self }
    }
}

/// The key names of a table, for the parser's `Fields::new`. Called in
/// constant context only: an index out of range or an overflow there is a
/// compile error, never a runtime panic.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
pub const fn names<const N: usize>(keys: &[Key; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = keys[i].name;
        i += 1;
    }
    out
}

/// A JSON Schema (draft-04, the draft Kong's `config_schema` and every
/// editor read; draft-04's `integer` also refuses `1.0`, as the parsers
/// do) of an object with `keys`.
pub fn json_schema(title: &str, keys: &[Key]) -> Value {
    let mut schema = object(keys);
    if let Value::Object(m) = &mut schema {
        m.insert(
            "$schema".into(),
            json!("http://json-schema.org/draft-04/schema#"),
        );
        m.insert("title".into(), json!(title));
    }
    schema
}

/// A document read by one of several tables, chosen by the value of one
/// key: the table paired with `key`'s value in `alts`, else `main` (key
/// absent or any other value; uwsgi-stats: `mode` `admin` and `nginx`, else
/// the poller). Written as a `oneOf` of branches that exclude each other by
/// that key, which is draft-04's if/then/else.
pub fn json_schema_switch(title: &str, key: &str, main: &[Key], alts: &[(&str, &[Key])]) -> Value {
    let is = |values: Vec<&str>| json!({"properties": {key: {"enum": values}}, "required": [key]});
    let mut main_branch = object(main);
    if let Value::Object(m) = &mut main_branch {
        m.insert("not".into(), is(alts.iter().map(|(v, _)| *v).collect()));
    }
    let mut branches = vec![main_branch];
    for (value, keys) in alts {
        let mut branch = object(keys);
        if let Value::Object(b) = &mut branch {
            b.insert("allOf".into(), json!([is(vec![value])]));
        }
        branches.push(branch);
    }
    json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": title,
        "type": "object",
        "oneOf": branches,
    })
}

fn object(keys: &[Key]) -> Value {
    let mut props = Map::new();
    for k in keys {
        let mut v = ty(&k.ty);
        if let Value::Object(m) = &mut v {
            let about = if k.beyond.is_empty() {
                k.about.to_string()
            } else {
                format!("{} (also checked: {})", k.about, k.beyond)
            };
            m.insert("description".into(), json!(about));
        }
        props.insert(k.name.into(), v);
    }
    let required: Vec<&str> = keys.iter().filter(|k| k.required).map(|k| k.name).collect();
    let mut m = Map::new();
    m.insert("type".into(), json!("object"));
    m.insert("properties".into(), Value::Object(props));
    m.insert("additionalProperties".into(), json!(false));
    if !required.is_empty() {
        m.insert("required".into(), json!(required));
    }
    Value::Object(m)
}

fn ty(t: &Ty) -> Value {
    match t {
        Ty::Bool => json!({"type": "boolean"}),
        Ty::Str {
            min,
            max_bytes,
            slash,
        } => {
            let mut m = Map::new();
            m.insert("type".into(), json!("string"));
            if *min > 0 {
                m.insert("minLength".into(), json!(min));
            }
            if *max_bytes > 0 {
                m.insert("maxLength".into(), json!(max_bytes));
            }
            if *slash {
                m.insert("pattern".into(), json!("^/"));
            }
            Value::Object(m)
        }
        Ty::UInt { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Ty::Number => json!({"type": "number"}),
        Ty::Choice(names) => json!({"type": "string", "enum": names}),
        Ty::List { item, min, max } => {
            let mut m = Map::new();
            m.insert("type".into(), json!("array"));
            m.insert("items".into(), ty(item));
            if *min > 0 {
                m.insert("minItems".into(), json!(min));
            }
            if *max > 0 {
                m.insert("maxItems".into(), json!(max));
            }
            Value::Object(m)
        }
        Ty::Object(keys) => object(keys),
        Ty::StrMap => json!({"type": "object", "additionalProperties": {"type": "string"}}),
        Ty::OrNull(inner) => {
            let mut v = ty(inner);
            if let Value::Object(m) = &mut v {
                if let Some(t) = m.get("type").cloned() {
                    m.insert("type".into(), json!([t, "null"]));
                }
                // An enum must list null too, or it refuses what `type` allows.
                if let Some(Value::Array(e)) = m.get_mut("enum") {
                    e.push(Value::Null);
                }
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INNER: &[Key] = &[Key::new("n", Ty::UInt { min: 1, max: 9 }, "n").required()];
    const KEYS: [Key; 3] = [
        Key::new("flag", Ty::Bool, "a flag"),
        Key::new(
            "list",
            Ty::List {
                item: &Ty::Object(INNER),
                min: 1,
                max: 2,
            },
            "items",
        )
        .beyond("names are unique"),
        Key::new(
            "name",
            Ty::OrNull(&Ty::Str {
                min: 1,
                max_bytes: 8,
                slash: true,
            }),
            "a path",
        ),
    ];

    #[test]
    fn names_in_table_order() {
        const N: [&str; 3] = names(&KEYS);
        assert_eq!(N, ["flag", "list", "name"]);
    }

    #[test]
    fn renders_draft04() {
        let s = json_schema("t", &KEYS);
        assert_eq!(s["$schema"], "http://json-schema.org/draft-04/schema#");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["flag"]["type"], "boolean");
        let list = &s["properties"]["list"];
        assert_eq!(list["maxItems"], 2);
        assert_eq!(list["items"]["required"], json!(["n"]));
        assert_eq!(list["items"]["properties"]["n"]["maximum"], 9);
        assert_eq!(
            list["description"],
            "items (also checked: names are unique)"
        );
        assert_eq!(s["properties"]["name"]["type"], json!(["string", "null"]));
        assert_eq!(s["properties"]["name"]["pattern"], "^/");
        assert!(s.get("required").is_none());
    }

    #[test]
    fn switch_branches_exclude_each_other() {
        let s = json_schema_switch("t", "mode", &KEYS, &[("admin", INNER), ("nginx", &KEYS)]);
        assert_eq!(
            s["oneOf"][0]["not"]["properties"]["mode"]["enum"],
            json!(["admin", "nginx"])
        );
        assert_eq!(s["oneOf"][1]["allOf"][0]["required"], json!(["mode"]));
        assert_eq!(
            s["oneOf"][1]["allOf"][0]["properties"]["mode"]["enum"],
            json!(["admin"])
        );
        assert_eq!(
            s["oneOf"][2]["allOf"][0]["properties"]["mode"]["enum"],
            json!(["nginx"])
        );
        assert_eq!(s["oneOf"].as_array().map(Vec::len), Some(3));
    }
}
