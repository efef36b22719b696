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

/// Durably saves a session (replacing any copy that is not from a newer build),
/// recording the new revision in it. Saves of one id coalesce: a save overtaken by a
/// later one returns [`SaveOutcome::Superseded`] once the later one is durable.
pub fn save(store: &Store, session: &mut Session) -> Result<SaveOutcome, StoreError> {
    let id = session.id.clone();
    let outcome = store.save_over(&id, |existing, stamp| -> Result<Vec<u8>, StoreError> {
        refuse_newer(store, &id, existing)?;
        Ok(stamp_and_encode(session, stamp)?)
    });
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
pub fn delete(store: &Store, id: &SessionId) -> Result<bool, StoreError> {
    let mut guard = store.lock(id)?;
    refuse_newer(store, id, guard.read()?.as_deref())?;
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
    let mut guard = store.lock(id)?;
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
