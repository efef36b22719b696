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
//! assert_eq!(decoded.from, SchemaVersion::Legacy);
//! let bytes = encode(&decoded.session).unwrap();
//! assert_eq!(decode(&bytes).unwrap().from, SchemaVersion::V2_0_0);
//! assert_eq!(decode(&bytes).unwrap().session, decoded.session);
//! ```
#![warn(missing_docs)]

mod codec;
mod run;
mod stored;
mod version;

pub use codec::{
    DecodeError, DecodeOptions, Decoded, EncodeError, decode, decode_stored, decode_with, encode,
};
pub use run::{Failure, MigrateOptions, MigrateReport, RollbackError, RollbackReport, migrate, rollback};
pub use stored::{StoreError, create, delete, load, refused, save, update};
pub use version::SchemaVersion;
