//! `decode` (any known version -> the current `Session`) and `encode` (the only bytes
//! the store ever writes).

use serde::de::DeserializeOwned;
use session_model::{LegacySession, LegacyUpgrade, Session, SessionId, SessionV1, v1};

use crate::version::{Declared, SchemaVersion, declared_version};

/// What the legacy -> `1.0.0` step needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Retention recorded for legacy files (the app's default is 30 days).
    pub retention_days: u32,
    /// `savedAt` recorded for legacy files. `None` uses the session's `endTime` (or
    /// `startTime`): deterministic, so decoding the same file twice gives the same result.
    pub legacy_saved_at: Option<u64>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            retention_days: v1::DEFAULT_RETENTION_DAYS,
            legacy_saved_at: None,
        }
    }
}

/// Why bytes are not a session this build can use.
#[derive(thiserror::Error)]
pub enum DecodeError {
    /// Zero bytes (or only whitespace).
    #[error("the file is empty")]
    Empty,
    /// Not JSON at all (torn, NUL bytes, garbage).
    #[error("not JSON: {message}")]
    NotJson {
        /// serde_json's description, with line and column.
        message: String,
    },
    /// JSON, but not an object.
    #[error("not a session: the document is {found}, not an object")]
    NotAnObject {
        /// What it is instead.
        found: &'static str,
    },
    /// `_metadata` exists but its `version` is not a string.
    #[error("_metadata.version is {found}, expected a version string")]
    BadVersionField {
        /// What it is instead.
        found: &'static str,
    },
    /// Written by a newer build: leave the file exactly as it is.
    #[error("version {version} is newer than this build understands (up to {current}); left untouched", current = SchemaVersion::CURRENT)]
    NewerVersion {
        /// The declared version.
        version: String,
        /// The raw document, so callers can keep or copy it unchanged.
        document: Vec<u8>,
    },
    /// The document does not match its version's schema.
    #[error("invalid {version} document at {path}: {message}")]
    Invalid {
        /// The declared version.
        version: SchemaVersion,
        /// Where in the document (`elements[3].timestamp`; `.` for the top level).
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The document matches its schema but cannot be upgraded.
    #[error("cannot upgrade {version} document: {source}")]
    Upgrade {
        /// The declared version.
        version: SchemaVersion,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The `id` field does not match the file's name.
    #[error("id {found:?} does not match the file name (expected {expected:?})")]
    IdMismatch {
        /// The id the file name implies.
        expected: String,
        /// The id inside the document.
        found: String,
    },
}

impl std::fmt::Debug for DecodeError {
    // The raw document is patient data: Debug shows its size, never its bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NewerVersion { version, document } => f
                .debug_struct("NewerVersion")
                .field("version", version)
                .field("document_len", &document.len())
                .finish(),
            other => write!(f, "DecodeError({other})"),
        }
    }
}

impl DecodeError {
    /// An upgrade step from `version` failed.
    pub fn upgrade(
        version: SchemaVersion,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        DecodeError::Upgrade {
            version,
            source: source.into(),
        }
    }

    /// Whether the file is valid but from a newer build (never quarantine or rewrite it).
    pub fn is_newer_version(&self) -> bool {
        matches!(self, Self::NewerVersion { .. })
    }
}

/// A document decoded through a [`schema_chain!`](crate::schema_chain).
#[derive(Debug, Clone, PartialEq)]
pub struct Chained<T> {
    /// The document, upgraded to the chain's last version.
    pub session: T,
    /// The version of the bytes.
    pub from: SchemaVersion,
}

/// A decoded document: the current `Session` and the version it was read from.
pub type Decoded = Chained<Session>;

crate::schema_chain! {
    /// Decodes any known version into the current `Session`.
    ///
    /// The version comes from `_metadata.version` (absent: legacy); exactly that
    /// version's type is deserialized, then the `From`/`TryFrom` chain runs up to the
    /// current one. To add a version, see the crate docs.
    pub fn decode_with -> Session { SessionV1, Session }
}

/// Decodes any known version into the current `Session` with default options.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode_with(bytes, &DecodeOptions::default())
}

/// [`decode_with`], then checks that the document's `id` is the one its file name says.
pub fn decode_stored(
    expected: &SessionId,
    bytes: &[u8],
    options: &DecodeOptions,
) -> Result<Decoded, DecodeError> {
    let decoded = decode_with(bytes, options)?;
    if &decoded.session.id != expected {
        return Err(DecodeError::IdMismatch {
            expected: expected.to_string(),
            found: decoded.session.id.to_string(),
        });
    }
    Ok(decoded)
}

/// What the [`schema_chain!`](crate::schema_chain) expansion calls; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::{declared, legacy, newer, parse};
}

/// `Ok(None)` for a legacy file, else its declared version; errors for what is not a
/// JSON object or has a malformed `_metadata.version`.
pub fn declared(bytes: &[u8]) -> Result<Option<String>, DecodeError> {
    let trimmed = bytes.trim_ascii();
    match trimmed.first() {
        None => return Err(DecodeError::Empty),
        Some(b'{') => {}
        Some(_) => {
            return Err(match serde_json::from_slice::<serde_json::Value>(trimmed) {
                Ok(value) => DecodeError::NotAnObject {
                    found: crate::version::json_kind(&value),
                },
                Err(e) => DecodeError::NotJson {
                    message: e.to_string(),
                },
            });
        }
    }
    match declared_version(bytes).map_err(|e| DecodeError::NotJson {
        message: e.to_string(),
    })? {
        Declared::Legacy => Ok(None),
        Declared::Named(version) => Ok(Some(version)),
        Declared::NotAString(found) => Err(DecodeError::BadVersionField { found }),
    }
}

/// Parses a legacy document and takes it to the first version of the chain.
pub fn legacy<T: From<SessionV1>>(bytes: &[u8], options: &DecodeOptions) -> Result<T, DecodeError> {
    let legacy: LegacySession = parse(bytes, SchemaVersion::LEGACY)?;
    let saved_at = options
        .legacy_saved_at
        .unwrap_or_else(|| legacy.end_time.unwrap_or(legacy.start_time));
    Ok(T::from(SessionV1::from(LegacyUpgrade {
        session: legacy,
        saved_at,
        retention_days: options.retention_days,
    })))
}

/// The error for a version no type of the chain is named after.
pub fn newer(version: String, bytes: &[u8]) -> DecodeError {
    DecodeError::NewerVersion {
        version,
        document: bytes.to_vec(),
    }
}

/// Deserializes exactly one version's type, naming the path of any mismatch.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], version: SchemaVersion) -> Result<T, DecodeError> {
    // Tracking the path costs a quarter of the parse: only a failed parse pays for it.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        DecodeError::Invalid {
            version,
            path,
            message: e.into_inner().to_string(),
        }
    })?;
    de.end().map_err(|e| DecodeError::NotJson {
        message: e.to_string(),
    })?;
    Ok(value)
}

/// Why a session could not be encoded (in practice never: every field is plain data).
#[derive(Debug, thiserror::Error)]
#[error("encoding session: {0}")]
pub struct EncodeError(#[from] serde_json::Error);

/// The one function that produces the bytes written to disk: compact `2.0.0` JSON.
pub fn encode(session: &Session) -> Result<Vec<u8>, EncodeError> {
    Ok(serde_json::to_vec(session)?)
}
