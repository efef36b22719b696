//! The recording, failing storage seam the store's and the journal's tests share.
#![allow(dead_code)] // each test binary uses part of it

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use session_fs::{Entry, EntryKind, HeldLock, LockMode, OsStorage, ReadOutcome, Storage, Store, WriteFile};

/// A storage that logs each call, then forwards it to the real filesystem, failing
/// the call named in `fail_at` (by its position in the log) with `fail_with`.
#[derive(Debug, Default)]
pub(crate) struct Recording {
    pub log: Mutex<Vec<String>>,
    pub fail_at: Option<(String, usize)>,
    pub fail_with: Option<i32>,
    /// When set, every `list` fails with this OS error (lists are not logged).
    pub fail_list: Option<i32>,
    /// When set, a foreign writer (the app, ignoring the store's locks) writes these
    /// bytes at a link's target just before the link is made.
    pub foreign_write_before_link: Option<Vec<u8>>,
    /// When set, the first `create` says so on `.0` and then waits for `.1`: a gate
    /// that holds the first write (and its lock) while the test lines others up.
    pub gate_first_create: Option<Mutex<(std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>)>>,
    /// When set, files preallocate as the real ones do (logged `preallocate NAME LEN`)
    /// and `sync_data` is logged as `fdatasync`; otherwise both take the trait's
    /// defaults (no preallocation, a full `fsync`).
    pub preallocating: bool,
    /// Run once, right after a spare (`.spare.*`) is reopened to be emptied in place
    /// and before anything is written through it: another process's moment.
    pub after_spare_reopen: Hook,
    /// When set, the file of this name is swapped for a symlink (to `/dev/null`) just
    /// before it is locked: a name changed between a listing and its lock.
    pub symlink_before_lock: Option<String>,
    /// When set, a held lock file is removed as the real storage removes it; otherwise
    /// the trait's default keeps every lock file.
    pub removes_held_locks: bool,
    /// When set, every lock on a session's lock file (`.locks/*`) fails with this OS
    /// error: a failure that hits every id alike.
    pub fail_lock_files_with: Option<i32>,
    /// Each `write_over_zeros`, as `(at, bytes' length, the bytes before)`, in order;
    /// the call itself is logged as a `write` and an `fdatasync`.
    pub overwrites: Mutex<Vec<(u64, u64, Vec<u8>)>>,
}

/// A step run once, at a chosen point of a storage call.
#[derive(Default)]
pub(crate) struct Hook(pub Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

struct RecordingFile {
    inner: Box<dyn WriteFile>,
    owner: Arc<Recording>,
    name: String,
}

impl Recording {
    fn call(&self, op: &str, path: &Path) -> io::Result<()> {
        let name = path.file_name().unwrap().to_string_lossy();
        let shown = if name.starts_with('.') && name.ends_with(".tmp") {
            "<temp>".to_owned()
        } else {
            name.into_owned()
        };
        let mut log = self.log.lock().unwrap();
        log.push(format!("{op} {shown}"));
        let count = log.iter().filter(|l| l.starts_with(&format!("{op} "))).count();
        match &self.fail_at {
            Some((fail_op, n)) if fail_op == op && *n == count => Err(io::Error::from_raw_os_error(
                self.fail_with.unwrap_or(libc_enospc()),
            )),
            _ => Ok(()),
        }
    }
}

pub(crate) fn libc_enospc() -> i32 {
    28
}

#[derive(Debug, Clone)]
pub(crate) struct Seam(Arc<Recording>);

impl WriteFile for RecordingFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.owner.call("write", Path::new(&self.name))?;
        self.inner.write_all(data)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.owner.call("fsync", Path::new(&self.name))?;
        self.inner.sync()
    }
    fn preallocate(&mut self, len: u64) -> io::Result<bool> {
        if !self.owner.preallocating {
            return Ok(false);
        }
        self.owner
            .call(&format!("preallocate {len}"), Path::new(&self.name))?;
        self.inner.preallocate(len)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        if !self.owner.preallocating {
            return self.sync();
        }
        self.owner.call("fdatasync", Path::new(&self.name))?;
        self.inner.sync_data()
    }
    fn write_over_zeros(&mut self, at: u64, before: &[u8], bytes: &[u8]) -> io::Result<()> {
        if !self.owner.preallocating {
            self.write_all(bytes)?;
            return self.sync();
        }
        self.owner
            .overwrites
            .lock()
            .unwrap()
            .push((at, bytes.len() as u64, before.to_vec()));
        self.owner.call("write", Path::new(&self.name))?;
        self.owner.call("fdatasync", Path::new(&self.name))?;
        self.inner.write_over_zeros(at, before, bytes)
    }
}

impl Storage for Seam {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        OsStorage.create_dir(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        if let Some(gate) = self.0.gate_first_create.as_ref()
            && self
                .0
                .log
                .lock()
                .unwrap()
                .iter()
                .all(|l| !l.starts_with("create "))
        {
            let gate = gate.lock().unwrap();
            gate.0.send(()).unwrap();
            gate.1.recv().unwrap();
        }
        self.0.call("create", path)?;
        Ok(Box::new(RecordingFile {
            inner: OsStorage.create_new(path)?,
            owner: self.0.clone(),
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
        }))
    }
    fn reopen(&self, path: &Path) -> io::Result<(Box<dyn WriteFile>, u64)> {
        // Kept in place only where files preallocate as the real ones do; otherwise
        // the trait's default (emptied, as `reopen_empty`).
        if !self.0.preallocating {
            return Ok((self.reopen_empty(path)?, 0));
        }
        self.0.call("reopen", path)?;
        let (inner, size) = OsStorage.reopen(path)?;
        if path.file_name().unwrap().to_string_lossy().starts_with(".spare.")
            && let Some(step) = self.0.after_spare_reopen.0.lock().unwrap().take()
        {
            step();
        }
        Ok((
            Box::new(RecordingFile {
                inner,
                owner: self.0.clone(),
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
            }),
            size,
        ))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.call("rename", to)?;
        OsStorage.rename(from, to)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.call("link", to)?;
        if let Some(bytes) = &self.0.foreign_write_before_link {
            std::fs::write(to, bytes)?;
        }
        OsStorage.hard_link(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.call("remove", path)?;
        OsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.call("fsync-dir", dir)?;
        OsStorage.sync_dir(dir)
    }
    fn read(&self, path: &Path, limit: u64) -> io::Result<ReadOutcome> {
        OsStorage.read(path, limit)
    }
    fn list(&self, dir: &Path, sizes: bool) -> io::Result<Vec<Entry>> {
        if let Some(errno) = self.0.fail_list {
            return Err(io::Error::from_raw_os_error(errno));
        }
        OsStorage.list(dir, sizes)
    }
    fn lock(&self, path: &Path, mode: LockMode, wait: bool) -> io::Result<Option<Box<dyn HeldLock>>> {
        if self.0.symlink_before_lock.as_deref() == path.file_name().and_then(|n| n.to_str()) {
            std::fs::remove_file(path)?;
            std::os::unix::fs::symlink("/dev/null", path)?;
        }
        if let Some(errno) = self.0.fail_lock_files_with
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|d| d == ".locks")
        {
            return Err(io::Error::from_raw_os_error(errno));
        }
        OsStorage.lock(path, mode, wait)
    }
    fn remove_held_lock(&self, path: &Path) -> io::Result<bool> {
        if !self.0.removes_held_locks {
            return Ok(false);
        }
        OsStorage.remove_held_lock(path)
    }
    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        OsStorage.kind(path)
    }
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        OsStorage.set_mode(path, mode)
    }
}

/// Every call logged so far.
pub(crate) fn log_of(rec: &Recording) -> Vec<String> {
    rec.log.lock().unwrap().clone()
}

pub(crate) fn store_with(recording: Recording) -> (tempfile::TempDir, Store, Arc<Recording>) {
    let dir = tempfile::tempdir().unwrap();
    let recording = Arc::new(recording);
    let store = Store::options()
        .storage(Arc::new(Seam(recording.clone())))
        .open(dir.path().join("sessions"))
        .unwrap();
    (dir, store, recording)
}
