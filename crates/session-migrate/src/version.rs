//! The document versions this build knows, and how a file says which one it is.

use serde::Deserialize;
use serde_json::Value;

/// A document version this build can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchemaVersion {
    /// No `_metadata`: written by the app before it had metadata.
    Legacy,
    /// `1.0.0`: the app's current format.
    V1_0_0,
    /// `2.0.0`: this store's format, the current one.
    V2_0_0,
}

impl SchemaVersion {
    /// The version every save writes.
    pub const CURRENT: SchemaVersion = SchemaVersion::V2_0_0;

    /// The name used in `_metadata.version` and in reports (`legacy` for none).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::V1_0_0 => "1.0.0",
            Self::V2_0_0 => "2.0.0",
        }
    }

    /// Whether this is older than [`SchemaVersion::CURRENT`].
    pub fn is_outdated(self) -> bool {
        self < Self::CURRENT
    }
}

impl std::fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `_metadata.version` says, read without deserializing the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Declared {
    Known(SchemaVersion),
    Newer(String),
    NotAString(&'static str),
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "_metadata", default)]
    metadata: Option<ProbeMetadata>,
}

#[derive(Deserialize)]
struct ProbeMetadata {
    #[serde(default)]
    version: Option<Value>,
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
pub(crate) fn declared_version(bytes: &[u8]) -> Result<Declared, serde_json::Error> {
    let probe: Probe = serde_json::from_slice(bytes)?;
    Ok(match probe.metadata {
        None => Declared::Known(SchemaVersion::Legacy),
        Some(ProbeMetadata { version: None }) => Declared::NotAString("missing"),
        Some(ProbeMetadata {
            version: Some(Value::String(v)),
        }) => match v.as_str() {
            "1.0.0" => Declared::Known(SchemaVersion::V1_0_0),
            "2.0.0" => Declared::Known(SchemaVersion::V2_0_0),
            _ => Declared::Newer(v),
        },
        Some(ProbeMetadata { version: Some(other) }) => Declared::NotAString(json_kind(&other)),
    })
}
