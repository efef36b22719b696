//! `1.0.0` documents: the app's current format, and the legacy -> `1.0.0` upgrade. Frozen.

use serde::{Deserialize, Serialize};

use crate::app_element::AppElement;
use crate::id::SessionId;
use crate::legacy::LegacySession;
use crate::vocabulary::UnknownFields;

/// The `_metadata.version` of this format.
pub const VERSION: &str = "1.0.0";

impl crate::Version for SessionV1 {
    const SCHEMA: crate::SchemaVersion = crate::SchemaVersion::new(VERSION, 1);

    fn stated_version(&self) -> Option<&str> {
        Some(&self.metadata.version)
    }
}

/// One day in milliseconds: the unit of `retentionDays`.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// When a session that started at `start_time` expires under `retention_days`, epoch ms
/// (`persistedUntil`): its start plus the retention, saturating.
pub(crate) fn kept_until(start_time: u64, retention_days: u32) -> u64 {
    start_time.saturating_add(u64::from(retention_days).saturating_mul(DAY_MS))
}

/// The app's default retention.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// A submission status as the app wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AppSubmissionStatus {
    /// Not delivered yet.
    Pending,
    /// Delivered.
    Submitted,
    /// Gave up.
    Failed,
    /// An operator chose not to deliver it.
    Ignored,
}

/// A `1.0.0` session: `{...session, persistedUntil, _metadata}` with flat submission fields.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionV1 {
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
    /// Whether the transmission ended.
    #[serde(default)]
    pub is_complete: bool,
    /// Submission status.
    pub submission_status: AppSubmissionStatus,
    /// Submission attempts so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_attempts: Option<u32>,
    /// When the session was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<u64>,
    /// The last submission error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_error: Option<String>,
    /// When retention ends, epoch milliseconds.
    pub persisted_until: u64,
    /// The app's metadata block.
    #[serde(rename = "_metadata")]
    pub metadata: MetadataV1,
    /// Fields this build does not know.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl std::fmt::Debug for SessionV1 {
    // The messages are patient data: their count and size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionV1")
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
            .field("metadata", &self.metadata)
            .field("unknown", &self.unknown)
            .finish()
    }
}

/// The `_metadata` block of a `1.0.0` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataV1 {
    /// Always `"1.0.0"`.
    pub version: String,
    /// When the app last saved the file, epoch milliseconds.
    pub saved_at: u64,
    /// How many days the session is kept after it started.
    pub retention_days: u32,
    /// Fields this build does not know.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A legacy session plus what its upgrade needs from the caller.
///
/// The app stamped `savedAt` with the current time on every upgrade, so the same file
/// upgraded twice came out different; the caller supplies it instead (for a file on disk,
/// its modification time is the honest answer).
#[derive(Debug, Clone)]
pub struct LegacyUpgrade {
    /// The legacy document.
    pub session: LegacySession,
    /// The `savedAt` to record.
    pub saved_at: u64,
    /// The retention to apply ([`DEFAULT_RETENTION_DAYS`] unless configured).
    pub retention_days: u32,
}

impl From<LegacyUpgrade> for SessionV1 {
    fn from(upgrade: LegacyUpgrade) -> Self {
        let LegacyUpgrade {
            session: s,
            saved_at,
            retention_days,
        } = upgrade;
        // Like the app: an existing persistedUntil is kept, otherwise start + retention.
        let persisted_until = s
            .persisted_until
            .unwrap_or_else(|| kept_until(s.start_time, retention_days));
        SessionV1 {
            id: s.id,
            session_number: s.session_number,
            start_time: s.start_time,
            end_time: s.end_time,
            device_ip: s.device_ip,
            lis_ip: s.lis_ip,
            elements: s.elements,
            messages: s.messages,
            is_complete: s.is_complete,
            submission_status: s.submission_status.unwrap_or(AppSubmissionStatus::Pending),
            submission_attempts: s.submission_attempts,
            submitted_at: s.submitted_at,
            submission_error: s.submission_error,
            persisted_until,
            metadata: MetadataV1 {
                version: VERSION.into(),
                saved_at,
                retention_days,
                unknown: UnknownFields::new(),
            },
            unknown: s.unknown,
        }
    }
}
