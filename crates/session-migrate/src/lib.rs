//! Schema versions of HL7 capture sessions: reading any version, writing the current one.
//!
//! Session files come in three versions (legacy, `1.0.0` from the Electron app, and
//! `2.0.0`, this store's). This crate is where versions meet bytes:
//!
//! - [`decode`] reads `_metadata.version`, deserializes exactly that version's type from
//!   `session-model` and runs the `From`/`TryFrom` chain up to the current
//!   [`Session`](session_model::Session). A newer version is the distinct
//!   [`DecodeError::NewerVersion`], carrying the raw bytes so callers leave them alone.
//! - [`encode`] is the only function that produces bytes for disk.
//! - [`load`], [`save`], [`create`], [`update`] and [`delete`] put the codec on top of
//!   `session-fs`.
//!
//! ```
//! use session_migrate::{decode, encode, SchemaVersion};
//!
//! let legacy = br#"{"id": "session-9", "startTime": 1000, "isComplete": true,
//!     "elements": [{"id": "e", "timestamp": 1000, "direction": "device-to-pc", "type": "start",
//!                   "hexData": "05", "rawBytes": {"type": "Buffer", "data": [5]}}],
//!     "messages": []}"#;
//! let decoded = decode(legacy).unwrap();
//! assert_eq!(decoded.from, SchemaVersion::LEGACY);
//! let bytes = encode(&decoded.session).unwrap();
//! assert_eq!(decode(&bytes).unwrap().from, SchemaVersion::V2_0_0);
//! assert_eq!(decode(&bytes).unwrap().session, decoded.session);
//! ```
//!
//! # The store-wide run
//!
//! [`migrate`] upgrades every outdated file in parallel, keeping each original in
//! `.backup/<run>/` (durably, before the rewrite); [`rollback`] puts a run's originals
//! back. Current files are not rewritten, newer ones are skipped untouched, undecodable
//! ones are counted and left for recovery.
//!
//! # Adding a schema version
//!
//! Say `2.1.0` adds an optional `operatorNote`. Four steps, and nothing else changes:
//!
//! 1. **One new module** in `session-model` (`src/v2_1.rs`) with the new type, a copy of
//!    the current one plus the new field, and `impl session_migrate::Version` for it
//!    (here, beside the chain) with `NAME = "2.1.0"`. Rename the old current type to
//!    `SessionV2_0` and freeze it: released versions are never edited.
//! 2. **One `From` (or `TryFrom`) impl** from the previous version, beside the new type.
//!    It decides what the new field starts as and sets `_metadata.version`.
//! 3. **One line**: append the type to the chain in `decode_chain`
//!    (`{ SessionV1, SessionV2_0, SessionV2_1 }`) and point `CURRENT_VERSION` at it.
//! 4. **One fixture with its snapshot**: a file of the new version under
//!    `tests/fixtures/`, decoded in `tests/fixtures.rs`; review the new snapshot.
//!
//! `tests/adding_a_version.rs` follows exactly these steps with a test-only `2.1.0`.
//! `tests/current_version.rs` round-trips a `2.0.0` file byte for byte, so changing the
//! current type without adding a version fails CI.
#![warn(missing_docs)]

mod chain;
mod codec;
mod exact;
mod run;
mod stored;
mod version;

pub use codec::{
    Chained, DecodeError, DecodeOptions, Decoded, EncodeError, decode, decode_stored, decode_with, encode,
};
pub use run::{
    Failure, MigrateOptions, MigrateReport, NotRestored, RollbackError, RollbackOptions, RollbackReport,
};
pub use stored::{SessionStore, StoreError, StoredEntry, refused};
pub use version::{SchemaVersion, Version};

#[doc(hidden)]
pub use codec::__private;
