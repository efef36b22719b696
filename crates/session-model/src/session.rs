//! `2.0.0`: [`SessionV2_0`], and the `1.0.0` -> `2.0.0` upgrade.

use serde::{Deserialize, Serialize};

use crate::app_element::{AppElement, ElementBytesError};
use crate::bytes::Base64Bytes;
use crate::id::SessionId;
use crate::submission::{Submission, SubmissionStatus};
use crate::v1::{AppSubmissionStatus, SessionV1};
use crate::vocabulary::{Direction, ElementKind, UnknownFields};

/// The `_metadata.version` of this format.
pub(crate) const VERSION: &str = "2.0.0";

impl crate::Version for SessionV2_0 {
    const SCHEMA: crate::SchemaVersion = crate::SchemaVersion::new(VERSION, 2);

    fn stated_version(&self) -> Option<&str> {
        Some(&self.metadata.version)
    }
}

/// A session in the `2.0.0` format. Released: frozen, never edited (a change is a new
/// version, see `session-migrate`'s guide).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionV2_0 {
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
    /// Whether the transmission ended.
    pub is_complete: bool,
    /// The framed elements in capture order, each with its bytes once.
    pub elements: Vec<Element>,
    /// When retention ends, epoch milliseconds.
    pub persisted_until: u64,
    /// Delivery state.
    pub submission: Submission,
    /// Store metadata.
    #[serde(rename = "_metadata")]
    pub metadata: Metadata,
    /// Fields this build does not know, including app fields that could not be
    /// derived again from the bytes (a `messages` list that differs from them).
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// One framed element of a `2.0.0` session (and of later versions). Built with
/// [`Element::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Element {
    /// The element id.
    pub id: String,
    /// When it was captured, epoch milliseconds.
    pub timestamp: u64,
    /// Which way it travelled.
    pub direction: Direction,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: ElementKind,
    /// Its exact bytes, base64.
    pub data: Base64Bytes,
    /// Fields this build does not know.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// The `_metadata` block of a `2.0.0` document.
/// Built with [`Metadata::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Metadata {
    /// The version the document is in (the `_metadata` block is shared by every
    /// version since `2.0.0`).
    pub version: String,
    /// When the store last saved it, epoch milliseconds (informational: clocks jump).
    pub saved_at: u64,
    /// How many days the session is kept after it started.
    pub retention_days: u32,
    /// Bumped by every save: the order of two copies, whatever the clock did.
    #[serde(default)]
    pub revision: u64,
    /// Fields this build does not know.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl Metadata {
    /// The metadata of a document of `version` never saved yet (revision 0).
    pub fn new(version: &str, retention_days: u32) -> Metadata {
        Metadata {
            version: version.to_owned(),
            saved_at: 0,
            retention_days,
            revision: 0,
            unknown: UnknownFields::new(),
        }
    }
}

impl Element {
    /// An element captured at `timestamp` (epoch ms), with an id made from its time
    /// (`element-<timestamp>`: unique within a session only when the caller's times
    /// are; set [`Element::id`] otherwise).
    pub fn new(timestamp: u64, direction: Direction, kind: ElementKind, bytes: Vec<u8>) -> Element {
        Element {
            id: format!("element-{timestamp}"),
            timestamp,
            direction,
            kind,
            data: Base64Bytes(bytes),
            unknown: UnknownFields::new(),
        }
    }

    /// The element's bytes as text, replacing invalid UTF-8 (what the app showed).
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(&self.data.0).into_owned()
    }
}

impl SessionV2_0 {
    /// The one expiry rule: expired once `persistedUntil <= now`.
    pub fn is_expired(&self, now: u64) -> bool {
        self.persisted_until <= now
    }

    /// The HL7 messages as text, as the app listed and submitted them.
    ///
    /// Derived from the message elements, unless the original file held a different
    /// list, which is then kept verbatim under `messages` and returned instead.
    pub fn messages(&self) -> Vec<String> {
        messages_of(&self.unknown, &self.elements)
    }

    /// Whether the worker may send it at `now`: complete, pending and due. An
    /// incomplete session is never sent.
    pub fn is_sendable(&self, now: u64) -> bool {
        self.is_complete && self.submission.is_due(now)
    }

    /// Whether `other` delivers exactly what this session delivers: the fields of the
    /// submission body (id, start and end, messages, addresses). Metadata, submission
    /// state and unknown fields do not count.
    pub fn same_delivery_content(&self, other: &SessionV2_0) -> bool {
        self.id == other.id
            && self.start_time == other.start_time
            && self.end_time == other.end_time
            && self.device_ip == other.device_ip
            && self.lis_ip == other.lis_ip
            && self.messages() == other.messages()
    }

    /// How many HL7 messages the session holds (`messages().len()`, counted).
    pub fn message_count(&self) -> usize {
        message_count_of(&self.unknown, &self.elements)
    }
}

/// The messages of a store version: a kept `messages` list of strings if the original
/// file had one the elements do not give, else the text of every message element. One
/// rule for every store version, so that a version change never changes what is sent.
pub(crate) fn messages_of(unknown: &UnknownFields, elements: &[Element]) -> Vec<String> {
    match kept_messages(unknown) {
        Some(kept) => kept
            .iter()
            .filter_map(serde_json::Value::as_str)
            .map(str::to_owned)
            .collect(),
        None => message_elements(elements).map(Element::text_lossy).collect(),
    }
}

/// `messages_of(unknown, elements).len()`, without making any message's text.
pub(crate) fn message_count_of(unknown: &UnknownFields, elements: &[Element]) -> usize {
    kept_messages(unknown).map_or_else(|| message_elements(elements).count(), Vec::len)
}

/// The kept `messages` list, when it is a list of strings (anything else is not a
/// list of messages, and the elements give them).
fn kept_messages(unknown: &UnknownFields) -> Option<&Vec<serde_json::Value>> {
    match unknown.get("messages") {
        Some(serde_json::Value::Array(kept)) if kept.iter().all(serde_json::Value::is_string) => Some(kept),
        _ => None,
    }
}

fn message_elements(elements: &[Element]) -> impl Iterator<Item = &Element> {
    elements.iter().filter(|e| e.kind == ElementKind::Message)
}

/// The field names `2.0.0` uses at the top level of a session.
pub const SESSION_FIELDS: &[&str] = &[
    "id",
    "sessionId",
    "startTime",
    "endTime",
    "deviceIP",
    "lisIP",
    "isComplete",
    "elements",
    "persistedUntil",
    "submission",
    "_metadata",
];
/// The field names `2.0.0` uses in an element.
pub const ELEMENT_FIELDS: &[&str] = &["id", "timestamp", "direction", "type", "data"];
/// The field names `2.0.0` uses in `_metadata`.
pub const METADATA_FIELDS: &[&str] = &["version", "savedAt", "retentionDays", "revision"];

/// Why a `1.0.0` document cannot be upgraded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// An element's bytes are missing or contradictory.
    #[error(transparent)]
    ElementBytes(#[from] ElementBytesError),
    /// A field the old version does not know has the name of a field the version it upgrades to uses at
    /// the same level (`submission`, an element's `data`, `_metadata.revision`): it can
    /// be neither kept beside the real one nor dropped, so the document is refused.
    #[error(
        "the field {} {level} is unknown to its version but named like a field of the version it upgrades to: it cannot be kept, so the document is refused",
        crate::Printable(field)
    )]
    FieldCollision {
        /// Where: "at the top level", "in element 3", "in _metadata".
        level: String,
        /// The field's name.
        field: String,
    },
}

/// Refuses unknown fields that would collide with `known` names once upgraded.
pub(crate) fn check_collisions(
    unknown: &UnknownFields,
    known: &[&str],
    level: impl Fn() -> String,
) -> Result<(), UpgradeError> {
    match unknown.keys().find(|k| known.contains(&k.as_str())) {
        Some(field) => Err(UpgradeError::FieldCollision {
            level: level(),
            field: field.clone(),
        }),
        None => Ok(()),
    }
}

impl From<AppSubmissionStatus> for SubmissionStatus {
    fn from(status: AppSubmissionStatus) -> Self {
        match status {
            AppSubmissionStatus::Pending => Self::Pending,
            AppSubmissionStatus::Submitted => Self::Submitted,
            AppSubmissionStatus::Failed => Self::Failed,
            AppSubmissionStatus::Ignored => Self::Ignored,
        }
    }
}

/// Keeps an app text copy only when it is not exactly what the bytes decode to.
fn keep_if_underivable(unknown: &mut UnknownFields, key: &str, text: Option<String>, derived: &str) {
    if let Some(text) = text.filter(|t| t != derived) {
        unknown.insert(key.into(), serde_json::Value::String(text));
    }
}

impl TryFrom<AppElement> for Element {
    type Error = ElementBytesError;
    fn try_from(mut app: AppElement) -> Result<Self, Self::Error> {
        let mut unknown = std::mem::take(&mut app.unknown);
        let (content, decoded_message) = (app.content.take(), app.decoded_message.take());
        let (id, timestamp, direction, kind) = (
            app.id.clone(),
            app.timestamp,
            app.direction.clone(),
            app.kind.clone(),
        );
        let bytes = app.into_bytes()?;
        let derived = String::from_utf8_lossy(&bytes);
        keep_if_underivable(&mut unknown, "content", content, &derived);
        keep_if_underivable(&mut unknown, "decodedMessage", decoded_message, &derived);
        Ok(Element {
            id,
            timestamp,
            direction,
            kind,
            data: Base64Bytes(bytes),
            unknown,
        })
    }
}

impl TryFrom<SessionV1> for SessionV2_0 {
    type Error = UpgradeError;
    fn try_from(v1: SessionV1) -> Result<Self, Self::Error> {
        check_collisions(&v1.unknown, SESSION_FIELDS, || "at the top level".into())?;
        check_collisions(&v1.metadata.unknown, METADATA_FIELDS, || "in _metadata".into())?;
        for (i, element) in v1.elements.iter().enumerate() {
            check_collisions(&element.unknown, ELEMENT_FIELDS, || format!("in element {i}"))?;
        }
        let elements = v1
            .elements
            .into_iter()
            .map(Element::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let status = SubmissionStatus::from(v1.submission_status);
        let mut session = SessionV2_0 {
            id: v1.id,
            session_number: v1.session_number,
            start_time: v1.start_time,
            end_time: v1.end_time,
            device_ip: v1.device_ip,
            lis_ip: v1.lis_ip,
            is_complete: v1.is_complete,
            elements,
            persisted_until: v1.persisted_until,
            submission: Submission {
                status,
                attempts: v1.submission_attempts.unwrap_or(0),
                last_attempt_at: None,
                next_attempt_at: None,
                submitted_at: v1.submitted_at,
                last_error: v1.submission_error,
                idempotency_key: None,
                earlier_deliveries: Vec::new(),
                unknown: UnknownFields::new(),
            },
            metadata: Metadata {
                version: VERSION.into(),
                saved_at: v1.metadata.saved_at,
                retention_days: v1.metadata.retention_days,
                revision: 0,
                unknown: v1.metadata.unknown,
            },
            unknown: v1.unknown,
        };
        let derived = session.elements.iter().filter(|e| e.kind == ElementKind::Message);
        let same = v1.messages.len() == derived.clone().count()
            && v1
                .messages
                .iter()
                .zip(derived)
                .all(|(m, e)| *m == String::from_utf8_lossy(&e.data.0));
        if !same {
            session
                .unknown
                .insert("messages".into(), serde_json::json!(v1.messages));
        }
        Ok(session)
    }
}
