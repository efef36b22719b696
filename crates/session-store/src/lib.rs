//! The typed store of HL7 capture sessions: where a team that keeps sessions starts.
//!
//! One handle, [`SessionStore`], built once with its [`DecodeOptions`] (retention for
//! legacy files), over a directory of one JSON file per session:
//!
//! - `save` and `create` write durably (temp file, `fsync`, rename, directory `fsync`)
//!   and stamp each copy with a revision; `load` reads any known schema version and
//!   upgrades it to the current one; `entries` sorts every file into valid,
//!   newer-version or damaged, one file at a time.
//! - `update` is a locked read-modify-write, safe against other threads and processes;
//!   `retry` and `ignore` are the submission changes every front end uses.
//! - `delete` moves a session to the trash, and a damaged file to `.quarantine/`: the
//!   store never destroys what it cannot read.
//! - `migrate` and `rollback` upgrade a whole store and undo that (`session-migrate`).
//!
//! A file a newer build wrote is never rewritten, moved or deleted.
//!
//! ```
//! use session_store::{DecodeOptions, Direction, Element, ElementKind, Session, SessionId, SessionStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = SessionStore::open(dir.path(), DecodeOptions::default().retention_days(90))?;
//!
//! // A session built in code (capture builds them the same way).
//! let id = SessionId::new("analyzer-7-0001")?;
//! let message = b"MSH|^~\\&|ANALYZER|LAB|LIS|HOSP|20261205120000||ORU^R01|1|P|2.5\r".to_vec();
//! let mut session = Session::new(id.clone(), 1_764_936_000_000, 90)
//!     .with_addresses("10.0.0.5", "10.0.0.9")
//!     .with_elements(vec![Element::new(1_764_936_000_100, Direction::DeviceToPc, ElementKind::Message, message)])
//!     .completed_at(1_764_936_000_200);
//! store.save(&mut session)?;
//!
//! // Loading upgrades whatever version is on disk; this one is current already.
//! let loaded = store.load(&id)?.expect("just saved");
//! assert_eq!(loaded.session.message_count(), 1);
//!
//! // Listing reads one file at a time.
//! assert_eq!(store.entries()?.count(), 1);
//!
//! // A locked read-modify-write; `retry` and `ignore` are two of them.
//! let ignored = store.ignore(&id)?;
//! assert!(ignored.submission.status.is_settled());
//!
//! // Deleting moves the file to the trash, which retention empties later.
//! assert!(store.delete(&id)?);
//! assert!(store.load(&id)?.is_none());
//! # Ok(())
//! # }
//! ```
//!
//! # Where it sits
//!
//! Above `session-fs` (bytes, durability, locks; no versions) and `session-migrate`
//! (the versions, the `From` chain, store-wide migration), below everything that keeps
//! sessions (`session-capture`, `session-recovery`, `session-workers`, `sessionctl`).
//! It re-exports what the example above needs, so a consumer depends on this crate
//! alone; the layers below stay available for what only they do.
#![warn(missing_docs)]

mod stored;

pub use stored::{RetentionApplied, SessionStore, StoreError, StoredEntry, refused};

pub use session_fs::{FsError, SaveOutcome, SaveStamp};
pub use session_migrate::{
    Chained, Current, DecodeError, DecodeOptions, Decoded, EncodeError, MigrateOptions, MigrateReport,
    RollbackError, RollbackOptions, RollbackReport, SchemaVersion, Upgrade, decode, decode_with, encode,
};
pub use session_model::{
    Direction, Element, ElementKind, Interruption, InterruptionReason, Session, SessionId, Submission,
    SubmissionStatus,
};
