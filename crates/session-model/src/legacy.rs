//! Legacy documents: written by the app before it had `_metadata`. Frozen: never edit.

use serde::{Deserialize, Serialize};

use crate::app_element::AppElement;
use crate::id::SessionId;
use crate::v1::AppSubmissionStatus;
use crate::vocabulary::UnknownFields;

/// A session as the app wrote it before `_metadata` existed (recognised by its absence).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacySession {
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
    /// The framed elements in capture order.
    #[serde(default)]
    pub elements: Vec<AppElement>,
    /// The HL7 messages as (lossy) text.
    #[serde(default)]
    pub messages: Vec<String>,
    /// Whether the transmission ended (`0x04` seen).
    #[serde(default)]
    pub is_complete: bool,
    /// Submission status, when the app had already started tracking it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_status: Option<AppSubmissionStatus>,
    /// Submission attempts so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_attempts: Option<u32>,
    /// When the session was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<u64>,
    /// The last submission error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_error: Option<String>,
    /// Retention end, if an app version wrote it without `_metadata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persisted_until: Option<u64>,
    /// Fields this build does not know.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl std::fmt::Debug for LegacySession {
    // The messages are patient data: their count and size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacySession")
            .field("id", &self.id)
            .field("session_number", &self.session_number)
            .field("start_time", &self.start_time)
            .field("end_time", &self.end_time)
            .field("device_ip", &self.device_ip)
            .field("lis_ip", &self.lis_ip)
            .field("elements", &self.elements)
            .field("messages", &crate::redact::TextsSize(&self.messages))
            .field("is_complete", &self.is_complete)
            .field("submission_status", &self.submission_status)
            .field("submission_attempts", &self.submission_attempts)
            .field("submitted_at", &self.submitted_at)
            .field("submission_error", &self.submission_error)
            .field("persisted_until", &self.persisted_until)
            .field("unknown", &self.unknown)
            .finish()
    }
}
