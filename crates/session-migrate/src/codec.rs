//! `decode` (any known version -> the current `Session`) and `encode` (the only bytes
//! the store ever writes).

use serde::de::DeserializeOwned;
use session_model::{Element, LegacySession, LegacyUpgrade, Session, SessionId, SessionV1, SessionV2_0};

use crate::schema::{Document, Schema};
use crate::version::{Declared, SchemaVersion, declared_version};
use session_model::Printable;

/// What the legacy -> `1.0.0` step needs from its caller.
///
/// ```
/// let options = session_migrate::DecodeOptions::default().retention_days(90);
/// assert_eq!(options.retention_days, 90);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// Retention recorded for legacy files (the app's default is 30 days).
    pub retention_days: u32,
    /// `savedAt` recorded for legacy files. `None` uses the session's `endTime` (or
    /// `startTime`): deterministic, so decoding the same file twice gives the same result.
    pub legacy_saved_at: Option<u64>,
}

impl DecodeOptions {
    /// Retention recorded for legacy files without `persistedUntil`.
    pub fn retention_days(mut self, days: u32) -> Self {
        self.retention_days = days;
        self
    }

    /// `savedAt` recorded for legacy files (default: the session's end or start time).
    pub fn legacy_saved_at(mut self, at: Option<u64>) -> Self {
        self.legacy_saved_at = at;
        self
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            retention_days: session_model::DEFAULT_RETENTION_DAYS,
            legacy_saved_at: None,
        }
    }
}

/// Why bytes are not a session this build can use.
#[derive(thiserror::Error)]
#[non_exhaustive]
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
    /// `_metadata` exists but is not an object (`null` included: only an absent
    /// `_metadata` makes a legacy file).
    #[error("_metadata is {found}, expected an object (only a file without _metadata is legacy)")]
    BadMetadata {
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
    #[error("version {} is newer than this build understands (up to {current}); left untouched", Printable(version), current = SchemaVersion::CURRENT)]
    NewerVersion {
        /// The declared version.
        version: String,
        /// The raw document, so callers can keep or copy it unchanged.
        document: Vec<u8>,
    },
    /// The document does not match its version's schema.
    ///
    /// Its `Display` names the version, the path and the kind of problem, never a value
    /// from the document (a wrongly typed field may hold patient data).
    #[error("invalid {version} document at {}: {problem}", Printable(path))]
    Invalid {
        /// The declared version.
        version: SchemaVersion,
        /// Where in the document (`elements[3].timestamp`; `.` for the top level).
        path: String,
        /// What is wrong there, without any value from the document.
        problem: String,
        /// serde's own message, which may quote the offending value: its text is
        /// read only through [`DecodeError::detail_with_values`], never in a log.
        message: WithValues,
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
    /// A number that would be written back as a different number (an integer beyond
    /// 64 bits, `-0`, `1E2`, `1.50`): the document is refused rather than changed.
    #[error(
        "the number at byte {offset} of this {version} document cannot be kept exactly (integers must fit in 64 bits, decimals be in shortest form)"
    )]
    InexactNumber {
        /// The declared version.
        version: SchemaVersion,
        /// Where the number starts, in bytes from the start of the document.
        offset: usize,
    },
    /// The `id` field does not match the file's name.
    #[error(
        "id {:?} does not match the file name (expected {:?})",
        Printable(found),
        Printable(expected)
    )]
    IdMismatch {
        /// The id the file name implies.
        expected: String,
        /// The id inside the document.
        found: String,
    },
}

/// A message about a document that may quote its values (patient data). It has no
/// `Display`, its `Debug` shows its length, and its text is read only through
/// [`DecodeError::detail_with_values`].
#[derive(Clone, PartialEq, Eq)]
pub struct WithValues(String);

impl std::fmt::Debug for WithValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WithValues(<{} bytes>)", self.0.len())
    }
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

    /// serde's full message for an invalid document, which may quote the offending value
    /// (patient data): for a person debugging one file, never for logs. `None` for
    /// other errors, whose `Display` is already complete.
    pub fn detail_with_values(&self) -> Option<&str> {
        match self {
            Self::Invalid { message, .. } => Some(&message.0),
            _ => None,
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
    /// This build's chain: every version, oldest first, the current one last. To add a
    /// version, see the crate docs.
    pub struct Current -> Session { SessionV1, SessionV2_0, Session }
}

/// Decodes any known version into the current `Session`, with `options` for the
/// legacy step; refuses what could not be written back exactly.
pub fn decode_with(bytes: &[u8], options: &DecodeOptions) -> Result<Decoded, DecodeError> {
    decode_as::<Current>(bytes, options)
}

/// Decodes any version of `S`'s chain into its last version: the version chain, then the
/// check that every number can be written back exactly. What every decode runs.
pub fn decode_as<S: Schema>(
    bytes: &[u8],
    options: &DecodeOptions,
) -> Result<Chained<S::Document>, DecodeError> {
    let decoded = S::decode_chain(bytes, options)?;
    if let Some(offset) = crate::exact::first_inexact_number(bytes) {
        return Err(DecodeError::InexactNumber {
            version: decoded.from,
            offset,
        });
    }
    Ok(decoded)
}

/// [`decode_as`], then checks that the document's `id` is the one its file name says.
pub fn decode_stored_as<S: Schema>(
    expected: &SessionId,
    bytes: &[u8],
    options: &DecodeOptions,
) -> Result<Chained<S::Document>, DecodeError> {
    let decoded = decode_as::<S>(bytes, options)?;
    let found = decoded.session.id();
    if found != expected {
        return Err(DecodeError::IdMismatch {
            expected: expected.to_string(),
            found: found.to_string(),
        });
    }
    Ok(decoded)
}

/// Decodes any known version into the current `Session` with default options.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode_as::<Current>(bytes, &DecodeOptions::default())
}

/// [`decode_with`], then checks that the document's `id` is the one its file name says.
pub fn decode_stored(
    expected: &SessionId,
    bytes: &[u8],
    options: &DecodeOptions,
) -> Result<Decoded, DecodeError> {
    decode_stored_as::<Current>(expected, bytes, options)
}

/// What the [`schema_chain!`](crate::schema_chain) expansion calls; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::{confirmed, declared, legacy, newer, parse};
}

/// How far from its end a document in the last version states it: the encoder writes
/// `_metadata` last, before only the fields this build does not know.
const STATED_NEAR_END: usize = 512;

/// `bytes` parsed as `T`, when they end by stating `T`'s version and the document
/// parsed states it too: the common case (a stored document in the current version)
/// in one parse instead of a skim for `_metadata` and then the parse. `None` sends the
/// caller to the full decode, which judges every other document exactly as before:
/// what this accepts, the full decode accepts the same way (it finds the same
/// `_metadata.version`, then runs the same parse).
pub fn confirmed<T: crate::Version>(bytes: &[u8]) -> Option<T> {
    let tail = &bytes[bytes.len().saturating_sub(STATED_NEAR_END)..];
    let quoted = |at: usize| at > 0 && tail[at - 1] == b'"' && tail.get(at + T::NAME.len()) == Some(&b'"');
    if !memchr::memmem::find_iter(tail, T::NAME.as_bytes()).any(quoted) {
        return None;
    }
    let parsed: T = serde_json::from_slice(bytes).ok()?;
    (parsed.stated_version() == Some(T::NAME)).then_some(parsed)
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
        Declared::MetadataNotAnObject(found) => Err(DecodeError::BadMetadata { found }),
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
        let message = e.into_inner().to_string();
        DecodeError::Invalid {
            version,
            path,
            problem: problem_without_values(&message),
            message: WithValues(message),
        }
    })?;
    de.end().map_err(|e| DecodeError::NotJson {
        message: e.to_string(),
    })?;
    Ok(value)
}

/// serde's message reduced to its kind, with no value from the document: serde quotes
/// wrongly typed values (`invalid type: string "…", expected u64`), and those may be
/// patient data. What is kept comes from the schema, never from the input.
fn problem_without_values(message: &str) -> String {
    // serde appends " at line L column C"; the path already says where.
    let message = message.split(" at line ").next().unwrap_or(message);
    let expected = message
        .rsplit_once(", expected ")
        .map(|(_, expected)| format!(", expected {expected}"))
        .unwrap_or_default();
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        // "string \"…\"", "integer `5`", "map": the first word is the JSON kind.
        let kind = rest.split([' ', ',']).next().unwrap_or("value");
        return format!("wrong type ({kind}){expected}");
    }
    if message.starts_with("invalid value: ") {
        return format!("invalid value{expected}");
    }
    if message.starts_with("unknown variant ") {
        return format!("unknown value{expected}");
    }
    if message.starts_with("invalid length ") {
        return format!("invalid length{expected}");
    }
    if let Some(rest) = message.strip_prefix("invalid session id ") {
        // `invalid session id (<n> characters): <reason>`: the reason names the rule.
        let reason = rest.split_once("): ").map_or("", |(_, reason)| reason);
        return format!("invalid session id: {reason}");
    }
    for schema_named in ["missing field `", "duplicate field `"] {
        // The field name quoted here is one of the schema's own.
        if message.starts_with(schema_named) {
            return message.to_owned();
        }
    }
    "does not match the schema".to_owned()
}

/// Why a session could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// serde_json failed (in practice never: every field is plain data).
    #[error("encoding session: {0}")]
    Json(#[from] serde_json::Error),
    /// The bytes would not read back as the same session (an unknown field named like
    /// a known one, say): nothing is written.
    #[error(
        "encoding session {}: the result would not read back as the same session ({reason}); nothing was written",
        session_model::Printable(id)
    )]
    ReadBack {
        /// The session's id.
        id: String,
        /// What went wrong reading it back.
        reason: String,
    },
    /// A streamed session's elements could not be had ([`encode_streamed`]).
    #[error(
        "encoding session {}: reading its elements: {source}",
        session_model::Printable(id)
    )]
    Elements {
        /// The session's id.
        id: String,
        /// What their source reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Writing a streamed session failed ([`encode_streamed`]).
    #[error("encoding session: writing: {0}")]
    Write(#[from] std::io::Error),
}

/// The one function that produces the bytes written to disk: compact JSON of the current version.
///
/// Every result is decoded again and compared with `session`: the store never writes
/// bytes that its own decoder rejects, or that decode to something else.
pub fn encode(session: &Session) -> Result<Vec<u8>, EncodeError> {
    encode_with::<Current>(session)
}

/// [`encode`] for a session whose elements do not fit in memory: writes to `out` the
/// bytes [`encode`] would give for `envelope` with the elements `elements` yields in
/// place of its own (which must be none), holding one element at a time.
///
/// Checked as [`encode`] is, piece by piece: the envelope reads back as itself, each
/// element reads back as itself, and the elements go exactly where the envelope's
/// encoding holds its (empty) `elements` array, found by encoding it with one marker
/// element. Nothing is written until the envelope passed its check.
pub fn encode_streamed<E>(
    envelope: &Session,
    elements: impl IntoIterator<Item = Result<Element, E>>,
    out: &mut dyn std::io::Write,
) -> Result<(), EncodeError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let refused = |reason: String| EncodeError::ReadBack {
        id: envelope.id.to_string(),
        reason,
    };
    if !envelope.elements.is_empty() {
        return Err(refused(
            "a streamed session's envelope must hold no elements".into(),
        ));
    }
    let whole = encode(envelope)?;
    let mut marker = Element::new(
        0,
        session_model::Direction::DeviceToPc,
        session_model::ElementKind::Message,
        Vec::new(),
    );
    marker.id = "\u{0}the streamed elements go here\u{0}".into();
    let marker_bytes = serde_json::to_vec(&marker)?;
    let mut marked = envelope.clone();
    marked.elements.push(marker);
    let marked_bytes = serde_json::to_vec(&marked)?;
    let places: Vec<usize> = marked_bytes
        .windows(marker_bytes.len())
        .enumerate()
        .filter_map(|(at, window)| (window == marker_bytes.as_slice()).then_some(at))
        .collect();
    let [at] = places[..] else {
        return Err(refused(
            "the place of its elements could not be found in its encoding".into(),
        ));
    };
    let (head, tail) = (&marked_bytes[..at], &marked_bytes[at + marker_bytes.len()..]);
    if [head, tail].concat() != whole {
        return Err(refused(
            "its encoding with elements is not its encoding without them plus the elements".into(),
        ));
    }
    out.write_all(head)?;
    for (index, element) in elements.into_iter().enumerate() {
        let element = element.map_err(|e| EncodeError::Elements {
            id: envelope.id.to_string(),
            source: e.into(),
        })?;
        let bytes = serde_json::to_vec(&element)?;
        match serde_json::from_slice::<Element>(&bytes) {
            Ok(back) if back == element => {}
            _ => return Err(refused(format!("element {index} would not read back as itself"))),
        }
        if index > 0 {
            out.write_all(b",")?;
        }
        out.write_all(&bytes)?;
    }
    out.write_all(tail)?;
    Ok(())
}

/// [`encode`] for the last version of any schema.
pub fn encode_with<S: Schema>(document: &S::Document) -> Result<Vec<u8>, EncodeError> {
    let bytes = serde_json::to_vec(document)?;
    let refused = |reason: String| EncodeError::ReadBack {
        id: document.id().to_string(),
        reason,
    };
    match decode_as::<S>(&bytes, &DecodeOptions::default()) {
        Ok(decoded) if decoded.session == *document => Ok(bytes),
        Ok(_) => Err(refused("it decodes to a different session".into())),
        Err(e) => Err(refused(e.to_string())),
    }
}

/// Records the revision and save time the store handed out in `document`, then encodes
/// it: what every save of a typed store writes.
pub fn stamp_and_encode<S: Schema>(
    document: &mut S::Document,
    stamp: session_fs::SaveStamp,
) -> Result<Vec<u8>, EncodeError> {
    document.stamp(stamp.revision, stamp.saved_at);
    encode_with::<S>(document)
}
