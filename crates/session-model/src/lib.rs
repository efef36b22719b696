//! The versioned HL7 capture session model: pure types and rules, no I/O.
//!
//! A capture *session* records one transmission between a lab analyzer and a LIS: its
//! framed elements (`0x05` start, `0x06` ack, `0x04` end, HL7 messages), who talked to
//! whom, and whether it has been delivered to the REST API. This crate defines:
//!
//! - [`SessionId`], the validated id, and the only way an id becomes a file name;
//! - one type per document version: [`LegacySession`] (no `_metadata`), [`SessionV1`]
//!   (`1.0.0`, the Electron app's format), [`SessionV2_0`] (`2.0.0`) and [`Session`]
//!   (`2.1.0`, current: `2.0.0` plus the [`Interruption`] of a session capture cut off);
//! - the upgrades between them as `From`/`TryFrom` impls, each beside its target type
//!   and frozen once released: legacy -> `1.0.0` ([`LegacyUpgrade`]) -> `2.0.0` -> `2.1.0`;
//! - the rules: expiry ([`Session::is_expired`]) and the submission state machine
//!   ([`Submission`]).
//!
//! Fields a version does not know are kept in an `unknown` map and written back as
//! they were. Reading bytes and choosing the version is `session-migrate`'s job.
//!
//! ```
//! use session_model::{LegacySession, LegacyUpgrade, Session, SessionV1, SubmissionStatus};
//!
//! let legacy: LegacySession = serde_json::from_str(r#"{
//!     "id": "session-1", "startTime": 1000, "isComplete": true,
//!     "elements": [{"id": "e1", "timestamp": 1000, "direction": "device-to-pc",
//!                   "type": "start", "hexData": "05", "rawBytes": {"type": "Buffer", "data": [5]}}],
//!     "messages": []
//! }"#).unwrap();
//! let v1 = SessionV1::from(LegacyUpgrade { session: legacy, saved_at: 2000, retention_days: 30 });
//! let current = Session::from_v1(v1).unwrap();
//! assert!(current.interrupted.is_none());
//! assert_eq!(current.submission.status, SubmissionStatus::Pending);
//! assert_eq!(current.elements[0].data.0, vec![5]);
//! assert!(!current.is_expired(1000) && current.is_expired(1000 + 30 * 86_400_000));
//! ```
#![warn(missing_docs)]

mod app_element;
mod bytes;
mod document;
mod hl7_time;
mod id;
mod legacy;
mod redact;
mod session;
mod submission;
mod text;
mod v1;
mod v2_1;
mod version;
mod vocabulary;

pub use app_element::{AppElement, ElementBytesError};
pub use bytes::{Base64Bytes, NodeBuffer, decode_hex, encode_hex, hex_matches};
pub use document::Document;
pub use hl7_time::{hl7_timestamp_ms, msh7};
pub use id::{IdProblem, InvalidSessionId, MAX_ID_LEN, SessionId};
pub use legacy::LegacySession;
pub use session::{
    ELEMENT_FIELDS, Element, METADATA_FIELDS, Metadata, SESSION_FIELDS, SessionV2_0, UpgradeError,
};
pub use version::{SchemaVersion, Version};

/// The current version's type: what the store writes. A new version moves this alias
/// and nothing else of the released types.
pub type Session = SessionV2_1;

/// The `_metadata.version` every save writes.
pub const CURRENT_VERSION: &str = SchemaVersion::CURRENT.as_str();
pub use submission::{Delivery, Submission, SubmissionStatus, TransitionError, retry_due_at};
pub use text::{Printable, printable, printable_lines};
pub use v1::{
    AppSubmissionStatus, DAY_MS, DEFAULT_RETENTION_DAYS, LegacyUpgrade, MetadataV1, SessionV1,
    VERSION as V1_VERSION,
};
pub use v2_1::{
    Interruption, InterruptionReason, SESSION_FIELDS as V2_1_SESSION_FIELDS, SessionV2_1,
    VERSION as V2_1_VERSION,
};
pub use vocabulary::{Direction, ElementKind, UnknownFields};
