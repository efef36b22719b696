//! The narrow seam every filesystem call of the store goes through.
//!
//! [`OsStorage`] is the real thing. Tests substitute their own implementation to
//! record the order of calls, inject errors at any step, or simulate a power cut.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use crate::overwrite_sync::{InPlace, OverwriteSync};

/// A file being written through the seam.
pub trait WriteFile: Send {
    /// Appends all of `data`.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes the data durable (`fsync`).
    fn sync(&mut self) -> io::Result<()>;
    /// Makes the file `len` bytes long, zeros after what was written, durably
    /// (`fsync`), and leaves the write position where it was: later writes overwrite
    /// the zeros, so [`sync_data`](Self::sync_data) makes them durable with no change
    /// to the file's size or blocks to commit. `Ok(false)` (the default) where the
    /// file cannot: its writes then grow it, and each sync commits the new size.
    fn preallocate(&mut self, len: u64) -> io::Result<bool> {
        let _ = len;
        Ok(false)
    }
    /// Makes the data written durable, not the file's times (`fdatasync`); the same as
    /// [`sync`](Self::sync) by default.
    fn sync_data(&mut self) -> io::Result<()> {
        self.sync()
    }
    /// Writes `bytes` at `at`, where what was written so far ends (the write
    /// position), every one of them over a zero [`preallocate`](Self::preallocate)
    /// made durable, and returns once they are durable: no size, block or time of the
    /// file to commit. `before` holds the file's bytes just before `at`: the last
    /// [`OVERWRITE_CONTEXT`] of them, or all of them when there are fewer. By default
    /// [`write_all`](Self::write_all) then [`sync_data`](Self::sync_data); the real
    /// file, on ext4 without a journal, writes the sectors that hold them directly and
    /// flushes the device's cache, never the inode (see `overwrite_sync`).
    fn write_over_zeros(&mut self, at: u64, before: &[u8], bytes: &[u8]) -> io::Result<()> {
        let _ = (at, before);
        self.write_all(bytes)?;
        self.sync_data()
    }
}

/// How many of a file's bytes before a [`WriteFile::write_over_zeros`] its caller
/// hands it: one page, the most a direct write's sector may hold before them.
pub const OVERWRITE_CONTEXT: usize = crate::overwrite_sync::MAX_SECTOR;

/// A held advisory lock; dropping it releases the lock.
pub trait HeldLock: Send + Sync {}

/// Shared or exclusive, for [`Storage::lock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockMode {
    /// Many holders at once.
    Shared,
    /// One holder.
    Exclusive,
}

/// What kind of directory entry a name is (symlinks are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed by the store).
    Symlink,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A block or character device.
    Device,
    /// Anything else.
    Other,
}

impl EntryKind {
    /// What it is, for messages: "a FIFO", "a directory"...
    pub fn describe(self) -> &'static str {
        match self {
            EntryKind::File => "a regular file",
            EntryKind::Dir => "a directory",
            EntryKind::Symlink => "a symlink",
            EntryKind::Fifo => "a FIFO",
            EntryKind::Socket => "a socket",
            EntryKind::Device => "a device",
            EntryKind::Other => "not a regular file",
        }
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The entry's name.
    pub name: OsString,
    /// Its kind, from `lstat`.
    pub kind: EntryKind,
    /// Its size in bytes, from `lstat` (0 unless sizes were asked for).
    pub len: u64,
}

impl Entry {
    /// An entry (what a `Storage` implementation's `list` returns).
    pub fn new(name: std::ffi::OsString, kind: EntryKind, len: u64) -> Self {
        Entry { name, kind, len }
    }
}

/// The result of a size-limited read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOutcome {
    /// The whole file.
    Bytes(Vec<u8>),
    /// The file is larger than the limit; nothing was read into memory.
    TooLarge {
        /// Its size.
        size: u64,
    },
}

/// Every filesystem operation the store performs.
///
/// Implementations must give these calls POSIX semantics: `rename` atomically replaces
/// its target, `hard_link` fails with `AlreadyExists` when the target exists, and
/// data or names are durable only after `sync` / `sync_dir`.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates a directory with mode 0700; an existing directory is not an error.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates a new file exclusively (`O_CREAT|O_EXCL`, mode 0600).
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;
    /// Opens the existing regular file `path` (never through a symlink) to be written
    /// from its start, emptied (`O_TRUNC`), keeping the file itself: how the store
    /// writes a finished journal again instead of removing it and creating another.
    /// The default removes it and creates it anew ([`create_new`](Self::create_new)),
    /// which every reader sees as the same empty file; the storages of this crate keep
    /// the inode, because on ext4 without a journal every inode freed makes each later
    /// file creation scan past it for minutes.
    fn reopen_empty(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        self.remove_file(path)?;
        self.create_new(path)
    }
    /// Opens the existing regular file `path` (never through a symlink) to be written
    /// from its start, keeping its bytes and its size, and returns that size: how a
    /// finished journal whose used part was overwritten with zeros is written again
    /// without growing it anew. The default empties it instead
    /// ([`reopen_empty`](Self::reopen_empty)) and returns 0: a storage that cannot keep
    /// a file in place only loses the saving.
    fn reopen(&self, path: &Path) -> io::Result<(Box<dyn WriteFile>, u64)> {
        Ok((self.reopen_empty(path)?, 0))
    }
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Creates `to` as a second name of `from`; fails if `to` exists.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a name.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Reads a regular file (never through a symlink), refusing files over `limit` bytes.
    fn read(&self, path: &Path, limit: u64) -> io::Result<ReadOutcome>;
    /// Opens a regular file (never through a symlink) to be read in pieces, refusing
    /// files over `limit` bytes. The default reads it whole through [`Storage::read`];
    /// the storages of this crate stream it, so a reader's memory does not grow with
    /// the file.
    fn open_stream(&self, path: &Path, limit: u64) -> io::Result<StreamOutcome> {
        Ok(match self.read(path, limit)? {
            ReadOutcome::Bytes(bytes) => StreamOutcome::Opened {
                len: bytes.len() as u64,
                reader: Box::new(io::Cursor::new(bytes)),
            },
            ReadOutcome::TooLarge { size } => StreamOutcome::TooLarge { size },
        })
    }
    /// Lists a directory without following symlinks; `len` is filled in only when
    /// `sizes` is asked for (it costs an `lstat` per entry).
    fn list(&self, dir: &Path, sizes: bool) -> io::Result<Vec<Entry>>;
    /// Takes an advisory lock on `path` (created if missing). With `wait` false, returns
    /// `Ok(None)` when another holder conflicts.
    fn lock(&self, path: &Path, mode: LockMode, wait: bool) -> io::Result<Option<Box<dyn HeldLock>>>;
    /// Removes the lock file `path` while its caller still holds the lock taken on it
    /// by [`lock`](Self::lock): how a deleted session's lock file goes with it.
    /// `Ok(true)` when it was removed.
    ///
    /// Safe only for a storage whose `lock` never keeps a lock on a file its name no
    /// longer leads to (whoever waited for the removed file must lock the name's new
    /// one instead, as the storages of this crate do). The default keeps the file and
    /// returns `Ok(false)`, which is always safe: a storage written for an earlier
    /// version of this trait keeps every lock file, as that version did.
    fn remove_held_lock(&self, path: &Path) -> io::Result<bool> {
        let _ = path;
        Ok(false)
    }
    /// What `path` itself is (`lstat`: a symlink is reported, never followed);
    /// `Ok(None)` when nothing has that name.
    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>>;
    /// Sets the permission bits of `path` (never through a symlink).
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()>;
}

/// What a file type is called in messages: "a FIFO", "a directory"...
pub(crate) fn describe(file_type: &fs::FileType) -> &'static str {
    entry_kind(file_type).describe()
}

/// The size of an opened file (`Ok(Err(size))` when it is over `limit`), refusing
/// anything but a regular file. Both ways of reading call it, so the checks on an
/// opened file live in one place.
fn checked_size(file: &File, limit: u64) -> io::Result<Result<u64, u64>> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(wrong_kind(&format!(
            "is {}, not a regular file",
            describe(&meta.file_type())
        )));
    }
    Ok(if meta.len() > limit {
        Err(meta.len())
    } else {
        Ok(meta.len())
    })
}

/// Checks an opened file as [`read_opened`] does and hands it out to be read in pieces,
/// never past the size it had when checked.
pub(crate) fn stream_opened(file: File, limit: u64) -> io::Result<StreamOutcome> {
    Ok(match checked_size(&file, limit)? {
        Err(size) => StreamOutcome::TooLarge { size },
        Ok(len) => StreamOutcome::Opened {
            len,
            // The file may grow after fstat: the reader stops at what fstat saw.
            reader: Box::new(file.take(len)),
        },
    })
}

/// Reads a file opened without blocking, refusing anything but a regular file
/// and anything over `limit` bytes. Both storages call it.
pub(crate) fn read_opened(mut file: File, limit: u64) -> io::Result<ReadOutcome> {
    let len = match checked_size(&file, limit)? {
        Err(size) => return Ok(ReadOutcome::TooLarge { size }),
        Ok(len) => len,
    };
    let mut bytes = Vec::with_capacity(len as usize);
    // The file may grow between fstat and read: never read past the limit.
    (&mut file).take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Ok(ReadOutcome::TooLarge {
            size: bytes.len() as u64,
        });
    }
    Ok(ReadOutcome::Bytes(bytes))
}

/// The error for a name that is not what the store expects there.
pub(crate) fn wrong_kind(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_owned())
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsStorage;

/// A regular file opened to be read in pieces: what [`Storage::open_stream`] gives.
pub enum StreamOutcome {
    /// The file, to be read from its start.
    Opened {
        /// Its size when opened: the reader never yields more.
        len: u64,
        /// Its bytes.
        reader: Box<dyn io::Read + Send>,
    },
    /// The file is larger than the limit; nothing was read.
    TooLarge {
        /// Its size.
        size: u64,
    },
}

impl fmt::Debug for StreamOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Opened { len, .. } => f.debug_struct("Opened").field("len", len).finish_non_exhaustive(),
            Self::TooLarge { size } => f.debug_struct("TooLarge").field("size", size).finish(),
        }
    }
}

/// An open file written through [`WriteFile`]; both storages hand these out.
pub(crate) struct OsFile {
    file: File,
    /// How its writes over zeros are made durable in place, where the store's
    /// filesystem allows it (dropped once the file turns out to be elsewhere).
    in_place: Option<InPlace>,
    /// Where the next [`WriteFile::write_all`] goes: set when an in-place write went
    /// past the handle's position without moving it.
    seek_to: Option<u64>,
}

impl OsFile {
    /// `file`, its writes over zeros made durable in place when `overwrites` is given
    /// (and covers it).
    pub(crate) fn new(file: File, overwrites: Option<Arc<OverwriteSync>>) -> Self {
        OsFile {
            file,
            in_place: overwrites.map(InPlace::new),
            seek_to: None,
        }
    }

    /// Whether its writes over zeros are (still) made durable in place.
    #[cfg(test)]
    pub(crate) fn syncs_in_place(&self) -> bool {
        self.in_place.is_some()
    }
}

impl WriteFile for OsFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(position) = self.seek_to.take() {
            io::Seek::seek(&mut self.file, io::SeekFrom::Start(position))?;
        }
        self.file.write_all(data)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }
    fn preallocate(&mut self, len: u64) -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        let size = self.file.metadata()?.len();
        if len > size {
            // Written zeros, not fallocate(2): an allocated but unwritten extent still
            // needs a metadata commit the first time it is written.
            let zeros = vec![0u8; usize::try_from(len - size).unwrap_or(usize::MAX)];
            self.file.write_all_at(&zeros, size)?;
        }
        self.file.sync_all()?;
        Ok(true)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn write_over_zeros(&mut self, at: u64, before: &[u8], bytes: &[u8]) -> io::Result<()> {
        if let Some(in_place) = &mut self.in_place {
            if in_place.write_over_zeros(&self.file, at, before, bytes)? {
                self.seek_to = Some(at + bytes.len() as u64);
                return Ok(());
            }
            self.in_place = None;
        }
        self.write_all(bytes)?;
        self.file.sync_data()
    }
}

/// `file`, opened to be written, as a [`WriteFile`] when it is a regular file; its
/// overwrites synced in place when `overwrites` is given.
pub(crate) fn regular_writer(
    file: File,
    overwrites: Option<Arc<OverwriteSync>>,
) -> io::Result<Box<dyn WriteFile>> {
    sized_writer(file, overwrites).map(|(writer, _)| writer)
}

/// [`regular_writer`], with the file's size (one `fstat` for both).
pub(crate) fn sized_writer(
    file: File,
    overwrites: Option<Arc<OverwriteSync>>,
) -> io::Result<(Box<dyn WriteFile>, u64)> {
    let metadata = file.metadata()?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        return Err(wrong_kind(&format!(
            "is {}, not a regular file",
            describe(&file_type)
        )));
    }
    Ok((Box::new(OsFile::new(file, overwrites)), metadata.len()))
}

/// A held `flock`, released when the file closes on drop.
pub(crate) struct OsLock(#[allow(dead_code)] pub(crate) File);
impl HeldLock for OsLock {}

impl Storage for OsStorage {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        match DirBuilder::new().recursive(true).mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // `recursive` accepts an existing name only when it resolves to a directory; the
        // store never works through a symlinked directory, so look at the name itself.
        let file_type = fs::symlink_metadata(path)?.file_type();
        if file_type.is_dir() {
            Ok(())
        } else {
            Err(wrong_kind(&format!(
                "is {}, not a directory (the store never follows it)",
                describe(&file_type)
            )))
        }
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Box::new(OsFile::new(file, None)))
    }

    fn reopen_empty(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        regular_writer(
            Self::open_unfollowed(OpenOptions::new().write(true).truncate(true), path)?,
            None,
        )
    }

    fn reopen(&self, path: &Path) -> io::Result<(Box<dyn WriteFile>, u64)> {
        sized_writer(Self::open_unfollowed(OpenOptions::new().write(true), path)?, None)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn read(&self, path: &Path, limit: u64) -> io::Result<ReadOutcome> {
        read_opened(Self::open_for_reading(path)?, limit)
    }

    fn open_stream(&self, path: &Path, limit: u64) -> io::Result<StreamOutcome> {
        stream_opened(Self::open_for_reading(path)?, limit)
    }

    fn list(&self, dir: &Path, sizes: bool) -> io::Result<Vec<Entry>> {
        // read_dir follows a symlinked directory: refuse one instead.
        if Self::kind_of(dir)? == Some(EntryKind::Symlink) {
            return Err(wrong_kind(
                "is a symlink, not a directory (the store never follows it)",
            ));
        }
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            // Both come from lstat (or the directory entry itself): symlinks are not followed.
            let file_type = entry.file_type()?;
            let len = if sizes { entry.metadata()?.len() } else { 0 };
            let kind = entry_kind(&file_type);
            entries.push(Entry {
                name: entry.file_name(),
                kind,
                len,
            });
        }
        Ok(entries)
    }

    fn lock(&self, path: &Path, mode: LockMode, wait: bool) -> io::Result<Option<Box<dyn HeldLock>>> {
        // An existing lock file is opened read-only (flock needs no more), so a store on
        // a read-only filesystem can still be read; a missing one is created 0600.
        let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
        let open = || match OpenOptions::new().read(true).custom_flags(flags).open(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(flags)
                .open(path),
            other => other,
        };
        take_lock(open, mode, wait)
    }

    fn remove_held_lock(&self, path: &Path) -> io::Result<bool> {
        removed(fs::remove_file(path))
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        Self::kind_of(path)
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)?;
        file.set_permissions(fs::Permissions::from_mode(mode))
    }
}

impl OsStorage {
    /// Opens `path` to read it; see [`open_unfollowed`](Self::open_unfollowed).
    fn open_for_reading(path: &Path) -> io::Result<File> {
        Self::open_unfollowed(OpenOptions::new().read(true), path)
    }

    /// Opens `path` with `options`, never through a symlink. O_NONBLOCK: opening a
    /// FIFO must not wait for its other end (a FIFO opened to write with no reader, or
    /// a socket, fails with ENXIO); the type is then checked on the open descriptor,
    /// so nothing can be swapped in between.
    fn open_unfollowed(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
        options
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => wrong_kind("is a symlink (the store never follows it)"),
                Some(libc::ENXIO) => wrong_kind("is a socket or a FIFO, not a regular file"),
                _ => e,
            })
    }

    fn kind_of(path: &Path) -> io::Result<Option<EntryKind>> {
        match fs::symlink_metadata(path) {
            Ok(meta) => Ok(Some(entry_kind(&meta.file_type()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn entry_kind(file_type: &fs::FileType) -> EntryKind {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_symlink() {
        EntryKind::Symlink
    } else if file_type.is_file() {
        EntryKind::File
    } else if file_type.is_dir() {
        EntryKind::Dir
    } else if file_type.is_fifo() {
        EntryKind::Fifo
    } else if file_type.is_socket() {
        EntryKind::Socket
    } else if file_type.is_block_device() || file_type.is_char_device() {
        EntryKind::Device
    } else {
        EntryKind::Other
    }
}

fn try_lock(result: Result<(), fs::TryLockError>) -> io::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(fs::TryLockError::WouldBlock) => Ok(false),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Opens a lock file with `open` and takes its lock: the one way both storages lock.
///
/// A lock file can be removed by its holder ([`Storage::remove_held_lock`]); whoever
/// opened it before that and then waited holds a lock on a file no name leads to,
/// which excludes no one who opens the name afresh. Such a lock is let go and the
/// name opened again, until the lock taken is on the file the name holds: no link
/// count, no lock.
pub(crate) fn take_lock(
    open: impl Fn() -> io::Result<File>,
    mode: LockMode,
    wait: bool,
) -> io::Result<Option<Box<dyn HeldLock>>> {
    use std::os::unix::fs::MetadataExt;
    loop {
        let file = open()?;
        let taken = match (mode, wait) {
            (LockMode::Shared, true) => file.lock_shared().map(|()| true),
            (LockMode::Exclusive, true) => file.lock().map(|()| true),
            (LockMode::Shared, false) => try_lock(file.try_lock_shared()),
            (LockMode::Exclusive, false) => try_lock(file.try_lock()),
        }?;
        if !taken {
            return Ok(None);
        }
        // One `fstat` once the lock is held answers both questions: what the file is
        // (`flock` takes any descriptor, so a FIFO or a directory is refused here), and
        // whether it still has a name.
        let metadata = file.metadata()?;
        if !metadata.file_type().is_file() {
            return Err(wrong_kind(&format!(
                "is {}, not a lock file",
                describe(&metadata.file_type())
            )));
        }
        if metadata.nlink() > 0 {
            return Ok(Some(Box::new(OsLock(file))));
        }
    }
}

/// A removal's result as "removed" (`true`) or "was not there" (`false`).
pub(crate) fn removed(result: io::Result<()>) -> io::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
