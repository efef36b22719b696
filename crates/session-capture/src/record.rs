//! What one journal record holds: the capture's own format (`session-fs` stores the
//! records as opaque bytes). JSON, one object per record, externally tagged:
//! `{"begin": {...}}` first, then `{"element": {...}}` per element, and
//! `{"end": {...}}` when the capture completed or was abandoned.

use serde::{Deserialize, Serialize};
use session_model::{Base64Bytes, Direction, ElementKind, InterruptionReason, SessionId};

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Record {
    /// The first record: who, when, and how long to keep it.
    Begin(BeginRecord),
    /// One element.
    Element(ElementRecord),
    /// How it ended.
    End(EndRecord),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BeginRecord {
    pub id: SessionId,
    #[serde(rename = "sessionId")]
    pub session_number: u64,
    pub start_time: u64,
    #[serde(rename = "deviceIP", default, skip_serializing_if = "Option::is_none")]
    pub device_ip: Option<String>,
    #[serde(rename = "lisIP", default, skip_serializing_if = "Option::is_none")]
    pub lis_ip: Option<String>,
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ElementRecord {
    pub timestamp: u64,
    pub direction: Direction,
    #[serde(rename = "type")]
    pub kind: ElementKind,
    pub data: Base64Bytes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndRecord {
    pub at: u64,
    /// `None`: completed by its end marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<InterruptionReason>,
    /// The LIS went away while the session was open: when, and how many of the
    /// analyzer's bytes it never received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lis_gone: Option<LisGone>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LisGone {
    pub at: u64,
    pub missed_bytes: u64,
}

impl Record {
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}
