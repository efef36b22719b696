//! `2.1.0`: [`SessionV2_1`], and the `2.0.0` -> `2.1.0` upgrade.
//!
//! What capture needed that `2.0.0` could not say: that a session was cut off
//! ([`Interruption`]: when, and why). The element kinds capture adds (`nak`,
//! `fragment`, `stray`) are words of the shared vocabulary, which every version
//! already keeps as written, so they need no new element type.

use serde::{Deserialize, Serialize};

use crate::id::SessionId;
use crate::session::{Element, Metadata, SessionV2_0, UpgradeError, check_collisions};
use crate::submission::Submission;
use crate::vocabulary::UnknownFields;

/// The `_metadata.version` of this format.
pub const VERSION: &str = "2.1.0";

impl crate::Version for SessionV2_1 {
    const SCHEMA: crate::SchemaVersion = crate::SchemaVersion::new(VERSION, 3);

    fn stated_version(&self) -> Option<&str> {
        Some(&self.metadata.version)
    }
}

/// A session in the `2.1.0` format: `2.0.0` plus [`interrupted`](Self::interrupted).
/// Released: frozen, never edited (a change is a new version, see `session-migrate`'s
/// guide).
///
/// Built through [`SessionV2_1::new`] (and the `with_*` methods), never as a struct
/// literal outside this module: it is `#[non_exhaustive]`, so that the next version's
/// new field breaks no code that builds a `Session`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SessionV2_1 {
    /// The session id, also the file name.
    pub id: SessionId,
    /// The app's numeric session counter (`sessionId`).
    #[serde(rename = "sessionId", default, skip_serializing_if = "Option::is_none")]
    pub session_number: Option<u64>,
    /// When capture started, epoch milliseconds.
    pub start_time: u64,
    /// When capture ended, epoch milliseconds; absent while incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<u64>,
    /// The analyzer's address.
    #[serde(rename = "deviceIP", default, skip_serializing_if = "Option::is_none")]
    pub device_ip: Option<String>,
    /// The LIS's address.
    #[serde(rename = "lisIP", default, skip_serializing_if = "Option::is_none")]
    pub lis_ip: Option<String>,
    /// Whether the transmission ended with its end marker.
    pub is_complete: bool,
    /// Set when capture was cut off before the end marker: such a session keeps every
    /// element recorded and is never submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interruption>,
    /// The framed elements in capture order, each with its bytes once.
    pub elements: Vec<Element>,
    /// When retention ends, epoch milliseconds.
    pub persisted_until: u64,
    /// Delivery state.
    pub submission: Submission,
    /// Store metadata.
    #[serde(rename = "_metadata")]
    pub metadata: Metadata,
    /// Fields this build does not know.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// Why and when a capture was cut off. Built with [`Interruption::new`] or
/// [`Interruption::lis_closed`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Interruption {
    /// When it was cut off (or, after a crash, when recovery found it), epoch ms.
    pub at: u64,
    /// Why.
    pub reason: InterruptionReason,
    /// Fields this build does not know.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// The interruption field that says how many bytes the LIS never received. `2.1.0`
/// carries it as an extra field of `interrupted`, which every `2.1.0` reader keeps.
const LIS_MISSED_BYTES: &str = "lisMissedBytes";

impl Interruption {
    /// Cut off at `at` (epoch ms) for `reason`.
    pub fn new(at: u64, reason: InterruptionReason) -> Interruption {
        Interruption {
            at,
            reason,
            unknown: UnknownFields::new(),
        }
    }

    /// The LIS went away at `at`, and `missed` bytes the analyzer sent after that never
    /// reached it.
    pub fn lis_closed(at: u64, missed: u64) -> Interruption {
        let mut unknown = UnknownFields::new();
        unknown.insert(LIS_MISSED_BYTES.to_owned(), serde_json::Value::from(missed));
        Interruption {
            at,
            reason: InterruptionReason::LisClosed,
            unknown,
        }
    }

    /// How many bytes the LIS never received, for a `lisClosed` interruption.
    pub fn lis_missed_bytes(&self) -> Option<u64> {
        self.unknown
            .get(LIS_MISSED_BYTES)
            .and_then(serde_json::Value::as_u64)
    }
}

/// Why a capture was cut off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum InterruptionReason {
    /// `connectionClosed`: a side closed the connection before the end marker.
    ConnectionClosed,
    /// `restarted`: the analyzer sent a new start marker before the end marker.
    Restarted,
    /// `unframed`: bytes that arrived outside any session, kept as a session of their own.
    Unframed,
    /// `shutdown`: the capture process was stopped (SIGINT, SIGTERM).
    Shutdown,
    /// `crash`: the capture process died; recovery found the session open.
    Crash,
    /// `lisClosed`: the LIS closed, reset or refused its side while the session was
    /// open: what the analyzer sent after that never reached the LIS (how much:
    /// [`Interruption::lis_missed_bytes`]). The session may still be complete. A
    /// `2.1.0` reader that predates it keeps it as [`InterruptionReason::Other`].
    LisClosed,
    /// A value this build does not know, kept as written.
    Other(String),
}

impl From<String> for InterruptionReason {
    fn from(value: String) -> Self {
        match value.as_str() {
            "connectionClosed" => Self::ConnectionClosed,
            "restarted" => Self::Restarted,
            "unframed" => Self::Unframed,
            "shutdown" => Self::Shutdown,
            "crash" => Self::Crash,
            "lisClosed" => Self::LisClosed,
            _ => Self::Other(value),
        }
    }
}

impl From<InterruptionReason> for String {
    fn from(value: InterruptionReason) -> Self {
        match value {
            InterruptionReason::ConnectionClosed => "connectionClosed".into(),
            InterruptionReason::Restarted => "restarted".into(),
            InterruptionReason::Unframed => "unframed".into(),
            InterruptionReason::Shutdown => "shutdown".into(),
            InterruptionReason::Crash => "crash".into(),
            InterruptionReason::LisClosed => "lisClosed".into(),
            InterruptionReason::Other(other) => other,
        }
    }
}

impl std::fmt::Display for InterruptionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from(self.clone()))
    }
}

impl SessionV2_1 {
    /// A session as capture opens it: started at `start_time` (epoch ms), incomplete,
    /// nothing captured yet, pending submission, kept `retention_days` days after its
    /// start. Never saved yet: the store stamps revision and save time.
    ///
    /// ```
    /// use session_model::{Direction, Element, ElementKind, Session, SessionId};
    ///
    /// let id = SessionId::new("session-1").unwrap();
    /// let session = Session::new(id, 1_700_000_000_000, 90)
    ///     .with_addresses("10.0.0.5", "10.0.0.9")
    ///     .with_elements(vec![Element::new(1_700_000_000_001, Direction::DeviceToPc,
    ///         ElementKind::Message, b"MSH|^~\\&|A|B\r".to_vec())])
    ///     .completed_at(1_700_000_000_002);
    /// assert!(session.is_complete);
    /// assert_eq!(session.message_count(), 1);
    /// ```
    pub fn new(id: SessionId, start_time: u64, retention_days: u32) -> Self {
        SessionV2_1 {
            id,
            session_number: None,
            start_time,
            end_time: None,
            device_ip: None,
            lis_ip: None,
            is_complete: false,
            interrupted: None,
            elements: Vec::new(),
            persisted_until: crate::v1::kept_until(start_time, retention_days),
            submission: Submission::pending(),
            metadata: Metadata::new(VERSION, retention_days),
            unknown: UnknownFields::new(),
        }
    }

    /// A `1.0.0` session taken up every step to this version: for code that holds a
    /// `SessionV1` and no codec (`session-migrate`'s `decode` does this for bytes). The
    /// next version's copy of this block takes one step more.
    pub fn from_v1(v1: crate::SessionV1) -> Result<Self, UpgradeError> {
        Self::try_from(SessionV2_0::try_from(v1)?)
    }

    /// With the capture tool's session counter.
    pub fn with_session_number(mut self, number: u64) -> Self {
        self.session_number = Some(number);
        self
    }

    /// With the analyzer's and the LIS's addresses.
    pub fn with_addresses(mut self, device_ip: impl Into<String>, lis_ip: impl Into<String>) -> Self {
        self.device_ip = Some(device_ip.into());
        self.lis_ip = Some(lis_ip.into());
        self
    }

    /// With these framed elements, in capture order.
    pub fn with_elements(mut self, elements: Vec<Element>) -> Self {
        self.elements = elements;
        self
    }

    /// Ended with its end marker at `end_time` (epoch ms).
    pub fn completed_at(mut self, end_time: u64) -> Self {
        self.end_time = Some(end_time);
        self.is_complete = true;
        self
    }

    /// Cut off before its end marker.
    pub fn interrupted_by(mut self, interruption: Interruption) -> Self {
        self.interrupted = Some(interruption);
        self
    }

    /// The one expiry rule: expired once `persistedUntil <= now`.
    pub fn is_expired(&self, now: u64) -> bool {
        self.persisted_until <= now
    }

    /// The HL7 messages as text, as the app listed and submitted them.
    ///
    /// Derived from the message elements, unless the original file held a different
    /// list, which is then kept verbatim under `messages` and returned instead.
    pub fn messages(&self) -> Vec<String> {
        crate::session::messages_of(&self.unknown, &self.elements)
    }

    /// The messages as the analyzer sent them, as an `.hl7` file holds them: one after
    /// the other, each ended by a CR. Each message element's exact bytes (UTF-8 or not);
    /// for a session with no message element (an app file that kept only its text
    /// list), that list.
    pub fn hl7_file(&self) -> Vec<u8> {
        let elements: Vec<&[u8]> = self
            .elements
            .iter()
            .filter(|e| e.kind == crate::ElementKind::Message)
            .map(|e| e.data.0.as_slice())
            .collect();
        let texts = if elements.is_empty() {
            self.messages()
        } else {
            Vec::new()
        };
        let mut file = Vec::new();
        for message in elements.into_iter().chain(texts.iter().map(|t| t.as_bytes())) {
            file.extend_from_slice(message);
            if message.last() != Some(&b'\r') {
                file.push(b'\r');
            }
        }
        file
    }

    /// Kept for `retention_days` from its start, as if it had been stored under that
    /// retention (an operator applying a changed retention to stored sessions):
    /// `persistedUntil` and the metadata's `retentionDays` both change.
    pub fn retain_for(&mut self, retention_days: u32) {
        self.metadata.retention_days = retention_days;
        self.persisted_until = crate::v1::kept_until(self.start_time, retention_days);
    }

    /// Whether the worker may send it at `now`: complete, not interrupted, pending and
    /// due. An incomplete or interrupted session is never sent.
    pub fn is_sendable(&self, now: u64) -> bool {
        self.is_complete && self.interrupted.is_none() && self.submission.is_due(now)
    }

    /// [`SessionV2_1::is_sendable`] when no backoff is longer than `cap_ms` (a retry
    /// stored further ahead than the cap, by a clock that went back, is due now) and,
    /// with `lis_closed`, a complete session the LIS did not wholly receive is
    /// delivered too, its interruption with it (see [`SessionV2_1::may_deliver`]).
    pub fn is_sendable_capped(&self, now: u64, cap_ms: u64, lis_closed: bool) -> bool {
        self.may_deliver(lis_closed) && self.submission.is_due_capped(now, cap_ms)
    }

    /// Whether the session is one to deliver at all: complete, and not interrupted,
    /// unless the interruption is `lisClosed` and `lis_closed` says to deliver those.
    pub fn may_deliver(&self, lis_closed: bool) -> bool {
        self.is_complete
            && match &self.interrupted {
                None => true,
                Some(i) => lis_closed && i.reason == InterruptionReason::LisClosed,
            }
    }

    /// Whether `other` delivers exactly what this session delivers: the fields of the
    /// submission body (id, start and end, messages, addresses). Metadata, submission
    /// state and unknown fields do not count.
    pub fn same_delivery_content(&self, other: &SessionV2_1) -> bool {
        self.id == other.id
            && self.start_time == other.start_time
            && self.end_time == other.end_time
            && self.device_ip == other.device_ip
            && self.lis_ip == other.lis_ip
            && self.messages() == other.messages()
    }

    /// How many HL7 messages the session holds: `messages().len()`, counted without
    /// making the messages' text (a list of every session counts them all).
    pub fn message_count(&self) -> usize {
        crate::session::message_count_of(&self.unknown, &self.elements)
    }

    /// The newest MSH-7 (the time a message was made, by the analyzer's clock) among
    /// the analyzer's messages, epoch ms: evidence of the time, never proof.
    pub fn newest_message_time(&self) -> Option<u64> {
        self.elements
            .iter()
            .filter(|e| e.kind == crate::ElementKind::Message)
            .filter_map(|e| crate::hl7_time::msh7(&e.data.0).and_then(crate::hl7_time::hl7_timestamp_ms))
            .max()
    }
}

/// The field names `2.1.0` uses at the top level of a session.
pub const SESSION_FIELDS: &[&str] = &[
    "id",
    "sessionId",
    "startTime",
    "endTime",
    "deviceIP",
    "lisIP",
    "isComplete",
    "interrupted",
    "elements",
    "persistedUntil",
    "submission",
    "_metadata",
];

impl TryFrom<SessionV2_0> for SessionV2_1 {
    type Error = UpgradeError;
    fn try_from(s: SessionV2_0) -> Result<Self, Self::Error> {
        // A 2.0.0 field nobody knew, named like the new one, could be neither kept
        // beside it nor dropped.
        check_collisions(&s.unknown, SESSION_FIELDS, || "at the top level".into())?;
        let mut metadata = s.metadata;
        metadata.version = VERSION.into();
        Ok(SessionV2_1 {
            id: s.id,
            session_number: s.session_number,
            start_time: s.start_time,
            end_time: s.end_time,
            device_ip: s.device_ip,
            lis_ip: s.lis_ip,
            is_complete: s.is_complete,
            interrupted: None,
            elements: s.elements,
            persisted_until: s.persisted_until,
            submission: s.submission,
            metadata,
            unknown: s.unknown,
        })
    }
}
