//! The lab station's view of an HL7 session store: what lists, filters, `status` and a
//! search need, at the cost of what they return.
//!
//! - [`SessionRow`] is one session as a list shows it (never its messages), made from a
//!   decoded session or, for a newer build's file, from the fields that look familiar.
//! - [`Tally`] counts what `status` reports, and can take a row away again, so that a
//!   long-lived count follows a changing store without a recount.
//! - [`SessionIndex`] keeps every session's row in memory (packed: 64 MiB holds
//!   100,000), in start order and per analyzer, with a [`Tally`] beside: a [`ListQuery`]
//!   filters, sorts and pages it at once. It is derived state, never the truth: built
//!   from the files, fed each change (or re-read from its file), rebuilt when changes may
//!   have been missed.
//! - [`search`] reads the messages of the sessions a query passes, newest first, on a
//!   few threads, until a deadline or a [`Cancel`].
//! - [`hl7::messages`] reads a session's messages for a person: segments and fields
//!   named, escapes decoded, and patient, sample and results at a glance.
//!
//! ```
//! use session_station::{ListQuery, SessionIndex, SortKey};
//! use session_store::{DecodeOptions, Session, SessionId, SessionStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = SessionStore::open(dir.path(), DecodeOptions::default())?;
//! for n in 1..=3 {
//!     let mut session = Session::new(SessionId::new(format!("s-{n}"))?, 1_000 * n, 30)
//!         .with_addresses("10.0.0.5", "10.0.0.9");
//!     store.save(&mut session)?;
//! }
//! let index = SessionIndex::new();
//! index.rebuild(&store)?;
//! let newest_first = index.page(&ListQuery {
//!     sort: SortKey::Start,
//!     descending: true,
//!     limit: 2,
//!     ..ListQuery::default()
//! });
//! assert_eq!(newest_first.total, 3);
//! let ids: Vec<&str> = newest_first.rows.iter().map(|r| r.id.as_str()).collect();
//! assert_eq!(ids, ["s-3", "s-2"]);
//! let (counts, _files) = index.counts(&store, 5_000, 900_000)?;
//! assert_eq!(counts.total, 3);
//! # Ok(())
//! # }
//! ```
//!
//! # Where it sits
//!
//! Above `session-store`, beside the workers: it reads the store and never writes it.
//! The JSON a tool prints of these types is that tool's own (none derives `Serialize`).
#![warn(missing_docs)]

pub mod hl7;
mod index;
mod row;
mod search;
mod tally;

pub use index::{ListQuery, Page, SessionIndex, SortKey};
pub use row::{SessionRow, natural_cmp};
pub use search::{Cancel, Found, search};
pub use tally::{Attention, Counted, FAILED_NAMED, Failed, FileProblems, SessionCounts, Tally, Waiting};
