//! How a store is opened: [`OpenOptions`].

use super::*;

/// Options for [`Store::options`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// `None`: the real filesystem, through one handle on the store directory.
    storage: Option<Arc<dyn Storage>>,
    access: Access,
    wait: bool,
    max_file_size: u64,
    clock: Arc<dyn Clock>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            storage: None,
            access: Access::Shared,
            wait: true,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            clock: Arc::new(SystemClock),
        }
    }
}

impl OpenOptions {
    /// Uses another [`Storage`] (tests inject failures or simulate power loss).
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Asks for the store to itself (recovery needs this).
    pub fn exclusive(mut self) -> Self {
        self.access = Access::Exclusive;
        self
    }

    /// Only reads: opening fails with [`FsError::NoStore`] when the directory does not
    /// exist, and creates nothing; every write through the handle fails with
    /// [`FsError::ReadOnly`].
    pub fn read_only(mut self) -> Self {
        self.access = Access::ReadOnly;
        self
    }

    /// Fails with [`FsError::Busy`] instead of waiting for other handles.
    pub fn no_wait(mut self) -> Self {
        self.wait = false;
        self
    }

    /// The clock the store stamps saves and moves with, and judges ([`Store::check_clock`])
    /// ([`SystemClock`] unless set: tests jump a [`ManualClock`](crate::clock::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Largest file [`Store::read`] accepts, and the most a journal may grow to
    /// ([`DEFAULT_MAX_FILE_SIZE`] unless set).
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// Creates the directory (0700) and its dot-directories if needed, and opens it
    /// (a read-only handle creates nothing). A dot-directory that is a symlink or not a
    /// directory is refused, never followed.
    pub fn open(self, dir: impl Into<PathBuf>) -> Result<Store, FsError> {
        let dir = dir.into();
        let given = self.storage;
        // Until the directory exists there is no handle to work through.
        let outside: &dyn Storage = given.as_deref().unwrap_or(&OsStorage);
        let top = outside.kind(&dir).map_err(FsError::io(Step::Open, &dir))?;
        if self.access == Access::ReadOnly {
            // The top directory may be a symlink the operator made; it must lead to a directory.
            if top.is_none() || !dir.is_dir() {
                return Err(FsError::NoStore { dir });
            }
        } else if top.is_none() {
            outside
                .create_dir(&dir)
                .map_err(FsError::io(Step::CreateDir, &dir))?;
        }
        let storage: Arc<dyn Storage> = match given {
            Some(storage) => storage,
            None => Arc::new(RootedStorage::open(&dir).map_err(FsError::io(Step::Open, &dir))?),
        };
        for sub in layout::AREA_DIRS {
            let path = dir.join(sub);
            let created = [layout::LOCKS_DIR, layout::TRASH_DIR, layout::QUARANTINE_DIR].contains(&sub);
            if created && self.access != Access::ReadOnly {
                storage
                    .create_dir(&path)
                    .map_err(FsError::io(Step::CreateDir, &path))?;
            } else {
                check_area_dir(&*storage, &path)?;
            }
        }
        let lock_path = dir.join(layout::STORE_LOCK);
        let mode = match self.access {
            Access::Shared | Access::ReadOnly => LockMode::Shared,
            Access::Exclusive => LockMode::Exclusive,
        };
        let lock_exists = storage
            .kind(&lock_path)
            .map_err(FsError::io(Step::Lock, &lock_path))?
            .is_some();
        let store_lock = if self.access == Access::ReadOnly && !lock_exists {
            // A store no writer ever opened: nothing to wait for, and nothing to create.
            None
        } else {
            Some(
                storage
                    .lock(&lock_path, mode, self.wait)
                    .map_err(FsError::io(Step::Lock, &lock_path))?
                    .ok_or_else(|| FsError::Busy { dir: dir.clone() })?,
            )
        };
        Ok(Store {
            inner: Arc::new(Inner {
                dir,
                storage,
                access: self.access,
                max_file_size: self.max_file_size,
                clock: ClockKeeper::new(self.clock),
                locks: LockTable::default(),
                dir_commit: GroupCommit::default(),
                journal_commit: GroupCommit::default(),
                spares: crate::journal::Spares::default(),
                backup_runs: Default::default(),
                _store_lock: store_lock,
            }),
        })
    }
}
