//! [`SessionStore`]: the typed store, the one way other crates keep sessions.
//!
//! `session-fs` stores bytes and knows no versions; the handle puts the codec on top,
//! with its options fixed once (retention for legacy files), so that every load decodes
//! alike and every save goes through [`encode`](crate::encode) and records the revision
//! and time that the store hands out.

use std::path::PathBuf;

use session_fs::{FsError, SaveOutcome, SaveStamp, Store};
use session_model::{Session, SessionId, TransitionError};

use std::marker::PhantomData;

use session_migrate::{
    Chained, Current, DecodeError, DecodeOptions, Document, EncodeError, MigrateOptions, MigrateReport,
    RollbackError, RollbackOptions, RollbackReport, Schema, Upgrade, decode_as, decode_stored_as,
    stamp_and_encode,
};

/// What can go wrong loading or saving a typed session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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

impl StoreError {
    /// Whether the failure is a file written by a newer build (left untouched): the one
    /// test for it, whichever call met the file (`load` and `entries` meet it decoding,
    /// `save`, `update` and `delete` refusing to touch it).
    pub fn is_newer_version(&self) -> bool {
        match self {
            StoreError::NewerOnDisk { .. } => true,
            StoreError::Decode { source, .. } => source.is_newer_version(),
            _ => false,
        }
    }
}

/// A store of typed sessions: `session-fs`'s [`Store`] and the decode options, fixed
/// once so that no path can forget them. Cheap to clone; clones share locks.
///
/// ```
/// use session_store::{DecodeOptions, SessionStore, decode};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = SessionStore::open(dir.path(), DecodeOptions::default().retention_days(90)).unwrap();
/// let mut session = decode(br#"{"id": "s-1", "startTime": 1000, "isComplete": true}"#).unwrap().session;
/// store.save(&mut session).unwrap();
/// let loaded = store.load(&session.id).unwrap().unwrap();
/// assert_eq!(loaded.session.metadata.revision, 1);
/// assert_eq!(store.entries().unwrap().count(), 1);
/// ```
///
/// A store is typed by its [`Schema`]: this build's chain ([`Current`], the default)
/// unless a team declares its own with [`schema_chain!`](session_migrate::schema_chain).
pub struct SessionStore<S: Schema = Current> {
    fs: Store,
    options: DecodeOptions,
    schema: PhantomData<fn() -> S>,
}

impl<S: Schema> Clone for SessionStore<S> {
    fn clone(&self) -> Self {
        SessionStore {
            fs: self.fs.clone(),
            options: self.options,
            schema: PhantomData,
        }
    }
}

impl<S: Schema> std::fmt::Debug for SessionStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("fs", &self.fs)
            .field("options", &self.options)
            .finish()
    }
}

/// One live file of the store, already sorted (see [`SessionStore::entries`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum StoredEntry<D = Session> {
    /// A session this build reads, upgraded to the current version.
    Valid(Box<Chained<D>>),
    /// Written by a newer build: never rewritten, moved or deleted.
    Newer {
        /// The session's id (its file name).
        id: SessionId,
        /// The version it declares.
        version: String,
        /// Its bytes, exactly as on disk.
        document: Vec<u8>,
    },
    /// Does not decode, or could not be read: recovery's business.
    Damaged {
        /// The session's id (its file name).
        id: SessionId,
        /// Why.
        error: StoreError,
    },
}

impl<D: Document> StoredEntry<D> {
    /// The id of the file.
    pub fn id(&self) -> &SessionId {
        match self {
            StoredEntry::Valid(decoded) => decoded.session.id(),
            StoredEntry::Newer { id, .. } | StoredEntry::Damaged { id, .. } => id,
        }
    }
}

/// What [`SessionStore::apply_retention`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RetentionApplied {
    /// Sessions given the retention.
    pub changed: usize,
    /// Sessions that kept theirs (a damaged file, a newer build's, one deleted
    /// meanwhile), each with why.
    pub skipped: Vec<(SessionId, StoreError)>,
}

impl SessionStore<Current> {
    /// Gives every stored session `retention_days` from its start, as if it had been
    /// stored under it ([`Session::retain_for`]), each in a locked update. A changed
    /// retention otherwise applies only to sessions stored from then on: this is an
    /// operator's explicit choice for the rest. `saved` hears of each session as it was
    /// saved, or of why it was not (a daemon's index takes in the change).
    pub fn apply_retention(
        &self,
        retention_days: u32,
        mut saved: impl FnMut(&SessionId, Result<&Session, &StoreError>),
    ) -> Result<RetentionApplied, StoreError> {
        let mut applied = RetentionApplied::default();
        for id in self.fs.maintenance().scan()?.live {
            let result = self
                .update(&id, |session| {
                    session.retain_for(retention_days);
                    Ok(())
                })
                .map(|((), session)| session);
            saved(&id, result.as_ref());
            match result {
                Ok(_) => applied.changed += 1,
                Err(e) => applied.skipped.push((id, e)),
            }
        }
        Ok(applied)
    }

    /// A typed handle on an open `session-fs` store, with this build's schema.
    pub fn new(fs: Store, options: DecodeOptions) -> Self {
        Self::with_schema(fs, options)
    }

    /// Opens (creating if needed) the store at `dir`, shared with other handles.
    pub fn open(dir: impl Into<std::path::PathBuf>, options: DecodeOptions) -> Result<Self, StoreError> {
        Ok(Self::new(Store::open(dir)?, options))
    }

    /// [`create`](Self::create) for a session too large to hold in memory (a long
    /// capture folded from its journal): `envelope` is the session without elements,
    /// `elements` yields them one at a time, and the file is written as they come
    /// ([`encode_streamed`](session_migrate::encode_streamed)). Fails with
    /// [`FsError::AlreadyExists`] if the id is taken.
    pub fn create_streamed<E>(
        &self,
        envelope: &mut Session,
        elements: impl IntoIterator<Item = Result<session_model::Element, E>>,
    ) -> Result<SaveStamp, StoreError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let id = envelope.id.clone();
        Ok(self.fs.create_streamed(&id, |stamp, out| {
            envelope.stamp(stamp.revision, stamp.saved_at);
            session_migrate::encode_streamed(envelope, elements, out)
        })?)
    }
}

impl<S: Schema> SessionStore<S> {
    /// A typed handle with a schema of its own (`SessionStore::<MySchema>::with_schema`).
    pub fn with_schema(fs: Store, options: DecodeOptions) -> Self {
        SessionStore {
            fs,
            options,
            schema: PhantomData,
        }
    }

    /// The byte layer, for what only it does (locks, state files, maintenance).
    pub fn fs(&self) -> &Store {
        &self.fs
    }

    /// The decode options every load applies.
    pub fn options(&self) -> &DecodeOptions {
        &self.options
    }

    /// Decodes `bytes` stored as `id` with this store's options.
    pub fn decode(&self, id: &SessionId, bytes: &[u8]) -> Result<Chained<S::Document>, DecodeError> {
        decode_stored_as::<S>(id, bytes, &self.options)
    }

    fn decode_error(&self, id: &SessionId) -> impl FnOnce(DecodeError) -> StoreError + '_ {
        let path = self.fs.path_of(id);
        move |source| StoreError::Decode { path, source }
    }

    /// Reads and decodes one session; `Ok(None)` when it does not exist.
    pub fn load(&self, id: &SessionId) -> Result<Option<Chained<S::Document>>, StoreError> {
        let Some(bytes) = self.fs.read(id)? else {
            return Ok(None);
        };
        self.decode(id, &bytes).map(Some).map_err(self.decode_error(id))
    }

    /// Every live session, sorted into valid, newer-version and damaged, one file at a
    /// time (the store is never held in memory at once). Ids in file-name order.
    pub fn entries(&self) -> Result<impl Iterator<Item = StoredEntry<S::Document>> + '_, StoreError> {
        Ok(self.entries_of(self.fs.list()?))
    }

    /// [`entries`](Self::entries) for these ids, in this order (a listing in an order
    /// of its own: sort the ids, not the sessions, and nothing but the ids is held).
    /// An id with no live file is left out.
    pub fn entries_of<'a>(
        &'a self,
        ids: impl IntoIterator<Item = SessionId, IntoIter: 'a>,
    ) -> impl Iterator<Item = StoredEntry<S::Document>> + 'a {
        ids.into_iter().filter_map(move |id| match self.load(&id) {
            Ok(Some(decoded)) => Some(StoredEntry::Valid(Box::new(decoded))),
            Ok(None) => None, // deleted since the listing
            Err(StoreError::Decode {
                source: DecodeError::NewerVersion { version, document },
                ..
            }) => Some(StoredEntry::Newer {
                id,
                version,
                document,
            }),
            Err(error) => Some(StoredEntry::Damaged { id, error }),
        })
    }

    /// Refuses to touch a file that a newer build wrote.
    fn refuse_newer(&self, id: &SessionId, bytes: Option<&[u8]>) -> Result<(), StoreError> {
        let Some(bytes) = bytes else { return Ok(()) };
        // Only a version other than the current one can be newer; decoding tells for sure.
        let declared = session_migrate::declared(bytes).ok().flatten();
        if declared.is_none_or(|v| v == <S::Document as session_model::Version>::NAME) {
            return Ok(());
        }
        match decode_as::<S>(bytes, &self.options) {
            Err(DecodeError::NewerVersion { version, .. }) => Err(StoreError::NewerOnDisk {
                path: self.fs.path_of(id),
                version,
            }),
            _ => Ok(()),
        }
    }

    /// Why `bytes` stored as `id` are damaged (they do not decode); `None` when they are
    /// a session this build reads, or one a newer build wrote.
    fn damage_of(&self, id: &SessionId, bytes: &[u8]) -> Option<String> {
        match self.decode(id, bytes) {
            Ok(_) | Err(DecodeError::NewerVersion { .. }) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Durably saves a session (replacing any copy that is not from a newer build),
    /// recording the new revision in it. Saves of one id coalesce: a save overtaken by a
    /// later one returns [`SaveOutcome::Superseded`] once the later one is durable.
    ///
    /// When a copy is stored already, its delivery state wins over the document's own:
    /// saving the same content again never undoes a delivery or changes its idempotency
    /// key; changed content is pending again, with the earlier delivery on record. A
    /// stored copy that does not decode is first kept in `.quarantine/`, never destroyed.
    pub fn save(&self, session: &mut S::Document) -> Result<SaveOutcome, StoreError> {
        let id = session.id().clone();
        let outcome = self.fs.save_judging(
            &id,
            |existing| self.damage_of(&id, existing),
            |existing, stamp| -> Result<Vec<u8>, StoreError> {
                self.refuse_newer(&id, existing)?;
                if let Some(Ok(stored)) = existing.map(|bytes| self.decode(&id, bytes)) {
                    carry_delivery_state(&stored.session, session);
                }
                Ok(stamp_and_encode::<S>(session, stamp)?)
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

    /// Durably creates a session; fails with [`FsError::AlreadyExists`] if the id is taken.
    pub fn create(&self, session: &mut S::Document) -> Result<SaveStamp, StoreError> {
        let id = session.id().clone();
        Ok(self
            .fs
            .create(&id, |stamp| stamp_and_encode::<S>(session, stamp))?)
    }

    /// Locked read-modify-write of one session, safe against other threads and processes.
    ///
    /// `change` sees the current copy; when it returns `Err`, nothing is written. Files
    /// of a newer version fail to decode and are therefore never rewritten.
    pub fn update<T>(
        &self,
        id: &SessionId,
        change: impl FnOnce(&mut S::Document) -> Result<T, StoreError>,
    ) -> Result<(T, S::Document), StoreError> {
        let mut guard = self
            .fs
            .lock_existing(id)?
            .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
        let bytes = guard
            .read()?
            .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
        let mut session = self.decode(id, &bytes).map_err(self.decode_error(id))?.session;
        let result = change(&mut session)?;
        guard.save(|stamp| stamp_and_encode::<S>(&mut session, stamp))?;
        Ok((result, session))
    }

    /// Sends `id` again: back to pending, attempts reset, as `Submission::retry` allows
    /// (refused with [`StoreError::Transition`] otherwise). Locked like any update; the
    /// session as saved is returned. The one way the CLI and the API retry.
    pub fn retry(&self, id: &SessionId) -> Result<S::Document, StoreError> {
        self.update(id, |s| s.submission_mut().retry().map_err(refused(id)))
            .map(|((), saved)| saved)
    }

    /// Never sends `id`, as `Submission::ignore` allows (refused with
    /// [`StoreError::Transition`] otherwise). The one way the CLI and the API ignore.
    pub fn ignore(&self, id: &SessionId) -> Result<S::Document, StoreError> {
        self.update(id, |s| s.submission_mut().ignore().map_err(refused(id)))
            .map(|((), saved)| saved)
    }

    /// Moves a session to the trash (unless a newer build wrote it); `Ok(false)` when
    /// missing. A damaged file (one that does not decode, or is too large to read) goes
    /// to `.quarantine/` with the reason instead: the trash is emptied by retention, the
    /// quarantine never.
    pub fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let Some(mut guard) = self.fs.lock_existing(id)? else {
            return Ok(false);
        };
        let bytes = match guard.read() {
            Ok(bytes) => bytes,
            Err(e @ FsError::TooLarge { .. }) => return Ok(guard.quarantine(&e.to_string())?),
            Err(e) => return Err(e.into()),
        };
        self.refuse_newer(id, bytes.as_deref())?;
        if let Some(reason) = bytes.as_deref().and_then(|b| self.damage_of(id, b)) {
            return Ok(guard.quarantine(&reason)?);
        }
        Ok(guard.delete()?)
    }
}

/// Carries the stored copy's delivery state over to a new copy of the same session.
///
/// The store, not the document's author, knows what was delivered: a save whose
/// deliverable content is unchanged keeps the stored submission (status, attempts,
/// key); a save that changes the content makes it pending again under the new
/// content's key, keeping a record of any earlier delivery.
fn carry_delivery_state<D: Document>(stored: &D, incoming: &mut D) {
    use session_model::SubmissionStatus::{Failed, Pending};
    let mut submission = stored.submission().clone();
    if !stored.same_delivery_content(incoming) {
        submission.content_changed();
    } else if matches!(submission.status, Pending | Failed) && incoming.submission().status.is_settled() {
        // The document's author settled what the store has not sent (the app delivered
        // it itself, or an operator ignored it there): sending it now would duplicate.
        let key = submission.idempotency_key.take();
        submission = incoming.submission().clone();
        submission.idempotency_key = submission.idempotency_key.take().or(key);
    }
    *incoming.submission_mut() = submission;
}

impl<S: Schema> SessionStore<S> {
    /// Upgrades every outdated live session to the current version, in parallel, with
    /// this store's decode options ([`session_migrate::migrate_store`]): originals kept
    /// durably in `.backup/<run>/` first, every file either fully old or fully new after
    /// a kill. `progress(done, total)` is called after each file.
    pub fn migrate(
        &self,
        options: &MigrateOptions,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<MigrateReport, FsError> {
        session_migrate::migrate_store::<S>(&self.fs, &self.options, options, progress)
    }

    /// A migration run fed file by file ([`session_migrate::Upgrade`]), with this
    /// store's decode options: for a caller that reads every file anyway (start-up's
    /// recovery hands it each outdated session it decoded, so nothing is decoded twice).
    pub fn upgrade(&self) -> Upgrade<'_, S> {
        Upgrade::new(&self.fs, &self.options)
    }

    /// Restores the files a migration run changed, where that loses nothing
    /// ([`session_migrate::rollback_store`]). Needs an exclusive store handle.
    pub fn rollback(&self, options: &RollbackOptions) -> Result<RollbackReport, RollbackError> {
        session_migrate::rollback_store::<S>(&self.fs, &self.options, options)
    }
}

/// Wraps a refused transition of `id` for [`SessionStore::update`]'s closure.
pub fn refused(id: &SessionId) -> impl FnOnce(TransitionError) -> StoreError + '_ {
    move |source| StoreError::Transition {
        id: id.clone(),
        source,
    }
}
