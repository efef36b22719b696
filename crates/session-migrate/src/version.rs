//! Document versions: their names, and how a file says which one it is.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A document version, named as `_metadata.version` names it (`legacy` for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaVersion(&'static str);

impl SchemaVersion {
    /// No `_metadata`: written by the app before it had metadata.
    pub const LEGACY: SchemaVersion = SchemaVersion("legacy");
    /// The Electron app's current format.
    pub const V1_0_0: SchemaVersion = SchemaVersion(<session_model::SessionV1 as Version>::NAME);
    /// This store's format.
    pub const V2_0_0: SchemaVersion = SchemaVersion(<session_model::Session as Version>::NAME);
    /// The version every save of this build writes.
    pub const CURRENT: SchemaVersion = SchemaVersion(session_model::CURRENT_VERSION);

    /// The version named `name` (a [`Version::NAME`]).
    pub const fn named(name: &'static str) -> Self {
        SchemaVersion(name)
    }

    /// The name used in `_metadata.version` and in reports.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Whether a file of this version must be rewritten to be current.
    pub fn is_outdated(self) -> bool {
        self != Self::CURRENT
    }
}

impl std::fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A document version after legacy: a serde type and the `_metadata.version` it carries.
///
/// Implemented for each type in a [`schema_chain!`](crate::schema_chain).
pub trait Version: DeserializeOwned {
    /// Its `_metadata.version`.
    const NAME: &'static str;
}

impl Version for session_model::SessionV1 {
    const NAME: &'static str = session_model::v1::VERSION;
}

impl Version for session_model::Session {
    const NAME: &'static str = session_model::CURRENT_VERSION;
}

/// What `_metadata.version` says, read without deserializing the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Declared {
    Legacy,
    Named(String),
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
        None => Declared::Legacy,
        Some(ProbeMetadata { version: None }) => Declared::NotAString("missing"),
        Some(ProbeMetadata {
            version: Some(Value::String(v)),
        }) => Declared::Named(v),
        Some(ProbeMetadata { version: Some(other) }) => Declared::NotAString(json_kind(&other)),
    })
}
