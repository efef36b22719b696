//! The store's own areas: the trash, the quarantine and migration backups, and how a
//! file is moved into them.

use super::*;

/// The backup runs a handle has made durable, each with its directory's group commit.
pub(super) type ReadyRuns = std::sync::Mutex<Vec<(BackupRun, Arc<GroupCommit>)>>;

/// A backup run's directory, durable, and the group commit of its fsyncs.
pub(super) struct ReadyRun {
    pub(super) dir: PathBuf,
    pub(super) commit: Arc<GroupCommit>,
}

impl Store {
    /// Moves a file of the store directory into the quarantine or the trash, with an
    /// optional sidecar (`<name>.why.json`) written durably before the move.
    pub(crate) fn move_aside(
        &self,
        name: &OsString,
        area: Aside,
        sidecar: Option<&[u8]>,
    ) -> Result<MovedFile, FsError> {
        self.move_aside_from(None, name, area, sidecar)
    }

    /// [`Self::move_aside`] from one of the store's own areas (`.journal/`) instead of
    /// the store directory.
    pub(crate) fn move_aside_from(
        &self,
        from_area: Option<&str>,
        name: &OsString,
        area: Aside,
        sidecar: Option<&[u8]>,
    ) -> Result<MovedFile, FsError> {
        self.writable()?;
        let name = &plain_name(name, Step::Rename)?.to_owned();
        let from_dir = match from_area {
            Some(sub) => self.area_path(sub)?,
            None => self.inner.dir.clone(),
        };
        let from = from_dir.join(name);
        // Whatever mode the app gave it, what the store keeps aside is 0600.
        self.storage()
            .set_mode(&from, 0o600)
            .map_err(FsError::io(Step::Chmod, &from))?;
        let (area_dir, to) = self.aside_target(area, name, sidecar)?;
        self.storage()
            .rename(&from, &to)
            .map_err(FsError::io(Step::Rename, &from))?;
        self.sync_dir(&area_dir)?;
        self.sync_dir(&from_dir)?;
        Ok(MovedFile { from, to })
    }

    /// Picks a fresh name in `area` for `name` and writes its sidecar, durably.
    pub(super) fn aside_target(
        &self,
        area: Aside,
        name: &OsString,
        sidecar: Option<&[u8]>,
    ) -> Result<(PathBuf, PathBuf), FsError> {
        let area_dir = self.area_path(match area {
            Aside::Quarantine => layout::QUARANTINE_DIR,
            Aside::Trash => layout::TRASH_DIR,
        })?;
        // The time prefix lets retention purge by age without reading files; a long
        // name is shortened so that the sidecar's name still fits.
        let prefix = format!("{}.{}.", self.stamp_ms(), self.unique());
        let target_name = layout::fitted_name(&prefix, &name.to_string_lossy(), "");
        let target_name = match sidecar {
            Some(sidecar) => {
                let sidecar_name =
                    layout::fitted_name(&prefix, &name.to_string_lossy(), layout::SIDECAR_SUFFIX);
                let target = sidecar_name
                    .strip_suffix(layout::SIDECAR_SUFFIX)
                    .unwrap_or(&target_name)
                    .to_owned();
                self.write_new_durable(&area_dir.join(sidecar_name), sidecar)?;
                target
            }
            None => target_name,
        };
        let to = area_dir.join(target_name);
        Ok((area_dir, to))
    }

    /// Renames a temp file over `id`'s live file (recovery's promotion), durably.
    /// Needs an exclusive handle.
    pub(crate) fn promote_temp(&self, temp: &OsString, id: &SessionId) -> Result<(), FsError> {
        self.writable()?;
        if self.inner.access != Access::Exclusive {
            return Err(FsError::NotExclusive);
        }
        let from = self.inner.dir.join(plain_name(temp, Step::Rename)?);
        self.storage()
            .rename(&from, &self.path_of(id))
            .map_err(FsError::io(Step::Rename, &from))?;
        self.sync_dir(&self.inner.dir)
    }

    /// The backup runs in `.backup/`, oldest first (names start with their time).
    pub(crate) fn backup_runs(&self) -> Result<Vec<String>, FsError> {
        let dir = self.area_path(layout::BACKUP_DIR)?;
        let mut runs: Vec<String> = match self.storage().list(&dir, false) {
            Ok(entries) => entries
                .into_iter()
                .filter(|e| e.kind == EntryKind::Dir)
                .filter_map(|e| e.name.into_string().ok())
                .filter(|name| layout::parse_backup_run(name).is_some())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(FsError::io(Step::List, &dir)(e)),
        };
        runs.sort();
        Ok(runs)
    }

    /// The sessions kept by one backup run.
    pub(crate) fn backup_entries(&self, run: &str) -> Result<Vec<SessionId>, FsError> {
        let area = format!("{}/{run}", layout::BACKUP_DIR);
        let mut ids: Vec<SessionId> = self
            .list_area(&area)?
            .iter()
            .filter_map(|entry| match layout::classify(&entry.name) {
                EntryName::Live(id) => Some(id),
                _ => None,
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The bytes `.backup/<run>/<id>.json` keeps; `Ok(None)` when the run has none.
    pub(crate) fn read_backup(&self, run: &str, id: &SessionId) -> Result<Option<Vec<u8>>, FsError> {
        self.read_path(&self.backup_dir(run)?.join(id.file_name()))
    }

    /// A new backup run name: `<ms>-<unique>`, later than every existing run's, so that
    /// the names sort in the order the runs were made whatever the clock did (rollback
    /// undoes the last run by that order).
    pub(crate) fn new_backup_run(&self) -> String {
        let newest = self
            .backup_runs()
            .ok()
            .and_then(|runs| runs.last().and_then(|run| layout::parse_backup_run(run)));
        let at = self.stamp_ms().max(newest.map_or(0, |at| at.saturating_add(1)));
        format!("{at:013}-{}", self.unique())
    }

    /// `run`'s directory, made durable once per handle and run: the directory, its
    /// entry in `.backup/` and `.backup/`'s in the store directory. Each original kept
    /// in it then costs one fsync of the run's directory, shared by the threads keeping
    /// originals at the same moment (the run's group commit), where it cost two before.
    /// The lock is held while the directories are made, so that no thread links into a
    /// run whose entry is not yet durable.
    pub(super) fn ready_backup_run(&self, run: &BackupRun) -> Result<ReadyRun, FsError> {
        let dir = self.backup_dir(run.as_str())?;
        let mut ready = self
            .inner
            .backup_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, commit)) = ready.iter().find(|(made, _)| made == run) {
            return Ok(ReadyRun {
                dir,
                commit: commit.clone(),
            });
        }
        let backup_root = self.inner.dir.join(layout::BACKUP_DIR);
        for made in [&backup_root, &dir] {
            self.storage()
                .create_dir(made)
                .map_err(FsError::io(Step::CreateDir, made))?;
        }
        self.sync_dir(&backup_root)?;
        self.sync_dir(&self.inner.dir)?;
        let commit = Arc::new(GroupCommit::default());
        ready.push((run.clone(), commit.clone()));
        Ok(ReadyRun { dir, commit })
    }

    /// Syncs a directory of the store (its own, or one of its areas).
    pub(super) fn sync_dir(&self, dir: &Path) -> Result<(), FsError> {
        self.storage()
            .sync_dir(dir)
            .map_err(FsError::io(Step::SyncDir, dir))
    }

    /// Makes [`Self::ready_backup_run`] make `run`'s directory again.
    pub(super) fn forget_backup_run(&self, run: &BackupRun) {
        let mut ready = self
            .inner
            .backup_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        ready.retain(|(made, _)| made != run);
    }

    pub(super) fn backup_dir(&self, run: &str) -> Result<PathBuf, FsError> {
        if !own_name(run) {
            return Err(refused_name(Step::CreateDir, run, "not a backup run name"));
        }
        let run_dir = self.area_path(layout::BACKUP_DIR)?.join(run);
        check_area_dir(self.storage(), &run_dir)?;
        Ok(run_dir)
    }

    /// Files of a dot-directory (`.trash`, `.quarantine`, `.backup/<run>`...), with
    /// their sizes; symlinks skipped.
    pub(crate) fn list_area(&self, area: &str) -> Result<Vec<Entry>, FsError> {
        let dir = self.area_dir(area, false)?;
        match self.storage().list(&dir, true) {
            Ok(entries) => Ok(entries
                .into_iter()
                .filter(|e| e.kind == EntryKind::File)
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(FsError::io(Step::List, &dir)(e)),
        }
    }

    /// Removes a file from a dot-directory: how retention empties the trash. Live
    /// sessions cannot be removed this way (they go to the trash first).
    pub(crate) fn purge_area_entry(&self, area: &str, name: &OsString) -> Result<(), FsError> {
        self.writable()?;
        let dir = self.area_dir(area, true)?;
        let path = dir.join(plain_name(name, Step::Remove)?);
        self.storage()
            .remove_file(&path)
            .map_err(FsError::io(Step::Remove, &path))?;
        self.sync_dir(&dir)
    }

    /// The directory of a dot-area, refusing anything else: `.trash`, `.quarantine`,
    /// `.backup` or `.backup/<run>`. The quarantine is never purgeable.
    pub(super) fn area_dir(&self, area: &str, purging: bool) -> Result<PathBuf, FsError> {
        let allowed = match area.split_once('/') {
            None => {
                area == layout::TRASH_DIR
                    || area == layout::BACKUP_DIR
                    || (!purging && area == layout::QUARANTINE_DIR)
            }
            Some((root, run)) => root == layout::BACKUP_DIR && own_name(run),
        };
        if !allowed {
            return Err(refused_name(
                Step::List,
                area,
                "not a store area (.trash, .quarantine or .backup/<run>)",
            ));
        }
        match area.split_once('/') {
            None => self.area_path(area),
            Some((root, run)) => {
                let run_dir = self.area_path(root)?.join(run);
                check_area_dir(self.storage(), &run_dir)?;
                Ok(run_dir)
            }
        }
    }
}
