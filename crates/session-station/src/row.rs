//! A session as a list shows it, and the order people read ids in.

use serde_json::Value;
use session_model::SubmissionStatus;
use session_store::StoredEntry;

use crate::Counted;

/// One session as a list shows it: everything a list, a filter or `status` needs,
/// never the messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionRow {
    /// The id.
    pub id: String,
    /// The version on disk (`legacy`, `1.0.0`, `2.0.0`, or a newer one).
    pub version: String,
    /// Capture start, epoch ms.
    pub start_time: Option<u64>,
    /// HL7 messages in the session.
    pub message_count: Option<usize>,
    /// Submission status (as the file says, for newer versions).
    pub submission_status: Option<String>,
    /// Retention end, epoch ms.
    pub persisted_until: Option<u64>,
    /// Whether capture finished (an incomplete session is never sent).
    pub is_complete: Option<bool>,
    /// Whether capture was cut off (a crash, a lost connection, a stop), or the LIS
    /// did not receive all of it.
    pub interrupted: bool,
    /// Whether the LIS did not receive all of it (`interrupted.reason` `lisClosed`).
    pub not_received_by_lis: bool,
    /// The last submission error, if any.
    pub last_error: Option<String>,
    /// The analyzer's address.
    pub device_ip: Option<String>,
    /// The LIS's address.
    pub lis_ip: Option<String>,
    /// Capture end, epoch ms.
    pub end_time: Option<u64>,
    /// The last delivery attempt, epoch ms.
    pub last_attempt_at: Option<u64>,
    /// When the worker sends it next, epoch ms (pending sessions).
    pub next_attempt_at: Option<u64>,
    /// The submission status, typed (`None` for a status this build does not know).
    pub status: Option<SubmissionStatus>,
    /// The file's `_metadata.revision`: which of two readings of it is newer.
    pub revision: u64,
    /// Written by a newer build: shown, never counted with this build's sessions.
    pub newer: bool,
}

impl SessionRow {
    /// The row of a decoded session.
    pub fn of(decoded: &session_store::Decoded) -> SessionRow {
        let s = &decoded.session;
        SessionRow {
            id: s.id.to_string(),
            version: decoded.from.as_str().to_owned(),
            start_time: Some(s.start_time),
            message_count: Some(s.message_count()),
            submission_status: Some(s.submission.status.as_str().to_owned()),
            persisted_until: Some(s.persisted_until),
            is_complete: Some(s.is_complete),
            interrupted: s.interrupted.is_some(),
            not_received_by_lis: s
                .interrupted
                .as_ref()
                .is_some_and(|i| i.reason == session_model::InterruptionReason::LisClosed),
            last_error: s.submission.last_error.clone(),
            device_ip: s.device_ip.clone(),
            lis_ip: s.lis_ip.clone(),
            end_time: s.end_time,
            last_attempt_at: s.submission.last_attempt_at,
            next_attempt_at: s.submission.next_attempt_at,
            status: Some(s.submission.status),
            revision: s.metadata.revision,
            newer: false,
        }
    }

    /// The row of a listed entry: a session this build reads, or a newer build's file;
    /// `None` for anything else (a damaged file), which the caller counts or names.
    pub fn of_entry(entry: &StoredEntry) -> Option<SessionRow> {
        match entry {
            StoredEntry::Valid(decoded) => Some(SessionRow::of(decoded)),
            StoredEntry::Newer {
                id,
                version,
                document,
            } => Some(SessionRow::of_newer(id.to_string(), version.clone(), document)),
            _ => None,
        }
    }

    /// The row of a newer build's file (`version`, as `document`): shown from whatever
    /// fields look familiar, never decoded.
    pub fn of_newer(id: String, version: String, document: &[u8]) -> SessionRow {
        let value: Value = serde_json::from_slice(document).unwrap_or(Value::Null);
        let status = value
            .pointer("/submission/status")
            .or_else(|| value.get("submissionStatus"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        SessionRow {
            id,
            version,
            start_time: value.get("startTime").and_then(Value::as_u64),
            message_count: value.get("messages").and_then(Value::as_array).map(Vec::len),
            submission_status: status,
            persisted_until: value.get("persistedUntil").and_then(Value::as_u64),
            is_complete: value.get("isComplete").and_then(Value::as_bool),
            interrupted: value.get("interrupted").is_some_and(Value::is_object),
            not_received_by_lis: value.pointer("/interrupted/reason").and_then(Value::as_str)
                == Some("lisClosed"),
            last_error: None,
            device_ip: value.get("deviceIP").and_then(Value::as_str).map(str::to_owned),
            lis_ip: value.get("lisIP").and_then(Value::as_str).map(str::to_owned),
            end_time: value.get("endTime").and_then(Value::as_u64),
            last_attempt_at: None,
            next_attempt_at: None,
            status: None,
            revision: value
                .pointer("/_metadata/revision")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            newer: true,
        }
    }
}

/// Orders ids as people do: runs of digits compare as numbers.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn runs(s: &str) -> impl Iterator<Item = (bool, &str)> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digits = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(end);
            rest = tail;
            Some((digits, run))
        })
    }
    let mut left = runs(a);
    let mut right = runs(b);
    loop {
        match (left.next(), right.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some((true, x)), Some((true, y))) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                let order = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
                if order.is_ne() {
                    return order;
                }
            }
            (Some((_, x)), Some((_, y))) => {
                if x != y {
                    return x.cmp(y);
                }
            }
        }
    }
}

impl SessionRow {
    /// What a [`Tally`](crate::Tally) counts of this row.
    pub fn counted(&self) -> Counted<'_> {
        Counted {
            id: &self.id,
            status: self.status,
            newer: self.newer,
            is_complete: self.is_complete,
            interrupted: self.interrupted,
            not_received_by_lis: self.not_received_by_lis,
            start_time: self.start_time,
            last_error: self.last_error.as_deref(),
            last_attempt_at: self.last_attempt_at,
            next_attempt_at: self.next_attempt_at,
        }
    }
}
