//! Schema versions of HL7 capture sessions, and the typed store other teams use.
//!
//! Session files come in three versions (legacy, `1.0.0` from the Electron app, and
//! `2.0.0`, this store's). This crate is where versions meet bytes:
//!
//! - [`SessionStore`]: the one typed handle. Built once with its [`DecodeOptions`]
//!   (retention for legacy files), it offers `load`, `save`, `create`, `update` (a
//!   locked read-modify-write), `delete`, `entries` (every file already sorted into
//!   valid, newer-version or damaged), and the store-wide `migrate` and `rollback`.
//! - [`decode`] reads `_metadata.version`, deserializes exactly that version's type from
//!   `session-model` and runs the `From`/`TryFrom` chain up to the current one. A newer
//!   version is the distinct [`DecodeError::NewerVersion`]. What could not be written
//!   back exactly (an unknown field named like a known one, an inexact number) is
//!   refused. Errors name the version, the path and the kind of problem, never a value.
//! - [`encode`] is the only producer of bytes for disk, and reads its output back.
//!
//! ```
//! use session_migrate::{DecodeOptions, SessionStore, decode};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SessionStore::open(dir.path(), DecodeOptions::default().retention_days(90)).unwrap();
//! let legacy = br#"{"id": "session-9", "startTime": 1000, "isComplete": true, "messages": []}"#;
//! let mut session = decode(legacy).unwrap().session;
//! store.save(&mut session).unwrap();
//! let loaded = store.load(&session.id).unwrap().unwrap();
//! assert_eq!(loaded.from.as_str(), "2.0.0");
//! assert_eq!(loaded.session.metadata.revision, 1);
//! ```
//!
//! # Adding a schema version
//!
//! Say `2.1.0` adds an optional `operatorNote`. Released versions are never edited;
//! three files change, and `tests/adding_a_version.rs` follows these steps exactly with
//! a test-only `2.1.0` (there in one file), then runs decode, encode, the store-wide
//! migrate and rollback through it.
//!
//! 1. **One new module** in `session-model`, `src/v2_1.rs`: `SessionV2_1`, a copy of
//!    `SessionV2_0` and of its `impl` block (the rules the workers call: `is_expired`,
//!    `is_sendable`, `messages`...) plus the new field, and beside it its version, its
//!    place in the order and what a store needs of it:
//!    `impl Version for SessionV2_1 { const SCHEMA: SchemaVersion = SchemaVersion::new("2.1.0", 3); }`
//!    and `impl Document for SessionV2_1` (six accessors, as `SessionV2_0`'s).
//! 2. **One `From` (or `TryFrom`) impl** from `SessionV2_0`, in the same module: it
//!    decides what the new field starts as and sets `_metadata.version`.
//! 3. **Registration**: in `session-model`'s `lib.rs`, `mod v2_1;` and
//!    `pub type Session = SessionV2_1;` (the alias moves; `SessionV2_0`,
//!    `SchemaVersion::V2_0_0` and everything released keep their meaning); in this
//!    crate's `codec.rs`, append the type to the chain:
//!    `pub struct Current -> Session { SessionV1, SessionV2_0, SessionV2_1 }`.
//! 4. **One fixture with its snapshot**: a file of the new version under
//!    `tests/fixtures/`, decoded in `tests/fixtures.rs`.
//!
//! Files touched: 3 of code (`v2_1.rs` new, two lines in `session-model/src/lib.rs`,
//! one line in `codec.rs`) and 2 of tests (the fixture, its snapshot). Snapshots that
//! show a stored document's `_metadata.version` will name `2.1.0`: review them.
//! `tests/current_version.rs` round-trips a current file byte for byte, so changing a
//! released type instead of adding a version fails CI.
#![warn(missing_docs)]

mod chain;
mod codec;
mod exact;
mod run;
mod schema;
mod stored;
mod version;

pub use codec::{
    Chained, Current, DecodeError, DecodeOptions, Decoded, EncodeError, decode, decode_stored, decode_with,
    encode, encode_with,
};
pub use run::{
    Failure, MigrateOptions, MigrateReport, NotRestored, RollbackError, RollbackOptions, RollbackReport,
};
pub use schema::{Document, Schema};
pub use stored::{SessionStore, StoreError, StoredEntry, refused};
pub use version::{SchemaVersion, Version};

#[doc(hidden)]
pub use codec::__private;
