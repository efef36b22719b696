//! The store: one directory of `<id>.json` files and its durable write protocol.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};

use serde::Deserialize;
use session_model::SessionId;

use crate::clock::{Clock, SystemClock};
use crate::clock_keeper::ClockKeeper;
use crate::error::{FsError, Step};
use crate::group_commit::GroupCommit;
use crate::layout::{self, EntryName};
use crate::locks::{IdLock, LockTable};
use crate::maintenance::BackupRun;
use crate::rooted::RootedStorage;
mod areas;
mod guard;
mod options;

pub use guard::SessionGuard;
pub use options::OpenOptions;

use crate::storage::{
    Entry, EntryKind, HeldLock, LockMode, OsStorage, ReadOutcome, Storage, WriteFile, wrong_kind,
};

/// Default largest file the store reads: far above any real session, far below RAM.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 * 1024 * 1024;

/// What a save records in the document: its revision and time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SaveStamp {
    /// One more than the revision of the copy being replaced (1 for a new session).
    pub revision: u64,
    /// Wall-clock time of the save, epoch milliseconds.
    pub saved_at: u64,
}

/// How a [`Store::save`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveOutcome {
    /// This save's bytes are durable under the live name.
    Written(SaveStamp),
    /// A save of the same id called later was already durable, so this one was
    /// skipped: last write wins, and the result is as if this one was overwritten.
    Superseded,
}

/// A file moved out of the live set (see [`Maintenance::move_aside`](crate::maintenance::Maintenance::move_aside)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MovedFile {
    /// Where it was.
    pub from: PathBuf,
    /// Where it is now.
    pub to: PathBuf,
}

/// Where a file moved aside goes: the store's own areas, never a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aside {
    /// `.quarantine/`: damaged files, with a sidecar saying why.
    Quarantine,
    /// `.trash/`: deleted sessions and superseded copies.
    Trash,
}

/// Whether a store handle shares the store, has it to itself, or only reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Normal use: many handles and processes at once.
    Shared,
    /// Recovery: no other handle may be open.
    Exclusive,
    /// Reading only: the store must exist, and nothing in it is created or changed
    /// (works on a read-only copy).
    ReadOnly,
}

struct Inner {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    access: Access,
    max_file_size: u64,
    clock: ClockKeeper,
    locks: LockTable,
    dir_commit: GroupCommit,
    /// The same for `.journal/`: journals created and finished at once share fsyncs.
    journal_commit: GroupCommit,
    spares: crate::journal::Spares,
    /// Backup runs made durable by this handle ([`Store::ready_backup_run`]).
    backup_runs: areas::ReadyRuns,
    _store_lock: Option<Box<dyn HeldLock>>,
}

/// A handle on one store directory. Cheap to clone; all clones share locks.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .field("access", &self.inner.access)
            .finish_non_exhaustive()
    }
}

/// Everything in the store directory that recovery must look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Scan {
    /// Live sessions, sorted.
    pub live: Vec<SessionId>,
    /// Temp files (the app's and the store's), with the id each belongs to.
    pub temps: Vec<(OsString, SessionId)>,
    /// Names of sessions or temp files that are not regular files (a FIFO, a socket, a
    /// device, a directory, a symlink): never read, reported as problems.
    pub irregular: Vec<(OsString, EntryKind)>,
}

/// Refuses a dot-directory that is a symlink or not a directory (a missing one is
/// fine); whether it exists.
fn check_area_dir(storage: &dyn Storage, path: &Path) -> Result<bool, FsError> {
    match storage.kind(path).map_err(FsError::io(Step::Open, path))? {
        None => Ok(false),
        Some(EntryKind::Dir) => Ok(true),
        Some(EntryKind::Symlink) => Err(FsError::io(Step::Open, path)(wrong_kind(
            "is a symlink, not a directory (the store never follows it)",
        ))),
        Some(_) => Err(FsError::io(Step::Open, path)(wrong_kind("is not a directory"))),
    }
}

/// The part of any document the store itself reads: `_metadata.revision` and `savedAt`.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "_metadata")]
    metadata: Option<EnvelopeMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeMetadata {
    revision: Option<u64>,
    saved_at: Option<u64>,
}

/// The stamp recorded in a document, for ordering two copies of one session: revision
/// first (0 for files written before revisions existed), then `savedAt` (0 if absent).
/// `None` when the bytes are not a JSON object with a well-formed `_metadata` (damaged).
pub fn stamp_of(bytes: &[u8]) -> Option<SaveStamp> {
    let envelope: Envelope = serde_json::from_slice(bytes).ok()?;
    let metadata = envelope.metadata;
    Some(SaveStamp {
        revision: metadata.as_ref().and_then(|m| m.revision).unwrap_or(0),
        saved_at: metadata.as_ref().and_then(|m| m.saved_at).unwrap_or(0),
    })
}

/// An `InvalidInput` error for a name the store refuses.
fn refused_name(step: Step, name: impl Into<PathBuf>, what: &str) -> FsError {
    FsError::io(step, name)(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        what.to_owned(),
    ))
}

/// `name` if it names a file directly inside a directory (no separators, not `.`/`..`).
fn plain_name(name: &OsStr, step: Step) -> Result<&OsStr, FsError> {
    let plain = name
        .to_str()
        .is_some_and(|n| !n.is_empty() && !n.contains(['/', '\0']) && n != "." && n != "..");
    if plain {
        Ok(name)
    } else {
        Err(refused_name(step, name, "not a plain file name"))
    }
}

/// Whether `name` is one the store makes itself (a backup run, a state file): a plain
/// name that does not start with `.`.
fn own_name(name: &str) -> bool {
    !name.starts_with('.') && plain_name(OsStr::new(name), Step::List).is_ok()
}

/// The `by` of the quarantine notes this crate writes.
pub(crate) const QUARANTINED_BY: &str = concat!("session-fs ", env!("CARGO_PKG_VERSION"));

/// The system's wall clock in epoch milliseconds. Stamps and decisions by age take the
/// store's clock instead ([`Store::stamp_ms`], [`Store::check_clock`]).
pub fn now_ms() -> u64 {
    SystemClock.now_ms()
}

impl Store {
    /// Opens (creating if needed) a store with default options.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store, FsError> {
        OpenOptions::default().open(dir)
    }

    /// Options for opening a store.
    pub fn options() -> OpenOptions {
        OpenOptions::default()
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether this handle has the store to itself.
    pub fn access(&self) -> Access {
        self.inner.access
    }

    /// The live file of `id`.
    pub fn path_of(&self, id: &SessionId) -> PathBuf {
        self.inner.dir.join(id.file_name())
    }

    pub(crate) fn clock_keeper(&self) -> &ClockKeeper {
        &self.inner.clock
    }

    pub(crate) fn storage(&self) -> &dyn Storage {
        &*self.inner.storage
    }

    /// Makes a name change in the journal directory durable: returns once an fsync of
    /// `.journal/` that began after this call succeeded (shared with journals finished
    /// at the same moment). The directory is the store's own, never a caller's: a
    /// group commit covers one directory.
    pub(crate) fn commit_journal_dir(&self) -> Result<(), FsError> {
        let dir = self.inner.dir.join(layout::JOURNAL_DIR);
        self.inner.journal_commit.commit(|| self.sync_dir(&dir))
    }

    /// The finished journals this handle may write again.
    pub(crate) fn spares(&self) -> &crate::journal::Spares {
        &self.inner.spares
    }

    /// Refuses a change through a read-only handle.
    pub(crate) fn writable(&self) -> Result<(), FsError> {
        if self.inner.access == Access::ReadOnly {
            return Err(FsError::ReadOnly {
                dir: self.inner.dir.clone(),
            });
        }
        Ok(())
    }

    /// The largest file this handle reads or lets a journal grow to
    /// ([`OpenOptions::max_file_size`]).
    pub fn max_file_size(&self) -> u64 {
        self.inner.max_file_size
    }

    /// The directory of a dot-area, checked (never a symlink) each time it is used: a
    /// long-running daemon must not follow a link made after it opened the store.
    pub(crate) fn area_path(&self, name: &str) -> Result<PathBuf, FsError> {
        let path = self.inner.dir.join(name);
        check_area_dir(self.storage(), &path)?;
        Ok(path)
    }

    /// The ids of the regular files in the dot-area `area` named `<id><suffix>`, sorted;
    /// none when the area does not exist.
    pub(crate) fn ids_in_area(&self, area: &str, suffix: &str) -> Result<Vec<SessionId>, FsError> {
        let dir = self.area_path(area)?;
        let entries = match self.storage().list(&dir, false) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(FsError::io(Step::List, &dir)(e)),
        };
        let mut ids: Vec<SessionId> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .filter_map(|e| e.name.to_str()?.strip_suffix(suffix)?.parse().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// [`area_path`](Self::area_path), the directory made when missing, its name
    /// durable in the store's directory before this returns: what is written into it
    /// next must not vanish with it in a crash. An area that exists costs one `stat`
    /// (making it takes the store directory's lock, which every save contends for).
    pub(crate) fn made_area_path(&self, name: &str) -> Result<PathBuf, FsError> {
        let path = self.inner.dir.join(name);
        if !check_area_dir(self.storage(), &path)? {
            self.storage()
                .create_dir(&path)
                .map_err(FsError::io(Step::CreateDir, &path))?;
            self.sync_dir(&self.inner.dir)?;
        }
        Ok(path)
    }

    /// Brings the store directory to mode 0700 when it is more open; returns the mode
    /// it had when it was changed. `init` and `run` call this, so a directory made by
    /// hand (or by the app) stops exposing patient data.
    pub fn secure_dir(&self) -> Result<Option<u32>, FsError> {
        use std::os::unix::fs::PermissionsExt;
        self.writable()?;
        let dir = &self.inner.dir;
        let mode = std::fs::metadata(dir)
            .map_err(FsError::io(Step::Open, dir))?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o077 == 0 {
            return Ok(None);
        }
        self.storage()
            .set_mode(dir, mode & !0o077)
            .map_err(FsError::io(Step::Chmod, dir))?;
        Ok(Some(mode))
    }

    /// A name part no other handle, thread or process uses: pid, time, and a counter
    /// shared by every handle of this process.
    pub(crate) fn unique(&self) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{}-{}-{}", std::process::id(), now_ms(), n)
    }

    /// The ids of live sessions, sorted. Dot-entries, temp files, other names and
    /// symlinks are skipped.
    pub fn list(&self) -> Result<Vec<SessionId>, FsError> {
        Ok(self.scan()?.live)
    }

    /// Lists live sessions and temp files.
    pub(crate) fn scan(&self) -> Result<Scan, FsError> {
        let dir = &self.inner.dir;
        let entries = self
            .storage()
            .list(dir, false)
            .map_err(FsError::io(Step::List, dir))?;
        let mut scan = Scan::default();
        for entry in entries {
            match (layout::classify(&entry.name), entry.kind) {
                (EntryName::Other, _) => {}
                (EntryName::Live(id), EntryKind::File) => scan.live.push(id),
                (EntryName::AppTemp(id) | EntryName::StoreTemp(id), EntryKind::File) => {
                    scan.temps.push((entry.name, id))
                }
                (_, kind) => scan.irregular.push((entry.name, kind)),
            }
        }
        scan.live.sort();
        scan.temps.sort();
        scan.irregular.sort();
        Ok(scan)
    }

    /// Reads a session's bytes; `Ok(None)` when it does not exist.
    pub fn read(&self, id: &SessionId) -> Result<Option<Vec<u8>>, FsError> {
        self.read_path(&self.path_of(id))
    }

    /// Reads a file of the store directory by name (recovery reads temp files so).
    pub(crate) fn read_entry(&self, name: &OsString) -> Result<Option<Vec<u8>>, FsError> {
        self.read_path(&self.inner.dir.join(plain_name(name, Step::Read)?))
    }

    pub(crate) fn read_path(&self, path: &Path) -> Result<Option<Vec<u8>>, FsError> {
        let limit = self.max_file_size();
        match self.storage().read(path, limit) {
            Ok(ReadOutcome::Bytes(bytes)) => Ok(Some(bytes)),
            Ok(ReadOutcome::TooLarge { size }) => Err(FsError::TooLarge {
                path: path.to_owned(),
                size,
                limit,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(FsError::io(Step::Read, path)(e)),
        }
    }

    /// Takes a named store-wide role lock (`.daemon.lock`, `.submitter.lock`...)
    /// without waiting: `Ok(None)` when another handle or process holds it.
    pub(crate) fn try_lock_role(&self, role: &str) -> Result<Option<Box<dyn HeldLock>>, FsError> {
        self.writable()?;
        if !own_name(role) {
            return Err(refused_name(Step::Lock, role, "not a role name"));
        }
        let path = self.inner.dir.join(format!(".{role}.lock"));
        self.storage()
            .lock(&path, LockMode::Exclusive, false)
            .map_err(FsError::io(Step::Lock, &path))
    }

    /// Durably replaces a small state file `.state/<name>` (last cleanup summary, who
    /// holds a role...): never a session, never read by recovery.
    pub fn write_state(&self, name: &str, bytes: &[u8]) -> Result<(), FsError> {
        self.writable()?;
        if !own_name(name) {
            let dir = self.inner.dir.join(layout::STATE_DIR);
            return Err(refused_name(Step::CreateTemp, &dir, "not a state file name"));
        }
        let dir = self.made_area_path(layout::STATE_DIR)?;
        let temp = dir.join(format!(".{name}.{}.tmp", self.unique()));
        self.write_new_durable(&temp, bytes)?;
        let target = dir.join(name);
        if let Err(e) = self.storage().rename(&temp, &target) {
            self.discard_temp(&temp);
            return Err(FsError::io(Step::Rename, &target)(e));
        }
        self.sync_dir(&dir)
    }

    /// Reads `.state/<name>`; `Ok(None)` when it was never written.
    pub fn read_state(&self, name: &str) -> Result<Option<Vec<u8>>, FsError> {
        let dir = self.area_path(layout::STATE_DIR)?;
        if !own_name(name) {
            return Err(refused_name(Step::Read, &dir, "not a state file name"));
        }
        self.read_path(&dir.join(name))
    }

    /// Durably replaces (or creates) a session: temp file, fsync, rename, fsync of the
    /// directory; returns only once all of that succeeded.
    ///
    /// `encode` gets the [`SaveStamp`] to record and returns the bytes. Saves of one id
    /// are applied in call order; a save overtaken by a later one that is already on
    /// disk is skipped ([`SaveOutcome::Superseded`]). When one id is saved by several
    /// threads at once, a save may wait before it writes (for at most as long as the
    /// last write took) for the others to come, so that one write covers them all.
    pub fn save<E>(
        &self,
        id: &SessionId,
        encode: impl FnOnce(SaveStamp) -> Result<Vec<u8>, E>,
    ) -> Result<SaveOutcome, FsError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.save_over(id, |_, stamp| encode(stamp))
    }

    /// [`Store::save`], with the encoder also seeing the bytes it replaces (to refuse
    /// replacing some files, for example).
    pub fn save_over<E>(
        &self,
        id: &SessionId,
        encode: impl FnOnce(Option<&[u8]>, SaveStamp) -> Result<Vec<u8>, E>,
    ) -> Result<SaveOutcome, FsError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.save_judging(id, |_| None, encode)
    }

    /// [`Store::save_over`], with `judge` deciding whether the bytes being replaced are
    /// damaged (`Some(reason)`): a damaged file is first kept durably in `.quarantine/`
    /// with that reason, so a save never destroys it. The store itself only recognises
    /// files that are not JSON objects; the caller's decoder recognises the rest.
    pub fn save_judging<E>(
        &self,
        id: &SessionId,
        judge: impl FnOnce(&[u8]) -> Option<String>,
        encode: impl FnOnce(Option<&[u8]>, SaveStamp) -> Result<Vec<u8>, E>,
    ) -> Result<SaveOutcome, FsError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.writable()?;
        let Some(id_lock) = self.inner.locks.lock_for_save(id) else {
            return Ok(SaveOutcome::Superseded);
        };
        let mut guard = self.lock_across_processes(id, id_lock)?;
        let existing = match guard.read() {
            Ok(bytes) => bytes,
            // An oversized or unreadable file is damaged too: it is kept, never replaced blind.
            Err(e @ FsError::TooLarge { .. }) => {
                guard.keep_damaged(&e.to_string())?;
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(reason) = existing.as_deref().and_then(judge) {
            guard.keep_damaged(&reason)?;
        }
        let stamp = guard.save(|stamp| encode(existing.as_deref(), stamp))?;
        guard.id_lock.mark_applied();
        Ok(SaveOutcome::Written(stamp))
    }

    /// Durably creates a session that must not exist yet: never replaces one, even
    /// when another process creates the same id at the same moment.
    pub fn create<E>(
        &self,
        id: &SessionId,
        encode: impl FnOnce(SaveStamp) -> Result<Vec<u8>, E>,
    ) -> Result<SaveStamp, FsError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.writable()?;
        let stamp = SaveStamp {
            revision: 1,
            saved_at: self.stamp_ms(),
        };
        let bytes = encode(stamp).map_err(|e| FsError::Encode {
            id: id.clone(),
            source: e.into(),
        })?;
        let mut guard = self.lock(id)?;
        // Every writer holds the lock, so this check cannot race; the link below still
        // refuses atomically should anything write without it.
        if guard.read()?.is_some() {
            return Err(FsError::AlreadyExists { id: id.clone() });
        }
        let temp = self.write_temp(id, &bytes)?;
        self.link_created(id, &temp)?;
        guard.known = Some(guard::Existing::Revision(stamp.revision));
        Ok(stamp)
    }

    /// [`Store::create`] for a session too large to hold in memory: `write` streams
    /// its bytes into the temp file (through a buffer) instead of returning them. The
    /// same guarantees: durable before it returns, never replaces an existing file, and
    /// a failed write leaves nothing behind. An error `write` returns after its writer
    /// failed is reported as that I/O error, any other as [`FsError::Encode`].
    pub fn create_streamed<E>(
        &self,
        id: &SessionId,
        write: impl FnOnce(SaveStamp, &mut dyn std::io::Write) -> Result<(), E>,
    ) -> Result<SaveStamp, FsError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.writable()?;
        let stamp = SaveStamp {
            revision: 1,
            saved_at: self.stamp_ms(),
        };
        let _guard = self.lock(id)?;
        let live = self.path_of(id);
        if self
            .storage()
            .kind(&live)
            .map_err(FsError::io(Step::Open, &live))?
            .is_some()
        {
            return Err(FsError::AlreadyExists { id: id.clone() });
        }
        let temp = self.inner.dir.join(layout::store_temp_name(id, &self.unique()));
        self.write_new_durable_with(&temp, |file| {
            let mut sink = FileSink { file, failed: None };
            let mut buffered = std::io::BufWriter::with_capacity(256 * 1024, &mut sink);
            let written = write(stamp, &mut buffered);
            let flushed = std::io::Write::flush(&mut buffered);
            drop(buffered);
            match (written, sink.failed.take(), flushed) {
                (_, Some(e), _) => Err(FsError::io(Step::WriteTemp, &temp)(e)),
                (Err(e), None, _) => Err(FsError::Encode {
                    id: id.clone(),
                    source: e.into(),
                }),
                (Ok(()), None, Err(e)) => Err(FsError::io(Step::WriteTemp, &temp)(e)),
                (Ok(()), None, Ok(())) => Ok(()),
            }
        })?;
        self.link_created(id, &temp)?;
        Ok(stamp)
    }

    /// Links a durable temp file as `id`'s live file, refusing atomically when one
    /// exists, and syncs the directory; the temp is removed either way.
    fn link_created(&self, id: &SessionId, temp: &Path) -> Result<(), FsError> {
        let live = self.path_of(id);
        let linked = self.storage().hard_link(temp, &live);
        if let Err(e) = linked {
            self.discard_temp_durably(temp);
            return Err(match e.kind() {
                std::io::ErrorKind::AlreadyExists => FsError::AlreadyExists { id: id.clone() },
                _ => FsError::io(Step::Link, &live)(e),
            });
        }
        let dir = &self.inner.dir;
        let synced = self.inner.dir_commit.commit(|| self.sync_dir(dir));
        // A temp that outlives a crash here equals the live file: recovery's tie rule
        // keeps the live one, so this removal needs no fsync.
        self.discard_temp(temp);
        synced
    }

    /// Moves a session to the trash, durably; `Ok(false)` when it did not exist.
    pub fn delete(&self, id: &SessionId) -> Result<bool, FsError> {
        match self.lock_existing(id)? {
            Some(mut guard) => guard.delete(),
            None => Ok(false),
        }
    }

    fn write_new_durable(&self, path: &Path, bytes: &[u8]) -> Result<(), FsError> {
        self.write_new_durable_with(path, |file| {
            file.write_all(bytes).map_err(FsError::io(Step::WriteTemp, path))
        })
    }

    /// Creates `path`, lets `fill` write it, and syncs it; on any failure the file is
    /// removed durably.
    fn write_new_durable_with(
        &self,
        path: &Path,
        fill: impl FnOnce(&mut dyn WriteFile) -> Result<(), FsError>,
    ) -> Result<(), FsError> {
        let storage = self.storage();
        let mut file = storage
            .create_new(path)
            .map_err(FsError::io(Step::CreateTemp, path))?;
        let written =
            fill(file.as_mut()).and_then(|()| file.sync().map_err(FsError::io(Step::SyncTemp, path)));
        if written.is_err() {
            drop(file);
            self.discard_temp_durably(path);
        }
        written
    }

    fn write_temp(&self, id: &SessionId, bytes: &[u8]) -> Result<PathBuf, FsError> {
        let temp = self.inner.dir.join(layout::store_temp_name(id, &self.unique()));
        self.write_new_durable(&temp, bytes)?;
        Ok(temp)
    }

    fn discard_temp(&self, temp: &Path) {
        if let Err(e) = self.storage().remove_file(temp) {
            // Recovery moves leftover temps aside at the next start.
            tracing::warn!(file = %temp.display(), error = %e, "could not remove temp file");
        }
    }

    /// Removes the temp of a failed write and syncs the directory, so that a crash
    /// cannot bring back a copy whose save was reported as failed.
    fn discard_temp_durably(&self, temp: &Path) {
        self.discard_temp(temp);
        if let Some(Err(e)) = temp.parent().map(|dir| self.sync_dir(dir)) {
            tracing::warn!(error = %e, "could not sync after removing a temp file");
        }
    }
}

/// A [`WriteFile`] as an [`std::io::Write`], keeping the first error it met so that
/// [`Store::create_streamed`] can tell a failed disk from a failed encoder.
struct FileSink<'a> {
    file: &'a mut dyn WriteFile,
    failed: Option<std::io::Error>,
}

impl std::io::Write for FileSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.failed.is_some() {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        match self.file.write_all(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                let kind = e.kind();
                self.failed = Some(e);
                Err(kind.into())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
