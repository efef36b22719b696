//! Document versions: their names, and how a file says which one it is.

use serde::Deserialize;
use serde_json::Value;

pub use session_model::{SchemaVersion, Version};

/// What `_metadata.version` says, read without deserializing the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Declared {
    Legacy,
    Named(String),
    NotAString(&'static str),
    /// `_metadata` is there but is not an object (`null`, a string...): not legacy.
    MetadataNotAnObject(&'static str),
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "_metadata", default, deserialize_with = "present")]
    metadata: Option<Value>,
}

/// `Some` for any value, `null` included: only an absent `_metadata` means legacy.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads `_metadata.version`; the error is serde_json's (syntax, or a non-object).
///
/// The fast path skims the top-level object for its `_metadata` member without parsing
/// the other members (the typed parse that follows checks them); anything unusual falls
/// back to a full serde parse, which also words the error.
pub(crate) fn declared_version(bytes: &[u8]) -> Result<Declared, serde_json::Error> {
    let metadata = match skim::top_level_member(bytes, b"_metadata") {
        Some(skim::Member::Absent) => None,
        Some(skim::Member::Found(raw)) => match serde_json::from_slice::<Value>(raw) {
            Ok(metadata) => Some(metadata),
            Err(_) => serde_json::from_slice::<Probe>(bytes)?.metadata,
        },
        None => serde_json::from_slice::<Probe>(bytes)?.metadata,
    };
    Ok(match metadata {
        None => Declared::Legacy,
        Some(Value::Object(fields)) => match fields.get("version") {
            None => Declared::NotAString("missing"),
            Some(Value::String(v)) => Declared::Named(v.clone()),
            Some(other) => Declared::NotAString(json_kind(other)),
        },
        Some(other) => Declared::MetadataNotAnObject(json_kind(&other)),
    })
}

/// A minimal scanner for one member of a JSON object, skipping the others unparsed.
mod skim {
    pub(crate) enum Member<'a> {
        Absent,
        Found(&'a [u8]),
    }

    fn ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    }

    /// The index just past the string starting at `i` (which is `"`).
    fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
        i += 1;
        loop {
            i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
            if b[i] == b'"' {
                return Some(i + 1);
            }
            i += 2;
        }
    }

    /// The index just past the value starting at `i`.
    fn value_end(b: &[u8], i: usize) -> Option<usize> {
        match *b.get(i)? {
            b'"' => string_end(b, i),
            b'{' | b'[' => {
                // Jump from string to closer; openers in between only add depth.
                let mut depth = 1usize;
                let mut j = i + 1;
                loop {
                    let next = j + memchr::memchr3(b'"', b']', b'}', b.get(j..)?)?;
                    depth += b[j..next].iter().filter(|&&c| c == b'[' || c == b'{').count();
                    if b[next] == b'"' {
                        j = string_end(b, next)?;
                        continue;
                    }
                    depth -= 1;
                    if depth == 0 {
                        return Some(next + 1);
                    }
                    j = next + 1;
                }
            }
            _ => {
                let mut j = i;
                while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    j += 1;
                }
                (j > i).then_some(j)
            }
        }
    }

    /// `None` when the bytes are not a plainly shaped object (the caller falls back).
    pub(crate) fn top_level_member<'a>(b: &'a [u8], name: &[u8]) -> Option<Member<'a>> {
        let mut i = ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i = ws(b, i + 1);
        if b.get(i) == Some(&b'}') {
            return Some(Member::Absent);
        }
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(b, i)?;
            let key = &b[i + 1..key_end - 1];
            if key.contains(&b'\\') {
                return None; // escaped keys: let serde decide
            }
            i = ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let start = ws(b, i + 1);
            let end = value_end(b, start)?;
            if key == name {
                return Some(Member::Found(&b[start..end]));
            }
            i = ws(b, end);
            match b.get(i) {
                Some(b',') => i = ws(b, i + 1),
                Some(b'}') => return Some(Member::Absent),
                _ => return None,
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn found(doc: &str) -> Option<String> {
            match top_level_member(doc.as_bytes(), b"_metadata") {
                Some(Member::Found(raw)) => Some(String::from_utf8(raw.to_vec()).unwrap()),
                Some(Member::Absent) => Some("absent".into()),
                None => None,
            }
        }

        #[test]
        fn finds_the_member_past_nested_values_and_tricky_strings() {
            let doc = r#"{"a": [1, {"_metadata": 2}], "s": "x\"}{", "_metadata" : {"version": "1.0.0"} }"#;
            assert_eq!(found(doc).as_deref(), Some(r#"{"version": "1.0.0"}"#));
            assert_eq!(found(r#"{"id": "x", "n": -1.5e3}"#).as_deref(), Some("absent"));
            assert_eq!(found("{}").as_deref(), Some("absent"));
        }

        #[test]
        fn gives_up_on_anything_unusual() {
            for doc in [
                "[1]",
                "{\"a\" 1}",
                "{\"a\": [1, 2",
                "{\"\\u005fmetadata\": 1}",
                "",
                "{\"a\": 1 \"b\": 2}",
            ] {
                assert!(found(doc).is_none(), "{doc}");
            }
        }
    }
}
