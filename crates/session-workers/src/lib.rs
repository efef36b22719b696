//! The tokio workers of the HL7 session store: retention cleanup, and submission of
//! completed sessions to the REST API.
//!
//! Both work only through `session-store`'s typed store ([`SessionStore`](session_store::SessionStore)),
//! deciding from a plain read and changing sessions by its locked read-modify-write, so
//! they never race an operator's `sessionctl` or each other, never drop fields, never
//! touch a file from a newer build, and apply the store's retention to every file.
//!
//! - [`cleanup`]: expired sessions whose submission is `submitted` or `ignored` go to
//!   the trash; undelivered ones are kept (and reported) unless configured otherwise;
//!   old trash and migration backups are purged.
//! - [`submit`]: `pending -> inFlight` (attempt counted, idempotency key fixed) is saved
//!   *before* the POST, the outcome after it; retryable failures back off with full
//!   jitter and honour `Retry-After`; at most N requests are in flight; shutdown leaves
//!   unfinished work `inFlight`, resumed with the same key at the next start.
//!
//! ```
//! use session_workers::cleanup::{cleanup_once, CleanupConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = session_store::SessionStore::open(dir.path(), Default::default()).unwrap();
//! let summary = cleanup_once(&store, &CleanupConfig::default()).unwrap();
//! assert_eq!((summary.expired, summary.purged), (0, 0));
//! ```
#![warn(missing_docs)]

pub mod cleanup;
pub mod clock;
pub mod events;
pub mod submit;

pub use clock::{Clock, ManualClock, SystemClock};
pub use events::WorkerEvent;
