//! Schema versions of HL7 capture sessions: the `From` chain, and store-wide migration.
//!
//! Session files come in four versions (legacy, `1.0.0` from the Electron app, and
//! this store's `2.0.0` and `2.1.0`). This crate is where versions meet bytes; the
//! typed store that teams use is `session-store`, built on it.
//!
//! - [`decode`] reads `_metadata.version`, deserializes exactly that version's type from
//!   `session-model` and runs the `From`/`TryFrom` chain up to the current one. A newer
//!   version is the distinct [`DecodeError::NewerVersion`]. What could not be written
//!   back exactly (an unknown field named like a known one, an inexact number) is
//!   refused. Errors name the version, the path and the kind of problem, never a value.
//! - [`encode`] is the only producer of bytes for disk, and reads its output back.
//! - [`migrate_store`] upgrades every outdated file of a `session-fs` store (originals
//!   kept in `.backup/` first) and [`rollback_store`] puts back what nobody changed
//!   since; `session_store::SessionStore::migrate` and `rollback` call them.
//!
//! ```
//! use session_migrate::{SchemaVersion, decode, encode};
//!
//! let legacy = br#"{"id": "session-9", "startTime": 1000, "isComplete": true, "messages": []}"#;
//! let decoded = decode(legacy).unwrap();
//! assert_eq!(decoded.from, SchemaVersion::LEGACY);
//! let current = encode(&decoded.session).unwrap();
//! assert_eq!(decode(&current).unwrap().from, SchemaVersion::CURRENT);
//! ```
//!
//! # Adding a schema version
//!
//! Released versions are never edited. `2.1.0` (capture's interruptions) was added
//! exactly this way, and `tests/adding_a_version.rs` follows the same steps with a
//! test-only `9.9.9-guide` (there in one file, and named so that no real version
//! clashes with it), then runs decode, encode, the store-wide
//! migrate and rollback through it. Say `2.2.0` adds an optional `operatorNote`:
//!
//! 1. **One new module** in `session-model`, `src/v2_2.rs`: `SessionV2_2`, a copy of
//!    `SessionV2_1` and of its `impl` block (the rules the workers call: `is_expired`,
//!    `is_sendable`, `messages`...) plus the new field, and beside it its version, its
//!    place in the order and what a store needs of it:
//!    `impl Version for SessionV2_2 { const SCHEMA: SchemaVersion = SchemaVersion::new("2.2.0", 4); }`
//!    and, in `document.rs`, `store_document!(SessionV2_2);`.
//! 2. **One `From` (or `TryFrom`) impl** from `SessionV2_1`, in the same module: it
//!    decides what the new field starts as, sets `_metadata.version`, and refuses an
//!    unknown field of the old version named like the new one (`check_collisions`).
//! 3. **Registration**: in `session-model`'s `lib.rs`, `mod v2_2;`, its exports and
//!    `pub type Session = SessionV2_2;` (the alias moves; `SessionV2_1`,
//!    `SchemaVersion::V2_1_0` and everything released keep their meaning); in this
//!    crate's `codec.rs`, append the type to the chain:
//!    `pub struct Current -> Session { SessionV1, SessionV2_0, SessionV2_1, Session }`.
//! 4. **One fixture with its snapshot**: a file of the new version under
//!    `tests/fixtures/`, which `tests/current_version.rs` round-trips byte for byte.
//!
//! What `2.1.0` cost, measured: 4 files of library code (`v2_1.rs` new, 218 lines;
//! `lib.rs`, `document.rs` and `version.rs` in `session-model`, one line of `codec.rs`
//! here), 1 new fixture, 9 snapshots that name the stored version (reviewed: only the
//! version changed), and 8 test or example lines that had written `2.0.0` where they
//! meant "the current version" (now `SchemaVersion::CURRENT`). Code that builds a
//! `Session` through `From<SessionV1>` must now go through the chain (`decode`).
#![warn(missing_docs)]

mod chain;
mod codec;
mod exact;
mod run;
mod schema;
mod version;

pub use codec::{
    Chained, Current, DecodeError, DecodeOptions, Decoded, EncodeError, WithValues, declared, decode,
    decode_as, decode_stored, decode_stored_as, decode_with, encode, encode_streamed, encode_with,
    stamp_and_encode,
};
pub use run::{
    Failure, MigrateOptions, MigrateReport, NotRestored, RollbackError, RollbackOptions, RollbackReport,
    migrate_store, rollback_store,
};
pub use schema::{Document, Schema};
pub use version::{SchemaVersion, Version};

#[doc(hidden)]
pub use codec::__private;
