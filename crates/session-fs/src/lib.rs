//! The atomic filesystem layer of the HL7 session store.
//!
//! One job: keep `<id>.json` files in one directory such that a crash, a power cut, a
//! full disk or a second process never leaves a torn, lost or interleaved file. It is
//! the only crate that touches session files, and it knows nothing of schema versions:
//! it stores bytes, reading only the `_metadata.revision` envelope field so that each
//! save can record a revision one higher than the copy it replaces.
//!
//! - [`Store::save`]: temp file (`O_EXCL`, 0600) -> write -> fsync -> rename -> fsync
//!   of the directory; Ok only after all of it.
//! - [`Store::create`]: the same, but linked into place so it can never replace a session.
//! - [`Store::delete`]: a durable move into `.trash/`.
//! - [`Store::lock`]: a per-session lock held across threads and processes for
//!   read-modify-write.
//! - [`Store::create_journal`]: an append-only journal for a session still being
//!   captured; each [`Journal::append`] is durable when it returns.
//! - [`Store::reserve_numbers`]: numbers that never repeat, across restarts and processes.
//! - [`Store::stamp_ms`], [`Store::check_clock`]: the store's clock (injected with
//!   [`OpenOptions::clock`]) and the evidence that says whether to trust it (see
//!   [`clock`]): nothing is purged or expired on one reading of a wall clock.
//! - Every filesystem call goes through the [`Storage`] seam.
//!
//! ```
//! use session_fs::Store;
//! use session_model::SessionId;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path().join("sessions")).unwrap();
//! let id: SessionId = "session-1".parse().unwrap();
//! store.create(&id, |stamp| {
//!     Ok::<_, std::io::Error>(format!(r#"{{"id":"session-1","_metadata":{{"revision":{}}}}}"#, stamp.revision).into_bytes())
//! }).unwrap();
//! assert!(store.create(&id, |_| Ok::<_, std::io::Error>(b"{}".to_vec())).is_err());
//! assert_eq!(store.list().unwrap(), vec![id.clone()]);
//! assert!(store.delete(&id).unwrap());
//! assert!(store.read(&id).unwrap().is_none());
//! ```
#![warn(missing_docs)]

pub mod clock;
mod clock_keeper;
mod counter;
mod error;
mod group_commit;
mod journal;
mod layout;
mod locks;
pub mod maintenance;
mod overwrite_sync;
mod rooted;
mod storage;
mod store;

pub use clock_keeper::ClockCheck;
pub use error::{FsError, Step};
pub use journal::{
    ClaimedJournal, JOURNAL_HEADER, Journal, JournalContents, JournalEnd, JournalRecords, MAX_RECORD_BYTES,
};
pub use maintenance::{exists_no_follow, live_session};
pub use rooted::RootedStorage;
pub use storage::{
    Entry, EntryKind, HeldLock, LockMode, OVERWRITE_CONTEXT, OsStorage, ReadOutcome, Storage, StreamOutcome,
    WriteFile,
};
pub use store::{
    Access, DEFAULT_MAX_FILE_SIZE, MovedFile, OpenOptions, SaveOutcome, SaveStamp, Scan, SessionGuard, Store,
    now_ms, stamp_of,
};
