//! What a file is worth: the one judgement shared by `recover` and `verify`.

use session_fs::{SaveStamp, stamp_of};
use session_migrate::{DecodeError, DecodeOptions, Decoded, decode_stored};
use session_model::SessionId;

/// The verdict on one file's bytes.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// A session this build reads.
    Valid(Box<Decoded>),
    /// A valid file from a newer build: never touched.
    Newer(SaveStamp),
    /// Does not decode: quarantine it.
    Damaged(DecodeError),
}

impl Verdict {
    /// The stamp that orders this copy against another, for files that are valid.
    pub(crate) fn stamp(&self) -> Option<SaveStamp> {
        match self {
            Verdict::Valid(decoded) => Some(SaveStamp {
                revision: decoded.session.metadata.revision,
                saved_at: decoded.session.metadata.saved_at,
            }),
            Verdict::Newer(stamp) => Some(*stamp),
            Verdict::Damaged(_) => None,
        }
    }
}

pub(crate) fn inspect(id: &SessionId, bytes: &[u8]) -> Verdict {
    match decode_stored(id, bytes, &DecodeOptions::default()) {
        Ok(decoded) => Verdict::Valid(Box::new(decoded)),
        Err(DecodeError::NewerVersion { .. }) => Verdict::Newer(stamp_of(bytes).unwrap_or_default()),
        Err(e) => Verdict::Damaged(e),
    }
}

/// A decode problem without any value from the document (serde echoes wrong-typed
/// values, which may be patient data): safe for logs.
pub(crate) fn loggable(e: &DecodeError) -> String {
    match e {
        DecodeError::Invalid { version, path, .. } => format!("invalid {version} document at {path}"),
        other => other.to_string(),
    }
}
