//! What a file is worth: the one judgement shared by `recover` and `verify`.

use session_fs::{SaveStamp, stamp_of};
use session_model::SessionId;
use session_store::{DecodeError, Decoded, SchemaVersion, SessionStore};

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

    /// Whether this copy was written by a store (which records a revision): only such
    /// copies can be ordered by revision. The app's files carry none; every store
    /// version from `2.0.0` on does, outdated or not (a `2.0.0` copy beside a `2.1.0` one
    /// is still ordered by revision).
    pub(crate) fn has_revision(&self) -> bool {
        match self {
            Verdict::Valid(decoded) => {
                decoded.from >= SchemaVersion::V2_0_0 && decoded.session.metadata.revision > 0
            }
            Verdict::Newer(stamp) => stamp.revision > 0,
            Verdict::Damaged(_) => false,
        }
    }
}

/// How two valid copies of one session compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Both were written by a store: the revision orders them.
    ByRevision { temp_later: bool },
    /// At least one has no revision (the app wrote it): `savedAt` decides, and the
    /// losing copy is quarantined rather than trashed, since the call is a judgement.
    BySavedAt { temp_later: bool },
}

/// Orders a temp copy against the live copy. Ties go to the live file.
pub(crate) fn order(temp: &Verdict, live: &Verdict) -> Order {
    let (t, l) = (temp.stamp().unwrap_or_default(), live.stamp().unwrap_or_default());
    if temp.has_revision() && live.has_revision() {
        Order::ByRevision {
            temp_later: (t.revision, t.saved_at) > (l.revision, l.saved_at),
        }
    } else {
        Order::BySavedAt {
            temp_later: t.saved_at > l.saved_at,
        }
    }
}

pub(crate) fn inspect(store: &SessionStore, id: &SessionId, bytes: &[u8]) -> Verdict {
    match store.decode(id, bytes) {
        Ok(decoded) => Verdict::Valid(Box::new(decoded)),
        Err(DecodeError::NewerVersion { .. }) => Verdict::Newer(stamp_of(bytes).unwrap_or_default()),
        Err(e) => Verdict::Damaged(e),
    }
}

/// A decode problem for logs and reports: `DecodeError`'s `Display` never carries a
/// value from the document (patient data) and escapes control characters.
pub(crate) fn loggable(e: &DecodeError) -> String {
    e.to_string()
}
