//! Typed sessions over `session-fs`: load, save, create and locked update.
//!
//! `session-fs` stores bytes and knows no versions; these functions put the codec on
//! top, so that every save goes through [`encode`](crate::encode) and records the
//! revision and time that the store hands out.

use std::path::PathBuf;

use session_fs::{FsError, SaveOutcome, SaveStamp, Store};
use session_model::{Session, SessionId, TransitionError};

use crate::codec::{DecodeError, DecodeOptions, Decoded, EncodeError, decode_stored, encode};
use crate::version::SchemaVersion;

/// What can go wrong loading or saving a typed session.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The filesystem layer failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// A file did not decode.
    #[error("{}: {source}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// The session does not exist.
    #[error("no session {id}")]
    NotFound {
        /// The id.
        id: SessionId,
    },
    /// The file on disk is from a newer build: it is never rewritten, moved or deleted.
    #[error("{}: version {version} is newer than this build understands; left untouched", path.display())]
    NewerOnDisk {
        /// The file.
        path: PathBuf,
        /// Its declared version.
        version: String,
    },
    /// The session could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The submission state machine refused the change.
    #[error("session {id}: {source}")]
    Transition {
        /// The id.
        id: SessionId,
        /// The refused transition.
        #[source]
        source: TransitionError,
    },
}

pub(crate) fn stamp_and_encode(session: &mut Session, stamp: SaveStamp) -> Result<Vec<u8>, EncodeError> {
    session.metadata.revision = stamp.revision;
    session.metadata.saved_at = stamp.saved_at;
    session.metadata.version = session_model::CURRENT_VERSION.to_owned();
    encode(session)
}

/// Reads and decodes one session; `Ok(None)` when it does not exist.
pub fn load(store: &Store, id: &SessionId, options: &DecodeOptions) -> Result<Option<Decoded>, StoreError> {
    let Some(bytes) = store.read(id)? else {
        return Ok(None);
    };
    decode_stored(id, &bytes, options)
        .map(Some)
        .map_err(|source| StoreError::Decode {
            path: store.path_of(id),
            source,
        })
}

/// Refuses to touch a file that a newer build wrote.
fn refuse_newer(store: &Store, id: &SessionId, bytes: Option<&[u8]>) -> Result<(), StoreError> {
    let Some(bytes) = bytes else { return Ok(()) };
    // Only a version other than the current one can be newer; decoding tells for sure.
    let declared = crate::codec::declared(bytes).ok().flatten();
    if declared.is_none_or(|v| v == SchemaVersion::CURRENT.as_str()) {
        return Ok(());
    }
    match crate::decode(bytes) {
        Err(DecodeError::NewerVersion { version, .. }) => Err(StoreError::NewerOnDisk {
            path: store.path_of(id),
            version,
        }),
        _ => Ok(()),
    }
}

/// Why `bytes` stored as `id` are damaged (they do not decode); `None` when they are a
/// session this build reads, or one a newer build wrote.
fn damage_of(id: &SessionId, bytes: &[u8]) -> Option<String> {
    match decode_stored(id, bytes, &DecodeOptions::default()) {
        Ok(_) | Err(DecodeError::NewerVersion { .. }) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// Carries the stored copy's delivery state over to a new copy of the same session.
///
/// The store, not the document's author, knows what was delivered: a save whose
/// deliverable content is unchanged keeps the stored submission (status, attempts,
/// key); a save that changes the content makes it pending again under the new
/// content's key, keeping a record of any earlier delivery.
fn carry_delivery_state(stored: &Session, incoming: &mut Session) {
    use session_model::SubmissionStatus::{Failed, Pending};
    let mut submission = stored.submission.clone();
    if !stored.same_delivery_content(incoming) {
        submission.content_changed();
    } else if matches!(submission.status, Pending | Failed) && incoming.submission.status.is_settled() {
        // The document's author settled what the store has not sent (the app delivered
        // it itself, or an operator ignored it there): sending it now would duplicate.
        let key = submission.idempotency_key.take();
        submission = incoming.submission.clone();
        submission.idempotency_key = submission.idempotency_key.take().or(key);
    }
    incoming.submission = submission;
}

/// Durably saves a session (replacing any copy that is not from a newer build),
/// recording the new revision in it. Saves of one id coalesce: a save overtaken by a
/// later one returns [`SaveOutcome::Superseded`] once the later one is durable.
///
/// When a copy is stored already, its delivery state wins over the document's own
/// (see the crate docs): saving the same session again never undoes a delivery or
/// changes its idempotency key. A stored copy that does not decode is first kept in
/// `.quarantine/`, never destroyed.
pub fn save(store: &Store, session: &mut Session) -> Result<SaveOutcome, StoreError> {
    let id = session.id.clone();
    let outcome = store.save_judging(
        &id,
        |existing| damage_of(&id, existing),
        |existing, stamp| -> Result<Vec<u8>, StoreError> {
            refuse_newer(store, &id, existing)?;
            if let Some(Ok(stored)) =
                existing.map(|bytes| decode_stored(&id, bytes, &DecodeOptions::default()))
            {
                carry_delivery_state(&stored.session, session);
            }
            Ok(stamp_and_encode(session, stamp)?)
        },
    );
    outcome.map_err(|e| match e {
        FsError::Encode { source, .. } => match source.downcast::<StoreError>() {
            Ok(refusal) => *refusal,
            Err(other) => StoreError::Fs(FsError::Encode {
                id: id.clone(),
                source: other,
            }),
        },
        other => StoreError::Fs(other),
    })
}

/// Moves a session to the trash (unless a newer build wrote it); `Ok(false)` when missing.
///
/// A damaged file (one that does not decode, or is too large to read) goes to
/// `.quarantine/` with the reason instead: the trash is emptied by retention, the
/// quarantine never.
pub fn delete(store: &Store, id: &SessionId) -> Result<bool, StoreError> {
    let Some(mut guard) = store.lock_existing(id)? else {
        return Ok(false);
    };
    let bytes = match guard.read() {
        Ok(bytes) => bytes,
        Err(e @ FsError::TooLarge { .. }) => return Ok(guard.quarantine(&e.to_string())?),
        Err(e) => return Err(e.into()),
    };
    refuse_newer(store, id, bytes.as_deref())?;
    if let Some(reason) = bytes.as_deref().and_then(|b| damage_of(id, b)) {
        return Ok(guard.quarantine(&reason)?);
    }
    Ok(guard.delete()?)
}

/// Durably creates a session; fails with [`FsError::AlreadyExists`] if the id is taken.
pub fn create(store: &Store, session: &mut Session) -> Result<SaveStamp, StoreError> {
    let id = session.id.clone();
    Ok(store.create(&id, |stamp| stamp_and_encode(session, stamp))?)
}

/// Locked read-modify-write of one session, safe against other threads and processes.
///
/// `change` sees the current copy; when it returns `Err`, nothing is written. Files of a
/// newer version fail to decode and are therefore never rewritten.
pub fn update<T>(
    store: &Store,
    id: &SessionId,
    options: &DecodeOptions,
    change: impl FnOnce(&mut Session) -> Result<T, StoreError>,
) -> Result<(T, Session), StoreError> {
    let mut guard = store
        .lock_existing(id)?
        .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
    let bytes = guard
        .read()?
        .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
    let mut session = decode_stored(id, &bytes, options)
        .map_err(|source| StoreError::Decode {
            path: store.path_of(id),
            source,
        })?
        .session;
    let result = change(&mut session)?;
    guard.save(|stamp| stamp_and_encode(&mut session, stamp))?;
    Ok((result, session))
}

/// Wraps a refused transition of `id` for [`update`]'s closure.
pub fn refused(id: &SessionId) -> impl FnOnce(TransitionError) -> StoreError + '_ {
    move |source| StoreError::Transition {
        id: id.clone(),
        source,
    }
}
