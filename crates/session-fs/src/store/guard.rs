//! [`SessionGuard`]: one session locked, and what only a lock holder may do with it.

use super::*;

/// How a lock file's name ends: `.locks/<id>.lock`.
const LOCK_SUFFIX: &str = ".lock";

/// One session locked against every other handle and process (see [`Store::lock`]).
pub struct SessionGuard<'a> {
    pub(super) store: &'a Store,
    pub(super) id: SessionId,
    pub(super) id_lock: IdLock<'a>,
    pub(super) _file_lock: Box<dyn HeldLock>,
    /// What the live file held when last read or written under this lock.
    pub(super) known: Option<Existing>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Existing {
    Missing,
    Damaged,
    Revision(u64),
    /// Damaged, and already kept in quarantine by this guard (its revision, 0 if none).
    Kept(u64),
}

impl Existing {
    pub(super) fn of(bytes: Option<&[u8]>) -> Self {
        match bytes {
            None => Existing::Missing,
            Some(bytes) => stamp_of(bytes).map_or(Existing::Damaged, |s| Existing::Revision(s.revision)),
        }
    }
}

impl Store {
    /// Locks one session against every other handle and process, for a
    /// read-modify-write. Blocks until the lock is free.
    pub fn lock(&self, id: &SessionId) -> Result<SessionGuard<'_>, FsError> {
        self.writable()?;
        self.lock_across_processes(id, self.inner.locks.lock(id))
    }

    /// [`Store::lock`], but only when the session exists: `Ok(None)` otherwise, and
    /// then no lock file is left behind for an id that was never stored.
    pub fn lock_existing(&self, id: &SessionId) -> Result<Option<SessionGuard<'_>>, FsError> {
        self.writable()?;
        if self
            .storage()
            .kind(&self.path_of(id))
            .map_err(FsError::io(Step::Read, self.path_of(id)))?
            .is_none()
        {
            return Ok(None);
        }
        let mut guard = self.lock(id)?;
        // Deleted while we waited: the guard goes, and the lock file with it.
        if guard.read_kind()?.is_none() {
            guard.known = Some(Existing::Missing);
            return Ok(None);
        }
        Ok(Some(guard))
    }

    pub(super) fn lock_across_processes<'a>(
        &'a self,
        id: &SessionId,
        id_lock: IdLock<'a>,
    ) -> Result<SessionGuard<'a>, FsError> {
        let path = self.lock_path(id)?;
        let file_lock = self
            .storage()
            .lock(&path, LockMode::Exclusive, true)
            .map_err(FsError::io(Step::Lock, &path))?
            .ok_or(FsError::Busy {
                dir: self.inner.dir.clone(),
            })?;
        Ok(SessionGuard {
            store: self,
            id: id.clone(),
            id_lock,
            _file_lock: file_lock,
            known: None,
        })
    }

    /// Removes the lock files of ids that have no session: those a crash left between
    /// a session's deletion and its lock file's, and those versions that kept every
    /// lock file left behind. Each goes as a deleting guard's does, under its own
    /// lock and after the session is seen missing under it, so a locker waiting on it
    /// moves to the name's next file. Waits for a holder of such an id. The ids whose
    /// lock file went, sorted. An id that fails (its lock file swapped for a symlink
    /// meanwhile, an I/O error) is left for the next sweep: the first is logged by
    /// name, any more as one count. Only a `.locks/` that cannot be listed fails the
    /// sweep.
    pub(crate) fn sweep_orphan_locks(&self) -> Result<Vec<SessionId>, FsError> {
        self.writable()?;
        let mut swept = Vec::new();
        let mut unswept = 0usize;
        for id in self.ids_in_area(layout::LOCKS_DIR, LOCK_SUFFIX)? {
            match self.sweep_orphan_lock(&id) {
                Ok(true) => swept.push(id),
                Ok(false) => {}
                // A failure that hits every id (a disk returning EIO, `.locks/` swapped
                // after the listing) would otherwise log once per orphan: the first is
                // named, the rest counted.
                Err(e) => {
                    unswept += 1;
                    if unswept == 1 {
                        tracing::warn!(
                            file = %format!("{}/{id}{LOCK_SUFFIX}", layout::LOCKS_DIR),
                            error = %e,
                            "could not sweep a lock file; it stays until the next sweep"
                        );
                    }
                }
            }
        }
        if unswept > 1 {
            tracing::warn!(
                more = unswept - 1,
                "could not sweep more lock files (the first is logged above); they stay until the next sweep"
            );
        }
        Ok(swept)
    }

    /// Removes `id`'s lock file when `id` has no session: whether it went.
    fn sweep_orphan_lock(&self, id: &SessionId) -> Result<bool, FsError> {
        if self
            .storage()
            .kind(&self.path_of(id))
            .map_err(FsError::io(Step::Read, self.path_of(id)))?
            .is_some()
        {
            return Ok(false);
        }
        let mut guard = self.lock(id)?;
        if guard.read_kind()?.is_some() {
            // Stored while we waited for its lock.
            return Ok(false);
        }
        guard.known = Some(Existing::Missing);
        drop(guard);
        let path = self.lock_path(id)?;
        Ok(self
            .storage()
            .kind(&path)
            .map_err(FsError::io(Step::Lock, &path))?
            .is_none())
    }

    /// `.locks/<id>.lock`: the file whose lock guards `id` across processes. It lives
    /// as long as the session: a guard that leaves the session missing removes it
    /// before letting the lock go.
    pub(crate) fn lock_path(&self, id: &SessionId) -> Result<PathBuf, FsError> {
        Ok(self
            .area_path(layout::LOCKS_DIR)?
            .join(format!("{id}{LOCK_SUFFIX}")))
    }
}

impl Drop for SessionGuard<'_> {
    /// A session this guard left missing (deleted, or never there) takes its lock file
    /// with it, before the lock goes: otherwise one file per session ever stored would
    /// stay in `.locks/` for good. Whoever waits on the removed file locks the name's
    /// next one instead (see [`Storage::remove_held_lock`]). Nothing is done after the
    /// removal, which is what makes it safe; a removal that fails leaves the file, as
    /// before.
    fn drop(&mut self) {
        if matches!(self.known, Some(Existing::Missing))
            && let Ok(path) = self.store.lock_path(&self.id)
        {
            let _ = self.store.storage().remove_held_lock(&path);
        }
    }
}

impl SessionGuard<'_> {
    /// The locked session's id.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// Reads the locked session's current bytes.
    pub fn read(&mut self) -> Result<Option<Vec<u8>>, FsError> {
        let bytes = self.store.read(&self.id)?;
        self.known = Some(Existing::of(bytes.as_deref()));
        Ok(bytes)
    }

    /// Whether the live name exists, and what it is, without reading it.
    pub(super) fn read_kind(&self) -> Result<Option<EntryKind>, FsError> {
        let live = self.store.path_of(&self.id);
        self.store
            .storage()
            .kind(&live)
            .map_err(FsError::io(Step::Read, &live))
    }

    /// Keeps the live file durably in `.quarantine/` under a second name (no copy), with
    /// a sidecar giving `reason`, before it is replaced: what a save over a damaged file
    /// does first. Once per guard; a missing file needs nothing.
    pub fn keep_damaged(&mut self, reason: &str) -> Result<(), FsError> {
        if matches!(self.known, Some(Existing::Kept(_))) || self.read_kind()?.is_none() {
            return Ok(());
        }
        let store = self.store;
        let live = store.path_of(&self.id);
        let name = OsString::from(self.id.file_name());
        let sidecar = crate::maintenance::quarantine_note(
            &self.id.file_name(),
            &format!("replaced by a save while damaged: {reason}"),
            QUARANTINED_BY,
        );
        store
            .storage()
            .set_mode(&live, 0o600)
            .map_err(FsError::io(Step::Chmod, &live))?;
        let (area_dir, kept) = store.aside_target(Aside::Quarantine, &name, Some(&sidecar))?;
        store
            .storage()
            .hard_link(&live, &kept)
            .map_err(FsError::io(Step::Link, &kept))?;
        store.sync_dir(&area_dir)?;
        let revision = match self.known {
            Some(Existing::Revision(rev)) => rev,
            _ => 0,
        };
        self.known = Some(Existing::Kept(revision));
        Ok(())
    }

    /// Moves the locked session into `.quarantine/` (not the trash, which retention
    /// empties) with a sidecar giving `reason`: how a delete treats a damaged file.
    pub fn quarantine(&mut self, reason: &str) -> Result<bool, FsError> {
        let name = OsString::from(self.id.file_name());
        let sidecar = crate::maintenance::quarantine_note(
            &self.id.file_name(),
            &format!("deleted while damaged: {reason}"),
            QUARANTINED_BY,
        );
        match self.store.move_aside(&name, Aside::Quarantine, Some(&sidecar)) {
            Ok(_) => {
                self.known = Some(Existing::Missing);
                Ok(true)
            }
            Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Durably replaces the locked session (see [`Store::save`]).
    pub fn save<E>(
        &mut self,
        encode: impl FnOnce(SaveStamp) -> Result<Vec<u8>, E>,
    ) -> Result<SaveStamp, FsError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let store = self.store;
        let live = store.path_of(&self.id);
        let existing = match self.known {
            Some(known) => known,
            None => Existing::of(store.read(&self.id)?.as_deref()),
        };
        let stamp = SaveStamp {
            revision: match existing {
                Existing::Revision(rev) | Existing::Kept(rev) => rev + 1,
                Existing::Missing | Existing::Damaged => 1,
            },
            saved_at: store.stamp_ms(),
        };
        let bytes = encode(stamp).map_err(|e| FsError::Encode {
            id: self.id.clone(),
            source: e.into(),
        })?;
        if let Existing::Damaged = existing {
            // The file being replaced is not even JSON: keep it (a second name costs nothing).
            self.keep_damaged("not a JSON object with a readable _metadata")?;
        }
        let temp = store.write_temp(&self.id, &bytes)?;
        if let Err(e) = store.storage().rename(&temp, &live) {
            store.discard_temp_durably(&temp);
            return Err(FsError::io(Step::Rename, &live)(e));
        }
        self.known = Some(Existing::Revision(stamp.revision));
        let dir = &store.inner.dir;
        store.inner.dir_commit.commit(|| store.sync_dir(dir))?;
        Ok(stamp)
    }

    /// Keeps the locked session's current file, durably, as `.backup/<run>/<id>.json`
    /// (a second name: no copy). Later saves replace the live name with a new file, so
    /// the backup keeps the original bytes.
    pub fn keep_backup(&mut self, run: &BackupRun) -> Result<(), FsError> {
        let store = self.store;
        store.writable()?;
        let live = store.path_of(&self.id);
        // The backup is a second name of the same inode: the app wrote its files 0644,
        // and a copy of patient data kept for weeks must be 0600 like everything else.
        store
            .storage()
            .set_mode(&live, 0o600)
            .map_err(FsError::io(Step::Chmod, &live))?;
        let mut ready = store.ready_backup_run(run)?;
        let linked = |run_dir: &Path| {
            let target = run_dir.join(self.id.file_name());
            match store.storage().hard_link(&live, &target) {
                // Kept already by this run (a rerun after a crash): the first copy is the original.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other.map_err(FsError::io(Step::Link, &target)),
            }
        };
        match linked(&ready.dir) {
            // The run's directory went away since this handle made it (removed by hand):
            // made again, durably, once.
            Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                store.forget_backup_run(run);
                ready = store.ready_backup_run(run)?;
                linked(&ready.dir)?;
            }
            other => other?,
        }
        ready.commit.commit(|| store.sync_dir(&ready.dir))
    }

    /// Puts `.backup/<run>/<id>.json` back as the live file, durably; the copy it
    /// replaces goes to the trash. `Ok(false)` when the run holds no copy of this id.
    pub fn restore_backup(&mut self, run: &BackupRun) -> Result<bool, FsError> {
        let run = run.as_str();
        let store = self.store;
        let backup = store.backup_dir(run)?.join(self.id.file_name());
        if store.read_path(&backup)?.is_none() {
            return Ok(false);
        }
        self.delete()?;
        store
            .storage()
            .rename(&backup, &store.path_of(&self.id))
            .map_err(FsError::io(Step::Rename, &backup))?;
        self.known = None;
        let live = store.path_of(&self.id);
        store
            .storage()
            .set_mode(&live, 0o600)
            .map_err(FsError::io(Step::Chmod, &live))?;
        store.sync_dir(&store.inner.dir)?;
        store.sync_dir(&store.backup_dir(run)?)?;
        Ok(true)
    }

    /// Moves the locked session to the trash, durably; `Ok(false)` when it did not exist.
    pub fn delete(&mut self) -> Result<bool, FsError> {
        let name = OsString::from(self.id.file_name());
        match self.store.move_aside(&name, Aside::Trash, None) {
            Ok(_) => {
                self.known = Some(Existing::Missing);
                Ok(true)
            }
            Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                self.known = Some(Existing::Missing);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}
