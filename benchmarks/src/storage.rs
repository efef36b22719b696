//! `Storage` wrappers for the benchmarks: counting fsyncs, and a store without directory
//! fsyncs (the ceiling, not a safe configuration).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use session_fs::{Entry, EntryKind, HeldLock, LockMode, OsStorage, ReadOutcome, Storage, WriteFile};

#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub file_syncs: AtomicU64,
    pub dir_syncs: AtomicU64,
}

impl Counts {
    pub(crate) fn total(&self) -> u64 {
        self.file_syncs.load(Ordering::SeqCst) + self.dir_syncs.load(Ordering::SeqCst)
    }
}

/// The real filesystem, counting fsyncs, optionally skipping directory fsyncs.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub counts: Arc<Counts>,
    pub skip_dir_sync: bool,
}

struct CountedFile {
    inner: Box<dyn WriteFile>,
    counts: Arc<Counts>,
}

impl WriteFile for CountedFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.write_all(data)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.counts.file_syncs.fetch_add(1, Ordering::SeqCst);
        self.inner.sync()
    }
}

impl Storage for Measured {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        OsStorage.create_dir(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        Ok(Box::new(CountedFile {
            inner: OsStorage.create_new(path)?,
            counts: self.counts.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsStorage.rename(from, to)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsStorage.hard_link(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        OsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.skip_dir_sync {
            return Ok(());
        }
        self.counts.dir_syncs.fetch_add(1, Ordering::SeqCst);
        OsStorage.sync_dir(dir)
    }
    fn read(&self, path: &Path, limit: u64) -> io::Result<ReadOutcome> {
        OsStorage.read(path, limit)
    }
    fn list(&self, dir: &Path, sizes: bool) -> io::Result<Vec<Entry>> {
        OsStorage.list(dir, sizes)
    }
    fn lock(&self, path: &Path, mode: LockMode, wait: bool) -> io::Result<Option<Box<dyn HeldLock>>> {
        OsStorage.lock(path, mode, wait)
    }
    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        OsStorage.kind(path)
    }
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        OsStorage.set_mode(path, mode)
    }
}
