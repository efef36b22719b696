//! The real filesystem, worked through one directory handle.
//!
//! [`RootedStorage`] opens the store directory once (`O_DIRECTORY`) and does every
//! operation relative to that handle with the `*at` calls, opening each intermediate
//! dot-directory with `O_NOFOLLOW | O_DIRECTORY`: a symlink swapped in for `.trash` (or
//! the store directory renamed away) after the store opened is never followed. The store
//! directory itself is resolved once, when the handle is opened: a symlink the operator
//! made to it is followed then, and only then.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::overwrite_sync::OverwriteSync;
use crate::storage::{
    Entry, EntryKind, HeldLock, LockMode, OsFile, ReadOutcome, Storage, WriteFile, removed, take_lock,
    wrong_kind,
};

/// The real filesystem through one handle on the store directory (see the module docs).
#[derive(Debug)]
pub struct RootedStorage {
    root: PathBuf,
    handle: OwnedFd,
    /// How overwrites are synced in place, where the filesystem allows it.
    overwrites: Option<Arc<OverwriteSync>>,
}

/// A directory handle and the name of an entry in it.
enum At<'a> {
    /// The store directory itself.
    Root,
    /// `name` inside the directory `dir` (the root's handle, or one opened under it).
    Entry { dir: Dir<'a>, name: &'a OsStr },
}

enum Dir<'a> {
    Root(&'a OwnedFd),
    Opened(OwnedFd),
}

impl AsFd for Dir<'_> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Dir::Root(fd) => fd.as_fd(),
            Dir::Opened(fd) => fd.as_fd(),
        }
    }
}

fn kind_of(file_type: FileType) -> EntryKind {
    match file_type {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink,
        FileType::Fifo => EntryKind::Fifo,
        FileType::Socket => EntryKind::Socket,
        FileType::BlockDevice | FileType::CharacterDevice => EntryKind::Device,
        _ => EntryKind::Other,
    }
}

fn nofollow_dir() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// What a refused symlink or non-directory on the way is called.
fn on_the_way(e: rustix::io::Errno) -> io::Error {
    match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => {
            wrong_kind("is a symlink or not a directory (the store never follows it)")
        }
        other => other.into(),
    }
}

impl RootedStorage {
    /// Opens the store directory `root` once; every later call works relative to it.
    pub fn open(root: &Path) -> io::Result<Self> {
        let handle = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let overwrites = OverwriteSync::probe(&handle).map(Arc::new);
        Ok(RootedStorage {
            root: root.to_owned(),
            handle,
            overwrites,
        })
    }

    /// Whether a journal's appends into its zeros are synced in place: written and
    /// waited for with `sync_file_range`, then the device cache flushed, with no write
    /// of the journal's inode. Only on ext4 without a journal, where `fdatasync` would
    /// write the inode each time the clock ticked since the last append; everywhere
    /// else an append is an `fdatasync`.
    pub fn syncs_overwrites_in_place(&self) -> bool {
        self.overwrites.is_some()
    }

    /// Where `path` is, relative to the handle: every component after the root a plain
    /// name, every directory on the way opened without following a symlink.
    fn at<'a>(&'a self, path: &'a Path) -> io::Result<At<'a>> {
        let relative = path
            .strip_prefix(&self.root)
            .map_err(|_| wrong_kind("is outside the store directory"))?;
        let mut names = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(name) => names.push(name),
                _ => return Err(wrong_kind("is not a plain path inside the store")),
            }
        }
        let Some((last, dirs)) = names.split_last() else {
            return Ok(At::Root);
        };
        let mut dir = Dir::Root(&self.handle);
        for name in dirs {
            let opened =
                rustix::fs::openat(&dir, *name, nofollow_dir(), Mode::empty()).map_err(on_the_way)?;
            dir = Dir::Opened(opened);
        }
        Ok(At::Entry { dir, name: last })
    }

    /// The directory `path` names, opened (never through a symlink).
    fn open_dir(&self, path: &Path) -> io::Result<OwnedFd> {
        match self.at(path)? {
            At::Root => Ok(rustix::fs::openat(
                &self.handle,
                ".",
                nofollow_dir(),
                Mode::empty(),
            )?),
            At::Entry { dir, name } => {
                Ok(rustix::fs::openat(&dir, name, nofollow_dir(), Mode::empty()).map_err(on_the_way)?)
            }
        }
    }

    fn entry<'a>(&'a self, path: &'a Path) -> io::Result<(Dir<'a>, &'a OsStr)> {
        match self.at(path)? {
            At::Root => Err(wrong_kind("is the store directory itself")),
            At::Entry { dir, name } => Ok((dir, name)),
        }
    }

    fn open_file(&self, path: &Path, flags: OFlags, mode: Mode) -> io::Result<File> {
        let (dir, name) = self.entry(path)?;
        let fd = rustix::fs::openat(&dir, name, flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode).map_err(
            |e| match e {
                rustix::io::Errno::LOOP => wrong_kind("is a symlink (the store never follows it)"),
                rustix::io::Errno::NXIO => wrong_kind("is a socket or a FIFO, not a regular file"),
                other => other.into(),
            },
        )?;
        Ok(File::from(fd))
    }
}

impl Storage for RootedStorage {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = match self.at(path)? {
            At::Root => return Ok(()),
            At::Entry { dir, name } => (dir, name),
        };
        match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let stat = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        match kind_of(FileType::from_raw_mode(stat.st_mode)) {
            EntryKind::Dir => Ok(()),
            other => Err(wrong_kind(&format!(
                "is {}, not a directory (the store never follows it)",
                other.describe()
            ))),
        }
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let file = self.open_file(
            path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
            Mode::from_raw_mode(0o600),
        )?;
        Ok(Box::new(OsFile::new(file, self.overwrites.clone())))
    }

    fn reopen_empty(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        // Non-blocking: a FIFO in its place fails (ENXIO) instead of waiting for a reader.
        let file = self.open_file(
            path,
            OFlags::WRONLY | OFlags::TRUNC | OFlags::NONBLOCK,
            Mode::empty(),
        )?;
        crate::storage::regular_writer(file, self.overwrites.clone())
    }

    fn reopen(&self, path: &Path) -> io::Result<(Box<dyn WriteFile>, u64)> {
        // Non-blocking, as above; not emptied: its bytes and size stay.
        let file = self.open_file(path, OFlags::WRONLY | OFlags::NONBLOCK, Mode::empty())?;
        crate::storage::sized_writer(file, self.overwrites.clone())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = self.entry(from)?;
        let (to_dir, to_name) = self.entry(to)?;
        Ok(rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name)?)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = self.entry(from)?;
        let (to_dir, to_name) = self.entry(to)?;
        Ok(rustix::fs::linkat(
            &from_dir,
            from_name,
            &to_dir,
            to_name,
            AtFlags::empty(),
        )?)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = self.entry(path)?;
        Ok(rustix::fs::unlinkat(&dir, name, AtFlags::empty())?)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        Ok(rustix::fs::fsync(self.open_dir(dir)?)?)
    }

    fn read(&self, path: &Path, limit: u64) -> io::Result<ReadOutcome> {
        // O_NONBLOCK: opening a FIFO must not wait for a writer; the type is then
        // checked on the open descriptor.
        let file = self.open_file(path, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())?;
        crate::storage::read_opened(file, limit)
    }

    fn open_stream(&self, path: &Path, limit: u64) -> io::Result<crate::storage::StreamOutcome> {
        let file = self.open_file(path, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())?;
        crate::storage::stream_opened(file, limit)
    }

    fn list(&self, dir: &Path, sizes: bool) -> io::Result<Vec<Entry>> {
        let handle = self.open_dir(dir)?;
        let mut entries = Vec::new();
        for entry in rustix::fs::Dir::read_from(&handle)? {
            let entry = entry?;
            let name = OsString::from(
                std::os::unix::ffi::OsStrExt::from_bytes(entry.file_name().to_bytes()) as &OsStr,
            );
            if name == "." || name == ".." {
                continue;
            }
            let mut kind = kind_of(entry.file_type());
            let mut len = 0;
            if sizes || kind == EntryKind::Other {
                let stat = rustix::fs::statat(&handle, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)?;
                kind = kind_of(FileType::from_raw_mode(stat.st_mode));
                len = stat.st_size as u64;
            }
            entries.push(Entry::new(name, kind, len));
        }
        Ok(entries)
    }

    fn lock(&self, path: &Path, mode: LockMode, wait: bool) -> io::Result<Option<Box<dyn HeldLock>>> {
        // An existing lock file is opened read-only (flock needs no more), so a store on
        // a read-only filesystem can still be read; a missing one is created 0600.
        let open = || match self.open_file(path, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.open_file(
                path,
                OFlags::RDWR | OFlags::CREATE | OFlags::NONBLOCK,
                Mode::from_raw_mode(0o600),
            ),
            other => other,
        };
        take_lock(open, mode, wait)
    }

    fn remove_held_lock(&self, path: &Path) -> io::Result<bool> {
        removed(self.remove_file(path))
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        let (dir, name) = match self.at(path) {
            Ok(At::Root) => return Ok(Some(EntryKind::Dir)),
            Ok(At::Entry { dir, name }) => (dir, name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(kind_of(FileType::from_raw_mode(stat.st_mode)))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        let fd: OwnedFd = match self.at(path)? {
            At::Root => rustix::fs::openat(&self.handle, ".", nofollow_dir(), Mode::empty())?,
            At::Entry { dir, name } => rustix::fs::openat(
                &dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| match e {
                rustix::io::Errno::LOOP => wrong_kind("is a symlink (the store never follows it)"),
                other => other.into(),
            })?,
        };
        Ok(rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))?)
    }
}
