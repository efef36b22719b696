//! `decode` (any known version -> the current `Session`) and `encode` (the only bytes
//! the store ever writes).

use serde::de::DeserializeOwned;
use session_model::{LegacySession, LegacyUpgrade, Session, SessionId, SessionV1, UpgradeError, v1};

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

/// A decoded document: the current `Session` and the version it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The session, upgraded to the current version.
    pub session: Session,
    /// The version of the bytes.
    pub from: SchemaVersion,
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
        source: UpgradeError,
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
    /// Whether the file is valid but from a newer build (never quarantine or rewrite it).
    pub fn is_newer_version(&self) -> bool {
        matches!(self, Self::NewerVersion { .. })
    }
}

/// Decodes any known version into the current `Session` with default options.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode_with(bytes, &DecodeOptions::default())
}

/// Decodes any known version into the current `Session`.
///
/// The version comes from `_metadata.version` (absent: legacy); exactly that version's
/// type is deserialized, then the `From`/`TryFrom` chain runs up to the current one.
pub fn decode_with(bytes: &[u8], options: &DecodeOptions) -> Result<Decoded, DecodeError> {
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
    let declared = declared_version(bytes).map_err(|e| DecodeError::NotJson {
        message: e.to_string(),
    })?;
    let from = match declared {
        Declared::Known(version) => version,
        Declared::Newer(version) => {
            return Err(DecodeError::NewerVersion {
                version,
                document: bytes.to_vec(),
            });
        }
        Declared::NotAString(found) => return Err(DecodeError::BadVersionField { found }),
    };
    let session = match from {
        SchemaVersion::Legacy => {
            let legacy: LegacySession = parse(bytes, from)?;
            let saved_at = options
                .legacy_saved_at
                .unwrap_or_else(|| legacy.end_time.unwrap_or(legacy.start_time));
            let v1 = SessionV1::from(LegacyUpgrade {
                session: legacy,
                saved_at,
                retention_days: options.retention_days,
            });
            upgrade_v1(v1, from)?
        }
        SchemaVersion::V1_0_0 => upgrade_v1(parse(bytes, from)?, from)?,
        SchemaVersion::V2_0_0 => parse(bytes, from)?,
    };
    Ok(Decoded { session, from })
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

fn upgrade_v1(v1: SessionV1, from: SchemaVersion) -> Result<Session, DecodeError> {
    Session::try_from(v1).map_err(|source| DecodeError::Upgrade {
        version: from,
        source,
    })
}

fn parse<T: DeserializeOwned>(bytes: &[u8], version: SchemaVersion) -> Result<T, DecodeError> {
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
