//! The JSON the API answers with and `sessionctl --json` prints: CONTRACT.md's shapes,
//! as types of this crate, so that a library's field rename never changes a documented
//! output.

use std::collections::BTreeMap;

use serde::Serialize;
use session_daemon::StatusReport;
use session_fs::clock::ClockRecord;
use session_model::SubmissionStatus;
use session_station::SessionRow;
use session_store::SessionStore;
use session_workers::cleanup::CleanupSummary;

/// The oldest session not yet delivered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Oldest {
    /// Its id.
    pub id: String,
    /// When it started, epoch ms.
    pub start_time: u64,
    /// Where its delivery stands.
    pub submission_status: SubmissionStatus,
}

/// A session that failed for good, with why.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedSession {
    /// Its id.
    pub id: String,
    /// The endpoint's last answer, as recorded.
    pub last_error: Option<String>,
}

/// `status --json` and `/api/status`: a [`StatusReport`] in CONTRACT's shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// Live sessions.
    pub total: usize,
    /// Live sessions by submission status (`pending`, `submitted`...).
    pub counts: BTreeMap<&'static str, usize>,
    /// Sessions whose capture never finished.
    pub incomplete: usize,
    /// Of those, the ones cut off by a crash or a reset.
    pub interrupted: usize,
    /// Sessions the LIS did not receive in full.
    pub not_received_by_lis: usize,
    /// Sessions being captured now.
    pub capturing: usize,
    /// Captures kept in `.journal/` because storing them failed.
    pub recording_stalled: usize,
    /// Damaged files, orphaned temp files and odd names, together.
    pub problems: usize,
    /// Damaged session files (quarantined by recovery).
    pub damaged: usize,
    /// Temp files a crash left behind.
    pub orphaned_temps: usize,
    /// Names in the store that are not regular files.
    pub not_regular_files: usize,
    /// Sessions written by a newer version, left alone.
    pub newer_version: usize,
    /// The oldest session not yet delivered.
    pub oldest_undelivered: Option<Oldest>,
    /// The first sessions that failed for good (ids in natural order, at most
    /// [`session_station::FAILED_NAMED`]): the report stays small however many failed;
    /// `counts` has how many failed in all.
    pub failed: Vec<FailedSession>,
    /// The last cleanup, if one ran.
    pub last_cleanup: Option<LastCleanup>,
    /// Whether the store trusts the wall clock.
    pub clock: ClockView,
    /// Pending sessions due beyond the retry cap (a clock that was ahead): sent now.
    pub retries_pulled_in: usize,
    /// The endpoint refuses in a way only an operator can fix.
    pub endpoint_attention: Option<EndpointAttention>,
    /// What an operator should act on.
    pub alerts: Vec<Alert>,
}

/// Something an operator should act on.
#[derive(Debug, Serialize)]
pub struct Alert {
    /// What kind (`undelivered`...).
    pub kind: &'static str,
    /// In words.
    pub message: String,
}

/// The endpoint needs an operator.
#[derive(Debug, Serialize)]
pub struct EndpointAttention {
    /// The endpoint's answer.
    pub error: String,
    /// Sessions waiting on it.
    pub sessions: usize,
}

/// The last cleanup, as `status --json` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastCleanup {
    /// Sessions past their retention.
    pub expired: usize,
    /// Sessions moved to the trash.
    pub trashed: usize,
    /// Expired sessions kept (not delivered).
    pub kept: usize,
    /// Trashed files purged for good.
    pub purged: usize,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// How long it took.
    pub duration_ms: u64,
    /// Whether it only said what it would do.
    pub dry_run: bool,
    /// When it ran, epoch ms.
    pub at: u64,
}

impl From<&CleanupSummary> for LastCleanup {
    fn from(s: &CleanupSummary) -> Self {
        LastCleanup {
            expired: s.expired,
            trashed: s.trashed,
            kept: s.kept,
            purged: s.purged,
            bytes_freed: s.bytes_freed,
            duration_ms: s.duration_ms,
            dry_run: s.dry_run,
            at: s.at,
        }
    }
}

impl From<&StatusReport> for StatusView {
    fn from(report: &StatusReport) -> Self {
        let (counts, files) = (&report.counts, &report.files);
        StatusView {
            total: counts.total,
            counts: counts.by_status.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
            incomplete: counts.incomplete,
            interrupted: counts.interrupted,
            not_received_by_lis: counts.not_received_by_lis,
            capturing: report.capturing,
            recording_stalled: report.recording_stalled,
            problems: report.problems(),
            damaged: files.damaged,
            orphaned_temps: files.orphaned_temps,
            not_regular_files: files.not_regular_files,
            newer_version: counts.newer,
            oldest_undelivered: counts.oldest_waiting.as_ref().map(|w| Oldest {
                id: w.id.clone(),
                start_time: w.start_time,
                submission_status: w.status,
            }),
            failed: counts
                .failed
                .iter()
                .map(|f| FailedSession {
                    id: f.id.clone(),
                    last_error: f.last_error.clone(),
                })
                .collect(),
            last_cleanup: report.last_cleanup.as_ref().map(LastCleanup::from),
            clock: ClockView::from(&report.clock),
            retries_pulled_in: counts.retries_pulled_in,
            endpoint_attention: counts.endpoint_attention.as_ref().map(|a| EndpointAttention {
                error: a.error.clone(),
                sessions: a.sessions,
            }),
            alerts: report
                .alerts
                .iter()
                .map(|a| Alert {
                    kind: a.kind.as_str(),
                    message: a.message.clone(),
                })
                .collect(),
        }
    }
}

/// What `clock --json`, `status --json` (`clock`) and `/api/status` say of the clock.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClockView {
    /// Whether the clock is suspect: nothing is then purged, trashed or expired.
    pub suspect: bool,
    /// Why, in words.
    pub reason: Option<String>,
    /// The wall-clock reading that raised the suspicion, epoch ms.
    pub suspect_since: Option<u64>,
    /// The newest reading the store trusted, epoch ms.
    pub trusted_at: Option<u64>,
    /// What cleared the last suspicion ("operator", "endpoint's Date").
    pub last_cleared_by: Option<String>,
}

impl From<&ClockRecord> for ClockView {
    fn from(record: &ClockRecord) -> Self {
        ClockView {
            suspect: record.suspect.is_some(),
            reason: record.suspect.as_ref().map(|s| s.reason.clone()),
            suspect_since: record.suspect.as_ref().map(|s| s.at.wall_ms),
            trusted_at: record.trusted.as_ref().map(|t| t.wall_ms),
            last_cleared_by: record.cleared.as_ref().map(|c| c.by.clone()),
        }
    }
}

impl ClockView {
    /// The store's clock as its record says (read only).
    pub fn of(store: &SessionStore) -> Result<ClockView, session_fs::FsError> {
        Ok(ClockView::from(&store.fs().clock_record()?))
    }

    /// The line `status` and `clock` print while the clock is suspect.
    pub fn warning(&self) -> Option<String> {
        let reason = self.reason.as_deref()?;
        Some(format!(
            "CLOCK SUSPECT: {}. Nothing is purged, trashed or expired until the endpoint's Date agrees or an operator runs `sessionctl clock confirm`",
            session_model::printable(reason)
        ))
    }
}

/// A [`SessionRow`] as `list --json` and the local API print it (CONTRACT's shape).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowView<'a> {
    id: &'a str,
    version: &'a str,
    start_time: Option<u64>,
    message_count: Option<usize>,
    submission_status: Option<&'a str>,
    persisted_until: Option<u64>,
    is_complete: Option<bool>,
    interrupted: bool,
    not_received_by_lis: bool,
    last_error: Option<&'a str>,
    #[serde(rename = "deviceIP")]
    device_ip: Option<&'a str>,
    #[serde(rename = "lisIP")]
    lis_ip: Option<&'a str>,
    end_time: Option<u64>,
    last_attempt_at: Option<u64>,
    next_attempt_at: Option<u64>,
}

impl<'a> From<&'a SessionRow> for RowView<'a> {
    fn from(r: &'a SessionRow) -> Self {
        RowView {
            id: &r.id,
            version: &r.version,
            start_time: r.start_time,
            message_count: r.message_count,
            submission_status: r.submission_status.as_deref(),
            persisted_until: r.persisted_until,
            is_complete: r.is_complete,
            interrupted: r.interrupted,
            not_received_by_lis: r.not_received_by_lis,
            last_error: r.last_error.as_deref(),
            device_ip: r.device_ip.as_deref(),
            lis_ip: r.lis_ip.as_deref(),
            end_time: r.end_time,
            last_attempt_at: r.last_attempt_at,
            next_attempt_at: r.next_attempt_at,
        }
    }
}

/// Rows as JSON views, for a `json!` document.
pub fn rows(rows: &[SessionRow]) -> Vec<RowView<'_>> {
    rows.iter().map(RowView::from).collect()
}

#[cfg(test)]
mod tests {
    use super::ClockView;

    fn clock(reason: Option<&str>) -> ClockView {
        ClockView {
            suspect: reason.is_some(),
            reason: reason.map(String::from),
            suspect_since: None,
            trusted_at: None,
            last_cleared_by: None,
        }
    }

    #[test]
    fn a_suspect_clock_warns_in_words_and_a_trusted_one_says_nothing() {
        assert_eq!(clock(None).warning(), None);
        insta::assert_snapshot!(
            clock(Some(
                "the wall clock reads 3 years before the newest save\u{1b}[2J"
            ))
            .warning()
            .unwrap()
        );
    }
}
