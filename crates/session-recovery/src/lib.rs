//! Start-up recovery of the HL7 session store from interrupted writes and damaged files.
//!
//! One job: after a crash, a power cut or a bad file, bring the store directory back to
//! a state where every name is either a live session that decodes (or a newer build's
//! file, left alone) or lives in a dot-directory. [`recover`] runs before anything reads
//! or writes sessions, on an exclusive store handle (so it never races a writer still
//! filling a temp file). It deletes nothing: superseded copies go to `.trash/`, damaged
//! files to `.quarantine/` with a `<name>.why.json` sidecar. [`verify`] checks the same
//! things and changes nothing.
//!
//! ```
//! use session_fs::Store;
//! use session_store::{DecodeOptions, SessionStore};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("session-1.json"), b"{\"id\": \"sess").unwrap(); // torn
//! let exclusive = Store::options().exclusive().open(dir.path()).unwrap();
//! let store = SessionStore::new(exclusive, DecodeOptions::default());
//! let report = session_recovery::recover(&store).unwrap();
//! assert_eq!(report.quarantined, 1);
//! assert!(session_recovery::recover(&store).unwrap().is_clean()); // idempotent
//! assert_eq!(session_recovery::verify(&store).unwrap().problems, vec![]);
//! ```
#![warn(missing_docs)]

mod inspect;
mod recover;
mod report;

pub use recover::{
    RecoveryError, recover, recover_upgrading, recover_upgrading_summarized, recover_visiting, verify,
};
pub use report::{Action, Moved, Problem, RecoveryReport, VerifyReport};
