//! Typed errors naming the file and the step that failed.

use std::fmt;
use std::io;
use std::path::PathBuf;

use session_model::SessionId;

/// The step of a store operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Creating the store or one of its dot-directories.
    CreateDir,
    /// Creating the temp file.
    CreateTemp,
    /// Writing the temp file.
    WriteTemp,
    /// `fsync` of the temp file.
    SyncTemp,
    /// Renaming the temp file over the live file.
    Rename,
    /// Linking a file under a second name (create, backup, quarantine).
    Link,
    /// `fsync` of a directory.
    SyncDir,
    /// Reading a file.
    Read,
    /// Listing a directory.
    List,
    /// Removing a name.
    Remove,
    /// Taking a lock.
    Lock,
    /// Opening the store or looking at one of its names.
    Open,
    /// Changing permissions.
    Chmod,
    /// Appending a record to a journal.
    Append,
    /// `fsync` of a journal after an append.
    SyncAppend,
    /// Reserving numbers from a counter.
    Reserve,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::CreateDir => "creating directory",
            Step::CreateTemp => "creating temp file",
            Step::WriteTemp => "writing temp file",
            Step::SyncTemp => "syncing temp file",
            Step::Rename => "renaming into place",
            Step::Link => "linking",
            Step::SyncDir => "syncing directory",
            Step::Read => "reading",
            Step::List => "listing",
            Step::Remove => "removing",
            Step::Lock => "locking",
            Step::Open => "opening",
            Step::Chmod => "changing permissions of",
            Step::Append => "appending to",
            Step::SyncAppend => "syncing",
            Step::Reserve => "reserving numbers in",
        })
    }
}

/// What can go wrong in `session-fs`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// A filesystem call failed (ENOSPC, EIO, EACCES...).
    #[error("{step} {}: {source}", path.display())]
    Io {
        /// The step that failed.
        step: Step,
        /// The file or directory it was working on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// `create` found the session already there.
    #[error("session {id} already exists")]
    AlreadyExists {
        /// The id.
        id: SessionId,
    },
    /// A file is over the read limit.
    #[error("{}: {size} bytes is over the {limit}-byte limit", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The caller's encoder failed; nothing was written.
    #[error("encoding session {id}: {source}")]
    Encode {
        /// The id.
        id: SessionId,
        /// The encoder's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An exclusive store lock was asked for without waiting, and another handle has the store.
    #[error("store {} is in use by another process", dir.display())]
    Busy {
        /// The store directory.
        dir: PathBuf,
    },
    /// A read-only open found no store directory.
    #[error("no store at {} (`sessionctl init` creates one)", dir.display())]
    NoStore {
        /// The directory that does not exist.
        dir: PathBuf,
    },
    /// A change was asked of a read-only handle.
    #[error("store {} was opened read-only", dir.display())]
    ReadOnly {
        /// The store directory.
        dir: PathBuf,
    },
    /// An operation that needs the store to itself was called on a shared handle.
    #[error("this operation needs an exclusive store handle (Store::options().exclusive())")]
    NotExclusive,
}

impl FsError {
    pub(crate) fn io(step: Step, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> FsError {
        let path = path.into();
        move |source| FsError::Io { step, path, source }
    }

    /// The operating system error kind, when this is an I/O failure.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            FsError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}
