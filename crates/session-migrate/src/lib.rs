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
//!    `SessionV2_1` and of its constructor-and-rules `impl` block (`new`, the `with_*`
//!    methods, `from_v1`, `is_expired`, `is_sendable`, `messages`...) plus the new
//!    field (`new` sets it to its default; `from_v1` takes one step more:
//!    `Self::try_from(SessionV2_1::from_v1(v1)?)`), its `SESSION_FIELDS`, and beside it
//!    its version and place in the order:
//!    `impl Version for SessionV2_2 { const SCHEMA: SchemaVersion = SchemaVersion::new("2.2.0", 4);
//!    fn stated_version(&self) -> Option<&str> { Some(&self.metadata.version) } }`
//!    (`stated_version` lets a stored document in this version be decoded in one parse;
//!    without it every document is skimmed for `_metadata` first, which is slower, not
//!    wrong).
//! 2. **One `From` (or `TryFrom`) impl** from `SessionV2_1`, in the same module: it
//!    decides what the new field starts as, sets `_metadata.version`, and refuses an
//!    unknown field of the old version named like the new one (`check_collisions`).
//! 3. **Registration**, three files: in `session-model`'s `document.rs`,
//!    `use crate::v2_2::SessionV2_2;` and `store_document!(SessionV2_2);`; in its
//!    `lib.rs`, `mod v2_2;`, its exports and `pub type Session = SessionV2_2;` (the
//!    alias moves; `SessionV2_1`, `SchemaVersion::V2_1_0` and everything released keep
//!    their meaning); in this crate's `codec.rs`, import `SessionV2_1` and append it
//!    to the chain: `pub struct Current -> Session { SessionV1, SessionV2_0, SessionV2_1, Session }`.
//! 4. **One fixture**: a file of the new version under `tests/fixtures/`, which
//!    `tests/current_version.rs` round-trips byte for byte, and the README's "current
//!    version is" line (a test holds the README to it).
//! 5. **Review the snapshots that name the stored version**, and only the version
//!    should have changed in them.
//!
//! Tried literally for a `2.2.0` adding an optional `analyzerModel` (on 2026-12-05):
//! steps 1 to 3 touched 4 files of library code (`v2_2.rs` new; `document.rs` and
//! `lib.rs` in `session-model`; `codec.rs` here) and no other crate, consumer code
//! included, because sessions are built with `Session::new` and the document types are
//! `#[non_exhaustive]`. The only other compile errors were three hand-made version
//! chains (`session-model`'s example and two of its tests), which now call
//! `Session::from_v1` instead. The tests then
//! asked for step 4 (the round-trip of the current fixture and the README's line) and
//! 18 snapshots changed, each by its version string only, checked by a diff that
//! ignores it (`session-migrate`: `fixtures` (11, one per app fixture and the corrupt
//! ones), `current_version`; `sessionctl`: `basics` (5), `first_contact` (2),
//! no other). No test, example or error text names the current version by its
//! number; `SchemaVersion::CURRENT` and `CURRENT_VERSION` say "the current version".
#![warn(missing_docs)]

mod chain;
mod codec;
mod exact;
mod run;
mod schema;
mod upgrade;
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
pub use upgrade::Upgrade;
pub use version::{SchemaVersion, Version};

#[doc(hidden)]
pub use codec::__private;
