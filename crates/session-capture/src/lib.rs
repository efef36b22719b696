//! Records HL7 capture sessions as they happen, crash-safe element by element.
//!
//! Two parts, usable apart:
//!
//! - [`Framer`], the marker state machine: pure, fed directional byte chunks, it emits
//!   session events ([`Framed`]) by the app's rules (start `0x05` and end `0x04` from
//!   the device, ack `0x06` and nak `0x15` from the LIS, a `message` at each CR LF),
//!   and decides what the app left open so that no byte is missing from the record
//!   (see [`framing`]). [`MllpFramer`] does the same for HL7's MLLP framing (`0x0B`
//!   message `0x1C 0x0D`), and [`ConnectionFramer`] picks one per connection
//!   ([`Framing::Auto`]: by its first byte).
//! - [`Recorder`]: [`begin`](Recorder::begin) a capture (an id and `sessionId` that
//!   never repeat, across restarts and processes), [`append`](OpenCapture::append)
//!   elements (durable when it returns, one journal record and one `fsync` each, so a
//!   300-message session costs 300 small appends, not 300 rewrites), then
//!   [`complete`](OpenCapture::complete) or [`abandon`](OpenCapture::abandon) it, which
//!   folds the journal into an ordinary session file. [`recover_journals`] does the
//!   same for captures whose process died: every acknowledged element is kept, the
//!   session is `isComplete: false`, `interrupted` (reason `crash`) and never submitted;
//!   a torn last record (never acknowledged) is dropped and counted.
//!
//! - [`relay`] (feature `relay`, with tokio): the TCP relay between analyzers and the
//!   LIS built on both, recording each element before it forwards the bytes that
//!   complete it, in either framing.
//! - [`pcap`] (feature `pcap`): the sessions of a tcpdump or Wireshark capture, recorded
//!   through the same framers and recorder as if they had passed the relay.
//!
//! ```
//! use session_capture::{Endpoints, Framed, Framer, Markers, Recorder, Side};
//! use session_store::{DecodeOptions, SessionStore};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let recorder = Recorder::new(SessionStore::open(dir.path(), DecodeOptions::default()).unwrap());
//! let endpoints = Endpoints { device_ip: Some("10.0.0.7".into()), lis_ip: Some("10.0.0.1".into()) };
//! let mut framer = Framer::new(Markers::default());
//! let mut open = None;
//! let mut done = None;
//! for (side, chunk) in [(Side::Device, &b"\x05MSH|1\r"[..]), (Side::Device, b"\n"), (Side::Lis, b"\x06"), (Side::Device, b"\x04")] {
//!     for event in framer.feed(side, chunk, 1_000) {
//!         match event {
//!             Framed::Begin { at, .. } => open = Some(recorder.begin(&endpoints, at).unwrap()),
//!             Framed::Element(e) => open.as_mut().unwrap().append(&e).unwrap(),
//!             Framed::Complete { at } => done = Some(open.take().unwrap().complete(at).unwrap()),
//!             Framed::Abandon { at, reason } => { open.take().unwrap().abandon(at, reason).unwrap(); }
//!             _ => {} // `Framed` is non_exhaustive: a later framing may add events
//!         }
//!     }
//! }
//! let session = recorder.store().load(&done.unwrap()).unwrap().unwrap().session;
//! assert!(session.is_complete && session.interrupted.is_none());
//! assert_eq!(session.messages(), vec!["MSH|1\r\n".to_string()]);
//! assert_eq!(session.elements.len(), 4); // start, message, ack, end
//! ```
#![warn(missing_docs)]

mod fold;
pub mod framing;
mod kept;
mod mllp;
#[cfg(feature = "pcap")]
pub mod pcap;
mod record;
mod recorder;
#[cfg(feature = "relay")]
pub mod relay;

pub use fold::{JournalRecovery, recover_journals};
pub use framing::{
    Framed, FramedElement, Framer, MAX_ELEMENT, Markers, SESSIONS_BURST, SESSIONS_PER_SECOND, Side,
};
pub use mllp::{ConnectionFramer, END_BLOCK, Framing, MLLP_IDLE_MS, MllpFramer, START_BLOCK};
pub use recorder::{EndedCapture, Endpoints, OpenCapture, Recorder};

use session_fs::FsError;
use session_model::SessionId;
use session_store::StoreError;

/// What can go wrong while recording. Errors name the file or session, never bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// A filesystem call failed (a full disk...); the error names the file.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Writing the session file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A journal record could not be encoded.
    #[error("encoding a journal record: {0}")]
    Encode(#[from] serde_json::Error),
    /// No id could be made from the next number.
    #[error("numbering a capture: {0}")]
    Numbering(String),
    /// The capture could not be stored as a session (its id was taken meanwhile, or its
    /// journal did not read back): its journal is kept in `.quarantine/` unless it held
    /// no record at all.
    #[error("capture {id} was not stored as a session: {reason}")]
    KeptInQuarantine {
        /// The session.
        id: SessionId,
        /// Why.
        reason: &'static str,
    },
    /// A journal read differently the second time it was read while held locked (a
    /// disk returning other bytes): the fold stops, the journal stays for the next try.
    #[error("the journal's record {index} read differently the second time; nothing was folded")]
    JournalChanged {
        /// Which element record (from 0).
        index: usize,
    },
}
